/* test_bridge.c: gateway/bridge against a real redis-server on a random port. Upstream entries
 * are read back with XRANGE (or a subscriber) and decoded with the envelope decoders: fields,
 * sharding, MAXLEN, order and exactly-once across a Redis restart, the overflow list that pauses
 * clients, counted drops, pub/sub mode, drain. Replies are published to P:node:<node> and the
 * resulting Socket.IO calls observed through the bridge's ops table (no Socket.IO server here):
 * apply order, unknown sockets, malformed messages, backend auth accept/reject/timeout. */
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <stdarg.h>

#include "common/envelope.h"
#include "common/error.h"
#include "common/metrics.h"
#include "common/mp.h"
#include "common/net/redis_link.h"
#include "gateway/bridge.h"
#include "gateway/subscriber.h"
#include "tests/net/loop_test.h"
#include "tests/net/redis_test_server.h"
#include "tests/unit/test.h"

static struct event_base *base;
static struct redis_test_server server;
static char url[128];
static redisContext *rc; /* the test's own blocking client */

/* ---- loop helpers ---- */

static bool is_ready(const void *b)
{
    return bridge_ready(b);
}

static bool not_ready(const void *b)
{
    return !bridge_ready(b);
}

static bool flushed(const void *b)
{
    return bridge_ready(b) && bridge_pending(b) == 0;
}

static void rc_connect(void)
{
    if (rc != NULL)
        redisFree(rc);
    rc = redisConnect("127.0.0.1", server.port);
}

static redisReply *cmd(const char *fmt, const char *a, const void *p, size_t len)
{
    return redisCommand(rc, fmt, a, p, len);
}

/* ---- a Socket.IO stand-in behind the ops table ---- */

struct fake_sock {
    char id[SIO_SOCKET_ID_LEN + 1];
    char nsp[32];
    char uid[32];
    bool alive, accepted;
    void *data;
    struct sio_handshake hs;
};

#define FAKE_SOCKS 16
static struct fake_sock socks[FAKE_SOCKS];
static struct bridge *br; /* the bridge under test, for the callbacks a real server makes */
static char trace[16384];
static int pauses, resumes;
static bool paused;

static void trace_add(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void trace_add(const char *fmt, ...)
{
    size_t n = strlen(trace);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(trace + n, sizeof trace - n, fmt, ap);
    va_end(ap);
}

static void trace_hex(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char h[3];
        snprintf(h, sizeof h, "%02x", p[i]);
        trace_add("%s", h);
    }
}

static struct fake_sock *fs(const struct sio_socket *s)
{
    return (struct fake_sock *)(uintptr_t)s;
}

static struct sio_socket *as_sock(struct fake_sock *f)
{
    return (struct sio_socket *)(void *)f;
}

static struct sio_socket *f_find(struct sio_server *srv, const char *nsp, size_t nsp_len,
                                 const char *sid, size_t sid_len)
{
    (void)srv;
    for (int i = 0; i < FAKE_SOCKS; i++)
        if (socks[i].alive && strlen(socks[i].nsp) == nsp_len &&
            memcmp(socks[i].nsp, nsp, nsp_len) == 0 && sid_len == SIO_SOCKET_ID_LEN &&
            memcmp(socks[i].id, sid, sid_len) == 0)
            return as_sock(&socks[i]);
    return NULL;
}

static void f_accept(struct sio_socket *s, const char *uid, const char *user_room)
{
    fs(s)->accepted = true;
    snprintf(fs(s)->uid, sizeof fs(s)->uid, "%s", uid != NULL ? uid : "");
    trace_add("accept %s uid=%s room=%s;", fs(s)->id, uid != NULL ? uid : "-",
              user_room != NULL ? user_room : "-");
}

static void f_reject(struct sio_socket *s, const char *message, const uint8_t *data, size_t len)
{
    trace_add("reject %s %s data=", fs(s)->id, message);
    if (data != NULL)
        trace_hex(data, len);
    trace_add(";");
    /* as sio_server does: the socket is removed, its on_disconnect runs now */
    bridge_on_disconnect(br, s, "connect refused");
    fs(s)->alive = false;
}

static bool f_accepted(const struct sio_socket *s)
{
    return fs(s)->accepted;
}

static int f_join(struct sio_socket *s, const void *room, size_t len)
{
    char r[64];
    snprintf(r, sizeof r, "%.*s", (int)len, (const char *)room);
    trace_add("join %s %s;", fs(s)->id, r);
    return SIOC_OK;
}

static bool f_leave(struct sio_socket *s, const void *room, size_t len)
{
    char r[64];
    snprintf(r, sizeof r, "%.*s", (int)len, (const char *)room);
    trace_add("leave %s %s;", fs(s)->id, r);
    return true;
}

static int f_emit(struct sio_socket *s, struct slice data)
{
    trace_add("emit %s ", fs(s)->id);
    trace_hex(data.p, data.len);
    trace_add(";");
    return SIOC_OK;
}

static int64_t f_emit_with_ack(struct sio_socket *s, struct slice data)
{
    static int64_t next_ack = 40;
    trace_add("call %s %lld ", fs(s)->id, (long long)next_ack);
    trace_hex(data.p, data.len);
    trace_add(";");
    return next_ack++;
}

static int f_ack(struct sio_socket *s, uint64_t id, struct slice args)
{
    char n[24];
    snprintf(n, sizeof n, "%llu", (unsigned long long)id);
    trace_add("ack %s %s ", fs(s)->id, n);
    trace_hex(args.p, args.len);
    trace_add(";");
    return SIOC_OK;
}

static void f_disconnect(struct sio_socket *s, bool close_transport)
{
    (void)close_transport;
    trace_add("disconnect %s;", fs(s)->id);
    bridge_on_disconnect(br, s, "server namespace disconnect");
    fs(s)->alive = false;
}

static const char *f_id(const struct sio_socket *s)
{
    return fs(s)->id;
}

