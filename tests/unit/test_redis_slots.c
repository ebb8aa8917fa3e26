/* test_redis_slots.c: Redis Cluster key slots (checked against redis-py's key_slot, i.e. Redis's
 * keyHashSlot), MOVED/ASK parsing, command routes, the slot map and the upstream spread tags. */
#include "common/redis_slots.h"

#include <stdio.h>
#include <string.h>

#include "tests/unit/test.h"

static unsigned slot_of(const char *s)
{
    return redis_key_slot(s, strlen(s));
}

static void test_key_slots(void)
{
    CHECK(redis_crc16("123456789", 9) == 0x31C3); /* the XMODEM check value */
    CHECK(slot_of("foo") == 12182);
    CHECK(slot_of("bar") == 5061);
    CHECK(slot_of("user1000") == 3443);
    CHECK(slot_of("{user1000}.following") == 3443);
    CHECK(slot_of("foo{}{bar}") == 8363);    /* an empty tag: the whole key */
    CHECK(slot_of("foo{{bar}}zap") == 4015); /* the tag is "{bar" */
    CHECK(slot_of("foo{bar}{zap}") == 5061); /* the first tag only */
    CHECK(slot_of("{}") == 15257);
    CHECK(slot_of("a{b") == 13340); /* no closing brace: the whole key */
    CHECK(slot_of("") == 0);
    CHECK(slot_of("sioc:up:/:{0.3}") == 9852);
    CHECK(redis_key_slot("x{a\0b}", 6) == redis_key_slot("a\0b", 3)); /* binary-safe */
}

