/* test_subscriber.c: gateway/subscriber.h against a real redis-server: each channel, pattern and
 * shard channel goes to the handler registered for it (and the probe to none), the set survives
 * a killed connection, routes are added and removed at any time, and the liveness probe through
 * the attached command link keeps a quiet connection alive. */
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "common/error.h"
#include "common/net/redis_link.h"
#include "gateway/subscriber.h"
#include "tests/net/loop_test.h"
#include "tests/net/redis_test_server.h"
#include "tests/unit/test.h"

static struct event_base *base;
static struct redis_test_server server;
static char url[128];
static redisContext *rc; /* the test's own blocking client */

static char trace[4096];
static int ups, downs;

/* Each handler writes "<ctx>|<pattern>|<channel>|<payload>;" to the trace. */
static void record(void *ctx, struct slice pattern, struct slice channel, struct slice payload)
{
    size_t n = strlen(trace);
    snprintf(trace + n, sizeof trace - n, "%s|%.*s|%.*s|%.*s;", (const char *)ctx, (int)pattern.len,
             (const char *)pattern.p, (int)channel.len, (const char *)channel.p, (int)payload.len,
             (const char *)payload.p);
}

/* A second handler function: the same name may not be routed to two. */
static void other(void *ctx, struct slice pattern, struct slice channel, struct slice payload)
{
    record(ctx, pattern, channel, payload);
}

static void on_state(void *ctx, bool up)
{
    (void)ctx;
    if (up)
        ups++;
    else
        downs++;
}

static bool trace_has(const void *s)
{
    return strstr(trace, s) != NULL;
}

static bool is_up(const void *s)
{
    return subscriber_up(s);
}

static bool is_ready(const void *s)
{
    return subscriber_ready(s);
}

static bool went_down(const void *s)
{
    (void)s;
    return downs > 0;
}

static bool link_up(const void *l)
{
    return redis_link_connected((struct redis_link *)l);
}

static void publish(const char *cmd, const char *channel, const char *payload)
{
    redisReply *r = redisCommand(rc, "%s %s %s", cmd, channel, payload);
    CHECK(r != NULL && r->type == REDIS_REPLY_INTEGER);
    freeReplyObject(r);
}

static long long numsub(const char *cmd, const char *channel)
{
    redisReply *r = redisCommand(rc, "PUBSUB %s %s", cmd, channel);
    long long n =
        r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2 ? r->element[1]->integer : -1;
    freeReplyObject(r);
    return n;
}

static struct subscriber *make(const char *node, unsigned probe_ms)
{
    struct subscriber_config sc = {.redis_url = url,
                                   .key_prefix = "ts",
                                   .node_id = node,
                                   .name = "test-subscriber",
                                   .probe_interval_ms = probe_ms};
    trace[0] = '\0';
    ups = downs = 0;
    return subscriber_new(base, &sc, NULL);
}

static struct redis_link *command_link(void)
{
    struct redis_link_config lc = {.url = url, .mode = REDIS_LINK_COMMAND};
    struct redis_link *l = redis_link_new(base, &lc);
    CHECK(l != NULL && loop_wait_until(base, link_up, l, 3000));
    return l;
}

static void test_config_errors(void)
{
    struct subscriber_config sc = {.redis_url = url, .node_id = ""};
    CHECK(subscriber_new(base, &sc, NULL) == NULL);
    sc.node_id = "n";
    sc.redis_url = "http://x";
    CHECK(subscriber_new(base, &sc, NULL) == NULL);
    sc.redis_url = NULL;
    CHECK(subscriber_new(base, &sc, NULL) == NULL);
    subscriber_free(NULL);
}