static const char *f_nsp(const struct sio_socket *s)
{
    return fs(s)->nsp;
}

static const char *f_uid(const struct sio_socket *s)
{
    return fs(s)->uid;
}

static const struct sio_handshake *f_hs(const struct sio_socket *s)
{
    return &fs(s)->hs;
}

static void *f_get_data(const struct sio_socket *s)
{
    return fs(s)->data;
}

static void f_set_data(struct sio_socket *s, void *data)
{
    fs(s)->data = data;
}

static const struct bridge_sio_ops fake_ops = {
    f_find, f_accept,     f_reject, f_accepted, f_join, f_leave, f_emit,     f_emit_with_ack,
    f_ack,  f_disconnect, f_id,     f_nsp,      f_uid,  f_hs,    f_get_data, f_set_data,
};

static const uint8_t headers_map[] = {0x81, 0xa4, 'h', 'o', 's', 't', 0xa1, 'x'};
static const uint8_t query_map[] = {0x81, 0xa3, 'E', 'I', 'O', 0xa1, '4'};

static struct sio_socket *new_sock(int i, const char *nsp, bool accepted)
{
    struct fake_sock *f = &socks[i];
    memset(f, 0, sizeof *f);
    snprintf(f->id, sizeof f->id, "sock%02dxxxxxxxxxxxxxx", i);
    snprintf(f->nsp, sizeof f->nsp, "%s", nsp);
    f->alive = true;
    f->accepted = accepted;
    f->hs = (struct sio_handshake){{headers_map, sizeof headers_map},
                                   {query_map, sizeof query_map},
                                   "/socket.io/?EIO=4&transport=websocket",
                                   "127.0.0.1",
                                   1700000000123,
                                   false};
    return as_sock(f);
}

static void on_pause(void *ctx, bool p)
{
    (void)ctx;
    paused = p;
    if (p)
        pauses++;
    else
        resumes++;
}

static struct subscriber *br_sub; /* the gateway's subscriber connection, as main_gateway.c */
static int snapshot_requests;

/* P:node:<node> as main_gateway.c routes it: replies to the bridge, the snapshot request on. */
static void on_node_message(void *ctx, struct slice pattern, struct slice channel,
                            struct slice payload)
{
    (void)ctx;
    (void)pattern;
    (void)channel;
    if (!bridge_apply_reply(br, payload.p, payload.len))
        snapshot_requests++;
}

static struct subscriber *make_subscriber(const char *prefix, const char *node)
{
    struct subscriber_config sc = {
        .redis_url = url, .key_prefix = prefix, .node_id = node, .probe_interval_ms = 200};
    struct subscriber *s = subscriber_new(base, &sc, NULL);
    char chan[128];
    snprintf(chan, sizeof chan, "%s:node:%s", prefix, node);
    CHECK(s != NULL &&
          subscriber_add(s, SUBSCRIBER_CHANNEL, chan, on_node_message, NULL) == SIOC_OK);
    return s;
}

static void free_bridge(void)
{
    bridge_free(br);
    subscriber_free(br_sub);
    br = NULL;
    br_sub = NULL;
}

static struct bridge *make_bridge(struct bridge_config *cfg, struct metrics *m)
{
    cfg->redis_url = url;
    cfg->ops = &fake_ops;
    cfg->on_pause = on_pause;
    br_sub = make_subscriber(cfg->key_prefix, cfg->node_id);
    cfg->subscriber = br_sub;
    trace[0] = '\0';
    pauses = resumes = 0;
    paused = false;
    snapshot_requests = 0;
    br = bridge_new(base, cfg, NULL, NULL, m);
    if (br != NULL && !loop_wait_until(base, is_ready, br, 3000))
        fprintf(stderr, "bridge not ready\n");
    return br;
}

/* The value of one series in the rendered /metrics text (-1 if absent). */
static double metric(struct metrics *m, const char *series)
{
    struct buf out;
    buf_init(&out, 0);
    metrics_render(m, &out);
    buf_append_byte(&out, '\0');
    double v = -1;
    size_t n = strlen(series);
    for (char *line = (char *)out.data; line != NULL && *line != '\0';) {
        char *nl = strchr(line, '\n');
        if (strncmp(line, series, n) == 0 && line[n] == ' ')
            v = strtod(line + n + 1, NULL);
        line = nl != NULL ? nl + 1 : NULL;
    }
    buf_deinit(&out);
    return v;
}

/* ---- reading the stream back ---- */

struct entries {
    redisReply *reply;
    size_t n;
    struct envelope_up up[256];
    int err[256];
};

static void read_stream(struct entries *e, const char *key)
{
    e->reply = redisCommand(rc, "XRANGE %s - +", key);
    e->n = 0;
    if (e->reply == NULL || e->reply->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 0; i < e->reply->elements && i < 256; i++) {
        redisReply *fields = e->reply->element[i]->element[1];
        struct slice kv[2 * ENVELOPE_MAX_FIELDS + 2];
        size_t n = fields->elements < sizeof kv / sizeof kv[0] ? fields->elements : 0;
        for (size_t j = 0; j < n; j++)
            kv[j] =
                (struct slice){(const uint8_t *)fields->element[j]->str, fields->element[j]->len};
        e->err[i] = envelope_up_from_fields(kv, n, &e->up[i]);
        e->n++;
    }
}

static void entries_free(struct entries *e)
{
    if (e->reply != NULL)
        freeReplyObject(e->reply);
    e->reply = NULL;
}

static bool slice_is(struct slice s, const char *text)
{
    return s.len == strlen(text) && memcmp(s.p, text, s.len) == 0;
}

static void stream_key(char *out, size_t cap, const char *prefix, const char *nsp, const char *sid,
                       uint32_t shards)
{
    snprintf(out, cap, "%s:up:%s:%u", prefix, nsp,
             (unsigned)envelope_shard((const uint8_t *)sid, strlen(sid), shards));
}

