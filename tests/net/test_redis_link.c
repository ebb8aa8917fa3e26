/* test_redis_link.c: common/net/redis_link against a real redis-server on a random port:
 * round trips, AUTH/SELECT, the in-order outage queue and its limit, RETRY and cancel, free
 * semantics, pub/sub with resubscription after a restart and after CLIENT KILL, the liveness
 * timeout (including a SIGSTOPped server), and the event adapter (commands chained from reply
 * callbacks leave in the same loop iteration; a full socket while Redis is frozen). Every wait
 * is bounded; resume times are printed. */
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <signal.h>

#include "common/error.h"
#include "common/net/redis_link.h"
#include "tests/net/loop_test.h"
#include "tests/net/redis_link_obs.h"
#include "tests/net/redis_test_server.h"
#include "tests/unit/test.h"

static struct event_base *base;
static struct redis_test_server server;
static char url[128];

/* ---- event loop helpers ---- */

/* ---- an observer for one link ---- */

static struct redis_link *open_link(struct redis_link_obs *o, enum redis_link_mode mode,
                                    const char *link_url, size_t queue_limit)
{
    struct redis_link_config cfg = redis_link_obs_config(o, link_url, mode);
    cfg.backoff_min_ms = 20;
    cfg.backoff_max_ms = 200;
    cfg.jitter_seed = 42;
    cfg.queue_limit_bytes = queue_limit;
    o->link = redis_link_new(base, &cfg);
    return o->link;
}

/* ---- reply capture ---- */

struct reply {
    int calls;
    enum redis_link_result result;
    int type;
    long long integer;
    char str[256];
    size_t len;
    size_t elements;
};

static void reply_cb(void *ctx, const struct redisReply *r, enum redis_link_result result)
{
    struct reply *out = ctx;
    out->calls++;
    out->result = result;
    if (r == NULL)
        return;
    out->type = r->type;
    out->integer = r->integer;
    out->elements = r->elements;
    const redisReply *s = r;
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2)
        s = r->element[1]; /* BLPOP: [key, value] */
    if (s->str != NULL) {
        out->len = s->len < sizeof(out->str) - 1 ? s->len : sizeof(out->str) - 1;
        memcpy(out->str, s->str, out->len);
        out->str[out->len] = '\0';
    }
}

static bool reply_done(const void *arg)
{
    return ((const struct reply *)arg)->calls > 0;
}

/* Sends a NUL-terminated command and waits (bounded) for its reply. */
static bool command_wait(struct redis_link *link, struct reply *out, int argc,
                         const char *const *argv)
{
    memset(out, 0, sizeof(*out));
    if (redis_link_command_argv(link, argc, argv, NULL, 0, reply_cb, out) != SIOC_OK)
        return false;
    return loop_wait_until(base, reply_done, out, 3000);
}

/* ---- tests ---- */

/* The URL parser itself is tested in tests/unit/test_redis_proto.c. */
static void test_bad_url(void)
{
    struct redis_link_config cfg = {.url = "nope"};
    CHECK(redis_link_new(base, &cfg) == NULL);
}

static void test_round_trip(void)
{
    struct redis_link_obs o;
    struct reply r;
    CHECK(open_link(&o, REDIS_LINK_COMMAND, url, 0) != NULL);
    CHECK(loop_wait_until(base, redis_link_obs_connected, &o, 3000));
    CHECK(redis_link_connected(o.link));
    const uint8_t value[] = {'a', 0, 'b', '\r', '\n'};
    const char *argv[3] = {"SET", "k:bin", (const char *)value};
    const size_t lens[3] = {3, 5, sizeof(value)};
    memset(&r, 0, sizeof(r));
    CHECK(redis_link_command_argv(o.link, 3, argv, lens, 0, reply_cb, &r) == SIOC_OK);
    CHECK(r.calls == 0); /* never from inside command_argv */
    CHECK(loop_wait_until(base, reply_done, &r, 3000));
    CHECK(r.result == REDIS_LINK_REPLY && r.type == REDIS_REPLY_STATUS);
    CHECK(command_wait(o.link, &r, 2, (const char *[]){"GET", "k:bin"}));
    CHECK(r.type == REDIS_REPLY_STRING);
    CHECK_MEM(r.str, r.len, value, sizeof(value));
    CHECK(command_wait(o.link, &r, 2, (const char *[]){"NOSUCHCOMMAND", "x"}));
    CHECK(r.result == REDIS_LINK_REPLY && r.type == REDIS_REPLY_ERROR);
    /* Commands that would change the connection's protocol are refused up front. */
    CHECK(redis_link_command_argv(o.link, 2, (const char *[]){"subscribe", "c"}, NULL, 0, NULL,
                                  NULL) == SIOC_EINVAL);
    CHECK(redis_link_command_argv(o.link, 2, (const char *[]){"SSUBSCRIBE", "c"}, NULL, 0, NULL,
                                  NULL) == SIOC_EINVAL);
    CHECK(redis_link_subscribe(o.link, "c") == SIOC_EINVAL);
    CHECK(redis_link_queue_room(o.link) == SIZE_MAX);
    struct redis_link_stats st;
    redis_link_get_stats(o.link, &st);
    CHECK(st.connects == 1 && st.commands_sent == 3 && st.commands_queued == 0);
    CHECK(o.events[REDIS_LINK_EV_CONNECTED] == 1);
    redis_link_free(o.link);
    redis_link_free(NULL);
}

