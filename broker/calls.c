/* calls.c: acks from any backend (see calls.h). One struct call_request per held HTTP request:
 * the targets script gives its sockets, one PUBLISH per socket carries the call (a "call"
 * reply, docs/contracts.md "Calls"), the answers fill the sockets' slots, and its deadline in
 * the module's timer heap (each request has its own timeout; one libevent timer for all of
 * them, common/net/deadline_timer.h) bounds the wait. Call ids are "<request id, hex>.<socket
 * index>": unique per request and, with the channel naming this broker instance, across brokers. */
#include "broker/calls.h"

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/scripts.h"
#include "common/clock.h"
#include "common/container.h"
#include "common/envelope.h"
#include "common/error.h"
#include "common/hashtab.h"
#include "common/json.h"
#include "common/list.h"
#include "common/metrics.h"
#include "common/mp.h"
#include "common/net/deadline_timer.h"
#include "common/net/http_server.h"
#include "common/net/log.h"
#include "common/net/redis_link.h"
#include "common/timer_heap.h"

#define CALLS_ERROR_MAX 128 /* bytes of a gateway's error text kept for the answer */

enum target_state { TARGET_WAITING, TARGET_ANSWERED, TARGET_FAILED };

/* One selected socket. Offsets point into its request's `names` and `texts`. */
struct target {
    size_t sid_off, node_off, text_off; /* text: the ack's args as JSON, or the error */
    uint32_t sid_len, node_len, text_len;
    uint8_t state;
    bool published; /* its PUBLISH was handed to the link (a reply will come, in order) */
};

struct call_request {
    struct hashtab_link link; /* first: calls->by_id, keyed by `id` */
    struct list_node node;    /* in calls->held */
    struct bk_calls *calls;
    struct http_conn *conn;
    bk_calls_done_cb *done;
    void *done_ctx;
    uint64_t id;
    uint32_t timeout_ms;
    /* in calls->deadlines from when the calls are published */
    struct timer_heap_node deadline;
    struct buf nsp, emit;   /* copies of the request's, for the calls */
    struct target *targets; /* NULL until the script answered */
    size_t count, waiting, reply_cursor;
    bool counted; /* count is part of calls->pending_sockets */
    struct buf names, texts;
};

struct bk_calls {
    struct broker *b;
    struct hashtab by_id;
    struct list_node held; /* the call_requests in progress, newest first */
    size_t held_count, pending_sockets;
    uint64_t next_id;
    bool listening; /* the SUBSCRIBER link is subscribed to `channel` */
    char *channel, *probe;
    struct timer_heap deadlines; /* of the requests waiting for answers (clock_mono_ms) */
    struct deadline_timer timer; /* for the earliest of them */
    struct event *probe_timer;
    uint64_t *requests, *answered, *timed_out, *failed;
};

/* ---- request lifetime ---- */

static void request_free(struct call_request *req)
{
    struct bk_calls *calls = req->calls;
    list_remove(&req->node);
    hashtab_remove(&calls->by_id, &req->link);
    calls->held_count--;
    if (req->counted)
        calls->pending_sockets -= req->count;
    redis_link_cancel(calls->b->cmd, req);
    timer_heap_remove(&calls->deadlines, &req->deadline);
    buf_deinit(&req->nsp);
    buf_deinit(&req->emit);
    buf_deinit(&req->names);
    buf_deinit(&req->texts);
    free(req->targets);
    free(req);
}

static void conn_closed_cb(void *ctx, struct http_conn *conn, const char *reason)
{
    (void)conn;
    struct call_request *req = ctx;
    log_write(req->calls->b->log, LOG_LEVEL_INFO, "api.ack_cancelled",
              "request %llx: the client left (%s) with %zu of %zu sockets still awaited",
              (unsigned long long)req->id, reason ? reason : "closed", req->waiting, req->count);
    request_free(req);
}

static void json_key_str(struct buf *out, const char *key, const uint8_t *p, size_t n)
{
    buf_append_byte(out, '"');
    buf_append_cstr(out, key);
    buf_append_cstr(out, "\":");
    json_write_string(out, p, n);
}