/* An event whose first argument is its sequence number. */
static void send_seq(struct sio_socket *s, int seq, size_t pad)
{
    struct buf args;
    buf_init(&args, 0);
    mp_write_array(&args, 2);
    mp_write_uint(&args, (uint64_t)seq);
    char filler[512];
    memset(filler, 'p', sizeof filler);
    mp_write_str(&args, filler, pad < sizeof filler ? pad : sizeof filler);
    bridge_on_event(br, s, (struct slice){(const uint8_t *)"seq", 3},
                    (struct slice){args.data, args.len}, false, 0);
    buf_deinit(&args);
}

static int seq_of(const struct envelope_up *up)
{
    struct mp_reader r;
    struct mp_item it;
    mp_reader_init(&r, up->args.p, up->args.len);
    if (mp_read(&r, &it) != SIOC_OK || it.kind != MP_ARRAY || mp_read(&r, &it) != SIOC_OK ||
        it.kind != MP_UINT)
        return -1;
    return (int)it.u;
}

/* ---- tests ---- */

static bool drained;
static void drained_cb(void *ctx)
{
    (void)ctx;
    drained = true;
}

static bool is_drained(const void *arg)
{
    (void)arg;
    return drained;
}

static void test_stream_entries(void)
{
    struct metrics *m = metrics_new();
    struct bridge_config cfg = {
        .key_prefix = "t1", .node_id = "node-1", .shards = 4, .maxlen = 1000};
    CHECK(make_bridge(&cfg, m) != NULL);
    if (br == NULL)
        return;
    struct sio_socket *a = new_sock(0, "/chat", true);
    static const uint8_t auth[] = {0x81, 0xa5, 't', 'o', 'k', 'e', 'n', 0xa1, 't'};
    bridge_on_connect(br, a, auth, sizeof auth, false);
    static const uint8_t args[] = {0x93, 0x01, 0xa3, 't', 'w', 'o', 0xc4, 0x02, 0x00, 0xff};
    bridge_on_event(br, a, (struct slice){(const uint8_t *)"hello", 5},
                    (struct slice){args, sizeof args}, true, 7);
    bridge_on_event(br, a, (struct slice){(const uint8_t *)"noack", 5},
                    (struct slice){(const uint8_t *)"\x90", 1}, false, 0);
    bridge_on_disconnect(br, a, "client namespace disconnect");
    CHECK(socks[0].data == NULL);
    drained = false;
    bridge_drain(br, drained_cb, NULL);
    CHECK(!drained); /* never from inside bridge_drain */
    CHECK(loop_wait_until(base, is_drained, NULL, 3000));
    CHECK(bridge_pending(br) == 0);

    char key[128];
    stream_key(key, sizeof key, "t1", "/chat", socks[0].id, 4);
    struct entries e;
    read_stream(&e, key);
    CHECK(e.n == 4);
    uint64_t now = (uint64_t)time(NULL) * 1000;
    for (size_t i = 0; i < e.n; i++) {
        CHECK(e.err[i] == SIOC_OK);
        CHECK(slice_is(e.up[i].nsp, "/chat"));
        CHECK(slice_is(e.up[i].sid, socks[0].id));
        CHECK(slice_is(e.up[i].node, "node-1"));
        CHECK(e.up[i].uid.len == 0);
        CHECK(e.up[i].ts + 60000 > now && e.up[i].ts < now + 60000);
    }
    if (e.n == 4) {
        CHECK(e.up[0].type == ENVELOPE_UP_CONNECT);
        CHECK_MEM(e.up[0].auth.p, e.up[0].auth.len, auth, sizeof auth);
        CHECK(!e.up[0].has_rid);
        struct buf hs;
        buf_init(&hs, 0);
        mp_write_map(&hs, 6);
        mp_write_cstr(&hs, "address");
        mp_write_cstr(&hs, "127.0.0.1");
        mp_write_cstr(&hs, "headers");
        buf_append(&hs, headers_map, sizeof headers_map);
        mp_write_cstr(&hs, "query");
        buf_append(&hs, query_map, sizeof query_map);
        mp_write_cstr(&hs, "url");
        mp_write_cstr(&hs, "/socket.io/?EIO=4&transport=websocket");
        mp_write_cstr(&hs, "time");
        mp_write_uint(&hs, 1700000000123);
        mp_write_cstr(&hs, "secure");
        mp_write_bool(&hs, false);
        CHECK_MEM(e.up[0].hs.p, e.up[0].hs.len, hs.data, hs.len);
        buf_deinit(&hs);
        CHECK(e.up[1].type == ENVELOPE_UP_EVENT);
        CHECK(slice_is(e.up[1].event, "hello"));
        CHECK_MEM(e.up[1].args.p, e.up[1].args.len, args, sizeof args);
        CHECK(e.up[1].has_ack && e.up[1].ack == 7);
        CHECK(e.up[2].type == ENVELOPE_UP_EVENT && !e.up[2].has_ack);
        CHECK(e.up[3].type == ENVELOPE_UP_DISCONNECT);
        CHECK(slice_is(e.up[3].reason, "client namespace disconnect"));
    }
    entries_free(&e);

    /* sockets spread over the shards by fnv1a32(sid) % 4, each in its own key */
    uint32_t seen = 0;
    for (int i = 1; i < FAKE_SOCKS; i++) {
        struct sio_socket *s = new_sock(i, "/chat", true);
        bridge_on_event(br, s, (struct slice){(const uint8_t *)"x", 1},
                        (struct slice){(const uint8_t *)"\x90", 1}, false, 0);
        seen |= 1u << envelope_shard((const uint8_t *)socks[i].id, SIO_SOCKET_ID_LEN, 4);
    }
    CHECK(loop_wait_until(base, flushed, br, 3000));
    for (int i = 1; i < FAKE_SOCKS; i++) {
        stream_key(key, sizeof key, "t1", "/chat", socks[i].id, 4);
        redisReply *r = redisCommand(rc, "XRANGE %s - +", key);
        bool found = false;
        for (size_t j = 0; r != NULL && j < r->elements; j++) {
            redisReply *f = r->element[j]->element[1];
            for (size_t k = 0; k + 1 < f->elements; k += 2)
                if (strcmp(f->element[k]->str, "sid") == 0 &&
                    strcmp(f->element[k + 1]->str, socks[i].id) == 0)
                    found = true;
        }
        CHECK(found);
        freeReplyObject(r);
    }
    CHECK(seen != 1 && seen != 2 && seen != 4 && seen != 8); /* more than one shard used */
    CHECK(metric(m, "sioc_upstream_written_total") == 4 + FAKE_SOCKS - 1);
    CHECK(metric(m, "sioc_upstream_queue_entries") == 0);
    CHECK(metric(m, "sioc_bridge_redis_connected{link=\"command\"}") == 1);
    free_bridge();
    metrics_free(m);
}