static void test_auth_select(void)
{
    static const char *const extra[] = {"--requirepass", "s3cret", NULL};
    struct redis_test_server authed = {.extra_args = extra};
    CHECK(redis_test_server_start(&authed) == 0);
    char u3[128], u0[128], bad[128], none[128];
    snprintf(u3, sizeof(u3), "redis://:s3cret@127.0.0.1:%d/3", authed.port);
    snprintf(u0, sizeof(u0), "redis://default:s3cret@127.0.0.1:%d", authed.port);
    snprintf(bad, sizeof(bad), "redis://:wrong@127.0.0.1:%d", authed.port);
    snprintf(none, sizeof(none), "redis://127.0.0.1:%d", authed.port);
    struct redis_link_obs o3, o0, ob, on;
    struct reply r;
    open_link(&o3, REDIS_LINK_COMMAND, u3, 0);
    open_link(&o0, REDIS_LINK_COMMAND, u0, 0);
    open_link(&ob, REDIS_LINK_COMMAND, bad, 0);
    open_link(&on, REDIS_LINK_COMMAND, none, 0);
    CHECK(loop_wait_until(base, redis_link_obs_connected, &o3, 3000) &&
          loop_wait_until(base, redis_link_obs_connected, &o0, 3000));
    CHECK(command_wait(o3.link, &r, 3, (const char *[]){"SET", "where", "db3"}));
    CHECK(command_wait(o0.link, &r, 2, (const char *[]){"GET", "where"}));
    CHECK(r.type == REDIS_REPLY_NIL); /* the other link is on db 0 */
    CHECK(command_wait(o3.link, &r, 2, (const char *[]){"GET", "where"}));
    CHECK(r.type == REDIS_REPLY_STRING && strcmp(r.str, "db3") == 0);
    /* Wrong or missing password: reported, never "connected", retried with backoff. */
    loop_run_for(base, 300);
    CHECK(ob.ups == 0 && ob.events[REDIS_LINK_EV_HANDSHAKE_ERROR] >= 2);
    CHECK(on.ups == 0 && on.events[REDIS_LINK_EV_HANDSHAKE_ERROR] >= 2);
    struct redis_link_stats st;
    redis_link_get_stats(ob.link, &st);
    CHECK(st.connects == 0 && st.connect_failures >= 2);
    redis_link_free(o3.link);
    redis_link_free(o0.link);
    redis_link_free(ob.link);
    redis_link_free(on.link);
    redis_test_server_stop(&authed);
}

struct xadd_state {
    int ok, other;
};

static void xadd_cb(void *ctx, const struct redisReply *r, enum redis_link_result result)
{
    struct xadd_state *x = ctx;
    if (result == REDIS_LINK_REPLY && r->type == REDIS_REPLY_STRING)
        x->ok++;
    else
        x->other++;
}

static bool xadds_done(const void *arg)
{
    const struct xadd_state *x = arg;
    return x->ok + x->other >= 100;
}

struct xrange_state {
    int calls;
    size_t entries;
    bool in_order;
};

static void xrange_cb(void *ctx, const struct redisReply *r, enum redis_link_result result)
{
    struct xrange_state *x = ctx;
    x->calls++;
    if (result != REDIS_LINK_REPLY || r->type != REDIS_REPLY_ARRAY)
        return;
    x->entries = r->elements;
    x->in_order = true;
    for (size_t i = 0; i < r->elements; i++) {
        /* entry = [id, [field, value]] */
        const redisReply *fields = r->element[i]->element[1];
        char want[24];
        snprintf(want, sizeof(want), "%zu", i);
        if (fields->elements != 2 || strcmp(fields->element[1]->str, want) != 0)
            x->in_order = false;
    }
}

static bool xrange_done(const void *arg)
{
    return ((const struct xrange_state *)arg)->calls > 0;
}

static void test_queue_while_down(void)
{
    struct redis_link_obs o;
    open_link(&o, REDIS_LINK_COMMAND, url, 0);
    CHECK(loop_wait_until(base, redis_link_obs_connected, &o, 3000));
    redis_test_server_stop(&server);
    CHECK(loop_wait_until(base, redis_link_obs_disconnected, &o, 3000));
    CHECK(o.events[REDIS_LINK_EV_DISCONNECTED] == 1);
    struct xadd_state x = {0, 0};
    for (int i = 0; i < 100; i++) {
        char n[16];
        snprintf(n, sizeof(n), "%d", i);
        const char *argv[5] = {"XADD", "up:test", "*", "i", n};
        CHECK(redis_link_command_argv(o.link, 5, argv, NULL, 0, xadd_cb, &x) == SIOC_OK);
    }
    struct redis_link_stats st;
    redis_link_get_stats(o.link, &st);
    CHECK(st.queue_commands == 100 && st.commands_queued == 100 && st.queue_bytes > 0);
    loop_run_for(base, 200); /* a few failed attempts: the queue must survive them */
    CHECK(x.ok + x.other == 0);
    CHECK(redis_test_server_restart(&server) == 0);
    CHECK(loop_wait_until(base, xadds_done, &x, 5000));
    CHECK(x.ok == 100 && x.other == 0);
    struct xrange_state xr = {0, 0, false};
    const char *argv[4] = {"XRANGE", "up:test", "-", "+"};
    CHECK(redis_link_command_argv(o.link, 4, argv, NULL, 0, xrange_cb, &xr) == SIOC_OK);
    CHECK(loop_wait_until(base, xrange_done, &xr, 3000));
    CHECK(xr.entries == 100 && xr.in_order); /* the restarted server had nothing: exactly once */
    redis_link_get_stats(o.link, &st);
    CHECK(st.queue_commands == 0 && st.queue_bytes == 0 && st.connects == 2 && st.disconnects == 1);
    CHECK(o.ups == 2 && o.downs == 1);
    redis_link_free(o.link);
}