/* {"acks":[{"sid","args"}],"timeouts":[sid],"errors":[{"sid","error"}]}, targets in sid order. */
static void render(const struct call_request *req, struct buf *out)
{
    static const char *const heads[] = {"{\"acks\":[", "],\"timeouts\":[", "],\"errors\":["};
    static const enum target_state order[] = {TARGET_ANSWERED, TARGET_WAITING, TARGET_FAILED};
    for (size_t pass = 0; pass < 3; pass++) {
        buf_append_cstr(out, heads[pass]);
        bool first = true;
        for (size_t i = 0; i < req->count; i++) {
            const struct target *t = &req->targets[i];
            if (t->state != order[pass])
                continue;
            const uint8_t *sid = req->names.data + t->sid_off,
                          *text = req->texts.data + t->text_off;
            buf_append_cstr(out, first ? "" : ",");
            first = false;
            if (t->state == TARGET_WAITING) {
                json_write_string(out, sid, t->sid_len);
                continue;
            }
            buf_append_byte(out, '{');
            json_key_str(out, "sid", sid, t->sid_len);
            if (t->state == TARGET_ANSWERED) {
                buf_append_cstr(out, ",\"args\":");
                buf_append(out, text, t->text_len);
            } else {
                buf_append_byte(out, ',');
                json_key_str(out, "error", text, t->text_len);
            }
            buf_append_byte(out, '}');
        }
    }
    buf_append_cstr(out, "]}");
}

/* Answers with an error (status >= 400) and frees the request. */
static void respond_error(struct call_request *req, int status, const char *msg)
{
    http_conn_clear_owner(req->conn);
    req->done(req->done_ctx, req->conn, status, msg, NULL);
    request_free(req);
}

/* Answers 200 with what arrived (sockets still awaited are the timeouts) and frees the request. */
static void finish(struct call_request *req)
{
    struct bk_calls *calls = req->calls;
    size_t answered = 0, failed = 0;
    for (size_t i = 0; i < req->count; i++) {
        answered += req->targets[i].state == TARGET_ANSWERED;
        failed += req->targets[i].state == TARGET_FAILED;
    }
    *calls->answered += answered;
    *calls->failed += failed;
    *calls->timed_out += req->waiting;
    struct buf out;
    buf_init(&out, 0);
    render(req, &out);
    http_conn_clear_owner(req->conn);
    if (out.err != SIOC_OK)
        req->done(req->done_ctx, req->conn, 500, "out of memory", NULL);
    else
        req->done(req->done_ctx, req->conn, 200, NULL, &out);
    buf_deinit(&out);
    log_write(calls->b->log, LOG_LEVEL_DEBUG, "api.ack_done",
              "request %llx: %zu answered, %zu timed out, %zu failed", (unsigned long long)req->id,
              answered, req->waiting, failed);
    request_free(req);
}

/* A socket that will not answer: `why` becomes its entry in "errors". */
static void target_fail(struct call_request *req, struct target *t, const uint8_t *why, size_t len)
{
    if (t->state != TARGET_WAITING)
        return;
    if (len > CALLS_ERROR_MAX)
        len = CALLS_ERROR_MAX;
    t->text_off = req->texts.len;
    t->text_len = (uint32_t)len;
    buf_append(&req->texts, why, len);
    if (req->texts.err != SIOC_OK) { /* out of memory: the socket is reported as timed out */
        req->texts.err = SIOC_OK;
        buf_truncate(&req->texts, t->text_off);
        return;
    }
    t->state = TARGET_FAILED;
    req->waiting--;
}

static void target_fail_cstr(struct call_request *req, struct target *t, const char *why)
{
    target_fail(req, t, (const uint8_t *)why, strlen(why));
}

/* ---- publishing the calls ---- */

/* The module's one timer: every request whose timeout passed is answered with what arrived. */
static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct bk_calls *calls = arg;
    uint64_t now = clock_mono_ms();
    struct timer_heap_node *n;
    while ((n = timer_heap_pop_expired(&calls->deadlines, now)) != NULL)
        finish(container_of(n, struct call_request, deadline));
    deadline_timer_arm_at(&calls->timer, timer_heap_next(&calls->deadlines), clock_mono_ms());
}