static void test_maxlen(void)
{
    struct bridge_config cfg = {.key_prefix = "t2", .node_id = "n2", .maxlen = 10};
    CHECK(make_bridge(&cfg, NULL) != NULL);
    if (br == NULL)
        return;
    struct sio_socket *s = new_sock(0, "/", true);
    for (int i = 0; i < 500; i++)
        send_seq(s, i, 1);
    CHECK(loop_wait_until(base, flushed, br, 5000));
    redisReply *r = redisCommand(rc, "XLEN t2:up:/:0");
    /* MAXLEN ~ trims whole macro nodes: well below 500, at least 10 */
    CHECK(r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer >= 10 && r->integer < 300);
    freeReplyObject(r);
    free_bridge();
}

/* Entries emitted while Redis is down appear after the restart, in order, exactly once. */
static void test_restart_order(void)
{
    struct metrics *m = metrics_new();
    struct bridge_config cfg = {.key_prefix = "t3", .node_id = "n3"};
    CHECK(make_bridge(&cfg, m) != NULL);
    if (br == NULL)
        return;
    struct sio_socket *s = new_sock(0, "/", true);
    send_seq(s, 1000, 1);
    CHECK(loop_wait_until(base, flushed, br, 3000));
    redis_test_server_stop(&server);
    CHECK(loop_wait_until(base, not_ready, br, 3000));
    CHECK(metric(m, "sioc_bridge_redis_connected{link=\"command\"}") == 0);
    for (int i = 0; i < 50; i++)
        send_seq(s, i, 10);
    CHECK(bridge_pending(br) == 50);
    CHECK(metric(m, "sioc_upstream_queue_entries") == 50);
    CHECK(metric(m, "sioc_upstream_queue_bytes") > 50 * 10);
    loop_run_for(base, 300);
    CHECK(redis_test_server_restart(&server) == 0);
    rc_connect();
    CHECK(loop_wait_until(base, flushed, br, 8000));
    struct entries e;
    read_stream(&e, "t3:up:/:0"); /* the restarted server starts empty (no persistence) */
    CHECK(e.n == 50);
    for (size_t i = 0; i < e.n; i++)
        CHECK(e.err[i] == SIOC_OK && seq_of(&e.up[i]) == (int)i);
    entries_free(&e);
    CHECK(pauses == 0);
    free_bridge();
    metrics_free(m);
}

/* A connection killed with entries in flight: they are written again on reconnect (XADD with
 * REDIS_LINK_RETRY), all of them, in order. */
static void test_killed_in_flight(void)
{
    struct metrics *m = metrics_new();
    struct bridge_config cfg = {.key_prefix = "t9", .node_id = "n9"};
    CHECK(make_bridge(&cfg, m) != NULL);
    if (br == NULL)
        return;
    struct sio_socket *s = new_sock(0, "/", true);
    for (int i = 0; i < 200; i++)
        send_seq(s, i, 20);
    /* the loop has not run: everything is still in flight when the connection dies */
    freeReplyObject(redisCommand(rc, "CLIENT KILL TYPE normal SKIPME yes"));
    CHECK(loop_wait_until(base, flushed, br, 8000));
    struct entries e;
    read_stream(&e, "t9:up:/:0");
    CHECK(e.n == 200);
    for (size_t i = 0; i < e.n; i++)
        CHECK(seq_of(&e.up[i]) == (int)i);
    entries_free(&e);
    CHECK(metric(m, "sioc_upstream_errors_total") == 0);
    CHECK(metric(m, "sioc_upstream_written_total") == 200);
    free_bridge();
    metrics_free(m);
}

/* The link's queue is full: entries wait in the bridge's list, clients pause, then everything is
 * written in order and clients resume. */
static void test_overflow_pause(void)
{
    struct metrics *m = metrics_new();
    struct bridge_config cfg = {.key_prefix = "t4", .node_id = "n4", .queue_limit_bytes = 2000};
    CHECK(make_bridge(&cfg, m) != NULL);
    if (br == NULL)
        return;
    struct sio_socket *s = new_sock(0, "/", true);
    redis_test_server_stop(&server);
    CHECK(loop_wait_until(base, not_ready, br, 3000));
    /* mixed sizes: a small entry that would still fit the link's queue must not overtake a
     * refused bigger one */
    for (int i = 0; i < 40; i++)
        send_seq(s, i, i % 2 == 0 ? 300 : 5);
    CHECK(paused && pauses == 1);
    CHECK(metric(m, "sioc_upstream_overflow_total") > 0);
    CHECK(metric(m, "sioc_upstream_dropped_total") == 0);
    CHECK(bridge_pending(br) == 40);
    CHECK(redis_test_server_restart(&server) == 0);
    rc_connect();
    CHECK(loop_wait_until(base, flushed, br, 8000));
    CHECK(!paused && resumes == 1);
    struct entries e;
    read_stream(&e, "t4:up:/:0");
    CHECK(e.n == 40);
    for (size_t i = 0; i < e.n; i++)
        CHECK(seq_of(&e.up[i]) == (int)i);
    entries_free(&e);
    free_bridge();
    metrics_free(m);
}

