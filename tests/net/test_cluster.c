/* test_cluster.c: gateway/cluster against a real redis-server on a random port, with a real
 * sio_server that has no clients (the mixed-cluster behaviour with clients is
 * tests/integration/test_cluster.mjs). Channel names, patterns and uids per namespace and
 * adapter key; requests fed to cluster_on_message answered on the response channels in Node's
 * exact bytes (shared and specific channel), BROADCAST answered with clientCount 0, the
 * SERVER_SIDE_EMIT self filter, malformed input counted, never fatal. */
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <sys/time.h>

#include "common/error.h"
#include "common/metrics.h"
#include "gateway/cluster.h"
#include "gateway/sio_server.h"
#include "tests/net/loop_test.h"
#include "tests/net/redis_test_server.h"
#include "tests/unit/test.h"

static struct event_base *base;
static struct redis_test_server server;
static char url[128];

static struct sio_server *new_sio(void)
{
    struct sio_server_config scfg = {.namespaces = "/,/chat", .max_payload = 100000, .seed = 1};
    struct eio_server_config ecfg = {.path = "/socket.io/", .polling = true, .websocket = true};
    return sio_server_new(base, &scfg, &ecfg);
}

static bool uid_shape(const char *uid)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    if (uid == NULL || strlen(uid) != 6)
        return false;
    for (size_t i = 0; i < 6; i++)
        if (strchr(alphabet, uid[i]) == NULL)
            return false;
    return true;
}

static void test_channels(void)
{
    struct metrics *m = metrics_new();
    struct sio_server *srv = new_sio();
    struct cluster_config cfg = {.redis_url = url, .namespaces = "/,/chat", .seed = 7};
    struct cluster *c = cluster_new(base, &cfg, srv, NULL, m);
    CHECK(c != NULL);
    const char *const *p;
    CHECK(cluster_patterns(c, &p) == 2);
    CHECK(strcmp(p[0], "socket.io#/#*") == 0 && strcmp(p[1], "socket.io#/chat#*") == 0);
    const char *uid = cluster_uid(c, "/"), *chat = cluster_uid(c, "/chat");
    CHECK(uid_shape(uid) && uid_shape(chat) && strcmp(uid, chat) != 0);
    CHECK(cluster_uid(c, "/other") == NULL);
    CHECK(cluster_channels(c, &p) == 6);
    char specific[64];
    snprintf(specific, sizeof specific, "socket.io-response#/chat#%s#", chat);
    CHECK(strcmp(p[0], "socket.io-request#/#") == 0 && strcmp(p[1], "socket.io-response#/#") == 0);
    CHECK(strcmp(p[3], "socket.io-request#/chat#") == 0 && strcmp(p[5], specific) == 0);
    cluster_free(c);

    cfg = (struct cluster_config){.redis_url = url, .namespaces = "*", .adapter_key = "k"};
    struct metrics *m2 = metrics_new();
    c = cluster_new(base, &cfg, srv, NULL, m2);
    CHECK(c != NULL && cluster_patterns(c, &p) == 1 && strcmp(p[0], "k#*") == 0);
    CHECK(cluster_channels(c, &p) == 0);
    cluster_free(c);
    cfg.redis_url = "http://nope";
    struct metrics *m3 = metrics_new();
    CHECK(cluster_new(base, &cfg, srv, NULL, m3) == NULL);
    metrics_free(m3);
    sio_server_free(srv);
    metrics_free(m);
    metrics_free(m2);
}

static redisContext *subscriber(const char *channel)
{
    redisContext *rc = redisConnect("127.0.0.1", server.port);
    struct timeval tv = {1, 0};
    redisSetTimeout(rc, tv);
    freeReplyObject(redisCommand(rc, "SUBSCRIBE %s", channel));
    return rc;
}