static bool room_called(const void *arg)
{
    return ((const struct redis_link_obs *)arg)->rooms > 0;
}

static void test_queue_limit(void)
{
    struct redis_link_obs o;
    open_link(&o, REDIS_LINK_COMMAND, url, 1000);
    CHECK(loop_wait_until(base, redis_link_obs_connected, &o, 3000));
    redis_test_server_stop(&server);
    CHECK(loop_wait_until(base, redis_link_obs_disconnected, &o, 3000));
    const char *argv[3] = {"SET", "limit", "0123456789012345678901234567890123456789"};
    int accepted = 0, rc;
    while ((rc = redis_link_command_argv(o.link, 3, argv, NULL, 0, NULL, NULL)) == SIOC_OK)
        accepted++;
    CHECK(rc == SIOC_ETOOBIG);
    CHECK(accepted > 5 && accepted < 20);
    CHECK(redis_link_command_argv(o.link, 3, argv, NULL, 0, NULL, NULL) == SIOC_ETOOBIG);
    struct redis_link_stats st;
    redis_link_get_stats(o.link, &st);
    CHECK(st.queue_bytes <= 1000 && st.queue_commands == (size_t)accepted);
    CHECK(st.commands_refused == 2);
    CHECK(redis_link_queue_room(o.link) < 100);
    CHECK(o.events[REDIS_LINK_EV_QUEUE_FULL] == 1); /* once per outage, not per refusal */
    CHECK(o.rooms == 0);
    CHECK(redis_test_server_restart(&server) == 0);
    CHECK(loop_wait_until(base, room_called, &o, 5000));
    CHECK(o.rooms == 1 && redis_link_connected(o.link));
    CHECK(redis_link_command_argv(o.link, 3, argv, NULL, 0, NULL, NULL) == SIOC_OK);
    redis_link_free(o.link);
}

static void test_retry_in_flight(void)
{
    struct redis_link_obs a, b;
    struct reply first, lost, second, r;
    open_link(&a, REDIS_LINK_COMMAND, url, 0);
    open_link(&b, REDIS_LINK_COMMAND, url, 0);
    CHECK(loop_wait_until(base, redis_link_obs_connected, &a, 3000) &&
          loop_wait_until(base, redis_link_obs_connected, &b, 3000));
    memset(&first, 0, sizeof(first));
    memset(&lost, 0, sizeof(lost));
    memset(&second, 0, sizeof(second));
    /* The first blocks the connection on the server, so all three are in flight at the drop. */
    const char *blpop1[3] = {"BLPOP", "retry:1", "0"};
    const char *blpop2[3] = {"BLPOP", "lost:list", "0"};
    const char *blpop3[3] = {"BLPOP", "retry:2", "0"};
    CHECK(redis_link_command_argv(a.link, 3, blpop1, NULL, REDIS_LINK_RETRY, reply_cb, &first) ==
          SIOC_OK);
    CHECK(redis_link_command_argv(a.link, 3, blpop2, NULL, 0, reply_cb, &lost) == SIOC_OK);
    CHECK(redis_link_command_argv(a.link, 3, blpop3, NULL, REDIS_LINK_RETRY, reply_cb, &second) ==
          SIOC_OK);
    loop_run_for(base, 100);
    redis_link_disconnect_now(a.link);
    CHECK(lost.calls == 1 && lost.result == REDIS_LINK_LOST);
    CHECK(first.calls == 0 && second.calls == 0);
    CHECK(!redis_link_connected(a.link));
    struct redis_link_stats st;
    redis_link_get_stats(a.link, &st);
    CHECK(st.queue_commands == 2);
    CHECK(loop_wait_until(base, redis_link_obs_connected, &a, 3000));
    /* Re-sent in the original order: retry:1 blocks first, so only it can answer v1 now (the
     * reverse order would leave it stuck behind retry:2). */
    CHECK(command_wait(b.link, &r, 3, (const char *[]){"LPUSH", "retry:1", "v1"}));
    CHECK(loop_wait_until(base, reply_done, &first, 3000));
    CHECK(first.result == REDIS_LINK_REPLY && strcmp(first.str, "v1") == 0 && second.calls == 0);
    CHECK(command_wait(b.link, &r, 3, (const char *[]){"LPUSH", "retry:2", "v2"}));
    CHECK(loop_wait_until(base, reply_done, &second, 3000));
    CHECK(second.result == REDIS_LINK_REPLY && strcmp(second.str, "v2") == 0);
    CHECK(first.calls == 1 && lost.calls == 1);
    redis_link_get_stats(a.link, &st);
    CHECK(st.commands_retried == 2 && st.commands_lost == 1 && st.commands_sent == 5);
    redis_link_free(a.link);
    redis_link_free(b.link);
}