/* Beyond both bounds entries are dropped, counted, never silently: written + dropped == sent. */
static void test_overflow_drop(void)
{
    struct metrics *m = metrics_new();
    struct bridge_config cfg = {.key_prefix = "t5",
                                .node_id = "n5",
                                .queue_limit_bytes = 2000,
                                .overflow_limit_bytes = 2000};
    CHECK(make_bridge(&cfg, m) != NULL);
    if (br == NULL)
        return;
    struct sio_socket *s = new_sock(0, "/", true);
    redis_test_server_stop(&server);
    CHECK(loop_wait_until(base, not_ready, br, 3000));
    for (int i = 0; i < 60; i++)
        send_seq(s, i, 100);
    double dropped = metric(m, "sioc_upstream_dropped_total");
    CHECK(dropped > 0 && dropped < 60);
    CHECK(redis_test_server_restart(&server) == 0);
    rc_connect();
    CHECK(loop_wait_until(base, flushed, br, 8000));
    struct entries e;
    read_stream(&e, "t5:up:/:0");
    CHECK((double)e.n + dropped == 60);
    CHECK(metric(m, "sioc_upstream_written_total") == (double)e.n);
    for (size_t i = 0; i < e.n; i++)
        CHECK(seq_of(&e.up[i]) == (int)i); /* the tail was dropped, the rest is in order */
    entries_free(&e);
    free_bridge();
    metrics_free(m);
}

struct sub_obs {
    bool connected;
    int n;
    uint8_t msg[4][512];
    size_t len[4];
};

static void sub_state(void *ctx, bool up)
{
    ((struct sub_obs *)ctx)->connected = up;
}

static void sub_msg(void *ctx, struct slice pattern, struct slice channel, struct slice payload)
{
    struct sub_obs *o = ctx;
    (void)pattern;
    if (o->n < 4 && payload.len <= sizeof o->msg[0] && slice_is(channel, "t6:up:/chat")) {
        memcpy(o->msg[o->n], payload.p, payload.len);
        o->len[o->n++] = payload.len;
    }
}

static bool sub_connected(const void *o)
{
    return ((const struct sub_obs *)o)->connected;
}

static bool sub_got3(const void *o)
{
    return ((const struct sub_obs *)o)->n >= 3;
}

static void test_pubsub(void)
{
    struct sub_obs o = {0};
    struct redis_link_config lc = {.url = url,
                                   .mode = REDIS_LINK_SUBSCRIBER,
                                   .ctx = &o,
                                   .on_state_cb = sub_state,
                                   .on_message_cb = sub_msg};
    struct redis_link *sub = redis_link_new(base, &lc);
    redis_link_subscribe(sub, "t6:up:/chat");
    CHECK(loop_wait_until(base, sub_connected, &o, 3000));
    struct bridge_config cfg = {.key_prefix = "t6",
                                .node_id = "n6",
                                .upstream = BRIDGE_UPSTREAM_PUBSUB,
                                .auth_backend = true,
                                .auth_timeout_ms = 300};
    CHECK(make_bridge(&cfg, NULL) != NULL);
    if (br == NULL)
        return;
    struct sio_socket *s = new_sock(0, "/chat", false);
    bridge_on_connect(br, s, NULL, 0, true);
    socks[0].accepted = true;
    bridge_on_event(br, s, (struct slice){(const uint8_t *)"ev", 2},
                    (struct slice){(const uint8_t *)"\x91\xc3", 2}, true, 3);
    bridge_on_disconnect(br, s, "transport close");
    CHECK(loop_wait_until(base, sub_got3, &o, 3000));
    struct envelope_up up;
    CHECK(envelope_up_decode_map(o.msg[0], o.len[0], &up) == (long)o.len[0]);
    CHECK(up.type == ENVELOPE_UP_CONNECT && up.has_rid && up.rid.len == BRIDGE_RID_LEN);
    CHECK(slice_is(up.sid, socks[0].id) && slice_is(up.node, "n6"));
    CHECK(up.auth.len == 1 && up.auth.p[0] == 0x80); /* absent auth is {} */
    CHECK(envelope_up_decode_map(o.msg[1], o.len[1], &up) == (long)o.len[1]);
    CHECK(up.type == ENVELOPE_UP_EVENT && slice_is(up.event, "ev") && up.has_ack && up.ack == 3);
    CHECK(envelope_up_decode_map(o.msg[2], o.len[2], &up) == (long)o.len[2]);
    CHECK(up.type == ENVELOPE_UP_DISCONNECT && slice_is(up.reason, "transport close"));
    redisReply *r = redisCommand(rc, "EXISTS t6:up:/chat:0");
    CHECK(r != NULL && r->integer == 0); /* no stream in pubsub mode */
    freeReplyObject(r);
    loop_run_for(base, 600); /* well past the 300 ms auth timeout: cancelled by the disconnect */
    CHECK(strstr(trace, "reject") == NULL);
    free_bridge();
    redis_link_free(sub);
}

static bool subscribed(const void *chan)
{
    redisReply *r = redisCommand(rc, "PUBSUB NUMSUB %s", (const char *)chan);
    bool ok = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
              r->element[1]->integer == 1;
    freeReplyObject(r);
    return ok;
}

static bool trace_has(const void *s)
{
    return strstr(trace, s) != NULL;
}

static void publish_reply(const char *chan, const struct envelope_reply *rep)
{
    struct buf b;
    buf_init(&b, 0);
    CHECK(envelope_reply_encode(rep, &b) == SIOC_OK);
    freeReplyObject(cmd("PUBLISH %s %b", chan, b.data, b.len));
    buf_deinit(&b);
}