/* The next message on rc's subscription ("" after a 1 s timeout); copies it into out. */
static size_t next_message(redisContext *rc, char *out, size_t cap)
{
    redisReply *r = NULL;
    out[0] = '\0';
    if (redisGetReply(rc, (void **)&r) != REDIS_OK || r == NULL)
        return 0;
    size_t n = 0;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 && r->element[2]->len < cap) {
        n = r->element[2]->len;
        memcpy(out, r->element[2]->str, n);
        out[n] = '\0';
    }
    freeReplyObject(r);
    return n;
}

static uint64_t counter(struct metrics *m, const char *series)
{
    struct buf out;
    buf_init(&out, 0);
    metrics_render(m, &out);
    buf_append_byte(&out, '\0');
    char needle[200];
    snprintf(needle, sizeof needle, "\n%s ", series); /* the sample line, not # HELP / # TYPE */
    const char *line = strstr((const char *)out.data, needle);
    uint64_t v = line ? strtoull(line + strlen(needle), NULL, 10) : UINT64_MAX;
    buf_deinit(&out);
    return v;
}

static void feed(struct cluster *c, const char *channel, const void *p, size_t len)
{
    cluster_on_message(c, (struct slice){NULL, 0},
                       (struct slice){(const uint8_t *)channel, strlen(channel)},
                       (struct slice){p, len});
}

static void feed_text(struct cluster *c, const char *channel, const char *text)
{
    feed(c, channel, text, strlen(text));
}