static void test_cancel(void)
{
    struct redis_link_obs a, b;
    struct reply cancelled, kept, r;
    open_link(&a, REDIS_LINK_COMMAND, url, 0);
    open_link(&b, REDIS_LINK_COMMAND, url, 0);
    CHECK(loop_wait_until(base, redis_link_obs_connected, &a, 3000) &&
          loop_wait_until(base, redis_link_obs_connected, &b, 3000));
    memset(&cancelled, 0, sizeof(cancelled));
    memset(&kept, 0, sizeof(kept));
    CHECK(redis_link_command_argv(a.link, 3, (const char *[]){"BLPOP", "cancel:list", "0"}, NULL, 0,
                                  reply_cb, &cancelled) == SIOC_OK);
    CHECK(redis_link_command_argv(a.link, 1, (const char *[]){"PING"}, NULL, 0, reply_cb, &kept) ==
          SIOC_OK);
    CHECK(redis_link_cancel(a.link, &cancelled) == 1);
    CHECK(redis_link_cancel(a.link, &cancelled) == 0);
    CHECK(command_wait(b.link, &r, 3, (const char *[]){"LPUSH", "cancel:list", "x"}));
    CHECK(loop_wait_until(base, reply_done, &kept,
                          3000)); /* the BLPOP was answered before the PING */
    CHECK(cancelled.calls == 0);
    /* The command itself still ran: the list was popped. */
    CHECK(command_wait(b.link, &r, 2, (const char *[]){"LLEN", "cancel:list"}));
    CHECK(r.type == REDIS_REPLY_INTEGER && r.integer == 0);
    redis_link_free(a.link);
    redis_link_free(b.link);
}

static void test_free_calls_nothing(void)
{
    struct redis_link_obs o;
    struct reply queued, in_flight;
    memset(&queued, 0, sizeof(queued));
    memset(&in_flight, 0, sizeof(in_flight));
    /* Queued before the first connection, then freed. */
    open_link(&o, REDIS_LINK_COMMAND, url, 0);
    CHECK(redis_link_command_argv(o.link, 1, (const char *[]){"PING"}, NULL, REDIS_LINK_RETRY,
                                  reply_cb, &queued) == SIOC_OK);
    redis_link_free(o.link);
    /* In flight (blocked on the server) when freed. */
    open_link(&o, REDIS_LINK_COMMAND, url, 0);
    CHECK(loop_wait_until(base, redis_link_obs_connected, &o, 3000));
    CHECK(redis_link_command_argv(o.link, 3, (const char *[]){"BLPOP", "free:list", "0"}, NULL,
                                  REDIS_LINK_RETRY, reply_cb, &in_flight) == SIOC_OK);
    CHECK(redis_link_command_argv(o.link, 1, (const char *[]){"PING"}, NULL, 0, reply_cb,
                                  &in_flight) == SIOC_OK);
    loop_run_for(base, 50);
    int ups = o.ups, downs = o.downs;
    redis_link_free(o.link);
    loop_run_for(base, 50);
    CHECK(queued.calls == 0 && in_flight.calls == 0);
    CHECK(o.ups == ups && o.downs == downs); /* no state callback from free either */
    /* Nothing listening: attempts fail with backoff; free in the middle of it. */
    char dead[64];
    snprintf(dead, sizeof(dead), "redis://127.0.0.1:%d", redis_test_free_port());
    open_link(&o, REDIS_LINK_COMMAND, dead, 0);
    loop_run_for(base, 400);
    struct redis_link_stats st;
    redis_link_get_stats(o.link, &st);
    CHECK(st.connect_failures >= 3 && st.connects == 0 && o.ups == 0);
    CHECK(o.events[REDIS_LINK_EV_CONNECT_FAILED] >= 3);
    redis_link_free(o.link);
}

/* ---- pub/sub ---- */

static bool got_message(const void *arg)
{
    return ((const struct redis_link_obs *)arg)->messages > 0;
}

/* Publishes until the subscriber has a message (PUBLISH may race the SUBSCRIBE). */
static bool publish_until_received(struct redis_link_obs *cmd, struct redis_link_obs *sub,
                                   const char *channel, const void *payload, size_t len)
{
    sub->messages = 0;
    for (int i = 0; i < 100 && sub->messages == 0; i++) {
        const char *argv[3] = {"PUBLISH", channel, payload};
        const size_t lens[3] = {7, strlen(channel), len};
        redis_link_command_argv(cmd->link, 3, argv, lens, 0, NULL, NULL);
        loop_wait_until(base, got_message, sub, 30);
    }
    return sub->messages > 0;
}

static struct redis_link *open_subscriber(struct redis_link_obs *o, unsigned liveness_ms,
                                          const char *probe, unsigned backoff_min_ms,
                                          unsigned connect_timeout_ms)
{
    struct redis_link_config cfg = redis_link_obs_config(o, url, REDIS_LINK_SUBSCRIBER);
    cfg.backoff_min_ms = backoff_min_ms;
    cfg.connect_timeout_ms = connect_timeout_ms;
    cfg.jitter_seed = 7;
    cfg.liveness_timeout_ms = liveness_ms;
    cfg.probe_channel = probe;
    o->link = redis_link_new(base, &cfg);
    return o->link;
}