static struct envelope_list str_list(struct buf *b, const char *const *items, uint32_t n)
{
    buf_reset(b);
    mp_write_array(b, n);
    for (uint32_t i = 0; i < n; i++)
        mp_write_cstr(b, items[i]);
    return (struct envelope_list){{b->data, b->len}, n};
}

static void test_replies(void)
{
    struct metrics *m = metrics_new();
    struct bridge_config cfg = {.key_prefix = "t7", .node_id = "n7"};
    CHECK(make_bridge(&cfg, m) != NULL);
    if (br == NULL)
        return;
    CHECK(loop_wait_until(base, subscribed, "t7:node:n7", 3000));
    struct sio_socket *s = new_sock(0, "/chat", true);
    bridge_on_connect(br, s, NULL, 0, false);
    new_sock(1, "/chat", false); /* CONNECT still pending: replies do not apply */

    struct buf jb, lb, eb, ab;
    buf_init(&jb, 0);
    buf_init(&lb, 0);
    buf_init(&eb, 0);
    buf_init(&ab, 0);
    static const char *const join[] = {"a", "b"}, *const leave[] = {"c"};
    mp_write_array(&eb, 2);
    mp_write_array(&eb, 2);
    mp_write_cstr(&eb, "e1");
    mp_write_uint(&eb, 1);
    mp_write_array(&eb, 1);
    mp_write_cstr(&eb, "e2");
    mp_write_array(&ab, 1);
    mp_write_bin(&ab, "\x01\x02", 2);
    struct envelope_reply rep = {.t = ENVELOPE_REPLY,
                                 .nsp = {(const uint8_t *)"/chat", 5},
                                 .sid = {(const uint8_t *)socks[0].id, SIO_SOCKET_ID_LEN},
                                 .has_ack = true,
                                 .ack_id = 7,
                                 .ack_args = {ab.data, ab.len},
                                 .emit = {{eb.data, eb.len}, 2},
                                 .disconnect = true};
    rep.join = str_list(&jb, join, 2);
    rep.leave = str_list(&lb, leave, 1);
    /* first to a socket that does not exist, then to the pending one, then garbage */
    rep.sid = (struct slice){(const uint8_t *)"nosuchsocketxxxxxxxx", SIO_SOCKET_ID_LEN};
    publish_reply("t7:node:n7", &rep);
    rep.sid = (struct slice){(const uint8_t *)socks[1].id, SIO_SOCKET_ID_LEN};
    publish_reply("t7:node:n7", &rep);
    freeReplyObject(cmd("PUBLISH %s %b", "t7:node:n7", "\x81\xa1t\xa5reply", 9));
    /* the broker's snapshot request is not the bridge's: handed back, counted nowhere */
    struct envelope_reply snap = {.t = ENVELOPE_SNAPSHOT_REQUEST};
    publish_reply("t7:node:n7", &snap);
    rep.sid = (struct slice){(const uint8_t *)socks[0].id, SIO_SOCKET_ID_LEN};
    publish_reply("t7:node:n7", &rep);
    CHECK(loop_wait_until(base, trace_has, "disconnect", 3000));
    CHECK(snapshot_requests == 1);
    char want[1024];
    snprintf(want, sizeof want,
             "join %s a;join %s b;leave %s c;ack %s 7 91c4020102;emit %s 92a2653101;"
             "emit %s 91a26532;disconnect %s;",
             socks[0].id, socks[0].id, socks[0].id, socks[0].id, socks[0].id, socks[0].id,
             socks[0].id);
    CHECK_STR(trace, strlen(trace), want);
    CHECK(metric(m, "sioc_replies_total{result=\"applied\"}") == 1);
    CHECK(metric(m, "sioc_replies_total{result=\"unknown\"}") == 2);
    CHECK(metric(m, "sioc_replies_total{result=\"invalid\"}") == 1);
    /* the worker's disconnect produced the disconnect entry */
    CHECK(loop_wait_until(base, flushed, br, 3000));
    struct entries e;
    read_stream(&e, "t7:up:/chat:0");
    CHECK(e.n == 2);
    if (e.n == 2)
        CHECK(e.up[1].type == ENVELOPE_UP_DISCONNECT &&
              slice_is(e.up[1].reason, "server namespace disconnect"));
    entries_free(&e);
    buf_deinit(&jb);
    buf_deinit(&lb);
    buf_deinit(&eb);
    buf_deinit(&ab);
    free_bridge();
    metrics_free(m);
}

/* The next message on the blocking subscriber `sub` (3 s at most), as "<channel> <hex>". */
static void next_message(redisContext *sub, char *out, size_t cap)
{
    redisReply *m = NULL;
    out[0] = '\0';
    if (redisGetReply(sub, (void **)&m) != REDIS_OK || m == NULL)
        return;
    if (m->type == REDIS_REPLY_ARRAY && m->elements == 3) {
        int n = snprintf(out, cap, "%s ", m->element[1]->str);
        for (size_t i = 0; i < m->element[2]->len && (size_t)n + 3 < cap; i++)
            n += snprintf(out + n, cap - (size_t)n, "%02x", (uint8_t)m->element[2]->str[i]);
    }
    freeReplyObject(m);
}

/* A worker's call (docs/contracts.md "Calls"): the event goes out with an ack id, the client's
 * ack is published on the call's channel; a socket that leaves answers its calls with an
 * error; a call to an unknown socket is answered at once. */