static void test_requests(void)
{
    struct metrics *m = metrics_new();
    struct sio_server *srv = new_sio();
    struct cluster_config cfg = {.redis_url = url, .namespaces = "/,/chat", .seed = 9};
    struct cluster *c = cluster_new(base, &cfg, srv, NULL, m);
    redisContext *shared = subscriber("socket.io-response#/#");
    char msg[4096];
    loop_run_for(base, 100);
    feed_text(c, "socket.io-request#/#", "{\"uid\":\"tstUID\",\"requestId\":\"r1\",\"type\":1}");
    feed_text(c, "socket.io-request#/#",
              "{\"uid\":\"tstUID\",\"requestId\":\"r2\",\"type\":5,\"opts\":{\"rooms\":[],"
              "\"except\":[]}}");
    feed_text(c, "socket.io-request#/#",
              "{\"uid\":\"tstUID\",\"requestId\":\"r3\",\"type\":0,\"rooms\":[]}");
    /* SERVER_SIDE_EMIT: answered with null when an ack is asked; never for our own uid */
    char own[128];
    snprintf(own, sizeof own, "{\"uid\":\"%s\",\"requestId\":\"s0\",\"type\":6,\"data\":[\"x\"]}",
             cluster_uid(c, "/"));
    feed_text(c, "socket.io-request#/#", own);
    feed_text(c, "socket.io-request#/#", "{\"uid\":\"emitter\",\"type\":6,\"data\":[\"x\"]}");
    feed_text(c, "socket.io-request#/#",
              "{\"uid\":\"tstUID\",\"requestId\":\"s1\",\"type\":6,\"data\":[\"x\"]}");
    /* BROADCAST (msgpack): clientCount 0 even with nobody to deliver to */
    static const uint8_t bcast[] = {
        0x85, 0xa3, 'u',  'i',  'd', 0xa6, 't', 's', 't',  'U',  'I',  'D',  0xa9, 'r',
        'e',  'q',  'u',  'e',  's', 't',  'I', 'd', 0xa2, 'b',  '1',  0xa4, 't',  'y',
        'p',  'e',  0x07, 0xa6, 'p', 'a',  'c', 'k', 'e',  't',  0x83, 0xa4, 't',  'y',
        'p',  'e',  0x02, 0xa4, 'd', 'a',  't', 'a', 0x91, 0xa1, 'e',  0xa3, 'n',  's',
        'p',  0xa1, '/',  0xa4, 'o', 'p',  't', 's', 0x83, 0xa5, 'r',  'o',  'o',  'm',
        's',  0x90, 0xa6, 'e',  'x', 'c',  'e', 'p', 't',  0x90, 0xa5, 'f',  'l',  'a',
        'g',  's',  0x81, 0xa7, 't', 'i',  'm', 'e', 'o',  'u',  't',  0xcd, 0x03, 0xe8};
    feed(c, "socket.io-request#/#", bcast, sizeof bcast);
    /* malformed input, unknown types and others' responses: counted or ignored */
    feed_text(c, "socket.io-request#/#", "{nope");
    feed_text(c, "socket.io-request#/#", "{\"uid\":\"tstUID\",\"requestId\":\"u1\",\"type\":42}");
    feed_text(c, "socket.io-response#/#", "{\"requestId\":\"zz\",\"rooms\":[]}");
    static const uint8_t junk[] = {0x93, 0xc1};
    cluster_on_message(c, (struct slice){(const uint8_t *)"socket.io#/#*", 13},
                       (struct slice){(const uint8_t *)"socket.io#/#", 12},
                       (struct slice){junk, 2});
    loop_run_for(base, 200);
    next_message(shared, msg, sizeof msg);
    CHECK(strcmp(msg, "{\"requestId\":\"r1\",\"rooms\":[]}") == 0);
    next_message(shared, msg, sizeof msg);
    CHECK(strcmp(msg, "{\"requestId\":\"r2\",\"sockets\":[]}") == 0);
    next_message(shared, msg, sizeof msg);
    CHECK(strcmp(msg, "{\"requestId\":\"r3\",\"sockets\":[]}") == 0);
    next_message(shared, msg, sizeof msg);
    CHECK(strcmp(msg, "{\"type\":6,\"requestId\":\"s1\",\"data\":null}") == 0);
    next_message(shared, msg, sizeof msg);
    CHECK(strcmp(msg, "{\"type\":8,\"requestId\":\"b1\",\"clientCount\":0}") == 0);
    CHECK(next_message(shared, msg, sizeof msg) == 0); /* nothing else */
    CHECK(counter(m, "sioc_adapter_requests_invalid_total") == 1);
    CHECK(counter(m, "sioc_adapter_requests_total{type=\"server_side_emit\"}") == 3);
    CHECK(counter(m, "sioc_adapter_requests_total{type=\"broadcast\"}") == 1);
    CHECK(counter(m, "sioc_adapter_responses_total") == 5);
    CHECK(counter(m, "sioc_adapter_responses_ignored_total") == 1);
    CHECK(counter(m, "sioc_broadcasts_dropped_total") == 1);
    CHECK(counter(m, "sioc_adapter_ack_requests_pending") == 0);
    cluster_free(c);
    metrics_free(m);
    redisFree(shared);

    /* publishOnSpecificResponseChannel: answers go to the requester's own channel */
    m = metrics_new();
    cfg.specific_response_channel = true;
    c = cluster_new(base, &cfg, srv, NULL, m);
    redisContext *specific = subscriber("socket.io-response#/chat#tstUID#");
    loop_run_for(base, 100);
    feed_text(c, "socket.io-request#/chat#",
              "{\"uid\":\"tstUID\",\"requestId\":\"r4\",\"type\":1}");
    loop_run_for(base, 200);
    next_message(specific, msg, sizeof msg);
    CHECK(strcmp(msg, "{\"requestId\":\"r4\",\"rooms\":[]}") == 0);
    cluster_free(c);
    metrics_free(m);
    redisFree(specific);
    sio_server_free(srv);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (redis_test_server_start(&server) != 0) {
        fprintf(stderr, "test_cluster: cannot start redis-server\n");
        return 1;
    }
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", server.port);
    base = event_base_new();
    RUN(test_channels);
    RUN(test_requests);
    event_base_free(base);
    redis_test_server_stop(&server);
    return test_summary("test_cluster");
}