/* Every kind of name reaches its own handler with its own context, in publishing order. */
static void test_routes(void)
{
    struct subscriber *s = make("n1", 0);
    struct redis_link *cmd = command_link();
    CHECK(s != NULL);
    if (s == NULL)
        return;
    subscriber_attach(s, cmd, on_state, NULL);
    CHECK(subscriber_add(s, SUBSCRIBER_CHANNEL, "ts:node:n1", record, "node") == SIOC_OK);
    CHECK(subscriber_add(s, SUBSCRIBER_PATTERN, "ad#/#*", record, "adapter") == SIOC_OK);
    CHECK(subscriber_add(s, SUBSCRIBER_CHANNEL, "ad-request#/#", record, "requests") == SIOC_OK);
    CHECK(subscriber_add(s, SUBSCRIBER_SHARD, "ad#/chat#", record, "sharded") == SIOC_OK);
    CHECK(subscriber_add(s, SUBSCRIBER_CHANNEL, "ts:eio:AbCd", other, "forward") == SIOC_OK);
    CHECK(loop_wait_until(base, is_ready, s, 3000));
    CHECK(ups == 1 && subscriber_connected(s));
    publish("PUBLISH", "ts:node:n1", "reply");
    publish("PUBLISH", "ad#/#room#", "broadcast");
    publish("PUBLISH", "ad-request#/#", "request");
    publish("SPUBLISH", "ad#/chat#", "shard");
    publish("PUBLISH", "ts:eio:AbCd", "fwd");
    publish("PUBLISH", "ts:probe:n1", "1"); /* the probe channel: never delivered */
    publish("PUBLISH", "ts:node:n1", "last");
    CHECK(loop_wait_until(base, trace_has, "node||ts:node:n1|last;", 3000));
    CHECK_STR(trace, strlen(trace),
              "node||ts:node:n1|reply;adapter|ad#/#*|ad#/#room#|broadcast;"
              "requests||ad-request#/#|request;sharded||ad#/chat#|shard;"
              "forward||ts:eio:AbCd|fwd;node||ts:node:n1|last;");
    CHECK(subscriber_unrouted(s) == 0);
    subscriber_free(s);
    redis_link_free(cmd);
}

/* Adding is idempotent for the same handler and refused for another; removing unsubscribes. */
static void test_add_remove(void)
{
    struct subscriber *s = make("n2", 0);
    CHECK(s != NULL);
    if (s == NULL)
        return;
    CHECK(subscriber_add(s, SUBSCRIBER_CHANNEL, "ts:a", record, "a") == SIOC_OK);
    CHECK(subscriber_add(s, SUBSCRIBER_CHANNEL, "ts:a", record, "a") == SIOC_OK);
    CHECK(subscriber_add(s, SUBSCRIBER_CHANNEL, "ts:a", other, "a") == SIOC_EINVAL);
    CHECK(subscriber_add(s, SUBSCRIBER_CHANNEL, "ts:a", record, "b") == SIOC_EINVAL);
    CHECK(subscriber_add(s, SUBSCRIBER_CHANNEL, "", record, "a") == SIOC_EINVAL);
    CHECK(subscriber_add(s, SUBSCRIBER_PATTERN, "ts:a", record, "pa") == SIOC_OK); /* own kind */
    CHECK(subscriber_remove(s, SUBSCRIBER_CHANNEL, "") == SIOC_EINVAL);
    CHECK(subscriber_remove(s, SUBSCRIBER_CHANNEL, "ts:none") == SIOC_OK);
    CHECK(loop_wait_until(base, is_up, s, 3000));
    publish("PUBLISH", "ts:a", "1");
    CHECK(loop_wait_until(base, trace_has, "pa|ts:a|ts:a|1;", 3000));
    CHECK(trace_has("a||ts:a|1;"));
    /* added while up: subscribed at once */
    CHECK(subscriber_add(s, SUBSCRIBER_CHANNEL, "ts:late", record, "late") == SIOC_OK);
    loop_run_for(base, 200);
    CHECK(numsub("NUMSUB", "ts:late") == 1);
    publish("PUBLISH", "ts:late", "2");
    CHECK(loop_wait_until(base, trace_has, "late||ts:late|2;", 3000));
    /* removed: Redis stops delivering, and so does the route */
    CHECK(subscriber_remove(s, SUBSCRIBER_CHANNEL, "ts:a") == SIOC_OK);
    CHECK(subscriber_remove(s, SUBSCRIBER_PATTERN, "ts:a") == SIOC_OK);
    loop_run_for(base, 200);
    CHECK(numsub("NUMSUB", "ts:a") == 0);
    trace[0] = '\0';
    publish("PUBLISH", "ts:a", "3");
    publish("PUBLISH", "ts:late", "4");
    CHECK(loop_wait_until(base, trace_has, "late||ts:late|4;", 3000));
    CHECK_STR(trace, strlen(trace), "late||ts:late|4;");
    /* shard channels come and go the same way */
    CHECK(subscriber_add(s, SUBSCRIBER_SHARD, "ts:s", record, "s") == SIOC_OK);
    loop_run_for(base, 200);
    CHECK(numsub("SHARDNUMSUB", "ts:s") == 1);
    CHECK(subscriber_remove(s, SUBSCRIBER_SHARD, "ts:s") == SIOC_OK);
    loop_run_for(base, 200);
    CHECK(numsub("SHARDNUMSUB", "ts:s") == 0);
    subscriber_free(s);
}