static void test_pubsub(void)
{
    struct redis_link_obs cmd, sub;
    open_link(&cmd, REDIS_LINK_COMMAND, url, 0);
    CHECK(open_subscriber(&sub, 0, NULL, 0, 0) != NULL);
    CHECK(redis_link_subscribe(sub.link, "chan.a") == SIOC_OK);
    CHECK(redis_link_subscribe(sub.link, "chan.a") == SIOC_OK); /* no-op */
    CHECK(redis_link_psubscribe(sub.link, "pat.*") == SIOC_OK);
    CHECK(redis_link_subscription_count(sub.link) == 2);
    CHECK(redis_link_command_argv(sub.link, 1, (const char *[]){"PING"}, NULL, 0, NULL, NULL) ==
          SIOC_EINVAL);
    CHECK(loop_wait_until(base, redis_link_obs_connected, &cmd, 3000) &&
          loop_wait_until(base, redis_link_obs_connected, &sub, 3000));
    const uint8_t bin[] = {0, 1, 'x', 0, 0xff, '\r', '\n', 0};
    CHECK(publish_until_received(&cmd, &sub, "chan.a", bin, sizeof(bin)));
    CHECK(strcmp(sub.channel, "chan.a") == 0 && sub.pattern[0] == '\0');
    CHECK_MEM(sub.payload, sub.payload_len, bin, sizeof(bin));
    CHECK(publish_until_received(&cmd, &sub, "pat.x", "hello", 5));
    CHECK(strcmp(sub.channel, "pat.x") == 0 && strcmp(sub.pattern, "pat.*") == 0);
    CHECK_STR(sub.payload, sub.payload_len, "hello");
    /* Subscribing while connected takes effect at once. */
    CHECK(redis_link_subscribe(sub.link, "chan.b") == SIOC_OK);
    CHECK(publish_until_received(&cmd, &sub, "chan.b", "b", 1));
    CHECK(strcmp(sub.channel, "chan.b") == 0);
    /* After UNSUBSCRIBE, PUBLISH reports no receiver. */
    CHECK(redis_link_unsubscribe(sub.link, "chan.a") == SIOC_OK);
    CHECK(redis_link_unsubscribe(sub.link, "chan.a") == SIOC_OK);
    CHECK(redis_link_subscription_count(sub.link) == 2);
    loop_run_for(base, 50);
    struct reply r;
    CHECK(command_wait(cmd.link, &r, 3, (const char *[]){"PUBLISH", "chan.a", "gone"}));
    CHECK(r.type == REDIS_REPLY_INTEGER && r.integer == 0);
    redis_link_free(sub.link);
    redis_link_free(cmd.link);
}

/* Sharded pub/sub (Redis 7): SSUBSCRIBE'd channels get `smessage` pushes through on_message_cb
 * like `message`, are confirmed before the link reports up, come back after a restart, and
 * SUNSUBSCRIBE stops them. */
static bool spublish_until_received(struct redis_link_obs *cmd, struct redis_link_obs *sub,
                                    const char *channel, const char *payload)
{
    sub->messages = 0;
    for (int i = 0; i < 100 && sub->messages == 0; i++) {
        const char *argv[3] = {"SPUBLISH", channel, payload};
        redis_link_command_argv(cmd->link, 3, argv, NULL, 0, NULL, NULL);
        loop_wait_until(base, got_message, sub, 30);
    }
    return sub->messages > 0;
}

static void test_sharded_pubsub(void)
{
    struct redis_link_obs cmd, sub;
    open_link(&cmd, REDIS_LINK_COMMAND, url, 0);
    CHECK(open_subscriber(&sub, 0, NULL, 0, 0) != NULL);
    CHECK(redis_link_subscribe(sub.link, "plain") == SIOC_OK);
    CHECK(redis_link_ssubscribe(sub.link, "shard#/#") == SIOC_OK);
    CHECK(redis_link_ssubscribe(sub.link, "shard#/#") == SIOC_OK); /* no-op */
    CHECK(redis_link_ssubscribe(sub.link, "") == SIOC_EINVAL);
    CHECK(redis_link_ssubscribe(cmd.link, "x") == SIOC_EINVAL);
    CHECK(redis_link_subscription_count(sub.link) == 2);
    CHECK(redis_link_command_argv(cmd.link, 2, (const char *[]){"SSUBSCRIBE", "x"}, NULL, 0, NULL,
                                  NULL) == SIOC_EINVAL);
    CHECK(loop_wait_until(base, redis_link_obs_connected, &cmd, 3000) &&
          loop_wait_until(base, redis_link_obs_connected, &sub, 3000));
    /* up only once both subscriptions were confirmed: the first SPUBLISH already counts one */
    struct reply r;
    CHECK(command_wait(cmd.link, &r, 3, (const char *[]){"SPUBLISH", "shard#/#", "one"}));
    CHECK(r.type == REDIS_REPLY_INTEGER && r.integer == 1);
    CHECK(spublish_until_received(&cmd, &sub, "shard#/#", "hello"));
    CHECK(strcmp(sub.channel, "shard#/#") == 0 && sub.pattern[0] == '\0');
    /* added while connected: at once */
    CHECK(redis_link_ssubscribe(sub.link, "shard#/#room#") == SIOC_OK);
    CHECK(spublish_until_received(&cmd, &sub, "shard#/#room#", "r"));
    CHECK_STR(sub.payload, sub.payload_len, "r");
    /* a restart: every shard channel comes back */
    redis_test_server_stop(&server);
    CHECK(loop_wait_until(base, redis_link_obs_disconnected, &sub, 3000));
    CHECK(redis_test_server_restart(&server) == 0);
    CHECK(loop_wait_until(base, redis_link_obs_connected, &sub, 5000) &&
          loop_wait_until(base, redis_link_obs_connected, &cmd, 5000));
    CHECK(command_wait(cmd.link, &r, 3, (const char *[]){"SPUBLISH", "shard#/#room#", "again"}));
    CHECK(r.type == REDIS_REPLY_INTEGER && r.integer == 1);
    /* SUNSUBSCRIBE: no receiver any more, the others stay */
    CHECK(redis_link_sunsubscribe(sub.link, "shard#/#room#") == SIOC_OK);
    CHECK(redis_link_sunsubscribe(sub.link, "shard#/#room#") == SIOC_OK);
    CHECK(redis_link_subscription_count(sub.link) == 2);
    loop_run_for(base, 50);
    CHECK(command_wait(cmd.link, &r, 3, (const char *[]){"SPUBLISH", "shard#/#room#", "gone"}));
    CHECK(r.type == REDIS_REPLY_INTEGER && r.integer == 0);
    CHECK(command_wait(cmd.link, &r, 3, (const char *[]){"SPUBLISH", "shard#/#", "still"}));
    CHECK(r.type == REDIS_REPLY_INTEGER && r.integer == 1);
    redis_link_free(sub.link);
    redis_link_free(cmd.link);
}