/* PUBLISH replies come in the order the PUBLISHes were handed to the link. */
static void publish_reply_cb(void *ctx, const redisReply *reply, enum redis_link_result result)
{
    struct call_request *req = ctx;
    while (req->reply_cursor < req->count && !req->targets[req->reply_cursor].published)
        req->reply_cursor++;
    if (req->reply_cursor >= req->count)
        return;
    struct target *t = &req->targets[req->reply_cursor++];
    /* DESIGN.md 3.3: each gateway subscribes to P:node:<node>; nobody listening means the
     * gateway is gone (the mirror forgets its sockets within node-timeout) */
    if (result == REDIS_LINK_REPLY && reply->type == REDIS_REPLY_INTEGER && reply->integer == 0)
        target_fail_cstr(req, t, "gateway unreachable");
    if (req->waiting == 0)
        finish(req);
}

/* Publishes one call per target; a call that cannot be sent fails its target. */
static void publish_calls(struct call_request *req)
{
    struct broker *b = req->calls->b;
    struct buf channel, msg;
    buf_init(&channel, 0);
    buf_init(&msg, 0);
    for (size_t i = 0; i < req->count; i++) {
        struct target *t = &req->targets[i];
        char id[40];
        int id_len = snprintf(id, sizeof id, "%llx.%zu", (unsigned long long)req->id, i);
        struct envelope_reply r = {
            .t = ENVELOPE_REPLY,
            .nsp = {req->nsp.data, req->nsp.len},
            .sid = {req->names.data + t->sid_off, t->sid_len},
            .has_call = true,
            .call_id = {(const uint8_t *)id, (size_t)id_len},
            .call_to = {(const uint8_t *)req->calls->channel, strlen(req->calls->channel)},
            .call_emit = {req->emit.data, req->emit.len},
        };
        buf_reset(&channel);
        buf_reset(&msg);
        envelope_key_node(&channel, b->prefix,
                          (struct slice){req->names.data + t->node_off, t->node_len});
        int rc = envelope_reply_encode(&r, &msg);
        if (rc == SIOC_OK && channel.err == SIOC_OK) {
            const char *argv[] = {"PUBLISH", (const char *)channel.data, (const char *)msg.data};
            size_t lens[] = {7, channel.len, msg.len};
            rc = redis_link_command_argv(b->cmd, 3, argv, lens, 0, publish_reply_cb, req);
        } else if (rc == SIOC_OK) {
            rc = channel.err;
        }
        if (rc == SIOC_OK)
            t->published = true;
        else
            target_fail_cstr(req, t, rc == SIOC_EINVAL ? "not a valid call" : "redis unavailable");
    }
    buf_deinit(&channel);
    buf_deinit(&msg);
}

/* Copies the script's {sid, node, ...} into the request's targets. */
static bool take_targets(struct call_request *req, const redisReply *reply)
{
    size_t n = (reply->elements - 1) / 2;
    req->targets = calloc(n > 0 ? n : 1, sizeof *req->targets);
    if (req->targets == NULL)
        return false;
    for (size_t i = 0; i < n; i++) {
        const redisReply *sid = reply->element[1 + 2 * i], *node = reply->element[2 + 2 * i];
        if (sid->type != REDIS_REPLY_STRING || node->type != REDIS_REPLY_STRING)
            continue;
        struct target *t = &req->targets[req->count++];
        t->sid_off = req->names.len;
        t->sid_len = (uint32_t)sid->len;
        buf_append(&req->names, sid->str, sid->len);
        t->node_off = req->names.len;
        t->node_len = (uint32_t)node->len;
        buf_append(&req->names, node->str, node->len);
    }
    req->waiting = req->count;
    return req->names.err == SIOC_OK;
}