static void test_calls(void)
{
    struct metrics *m = metrics_new();
    struct bridge_config cfg = {.key_prefix = "t9", .node_id = "n9"};
    CHECK(make_bridge(&cfg, m) != NULL);
    if (br == NULL)
        return;
    CHECK(loop_wait_until(base, subscribed, "t9:node:n9", 3000));
    struct timeval tv = {3, 0};
    redisContext *sub = redisConnectWithTimeout("127.0.0.1", server.port, tv);
    CHECK(sub != NULL && sub->err == 0);
    redisSetTimeout(sub, tv);
    redisReply *ok = redisCommand(sub, "SUBSCRIBE t9:calls");
    freeReplyObject(ok);
    struct sio_socket *s = new_sock(0, "/", true);
    bridge_on_connect(br, s, NULL, 0, false);

    static const uint8_t emit[] = {0x92, 0xa1, 'q', 0x07};
    struct envelope_reply rep = {.t = ENVELOPE_REPLY,
                                 .nsp = {(const uint8_t *)"/", 1},
                                 .sid = {(const uint8_t *)socks[0].id, SIO_SOCKET_ID_LEN},
                                 .has_call = true,
                                 .call_id = {(const uint8_t *)"c1", 2},
                                 .call_to = {(const uint8_t *)"t9:calls", 8},
                                 .call_emit = {emit, sizeof emit}};
    publish_reply("t9:node:n9", &rep);
    rep.call_id = (struct slice){(const uint8_t *)"c2", 2};
    publish_reply("t9:node:n9", &rep);
    CHECK(loop_wait_until(base, trace_has, "call", 3000));
    CHECK(loop_wait_until(base, trace_has, " 41 ", 3000));
    char want[256], got[512];
    snprintf(want, sizeof want, "call %s 40 92a17107;call %s 41 92a17107;", socks[0].id,
             socks[0].id);
    CHECK_STR(trace, strlen(trace), want);

    /* the client acknowledges 41 (unknown ids are ignored), then leaves with 40 pending */
    static const uint8_t args[] = {0x91, 0xa2, 'o', 'k'};
    bridge_on_ack(br, s, 99, (struct slice){args, sizeof args});
    bridge_on_ack(br, s, 41, (struct slice){args, sizeof args});
    bridge_on_disconnect(br, s, "transport close");
    socks[0].alive = false;
    CHECK(loop_wait_until(base, flushed, br, 3000));
    loop_run_for(base, 100);
    next_message(sub, got, sizeof got);
    /* {"t":"ack","id":"c2","nsp":"/","sid":<sid>,"args":["ok"]} */
    char sid_hex[2 * SIO_SOCKET_ID_LEN + 1];
    for (int i = 0; i < SIO_SOCKET_ID_LEN; i++)
        snprintf(sid_hex + 2 * i, 3, "%02x", (uint8_t)socks[0].id[i]);
    snprintf(want, sizeof want,
             "t9:calls 85a174a361636ba26964a26332a36e7370a12fa3736964b4%sa46172677391a26f6b",
             sid_hex);
    CHECK_STR(got, strlen(got), want);
    next_message(sub, got, sizeof got);
    snprintf(want, sizeof want,
             "t9:calls 85a174a361636ba26964a26331a36e7370a12fa3736964b4%s"
             "a56572726f72ac646973636f6e6e6563746564",
             sid_hex);
    CHECK_STR(got, strlen(got), want);

    /* a call to a socket this node does not have: answered at once */
    rep.call_id = (struct slice){(const uint8_t *)"c3", 2};
    publish_reply("t9:node:n9", &rep);
    loop_run_for(base, 200);
    next_message(sub, got, sizeof got);
    snprintf(want, sizeof want,
             "t9:calls 85a174a361636ba26964a26333a36e7370a12fa3736964b4%s"
             "a56572726f72ac646973636f6e6e6563746564",
             sid_hex);
    CHECK_STR(got, strlen(got), want);
    redisFree(sub);
    free_bridge();
    metrics_free(m);
}

/* The rid of the newest connect entry of a socket in stream t8. */
static bool find_rid(const char *sid, char *rid)
{
    struct entries e;
    read_stream(&e, "t8:up:/:0");
    bool found = false;
    for (size_t i = 0; i < e.n; i++)
        if (e.err[i] == SIOC_OK && e.up[i].type == ENVELOPE_UP_CONNECT && e.up[i].has_rid &&
            slice_is(e.up[i].sid, sid) && e.up[i].rid.len == BRIDGE_RID_LEN) {
            memcpy(rid, e.up[i].rid.p, BRIDGE_RID_LEN);
            rid[BRIDGE_RID_LEN] = '\0';
            found = true;
        }
    entries_free(&e);
    return found;
}

static void connect_reply(const char *rid, bool ok, const char *uid, struct envelope_list rooms,
                          const char *message, struct slice data)
{
    struct envelope_reply rep = {
        .t = ENVELOPE_REPLY_CONNECT,
        .rid = {(const uint8_t *)rid, strlen(rid)},
        .ok = ok,
        .has_uid = uid != NULL,
        .uid = {(const uint8_t *)uid, uid != NULL ? strlen(uid) : 0},
        .rooms = rooms,
        .has_error = message != NULL,
        .error_message = {(const uint8_t *)message, message != NULL ? strlen(message) : 0},
        .has_error_data = data.len > 0,
        .error_data = data};
    publish_reply("t8:node:n8", &rep);
}