/* A steady publisher: one PUBLISH per tick through the command link. */
struct publisher {
    struct redis_link_obs *cmd;
    const char *channel;
    struct event *timer;
    int sent;
};

static void publish_tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct publisher *p = arg;
    char n[16];
    snprintf(n, sizeof(n), "%d", p->sent++);
    const char *argv[3] = {"PUBLISH", p->channel, n};
    /* Refused while the queue is full: a broadcast stream may skip ticks. */
    redis_link_command_argv(p->cmd->link, 3, argv, NULL, 0, NULL, NULL);
}

static void publisher_start(struct publisher *p, struct redis_link_obs *cmd, const char *channel,
                            int every_ms)
{
    memset(p, 0, sizeof(*p));
    p->cmd = cmd;
    p->channel = channel;
    p->timer = event_new(base, -1, EV_PERSIST, publish_tick_cb, p);
    struct timeval tv = {0, every_ms * 1000};
    event_add(p->timer, &tv);
}

static void publisher_stop(struct publisher *p)
{
    if (p->timer != NULL)
        event_free(p->timer);
    p->timer = NULL;
}

struct after {
    const struct redis_link_obs *o;
    long long since;
};

static bool message_after(const void *arg)
{
    const struct after *a = arg;
    return a->o->messages > 0 && a->o->last_message_ms >= a->since && a->o->connected;
}

static void test_resubscribe_after_restart(void)
{
    struct redis_link_obs cmd, sub;
    struct publisher pub;
    open_link(&cmd, REDIS_LINK_COMMAND, url, 0);
    open_subscriber(&sub, 0, NULL, 0, 0); /* default backoff: the production numbers */
    redis_link_subscribe(sub.link, "steady");
    redis_link_psubscribe(sub.link, "stea*");
    CHECK(loop_wait_until(base, redis_link_obs_connected, &cmd, 3000) &&
          loop_wait_until(base, redis_link_obs_connected, &sub, 3000));
    publisher_start(&pub, &cmd, "steady", 10);
    struct after a = {&sub, redis_test_now_ms()};
    CHECK(loop_wait_until(base, message_after, &a, 3000));
    for (int round = 0; round < 2; round++) {
        redis_test_server_stop(&server);
        CHECK(loop_wait_until(base, redis_link_obs_disconnected, &sub, 3000));
        if (round == 1)
            loop_run_for(base, 1000); /* a longer outage: the backoff has grown */
        CHECK(redis_test_server_restart(&server) == 0);
        a.since = redis_test_now_ms();
        sub.messages = 0;
        CHECK(loop_wait_until(base, message_after, &a, 5000));
        long long resume = sub.last_message_ms - a.since;
        printf("resume after redis restart (%s outage): %lld ms\n", round ? "1 s" : "instant",
               resume);
        CHECK(resume < 2000);
        CHECK(strcmp(sub.channel, "steady") == 0);
    }
    struct redis_link_stats st;
    redis_link_get_stats(sub.link, &st);
    CHECK(st.connects == 3 && st.disconnects == 2 && st.messages_received > 0);
    CHECK(redis_link_subscription_count(sub.link) == 2);
    /* Both subscriptions came back: one PUBLISH reaches the channel and the pattern. */
    struct reply r;
    CHECK(command_wait(cmd.link, &r, 3, (const char *[]){"PUBLISH", "steady", "x"}));
    CHECK(r.type == REDIS_REPLY_INTEGER && r.integer == 2);
    publisher_stop(&pub);
    redis_link_free(sub.link);
    redis_link_free(cmd.link);
}

/* Sharded pub/sub on one Redis 7 (issue 17, the interface the sharded adapter uses): SSUBSCRIBE
 * is confirmed before on_state_cb(true), `smessage` pushes arrive like `message`, the shard
 * channels are subscribed again after a restart, SUNSUBSCRIBE stops them, and a SPUBLISH counts
 * the subscriber (PUBSUB SHARDNUMSUB). */