static void targets_reply_cb(void *ctx, const redisReply *reply, enum redis_link_result result)
{
    struct call_request *req = ctx;
    struct bk_calls *calls = req->calls;
    if (result != REDIS_LINK_REPLY) {
        respond_error(req, 503, "redis connection lost; try again");
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        log_write(calls->b->log, LOG_LEVEL_ERROR, "api.redis", "%s", reply->str ? reply->str : "?");
        respond_error(req, 500, "redis error");
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
        reply->element[0]->type != REDIS_REPLY_STRING) {
        respond_error(req, 500, "unexpected redis reply");
        return;
    }
    if (strcmp(reply->element[0]->str, "toomany") == 0) {
        respond_error(req, 413,
                      "more than 10000 sockets selected for an ack emit: narrow the selection");
        return;
    }
    if ((reply->elements - 1) / 2 > BK_CALLS_MAX_PENDING_SOCKETS - calls->pending_sockets) {
        respond_error(req, 429,
                      "too many sockets awaited by ack emits in progress, try again later");
        return;
    }
    if (!calls->listening) {
        respond_error(req, 503, "redis unavailable");
        return;
    }
    if (!take_targets(req, reply)) {
        respond_error(req, 500, "out of memory");
        return;
    }
    calls->pending_sockets += req->count;
    req->counted = true;
    if (req->count == 0) {
        finish(req);
        return;
    }
    uint64_t at = clock_mono_ms() + req->timeout_ms;
    if (timer_heap_push(&calls->deadlines, &req->deadline, at) != SIOC_OK) {
        respond_error(req, 500, "out of memory");
        return;
    }
    deadline_timer_arm_at(&calls->timer, at, clock_mono_ms());
    publish_calls(req);
    if (req->waiting == 0)
        finish(req); /* nothing could be sent */
}

/* ---- the request ---- */

/* A refusal before anything is held. */
static void respond_error_now(bk_calls_done_cb *done, void *ctx, struct http_conn *conn, int status,
                              const char *msg)
{
    done(ctx, conn, status, msg, NULL);
}

static struct call_request *request_new(struct bk_calls *calls, struct http_conn *conn,
                                        const struct bk_calls_request *rq, bk_calls_done_cb *done,
                                        void *ctx)
{
    struct call_request *req = calloc(1, sizeof *req);
    if (req == NULL)
        return NULL;
    req->calls = calls;
    req->conn = conn;
    req->done = done;
    req->done_ctx = ctx;
    req->id = ++calls->next_id;
    req->timeout_ms = rq->timeout_ms;
    buf_init(&req->nsp, 0);
    buf_init(&req->emit, 0);
    buf_init(&req->names, 0);
    buf_init(&req->texts, 0);
    buf_append(&req->nsp, rq->nsp.p, rq->nsp.len);
    buf_append(&req->emit, rq->emit.p, rq->emit.len);
    req->link.hash = hashtab_hash(&calls->by_id, &req->id, sizeof req->id);
    hashtab_insert(&calls->by_id, &req->link);
    list_push_head(&calls->held, &req->node);
    calls->held_count++;
    return req;
}

void bk_calls_start(struct bk_calls *calls, struct http_conn *conn,
                    const struct bk_calls_request *rq, bk_calls_done_cb *done, void *ctx)
{
    struct broker *b = calls->b;
    (*calls->requests)++;
    if (calls->held_count >= BK_CALLS_MAX_PENDING) {
        respond_error_now(done, ctx, conn, 429,
                          "too many ack emits in progress (at most 1000), try again later");
        return;
    }
    /* not queued while Redis is away (as the queries): the caller learns it at once */
    if (!redis_link_connected(b->cmd) || !calls->listening) {
        respond_error_now(done, ctx, conn, 503, "redis unavailable");
        return;
    }
    struct call_request *req = request_new(calls, conn, rq, done, ctx);
    if (req == NULL || req->nsp.err != SIOC_OK || req->emit.err != SIOC_OK) {
        if (req != NULL)
            request_free(req);
        respond_error_now(done, ctx, conn, 500, "out of memory");
        return;
    }
    char limit[24];
    snprintf(limit, sizeof limit, "%d", BK_CALLS_MAX_SOCKETS);
    /* KEYS[1] = P: a key of the mirror's slot, so a cluster runs it on that master */
    const char *argv[] = {"EVAL",
                          bk_script_ack_targets(),
                          "1",
                          b->prefix,
                          b->prefix,
                          (const char *)rq->nsp.p,
                          limit,
                          (const char *)rq->targets.p,
                          (const char *)rq->except.p};
    size_t lens[] = {4,
                     strlen(argv[1]),
                     1,
                     strlen(b->prefix),
                     strlen(b->prefix),
                     rq->nsp.len,
                     strlen(limit),
                     rq->targets.len,
                     rq->except.len};
    if (redis_link_command_argv(b->cmd, 9, argv, lens, 0, targets_reply_cb, req) != SIOC_OK) {
        request_free(req);
        respond_error_now(done, ctx, conn, 503, "redis unavailable");
        return;
    }
    struct http_conn_owner owner = {.on_close = conn_closed_cb, .ctx = req};
    http_conn_set_owner(conn, &owner);
}