static void test_redirects(void)
{
    struct redis_redirect r;
    static const char moved[] = "MOVED 3999 127.0.0.1:6381";
    CHECK(redis_redirect_parse(moved, strlen(moved), &r) == REDIS_REDIRECT_MOVED);
    CHECK(r.slot == 3999 && strcmp(r.host, "127.0.0.1") == 0 && r.port == 6381);
    static const char ask[] = "ASK 16383 ::1:7000";
    CHECK(redis_redirect_parse(ask, strlen(ask), &r) == REDIS_REDIRECT_ASK);
    CHECK(r.slot == 16383 && strcmp(r.host, "::1") == 0 && r.port == 7000);
    static const char bare[] = "MOVED 0 :6380"; /* the node does not know its own address */
    CHECK(redis_redirect_parse(bare, strlen(bare), &r) == REDIS_REDIRECT_MOVED);
    CHECK(r.host[0] == '\0' && r.port == 6380 && r.slot == 0);
    static const char *const bad[] = {"MOVED 16384 h:1", "MOVED x h:1",     "MOVED 1 h:0",
                                      "MOVED 1 h:65536", "MOVED 1 h",       "MOVED 1",
                                      "ASK  1 h:1",      "ERR MOVED 1 h:1", "TRYAGAIN x",
                                      "MOVED 1 h:1x",    "moved 1 h:1",     ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(redis_redirect_parse(bad[i], strlen(bad[i]), &r) == REDIS_REDIRECT_NONE);
    char longhost[400] = "MOVED 1 ";
    memset(longhost + 8, 'h', 300);
    strcpy(longhost + 308, ":1");
    CHECK(redis_redirect_parse(longhost, strlen(longhost), &r) == REDIS_REDIRECT_NONE);
}

static enum redis_route_kind route(int argc, const char *const *argv, int *index)
{
    size_t lens[16];
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    return redis_command_route(argc, argv, lens, index);
}

static void test_routes(void)
{
    int i;
    const char *xadd[] = {"XADD", "sioc:up:/:{0.3}", "MAXLEN", "~", "10", "*", "f", "v"};
    CHECK(route(8, xadd, &i) == REDIS_ROUTE_KEY && i == 1);
    const char *rg[] = {"XREADGROUP", "GROUP", "g", "c", "COUNT", "10", "STREAMS", "k1", ">"};
    CHECK(route(9, rg, &i) == REDIS_ROUTE_KEY && i == 7);
    const char *rg_bad[] = {"xreadgroup", "GROUP", "g", "c", "streams"};
    CHECK(route(5, rg_bad, &i) == REDIS_ROUTE_ANY);
    const char *eval1[] = {"EVAL", "return 1", "1", "{sioc}:bk:nodes", "{sioc}"};
    CHECK(route(5, eval1, &i) == REDIS_ROUTE_KEY && i == 3);
    const char *eval0[] = {"evalsha", "abc", "0", "x"};
    CHECK(route(4, eval0, &i) == REDIS_ROUTE_ANY);
    const char *evalbad[] = {"EVAL", "s", "3", "k"};
    CHECK(route(4, evalbad, &i) == REDIS_ROUTE_REFUSE);
    const char *evalnan[] = {"EVAL", "s", "x"};
    CHECK(route(3, evalnan, &i) == REDIS_ROUTE_REFUSE);
    const char *pub[] = {"PUBLISH", "socket.io#/#", "m"};
    CHECK(route(3, pub, &i) == REDIS_ROUTE_HOME);
    const char *numsub[] = {"PUBSUB", "NUMSUB", "socket.io-request#/#"};
    CHECK(route(3, numsub, &i) == REDIS_ROUTE_HOME);
    const char *shardnum[] = {"PUBSUB", "SHARDNUMSUB", "socket.io#/#"};
    CHECK(route(3, shardnum, &i) == REDIS_ROUTE_KEY && i == 2);
    const char *spub[] = {"SPUBLISH", "socket.io#/#room#", "m"};
    CHECK(route(3, spub, &i) == REDIS_ROUTE_KEY && i == 1);
    const char *ping[] = {"PING"};
    CHECK(route(1, ping, &i) == REDIS_ROUTE_ANY);
    const char *slots[] = {"CLUSTER", "SLOTS"};
    CHECK(route(2, slots, &i) == REDIS_ROUTE_ANY);
    const char *load[] = {"SCRIPT", "LOAD", "return 1"};
    CHECK(route(3, load, &i) == REDIS_ROUTE_ANY);
    const char *xgroup[] = {"XGROUP", "CREATE", "stream", "g", "$", "MKSTREAM"};
    CHECK(route(6, xgroup, &i) == REDIS_ROUTE_KEY && i == 2);
    const char *set[] = {"SET", "sioc:hb:n1", "e", "PX", "6000"};
    CHECK(route(5, set, &i) == REDIS_ROUTE_KEY && i == 1);
    CHECK(route(0, ping, &i) == REDIS_ROUTE_REFUSE);
}

static void test_slot_map(void)
{
    static struct redis_slot_map m;
    redis_slot_map_clear(&m);
    CHECK(redis_slot_map_covered(&m) == 0 && redis_slot_map_owner(&m, 5) == -1);
    CHECK(redis_slot_map_assign(&m, 0, 5460, "127.0.0.1", 7000) == 0);
    CHECK(redis_slot_map_assign(&m, 5461, 10922, "127.0.0.1", 7001) == 1);
    CHECK(redis_slot_map_assign(&m, 10923, 16383, "127.0.0.1", 7002) == 2);
    CHECK(redis_slot_map_covered(&m) == REDIS_SLOTS && m.nnodes == 3);
    CHECK(redis_slot_map_owner(&m, 0) == 0 && redis_slot_map_owner(&m, 5461) == 1);
    CHECK(redis_slot_map_owner(&m, 16383) == 2 && redis_slot_map_owner(&m, 16384) == -1);
    /* a MOVED for one slot: the node is known, one slot changes hands */
    CHECK(redis_slot_map_assign(&m, 100, 100, "127.0.0.1", 7002) == 2);
    CHECK(redis_slot_map_owner(&m, 100) == 2 && redis_slot_map_owner(&m, 101) == 0);
    CHECK(redis_slot_map_find(&m, "127.0.0.1", 7001) == 1);
    CHECK(redis_slot_map_find(&m, "127.0.0.1", 7009) == -1);
    CHECK(redis_slot_map_assign(&m, 5, 4, "h", 1) == -1);
    CHECK(redis_slot_map_assign(&m, 0, 16384, "h", 1) == -1);
    CHECK(redis_slot_map_assign(&m, 0, 1, "", 1) == -1);
    CHECK(redis_slot_map_assign(&m, 0, 1, "h", 0) == -1);
    CHECK(m.nnodes == 3 && redis_slot_map_owner(&m, 0) == 0); /* refusals change nothing */
    char host[16];
    for (unsigned i = 3; i < REDIS_SLOT_MAP_MAX_NODES; i++) {
        snprintf(host, sizeof host, "n%u", i);
        CHECK(redis_slot_map_assign(&m, i, i, host, 1) == (int)i);
    }
    CHECK(redis_slot_map_assign(&m, 0, 0, "one-too-many", 1) == -1);
}

static void test_spread_tags(void)
{
    char tag[32];
    for (unsigned n = 1; n <= 64; n++) {
        for (unsigned s = 0; s < n; s++) {
            size_t len = redis_spread_tag(s, n, tag, sizeof tag);
            CHECK(len > 0 && len == strlen(tag));
            unsigned slot = redis_key_slot(tag, len);
            CHECK(slot >= s * REDIS_SLOTS / n && slot < (s + 1) * REDIS_SLOTS / n);
        }
    }
    /* stable names: what the Python SDK computes too (sdk/python/sioc/cluster_keys.py) */
    CHECK(redis_spread_tag(0, 3, tag, sizeof tag) == 3 && strcmp(tag, "0.1") == 0);
    CHECK(redis_spread_tag(3, 4, tag, sizeof tag) == 3 && strcmp(tag, "3.3") == 0);
    char again[32];
    CHECK(redis_spread_tag(0, 3, again, sizeof again) > 0 && strcmp(again, "0.1") == 0);
    CHECK(redis_spread_tag(3, 3, tag, sizeof tag) == 0);
    CHECK(redis_spread_tag(0, 0, tag, sizeof tag) == 0);
    CHECK(redis_spread_tag(0, 1, tag, 8) == 0);
    CHECK(redis_spread_tag(16383, 16384, tag, sizeof tag) > 0);
    CHECK(redis_key_slot(tag, strlen(tag)) == 16383);
}

static void test_cluster_prefix(void)
{
    char buf[32];
    CHECK(redis_cluster_prefix("sioc", buf, sizeof buf) == 6 && strcmp(buf, "{sioc}") == 0);
    CHECK(redis_cluster_prefix("a{b", buf, sizeof buf) == 0);
    CHECK(redis_cluster_prefix("", buf, sizeof buf) == 0);
    CHECK(redis_cluster_prefix("sioc", buf, 6) == 0);
    CHECK(redis_prefix_is_cluster("{sioc}") && !redis_prefix_is_cluster("sioc"));
    CHECK(!redis_prefix_is_cluster("{}") && !redis_prefix_is_cluster("{a}b}"));
    const char *p = redis_key_prefix_for("redis://h:1", "sioc", buf, sizeof buf);
    CHECK(p != NULL && strcmp(p, "sioc") == 0);
    p = redis_key_prefix_for("redis-cluster://h:1,h:2", "sioc", buf, sizeof buf);
    CHECK(p == buf && strcmp(p, "{sioc}") == 0);
    CHECK(redis_key_prefix_for("rediss-cluster://h:1", "x{y}", buf, sizeof buf) == NULL);
    /* every key of the registry group shares the slot of the prefix's tag */
    CHECK(slot_of("{sioc}:registry") == slot_of("{sioc}:sid:abc") &&
          slot_of("{sioc}:bk:lost") == slot_of("{sioc}") && slot_of("{sioc}") == slot_of("sioc"));
}

int main(void)
{
    RUN(test_key_slots);
    RUN(test_redirects);
    RUN(test_routes);
    RUN(test_slot_map);
    RUN(test_spread_tags);
    RUN(test_cluster_prefix);
    return test_summary("test_redis_slots");
}