static void test_sharded_pubsub_counts(void)
{
    struct redis_link_obs cmd, sub;
    struct reply r;
    open_link(&cmd, REDIS_LINK_COMMAND, url, 0);
    CHECK(open_subscriber(&sub, 0, NULL, 20, 0) != NULL);
    CHECK(redis_link_ssubscribe(sub.link, "sio#/#room#") == SIOC_OK);
    CHECK(redis_link_ssubscribe(sub.link, "sio#/#other#") == SIOC_OK);
    CHECK(redis_link_ssubscribe(sub.link, "sio#/#room#") == SIOC_OK); /* already there */
    CHECK(redis_link_ssubscribe(cmd.link, "x") == SIOC_EINVAL);
    CHECK(redis_link_ssubscribe(sub.link, "") == SIOC_EINVAL);
    CHECK(redis_link_subscription_count(sub.link) == 2);
    CHECK(loop_wait_until(base, redis_link_obs_connected, &cmd, 3000) &&
          loop_wait_until(base, redis_link_obs_connected, &sub, 3000));
    CHECK(command_wait(cmd.link, &r, 3, (const char *[]){"SPUBLISH", "sio#/#room#", "hello"}));
    CHECK(r.type == REDIS_REPLY_INTEGER && r.integer == 1);
    CHECK(loop_wait_until(base, got_message, &sub, 3000));
    CHECK(strcmp(sub.channel, "sio#/#room#") == 0 && sub.pattern[0] == '\0');
    CHECK_MEM(sub.payload, sub.payload_len, "hello", 5);
    CHECK(command_wait(cmd.link, &r, 3, (const char *[]){"PUBSUB", "SHARDNUMSUB", "sio#/#other#"}));
    CHECK(r.type == REDIS_REPLY_ARRAY && r.elements == 2);
    /* a restart: both shard channels come back before the link says it is up */
    redis_test_server_stop(&server);
    CHECK(loop_wait_until(base, redis_link_obs_disconnected, &sub, 3000));
    CHECK(redis_test_server_restart(&server) == 0);
    CHECK(loop_wait_until(base, redis_link_obs_connected, &sub, 5000) &&
          loop_wait_until(base, redis_link_obs_connected, &cmd, 5000));
    sub.messages = 0;
    CHECK(command_wait(cmd.link, &r, 3, (const char *[]){"SPUBLISH", "sio#/#other#", "again"}));
    CHECK(r.type == REDIS_REPLY_INTEGER && r.integer == 1);
    CHECK(loop_wait_until(base, got_message, &sub, 3000) &&
          strcmp(sub.channel, "sio#/#other#") == 0);
    /* SUNSUBSCRIBE: no more deliveries, no subscriber counted */
    CHECK(redis_link_sunsubscribe(sub.link, "sio#/#other#") == SIOC_OK);
    CHECK(redis_link_subscription_count(sub.link) == 1);
    loop_run_for(base, 100);
    CHECK(command_wait(cmd.link, &r, 3, (const char *[]){"SPUBLISH", "sio#/#other#", "gone"}));
    CHECK(r.type == REDIS_REPLY_INTEGER && r.integer == 0);
    redis_link_free(sub.link);
    redis_link_free(cmd.link);
}

static void test_client_kill(void)
{
    struct redis_link_obs cmd, sub;
    struct publisher pub;
    open_link(&cmd, REDIS_LINK_COMMAND, url, 0);
    open_subscriber(&sub, 0, NULL, 0, 0);
    redis_link_subscribe(sub.link, "steady");
    CHECK(loop_wait_until(base, redis_link_obs_connected, &cmd, 3000) &&
          loop_wait_until(base, redis_link_obs_connected, &sub, 3000));
    publisher_start(&pub, &cmd, "steady", 10);
    struct after a = {&sub, redis_test_now_ms()};
    CHECK(loop_wait_until(base, message_after, &a, 3000));
    struct reply r;
    CHECK(command_wait(cmd.link, &r, 4, (const char *[]){"CLIENT", "KILL", "TYPE", "pubsub"}));
    CHECK(r.type == REDIS_REPLY_INTEGER && r.integer >= 1);
    a.since = redis_test_now_ms();
    CHECK(loop_wait_until(base, redis_link_obs_disconnected, &sub, 3000) || sub.downs == 1);
    sub.messages = 0;
    CHECK(loop_wait_until(base, message_after, &a, 3000));
    printf("resume after CLIENT KILL TYPE pubsub: %lld ms\n", sub.last_message_ms - a.since);
    CHECK(sub.last_message_ms - a.since < 2000);
    CHECK(sub.downs == 1 && sub.ups == 2 && cmd.downs == 0);
    publisher_stop(&pub);
    redis_link_free(sub.link);
    redis_link_free(cmd.link);
}

static bool liveness_fired(const void *arg)
{
    return ((const struct redis_link_obs *)arg)->events[REDIS_LINK_EV_LIVENESS_TIMEOUT] > 0;
}

static void test_liveness(void)
{
    struct redis_link_obs cmd, sub;
    struct publisher probe;
    open_link(&cmd, REDIS_LINK_COMMAND, url, 0);
    open_subscriber(&sub, 300, "probe:me", 20, 300);
    redis_link_subscribe(sub.link, "data");
    CHECK(loop_wait_until(base, redis_link_obs_connected, &cmd, 3000) &&
          loop_wait_until(base, redis_link_obs_connected, &sub, 3000));
    /* Probes every 80 ms keep it alive, and never reach the message callback. */
    publisher_start(&probe, &cmd, "probe:me", 80);
    loop_run_for(base, 1000);
    struct redis_link_stats st;
    redis_link_get_stats(sub.link, &st);
    CHECK(st.liveness_timeouts == 0 && st.connects == 1 && st.messages_received >= 8);
    CHECK(sub.messages == 0);
    /* Probes stop: the link presumes the subscription dead and replaces it. */
    publisher_stop(&probe);
    long long t0 = redis_test_now_ms();
    CHECK(loop_wait_until(base, liveness_fired, &sub, 2000));
    long long detect = redis_test_now_ms() - t0;
    printf("liveness timeout (300 ms) detected %lld ms after the probes stopped\n", detect);
    /* The last probe arrived up to 80 ms before t0; checks run every 75 ms. */
    CHECK(detect >= 300 - 80 && detect < 300 + 80 + 200);
    CHECK(loop_wait_until(base, redis_link_obs_connected, &sub, 3000));
    redis_link_get_stats(sub.link, &st);
    CHECK(st.connects == 2 && st.liveness_timeouts == 1);
    /* A frozen server (SIGSTOP): the socket stays open but nothing flows. The liveness timeout
     * fires, reconnection attempts time out, and delivery resumes after SIGCONT. */
    publisher_start(&probe, &cmd, "probe:me", 80);
    loop_run_for(base, 200);
    memset(sub.events, 0, sizeof(sub.events));
    kill(server.pid, SIGSTOP);
    CHECK(loop_wait_until(base, liveness_fired, &sub, 2000));
    loop_run_for(base, 700);
    CHECK(sub.events[REDIS_LINK_EV_CONNECT_TIMEOUT] >= 1);
    CHECK(!redis_link_connected(sub.link));
    kill(server.pid, SIGCONT);
    long long t1 = redis_test_now_ms();
    CHECK(loop_wait_until(base, redis_link_obs_connected, &sub, 3000));
    printf("resubscribed %lld ms after SIGCONT\n", redis_test_now_ms() - t1);
    CHECK(publish_until_received(&cmd, &sub, "data", "d", 1));
    publisher_stop(&probe);
    redis_link_free(sub.link);
    redis_link_free(cmd.link);
}

