/* test_redis_proto.c: redis:// URLs (DESIGN.md §2) and RESP command encoding, byte for byte,
 * with every input ending at a guard page. */
#include "common/redis_proto.h"

#include <stdlib.h>

#include "common/error.h"
#include "tests/unit/test.h"

/* Parses a copy of `url` that ends at a guard page. */
static int parse(const char *url, struct redis_url *u)
{
    size_t n = strlen(url), map_len;
    uint8_t *g = test_guard_copy(url, n + 1, &map_len);
    int rc = redis_url_parse((const char *)g, u);
    test_guard_free(g, n + 1, map_len);
    return rc;
}

static void test_urls(void)
{
    struct redis_url u;
    CHECK(parse("redis://127.0.0.1:6380", &u) == SIOC_OK);
    CHECK(strcmp(u.host, "127.0.0.1") == 0 && u.port == 6380 && u.db == 0);
    CHECK(u.user == NULL && u.password == NULL);
    CHECK(parse("redis://redis", &u) == SIOC_OK);
    CHECK(strcmp(u.host, "redis") == 0 && u.port == 6379);
    CHECK(parse("redis://:p%40ss@h:1/15", &u) == SIOC_OK);
    CHECK(u.user == NULL && strcmp(u.password, "p@ss") == 0 && u.db == 15 && u.port == 1);
    CHECK(parse("redis://alice:s3cret@h/", &u) == SIOC_OK);
    CHECK(strcmp(u.user, "alice") == 0 && strcmp(u.password, "s3cret") == 0 && u.db == 0);
    CHECK(parse("redis://a%3Ab:c%2Fd@h", &u) == SIOC_OK); /* user and password %-decoded */
    CHECK(strcmp(u.user, "a:b") == 0 && strcmp(u.password, "c/d") == 0);
    CHECK(parse("redis://:pw@h@x:9", &u) == SIOC_OK); /* the last '@' ends the credentials */
    CHECK(strcmp(u.password, "pw@h") == 0 && strcmp(u.host, "x") == 0 && u.port == 9);
    CHECK(parse("redis://[::1]:7000/2", &u) == SIOC_OK);
    CHECK(strcmp(u.host, "::1") == 0 && u.port == 7000 && u.db == 2);
    CHECK(parse("redis://h:65535/1000000", &u) == SIOC_OK);
    CHECK(u.port == 65535 && u.db == 1000000);
    CHECK(!u.tls);
    /* rediss:// (issue 16): the same grammar, TLS on, same default port */
    CHECK(parse("rediss://h", &u) == SIOC_OK);
    CHECK(u.tls && strcmp(u.host, "h") == 0 && u.port == 6379 && u.user == NULL && u.db == 0);
    CHECK(parse("rediss://alice:p%40ss@cache.example.com:6380/3", &u) == SIOC_OK);
    CHECK(u.tls && strcmp(u.user, "alice") == 0 && strcmp(u.password, "p@ss") == 0);
    CHECK(strcmp(u.host, "cache.example.com") == 0 && u.port == 6380 && u.db == 3);
    CHECK(parse("rediss://[::1]:7000", &u) == SIOC_OK);
    CHECK(u.tls && strcmp(u.host, "::1") == 0 && u.port == 7000);
    static const char *const bad[] = {
        "redisss://h",          "rediss:/h",         "rediss://",
        "rediss://h:0",         "REDISS://h",        "rediss://h?ssl_cert_reqs=none",
        "redis-clusterx://h:1", "http://h",          "redis://",
        "redis://h:0",          "redis://h:65536",   "redis://h:12x",
        "redis://h:",           "redis://h/x",       "redis://h/1000001",
        "redis://h?db=1",       "redis://h#f",       "redis://secret@h",
        "redis://:bad%4@h",     "redis://:nul%00@h", "redis://[::1",
        "redis://[]:1",         "REDIS://h",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(parse(bad[i], &u) == SIOC_EINVAL);
    CHECK(redis_url_parse(NULL, &u) == SIOC_EINVAL);
    /* longer than the storage: refused, not truncated */
    char long_url[1200] = "redis://:";
    memset(long_url + 9, 'p', 1100);
    strcpy(long_url + 1109, "@h");
    CHECK(parse(long_url, &u) == SIOC_EINVAL);
}

/* redis-cluster:// and rediss-cluster:// (issue 17, DESIGN.md §2): seed lists */
static void test_cluster_urls(void)
{
    struct redis_url u, v;
    CHECK(parse("redis-cluster://10.0.0.1:7000,10.0.0.2:7001,[::1]:7002", &u) == SIOC_OK);
    CHECK(u.cluster && !u.tls && u.nseeds == 3 && u.db == 0);
    CHECK(strcmp(u.seeds[0].host, "10.0.0.1") == 0 && u.seeds[0].port == 7000);
    CHECK(strcmp(u.seeds[1].host, "10.0.0.2") == 0 && u.seeds[1].port == 7001);
    CHECK(strcmp(u.seeds[2].host, "::1") == 0 && u.seeds[2].port == 7002);
    CHECK(u.host == u.seeds[0].host && u.port == 7000);
    CHECK(parse("rediss-cluster://alice:p%2Cw@cache:6380/", &u) == SIOC_OK);
    CHECK(u.cluster && u.tls && u.nseeds == 1 && strcmp(u.password, "p,w") == 0);
    CHECK(strcmp(u.user, "alice") == 0 && strcmp(u.host, "cache") == 0 && u.port == 6380);
    CHECK(parse("redis-cluster://a,b/0", &u) == SIOC_OK);
    CHECK(u.nseeds == 2 && u.seeds[1].port == 6379 && strcmp(u.seeds[1].host, "b") == 0);
    /* a single-node URL never has seeds beyond its host; a comma there is part of nothing */
    CHECK(parse("redis://a,b:1", &u) == SIOC_OK && u.nseeds == 1 && !u.cluster);
    static const char *const bad[] = {
        "redis-cluster://",        "redis-cluster://a,,b", "redis-cluster://a,",
        "redis-cluster://,a",      "redis-cluster://a/1",  "redis-cluster://a:0",
        "redis-cluster://a?x=1",   "rediss-cluster:/a",    "REDIS-CLUSTER://a",
        "redis-cluster://a:1,b:x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(parse(bad[i], &u) == SIOC_EINVAL);
    char many[400] = "redis-cluster://";
    for (int i = 0; i < REDIS_URL_MAX_SEEDS; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "%sh%d:1", i ? "," : "", i);
    CHECK(parse(many, &u) == SIOC_OK && u.nseeds == REDIS_URL_MAX_SEEDS);
    strcat(many, ",x:2");
    CHECK(parse(many, &u) == SIOC_EINVAL);
    /* a copy points into its own storage; a node URL keeps credentials and TLS */
    CHECK(parse("rediss-cluster://u:pw@h1:1,h2:2", &u) == SIOC_OK);
    redis_url_copy(&v, &u);
    memset(&u, 0, sizeof u);
    CHECK(strcmp(v.seeds[1].host, "h2") == 0 && strcmp(v.password, "pw") == 0);
    CHECK(v.seeds[1].host >= v.storage && v.seeds[1].host < v.storage + sizeof v.storage);
    CHECK(redis_url_node(&v, "10.1.1.1", 7005, &u) == SIOC_OK);
    CHECK(!u.cluster && u.tls && strcmp(u.user, "u") == 0 && strcmp(u.password, "pw") == 0);
    CHECK(strcmp(u.host, "10.1.1.1") == 0 && u.port == 7005 && u.db == 0);
    CHECK(redis_url_node(&v, "", 7005, &u) == SIOC_EINVAL);
    CHECK(redis_url_node(&v, "h", 0, &u) == SIOC_EINVAL);
}

static void test_commands(void)
{
    const char *argv[] = {"SET", "k", "a\0b\r\n"};
    const size_t lens[] = {3, 1, 5};
    size_t bound = redis_command_bound(3, lens);
    char *out = malloc(bound);
    size_t n = redis_command_encode(out, 3, argv, lens);
    CHECK(n <= bound);
    static const char want[] = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\na\0b\r\n\r\n";
    CHECK_MEM(out, n, want, sizeof want - 1);
    free(out);
    /* empty argument and a long one (multi-digit length header) */
    char big[12345];
    memset(big, 'x', sizeof big);
    const char *argv2[] = {"PING", "", big};
    const size_t lens2[] = {4, 0, sizeof big};
    bound = redis_command_bound(3, lens2);
    out = malloc(bound);
    n = redis_command_encode(out, 3, argv2, lens2);
    CHECK(n <= bound && n == 4 + 10 + 6 + 8 + sizeof big + 2);
    static const char head[] = "*3\r\n$4\r\nPING\r\n$0\r\n\r\n$12345\r\nxx";
    CHECK(memcmp(out, head, sizeof head - 1) == 0);
    free(out);
    const size_t huge[] = {SIZE_MAX / 2};
    CHECK(redis_command_bound(1, huge) == 0);
}

int main(void)
{
    RUN(test_urls);
    RUN(test_commands);
    RUN(test_cluster_urls);
    return test_summary("test_redis_proto");
}