static void test_backend_auth(void)
{
    struct metrics *m = metrics_new();
    struct bridge_config cfg = {.key_prefix = "t8",
                                .node_id = "n8",
                                .auth_backend = true,
                                .auth_timeout_ms = 400,
                                .user_room = "user:%s"};
    CHECK(make_bridge(&cfg, m) != NULL);
    if (br == NULL)
        return;
    CHECK(loop_wait_until(base, subscribed, "t8:node:n8", 3000));
    struct sio_socket *s[5];
    for (int i = 0; i < 5; i++) {
        s[i] = new_sock(i, "/", false);
        bridge_on_connect(br, s[i], NULL, 0, true);
    }
    CHECK(loop_wait_until(base, flushed, br, 3000));
    char rid[5][BRIDGE_RID_LEN + 1];
    for (int i = 0; i < 5; i++)
        CHECK(find_rid(socks[i].id, rid[i]));
    CHECK(strcmp(rid[0], rid[1]) != 0);
    struct buf rb;
    buf_init(&rb, 0);
    static const char *const rooms[] = {"vip"};
    char want[512];

    /* accept: CONNECT with uid and the user room pattern, then the rooms */
    connect_reply(rid[0], true, "42", str_list(&rb, rooms, 1), NULL, (struct slice){NULL, 0});
    snprintf(want, sizeof want, "accept %s uid=42 room=user:%%s;join %s vip;", socks[0].id,
             socks[0].id);
    CHECK(loop_wait_until(base, trace_has, want, 3000));
    bridge_on_event(br, s[0], (struct slice){(const uint8_t *)"e", 1},
                    (struct slice){(const uint8_t *)"\x90", 1}, false, 0);
    /* reject with message and data */
    connect_reply(rid[1], false, NULL, (struct envelope_list){{NULL, 0}, 0}, "nope",
                  (struct slice){(const uint8_t *)"\x81\xa1x\x01", 4});
    snprintf(want, sizeof want, "reject %s nope data=81a17801;", socks[1].id);
    CHECK(loop_wait_until(base, trace_has, want, 3000));
    /* reject without an error: the default message */
    connect_reply(rid[2], false, NULL, (struct envelope_list){{NULL, 0}, 0}, NULL,
                  (struct slice){NULL, 0});
    snprintf(want, sizeof want, "reject %s %s data=;", socks[2].id, BRIDGE_DEFAULT_REJECT_MESSAGE);
    CHECK(loop_wait_until(base, trace_has, want, 3000));
    /* socket 3 never gets an answer; socket 4 leaves while waiting */
    bridge_on_disconnect(br, s[4], "transport close");
    socks[4].alive = false;
    snprintf(want, sizeof want, "reject %s auth timeout data=;", socks[3].id);
    CHECK(loop_wait_until(base, trace_has, want, 3000));
    snprintf(want, sizeof want, "reject %s", socks[4].id);
    CHECK(!trace_has(want));
    /* a late answer finds nothing: counted, ignored */
    connect_reply(rid[3], true, "7", (struct envelope_list){{NULL, 0}, 0}, NULL,
                  (struct slice){NULL, 0});
    bridge_on_disconnect(br, s[0], "client namespace disconnect");
    CHECK(loop_wait_until(base, flushed, br, 3000));
    loop_run_for(base, 100);
    CHECK(metric(m, "sioc_replies_total{result=\"unknown\"}") == 1);
    CHECK(metric(m, "sioc_replies_total{result=\"applied\"}") == 3);

    /* the stream: 5 connects, then socket 0's event with its uid, the disconnects of 4
     * (transport close), 3 (auth timeout) and 0; none for the refused 1 and 2 */
    struct entries e;
    read_stream(&e, "t8:up:/:0");
    CHECK(e.n == 9);
    if (e.n == 9) {
        CHECK(e.up[5].type == ENVELOPE_UP_EVENT && slice_is(e.up[5].sid, socks[0].id) &&
              slice_is(e.up[5].uid, "42"));
        CHECK(e.up[6].type == ENVELOPE_UP_DISCONNECT && slice_is(e.up[6].sid, socks[4].id) &&
              slice_is(e.up[6].reason, "transport close"));
        CHECK(e.up[7].type == ENVELOPE_UP_DISCONNECT && slice_is(e.up[7].sid, socks[3].id) &&
              slice_is(e.up[7].reason, "auth timeout"));
        CHECK(e.up[8].type == ENVELOPE_UP_DISCONNECT && slice_is(e.up[8].sid, socks[0].id) &&
              slice_is(e.up[8].uid, "42"));
    }
    entries_free(&e);
    for (int i = 0; i < 5; i++)
        CHECK(socks[i].data == NULL);
    buf_deinit(&rb);
    free_bridge();
    metrics_free(m);
}

static void test_config_errors(void)
{
    struct subscriber *sub = make_subscriber("sioc", "n");
    struct bridge_config cfg = {.redis_url = url, .node_id = "n", .subscriber = sub};
    struct bridge *b;
    cfg.node_id = "";
    CHECK(bridge_new(base, &cfg, NULL, NULL, NULL) == NULL);
    cfg.node_id = "n";
    cfg.subscriber = NULL; /* required */
    CHECK(bridge_new(base, &cfg, NULL, NULL, NULL) == NULL);
    cfg.subscriber = sub;
    cfg.redis_url = "http://x";
    CHECK(bridge_new(base, &cfg, NULL, NULL, NULL) == NULL);
    cfg.redis_url = url;
    cfg.auth_backend = true;
    cfg.upstream = BRIDGE_UPSTREAM_OFF;
    CHECK(bridge_new(base, &cfg, NULL, NULL, NULL) == NULL);
    cfg.auth_backend = false;
    cfg.user_room = "user";
    CHECK(bridge_new(base, &cfg, NULL, NULL, NULL) == NULL);
    cfg.user_room = "u:%s:%s";
    CHECK(bridge_new(base, &cfg, NULL, NULL, NULL) == NULL);
    cfg.user_room = "u:%s";
    b = bridge_new(base, &cfg, NULL, NULL, NULL);
    CHECK(b != NULL);
    CHECK(bridge_sio_ops_default() != NULL);
    bridge_free(b);
    bridge_free(NULL);
    subscriber_free(sub);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (redis_test_server_start(&server) != 0) {
        fprintf(stderr, "test_bridge: cannot start redis-server\n");
        return 1;
    }
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", server.port);
    base = event_base_new();
    rc_connect();
    RUN(test_config_errors);
    RUN(test_stream_entries);
    RUN(test_maxlen);
    RUN(test_restart_order);
    RUN(test_killed_in_flight);
    RUN(test_overflow_pause);
    RUN(test_overflow_drop);
    RUN(test_pubsub);
    RUN(test_replies);
    RUN(test_calls);
    RUN(test_backend_auth);
    redisFree(rc);
    event_base_free(base);
    redis_test_server_stop(&server);
    return test_summary("test_bridge");
}