/* ---- answers ---- */

static struct call_request *request_find(const struct bk_calls *calls, uint64_t id)
{
    uint64_t hash = hashtab_hash(&calls->by_id, &id, sizeof id);
    for (struct hashtab_link *l = hashtab_chain(&calls->by_id, hash); l != NULL; l = l->next) {
        struct call_request *req = (struct call_request *)l; /* the link is its first member */
        if (l->hash == hash && req->id == id)
            return req;
    }
    return NULL;
}

/* "<hex>.<decimal>" -> request id and socket index. */
static bool parse_call_id(struct slice s, uint64_t *id, size_t *index)
{
    char text[ENVELOPE_MAX_CALL_ID + 1];
    char *dot, *end;
    if (s.len == 0 || s.len > ENVELOPE_MAX_CALL_ID)
        return false;
    memcpy(text, s.p, s.len);
    text[s.len] = '\0';
    dot = strchr(text, '.');
    if (dot == NULL || dot == text || dot[1] == '\0')
        return false;
    *dot = '\0';
    *id = strtoull(text, &end, 16);
    if (*end != '\0')
        return false;
    unsigned long long i = strtoull(dot + 1, &end, 10);
    *index = (size_t)i;
    return *end == '\0';
}

/* Stores the client's ack args (MessagePack array) as JSON. */
static void target_answer(struct call_request *req, struct target *t, struct slice args)
{
    struct mp_reader rd;
    size_t mark = req->texts.len;
    mp_reader_init(&rd, args.p, args.len);
    int rc = json_from_msgpack(&rd, NULL, &req->texts);
    if (rc == SIOC_OK && req->texts.len > BK_CALLS_MAX_ANSWER_BYTES) {
        buf_truncate(&req->texts, mark);
        target_fail_cstr(req, t, "ack too large (the answer holds at most 16 MiB of acks)");
        return;
    }
    if (rc != SIOC_OK) {
        target_fail_cstr(req, t, "ack not convertible to JSON");
        return;
    }
    t->text_off = mark;
    t->text_len = (uint32_t)(req->texts.len - mark);
    t->state = TARGET_ANSWERED;
    req->waiting--;
}

void bk_calls_on_message(struct bk_calls *calls, struct slice payload)
{
    struct envelope_call_result res;
    uint64_t id;
    size_t index;
    long rc = envelope_call_result_decode(payload.p, payload.len, &res);
    if (rc < 0 || !parse_call_id(res.id, &id, &index)) {
        log_write(calls->b->log, LOG_LEVEL_WARN, "api.ack_malformed", "%zu bytes skipped: %s",
                  payload.len, rc < 0 ? sioc_strerror((int)rc) : "not a call id of this broker");
        return;
    }
    struct call_request *req = request_find(calls, id);
    struct target *t = req != NULL && index < req->count ? &req->targets[index] : NULL;
    if (t == NULL || t->state != TARGET_WAITING || t->sid_len != res.sid.len ||
        memcmp(req->names.data + t->sid_off, res.sid.p, res.sid.len) != 0) {
        /* an answer after the request ended (timeout, client gone), or a duplicate */
        log_write(calls->b->log, LOG_LEVEL_DEBUG, "api.ack_late", "call %.*s", (int)res.id.len,
                  (const char *)res.id.p);
        return;
    }
    if (res.has_args)
        target_answer(req, t, res.args);
    else
        target_fail(req, t, res.error.p, res.error.len);
    if (req->waiting == 0)
        finish(req);
}