/* A killed connection comes back with every name subscribed again, routed as before. */
static void test_reconnect(void)
{
    struct subscriber *s = make("n3", 0);
    struct redis_link *cmd = command_link();
    CHECK(s != NULL);
    if (s == NULL)
        return;
    subscriber_attach(s, cmd, on_state, NULL);
    CHECK(subscriber_add(s, SUBSCRIBER_CHANNEL, "ts:r", record, "r") == SIOC_OK);
    CHECK(subscriber_add(s, SUBSCRIBER_PATTERN, "ts:p:*", record, "p") == SIOC_OK);
    CHECK(subscriber_add(s, SUBSCRIBER_SHARD, "ts:sh", record, "sh") == SIOC_OK);
    CHECK(loop_wait_until(base, is_up, s, 3000));
    redisReply *r = redisCommand(rc, "CLIENT KILL TYPE pubsub");
    CHECK(r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer >= 1);
    freeReplyObject(r);
    CHECK(loop_wait_until(base, went_down, NULL, 3000));
    CHECK(loop_wait_until(base, is_ready, s, 5000));
    CHECK(ups == 2 && downs == 1);
    publish("PUBLISH", "ts:r", "1");
    publish("PUBLISH", "ts:p:x", "2");
    publish("SPUBLISH", "ts:sh", "3");
    CHECK(loop_wait_until(base, trace_has, "sh||ts:sh|3;", 3000));
    CHECK_STR(trace, strlen(trace), "r||ts:r|1;p|ts:p:*|ts:p:x|2;sh||ts:sh|3;");
    subscriber_free(s);
    redis_link_free(cmd);
}

/* Silence for 3 probe intervals replaces the connection; the probe, PUBLISHed through the
 * attached command link, is the traffic that keeps a quiet one. */
static void test_probe(void)
{
    struct subscriber *s = make("n4", 500);
    CHECK(s != NULL);
    if (s == NULL)
        return;
    subscriber_attach(s, NULL, on_state, NULL); /* no probe link */
    CHECK(subscriber_add(s, SUBSCRIBER_CHANNEL, "ts:quiet", record, "q") == SIOC_OK);
    CHECK(loop_wait_until(base, is_up, s, 3000));
    CHECK(loop_wait_until(base, went_down, NULL, 8000)); /* liveness timeout after 1.5 s */
    CHECK(loop_wait_until(base, is_up, s, 5000));
    struct redis_link *cmd = command_link();
    subscriber_attach(s, cmd, on_state, NULL);
    int downs_before = downs;
    loop_run_for(base, 4000); /* 8 intervals: the probe answers every one */
    CHECK(downs == downs_before && subscriber_ready(s));
    subscriber_attach(s, NULL, NULL, NULL); /* the link goes first, as the bridge's does */
    redis_link_free(cmd);
    subscriber_free(s);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (redis_test_server_start(&server) != 0) {
        fprintf(stderr, "test_subscriber: cannot start redis-server\n");
        return 1;
    }
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", server.port);
    base = event_base_new();
    rc = redisConnect("127.0.0.1", server.port);
    RUN(test_config_errors);
    RUN(test_routes);
    RUN(test_add_remove);
    RUN(test_reconnect);
    RUN(test_probe);
    redisFree(rc);
    event_base_free(base);
    redis_test_server_stop(&server);
    return test_summary("test_subscriber");
}