/* ---- the libevent adapter: commands leave at the end of the loop iteration ---- */

struct chain {
    struct redis_link *link;
    int left, done, errors;
    long long last;
};

static void chain_cb(void *ctx, const struct redisReply *r, enum redis_link_result res)
{
    struct chain *c = ctx;
    if (res != REDIS_LINK_REPLY || r->type != REDIS_REPLY_INTEGER || r->integer != c->last + 1)
        c->errors++;
    else
        c->last = r->integer;
    c->done++;
    if (--c->left > 0)
        redis_link_command_argv(c->link, 2, (const char *[]){"INCR", "chain"}, NULL, 0, chain_cb,
                                c);
}

/* A command issued from a reply callback is written in the same loop iteration: 200 chained
 * round trips take about 200 iterations (hiredis's stock adapter needed one more per command to
 * arm and fire its write event). */
static void test_chained_commands_leave_at_once(void)
{
    struct redis_link_obs o;
    CHECK(open_link(&o, REDIS_LINK_COMMAND, url, 0) != NULL);
    CHECK(loop_wait_until(base, redis_link_obs_connected, &o, 3000));
    struct chain c = {.link = o.link, .left = 200};
    CHECK(redis_link_command_argv(o.link, 2, (const char *[]){"DEL", "chain"}, NULL, 0, NULL,
                                  NULL) == SIOC_OK);
    CHECK(redis_link_command_argv(o.link, 2, (const char *[]){"INCR", "chain"}, NULL, 0, chain_cb,
                                  &c) == SIOC_OK);
    int iterations = 0;
    long long deadline = redis_test_now_ms() + 5000;
    while (c.left > 0 && redis_test_now_ms() < deadline) {
        event_base_loop(base, EVLOOP_ONCE);
        iterations++;
    }
    printf("200 chained round trips in %d loop iterations\n", iterations);
    CHECK(c.done == 200 && c.errors == 0);
    CHECK(iterations <= 210);
    redis_link_free(o.link);
}

struct big {
    int replies, errors;
};

static void big_cb(void *ctx, const struct redisReply *r, enum redis_link_result res)
{
    struct big *b = ctx;
    b->replies++;
    if (res != REDIS_LINK_REPLY || r->type == REDIS_REPLY_ERROR)
        b->errors++;
}

static bool big_done(const void *arg)
{
    return ((const struct big *)arg)->replies == 65;
}

/* 16 MB of commands while Redis is frozen (SIGSTOP): more than the socket buffers take, so
 * writes are partial and the write event waits for room; after SIGCONT every reply arrives, in
 * order, on the same connection. */
static void test_full_socket(void)
{
    struct redis_link_obs o;
    CHECK(open_link(&o, REDIS_LINK_COMMAND, url, 0) != NULL);
    CHECK(loop_wait_until(base, redis_link_obs_connected, &o, 3000));
    size_t n = 256 * 1024;
    char *v = malloc(n);
    CHECK(v != NULL);
    if (v == NULL)
        return;
    memset(v, 'x', n);
    struct big b = {0};
    kill(server.pid, SIGSTOP);
    for (int i = 0; i < 64; i++) {
        char key[16];
        snprintf(key, sizeof key, "big%d", i);
        const char *argv[] = {"SET", key, v};
        const size_t lens[] = {3, strlen(key), n};
        CHECK(redis_link_command_argv(o.link, 3, argv, lens, 0, big_cb, &b) == SIOC_OK);
    }
    CHECK(redis_link_command_argv(o.link, 2, (const char *[]){"STRLEN", "big63"}, NULL, 0, big_cb,
                                  &b) == SIOC_OK);
    loop_run_for(base, 200);
    CHECK(b.replies == 0);
    kill(server.pid, SIGCONT);
    CHECK(loop_wait_until(base, big_done, &b, 10000));
    CHECK(b.errors == 0);
    struct redis_link_stats st;
    redis_link_get_stats(o.link, &st);
    CHECK(st.disconnects == 0);
    free(v);
    redis_link_free(o.link);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    base = event_base_new();
    if (base == NULL || redis_test_server_start(&server) != 0) {
        fprintf(stderr, "test_redis_link: cannot start redis-server\n");
        printf("test_redis_link: 0 passed, 1 failed\n");
        return 1;
    }
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", server.port);
    RUN(test_bad_url);
    RUN(test_round_trip);
    RUN(test_auth_select);
    RUN(test_queue_while_down);
    RUN(test_queue_limit);
    RUN(test_retry_in_flight);
    RUN(test_cancel);
    RUN(test_free_calls_nothing);
    RUN(test_pubsub);
    RUN(test_sharded_pubsub);
    RUN(test_resubscribe_after_restart);
    RUN(test_sharded_pubsub_counts);
    RUN(test_client_kill);
    RUN(test_liveness);
    RUN(test_chained_commands_leave_at_once);
    RUN(test_full_socket);
    redis_test_server_stop(&server);
    event_base_free(base);
    return test_summary("test_redis_link");
}