void bk_calls_on_state(struct bk_calls *calls, bool connected)
{
    calls->listening = connected;
    if (connected)
        return;
    /* answers published while unsubscribed are lost: say so now rather than at the timeout */
    struct list_node *pos, *tmp;
    list_for_each_safe(pos, tmp, &calls->held)
    {
        struct call_request *req = container_of(pos, struct call_request, node);
        if (req->targets == NULL)
            continue; /* still selecting: refused when the script answers */
        for (size_t i = 0; i < req->count; i++)
            target_fail_cstr(req, &req->targets[i], "redis connection lost");
        finish(req);
    }
}

/* ---- lifetime ---- */

static void probe_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct bk_calls *calls = arg;
    /* redis_link.h: a subscriber link with a liveness timeout needs traffic to flow */
    if (redis_link_connected(calls->b->cmd)) {
        const char *argv[] = {"PUBLISH", calls->probe, ""};
        redis_link_command_argv(calls->b->cmd, 3, argv, NULL, 0, NULL, NULL);
    }
}

static char *format_channel(const char *prefix, uint64_t bits, const char *suffix)
{
    size_t n = strlen(prefix) + strlen(suffix) + 48;
    char *s = malloc(n);
    if (s != NULL)
        snprintf(s, n, "%s:calls:broker:%016llx%s", prefix, (unsigned long long)bits, suffix);
    return s;
}

struct bk_calls *bk_calls_new(struct broker *b, uint64_t instance_bits)
{
    struct bk_calls *calls = calloc(1, sizeof *calls);
    if (calls == NULL)
        return NULL;
    list_init(&calls->held);
    calls->b = b;
    calls->channel = format_channel(b->prefix, instance_bits, "");
    calls->probe = format_channel(b->prefix, instance_bits, ":probe");
    calls->probe_timer = event_new(b->base, -1, EV_PERSIST, probe_cb, calls);
    timer_heap_init(&calls->deadlines);
    calls->timer.ev = evtimer_new(b->base, timeout_cb, calls);
    calls->requests = metrics_counter(b->metrics, "sioc_broker_ack_requests_total",
                                      "POST /v1/emit requests with an ack", NULL);
    const char *help = "sockets asked for an ack by the API, by outcome";
    calls->answered =
        metrics_counter(b->metrics, "sioc_broker_acks_total", help, "result=\"answered\"");
    calls->timed_out =
        metrics_counter(b->metrics, "sioc_broker_acks_total", help, "result=\"timeout\"");
    calls->failed = metrics_counter(b->metrics, "sioc_broker_acks_total", help, "result=\"error\"");
    struct timeval every = {BK_CALLS_LIVENESS_MS / 3000, 0};
    if (calls->channel == NULL || calls->probe == NULL || calls->probe_timer == NULL ||
        calls->timer.ev == NULL || calls->requests == NULL || calls->answered == NULL ||
        calls->timed_out == NULL || calls->failed == NULL ||
        hashtab_init(&calls->by_id, 16, instance_bits) != SIOC_OK) {
        if (calls->probe_timer != NULL)
            event_free(calls->probe_timer);
        if (calls->timer.ev != NULL)
            event_free(calls->timer.ev);
        free(calls->channel);
        free(calls->probe);
        free(calls);
        return NULL;
    }
    event_add(calls->probe_timer, &every);
    return calls;
}

void bk_calls_free(struct bk_calls *calls)
{
    if (calls == NULL)
        return;
    struct list_node *pos, *tmp;
    list_for_each_safe(pos, tmp, &calls->held)
    {
        struct call_request *req = container_of(pos, struct call_request, node);
        http_conn_clear_owner(req->conn);
        request_free(req);
    }
    hashtab_deinit(&calls->by_id);
    timer_heap_deinit(&calls->deadlines);
    event_free(calls->timer.ev);
    event_free(calls->probe_timer);
    free(calls->channel);
    free(calls->probe);
    free(calls);
}

const char *bk_calls_channel(const struct bk_calls *calls)
{
    return calls->channel;
}

const char *bk_calls_probe_channel(const struct bk_calls *calls)
{
    return calls->probe;
}
