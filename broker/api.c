/* api.c: routing, auth and answers of the broker's /v1/ API (DESIGN.md §2 sioc-broker). Pushes
 * are published as @socket.io/redis-emitter 5 does (PROTOCOL.md 3.9: broadcasts to
 * A#<nsp>#[<room>#], join/leave/disconnect as JSON requests on A-request#<nsp>#), so Node
 * servers in the cluster deliver them too. Queries run one read-only script each; the request is
 * held (the connection's owner) until the reply, and a connection closing meanwhile cancels it. */
#include "broker/api.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/api_input.h"
#include "broker/api_rec.h"
#include "broker/broker.h"
#include "broker/calls.h"
#include "broker/scripts.h"
#include "common/adapter.h"
#include "common/adapter_rec.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/cluster_msg.h"
#include "common/envelope.h"
#include "common/error.h"
#include "common/json.h"
#include "common/list.h"
#include "common/metrics.h"
#include "common/mp.h"
#include "common/net/http_server.h"
#include "common/net/log.h"
#include "common/net/redis_link.h"

#define API_MAX_ROOMS_LISTED "10000" /* GET /v1/rooms lists at most this many */

enum query_kind { Q_PUBLISH, Q_USER, Q_ROOMS, Q_ROOM, Q_NODES };

/* A request held until Redis answers. */
struct api_query {
    struct bk_api *api;
    struct http_conn *conn;
    enum query_kind kind;
    char *a, *b; /* uid | nsp, room (owned copies) */
    size_t a_len, b_len;
    struct list_node node; /* in api->held */
};

struct bk_api {
    struct broker *b;
    struct list_node held; /* the api_queries waiting for Redis, newest first */
    struct bk_rec *rec;    /* the gateways' recovery-window (api_rec.h) */
    uint64_t *requests, *client_errors, *server_errors, *pushes, *recoverable;
};

static const struct http_field json_type[] = {{"Content-Type", "application/json"}};

static void respond_json(struct http_conn *conn, int status, const void *body, size_t len)
{
    http_conn_respond(conn, status, json_type, 1, body, len, false);
}

static void respond_error(struct bk_api *api, struct http_conn *conn, int status, const char *msg)
{
    struct buf out;
    buf_init(&out, 0);
    buf_append_cstr(&out, "{\"error\":");
    json_write_string(&out, (const uint8_t *)msg, strlen(msg));
    buf_append_byte(&out, '}');
    if (status >= 500)
        (*api->server_errors)++;
    else
        (*api->client_errors)++;
    /* STYLE.md: every error a peer can cause is answered and logged */
    log_write(api->b->log, status >= 500 ? LOG_LEVEL_WARN : LOG_LEVEL_INFO, "api.refused", "%d %s",
              status, msg);
    if (status == 401) {
        static const struct http_field fields[] = {{"Content-Type", "application/json"},
                                                   {"WWW-Authenticate", "Bearer"}};
        http_conn_respond(conn, status, fields, 2, out.data, out.len, false);
    } else {
        respond_json(conn, status, out.data, out.len);
    }
    buf_deinit(&out);
}

static void respond_buf(struct bk_api *api, struct http_conn *conn, struct buf *out)
{
    if (out->err != SIOC_OK)
        respond_error(api, conn, 500, "out of memory");
    else
        respond_json(conn, 200, out->data, out->len);
}

/* ---- auth ---- */

/* Constant time in the length of the expected key. */
static bool key_equal(const uint8_t *given, size_t given_len, const char *expected)
{
    size_t n = strlen(expected);
    unsigned diff = given_len != n;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned)(expected[i] ^ (i < given_len ? given[i] : 0));
    return diff == 0;
}

static bool authorized(const struct bk_api *api, const struct http_server_request *req)
{
    if (api->b->api_key == NULL)
        return true;
    const struct http_header *h = http_header_find(req->head, "Authorization", NULL);
    if (h == NULL || h->value.len < 7 || strncasecmp((const char *)h->value.p, "Bearer ", 7) != 0)
        return false;
    return key_equal(h->value.p + 7, h->value.len - 7, api->b->api_key);
}

/* ---- held requests ---- */

static void query_free(struct api_query *q)
{
    list_remove(&q->node);
    free(q->a);
    free(q->b);
    free(q);
}

static void query_conn_closed(void *ctx, struct http_conn *conn, const char *reason)
{
    (void)conn;
    (void)reason;
    struct api_query *q = ctx;
    redis_link_cancel(q->api->b->cmd, q);
    query_free(q);
}

static void render_rooms_json(struct buf *out, const redisReply *r)
{
    struct mp_reader rd;
    mp_reader_init(&rd, (const uint8_t *)r->str, r->type == REDIS_REPLY_STRING ? r->len : 0);
    size_t mark = out->len;
    if (r->type != REDIS_REPLY_STRING || json_from_msgpack(&rd, NULL, out) != SIOC_OK) {
        buf_truncate(out, mark);
        buf_append_cstr(out, "[]");
    }
}

static bool is_str(const redisReply *r)
{
    return r->type == REDIS_REPLY_STRING;
}

static void json_str(struct buf *out, const char *key, const redisReply *r)
{
    buf_append_byte(out, '"');
    buf_append_cstr(out, key);
    buf_append_cstr(out, "\":");
    json_write_string(out, (const uint8_t *)r->str, r->len);
}

static void render_user(struct api_query *q, const redisReply *reply, struct buf *out)
{
    size_t n = reply->elements / 4;
    buf_append_cstr(out, "{\"uid\":");
    json_write_string(out, (const uint8_t *)q->a, q->a_len);
    buf_append_cstr(out,
                    n > 0 ? ",\"online\":true,\"sockets\":[" : ",\"online\":false,\"sockets\":[");
    for (size_t i = 0; i < n; i++) {
        redisReply *const *e = reply->element + 4 * i;
        if (!is_str(e[0]) || !is_str(e[1]) || !is_str(e[2]))
            continue;
        buf_append_cstr(out, i > 0 ? ",{" : "{");
        json_str(out, "sid", e[0]);
        buf_append_byte(out, ',');
        json_str(out, "nsp", e[1]);
        buf_append_byte(out, ',');
        json_str(out, "node", e[2]);
        buf_append_cstr(out, ",\"rooms\":");
        render_rooms_json(out, e[3]);
        buf_append_byte(out, '}');
    }
    buf_append_cstr(out, "]}");
}

static void render_rooms(const redisReply *reply, struct buf *out)
{
    buf_append_byte(out, '[');
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        const redisReply *room = reply->element[i], *count = reply->element[i + 1];
        if (!is_str(room) || count->type != REDIS_REPLY_INTEGER)
            continue;
        buf_append_cstr(out, i > 0 ? ",{" : "{");
        json_str(out, "room", room);
        buf_append_cstr(out, ",\"count\":");
        buf_append_i64(out, count->integer);
        buf_append_byte(out, '}');
    }
    buf_append_byte(out, ']');
}

static void render_room(struct api_query *q, const redisReply *reply, struct buf *out)
{
    size_t n = reply->elements / 3;
    buf_append_cstr(out, "{\"room\":");
    json_write_string(out, (const uint8_t *)q->b, q->b_len);
    buf_append_cstr(out, ",\"nsp\":");
    json_write_string(out, (const uint8_t *)q->a, q->a_len);
    buf_append_cstr(out, ",\"count\":");
    buf_append_u64(out, n);
    buf_append_cstr(out, ",\"members\":[");
    for (size_t i = 0; i < n; i++) {
        redisReply *const *e = reply->element + 3 * i;
        if (!is_str(e[0]) || !is_str(e[1]) || !is_str(e[2]))
            continue;
        buf_append_cstr(out, i > 0 ? ",{" : "{");
        json_str(out, "sid", e[0]);
        buf_append_byte(out, ',');
        json_str(out, "node", e[1]);
        buf_append_byte(out, ',');
        json_str(out, "uid", e[2]);
        buf_append_byte(out, '}');
    }
    buf_append_cstr(out, "]}");
}

static void render_nodes(struct bk_api *api, const redisReply *reply, struct buf *out)
{
    uint64_t now = clock_wall_ms();
    buf_append_byte(out, '[');
    for (size_t i = 0; i + 5 < reply->elements; i += 6) {
        redisReply *const *e = reply->element + i;
        if (!is_str(e[0]) || !is_str(e[1]) || !is_str(e[2]) || e[3]->type != REDIS_REPLY_INTEGER ||
            e[4]->type != REDIS_REPLY_INTEGER || !is_str(e[5]))
            continue;
        struct envelope_node_info info;
        bool has_info = e[1]->len > 0 && envelope_node_info_decode((const uint8_t *)e[1]->str,
                                                                   e[1]->len, &info) >= 0;
        bool alive = e[2]->len > 0;
        buf_append_cstr(out, i > 0 ? ",{" : "{");
        json_str(out, "node", e[0]);
        buf_append_cstr(out, alive ? ",\"alive\":true" : ",\"alive\":false");
        buf_append_cstr(out, ",\"epoch\":");
        if (has_info)
            json_write_string(out, info.epoch.p, info.epoch.len);
        else if (alive)
            json_write_string(out, (const uint8_t *)e[2]->str, e[2]->len);
        else if (e[5]->len > 0)
            json_write_string(out, (const uint8_t *)e[5]->str, e[5]->len);
        else
            buf_append_cstr(out, "null");
        if (has_info) {
            buf_append_cstr(out, ",\"address\":");
            json_write_string(out, info.address.p, info.address.len);
            buf_append_cstr(out, ",\"started\":");
            buf_append_u64(out, info.started);
            buf_append_cstr(out, ",\"sockets\":");
            buf_append_u64(out, info.sockets);
        } else {
            buf_append_cstr(out, ",\"address\":null,\"started\":null,\"sockets\":null");
        }
        buf_append_cstr(out, ",\"mirror_sockets\":");
        buf_append_i64(out, e[4]->integer);
        /* The heartbeat is set with PX node-timeout: its age is node-timeout minus the TTL left. */
        long long pttl = e[3]->integer;
        buf_append_cstr(out, ",\"last_heartbeat\":");
        if (alive && pttl > 0) {
            uint64_t age = pttl < (long long)api->b->node_timeout_ms
                               ? api->b->node_timeout_ms - (uint64_t)pttl
                               : 0;
            buf_append_u64(out, now - age);
            buf_append_cstr(out, ",\"heartbeat_ttl_ms\":");
            buf_append_i64(out, pttl);
        } else {
            buf_append_cstr(out, "null,\"heartbeat_ttl_ms\":null");
        }
        buf_append_byte(out, '}');
    }
    buf_append_byte(out, ']');
}

static void query_reply_cb(void *ctx, const redisReply *reply, enum redis_link_result result)
{
    struct api_query *q = ctx;
    struct bk_api *api = q->api;
    struct http_conn *conn = q->conn;
    http_conn_clear_owner(conn);
    if (result != REDIS_LINK_REPLY) {
        respond_error(api, conn, 503, "redis connection lost; try again");
    } else if (reply->type == REDIS_REPLY_ERROR) {
        log_write(api->b->log, LOG_LEVEL_ERROR, "api.redis", "%s", reply->str ? reply->str : "?");
        respond_error(api, conn, 500, "redis error");
    } else if (q->kind == Q_PUBLISH) {
        struct buf out;
        buf_init(&out, 0);
        buf_append_cstr(&out, "{\"published\":");
        buf_append_i64(&out, reply->type == REDIS_REPLY_INTEGER ? reply->integer : 0);
        buf_append_byte(&out, '}');
        respond_buf(api, conn, &out);
        buf_deinit(&out);
    } else if (reply->type != REDIS_REPLY_ARRAY) {
        respond_error(api, conn, 500, "unexpected redis reply");
    } else {
        struct buf out;
        buf_init(&out, 0);
        if (q->kind == Q_USER)
            render_user(q, reply, &out);
        else if (q->kind == Q_ROOMS)
            render_rooms(reply, &out);
        else if (q->kind == Q_ROOM)
            render_room(q, reply, &out);
        else
            render_nodes(api, reply, &out);
        respond_buf(api, conn, &out);
        buf_deinit(&out);
    }
    query_free(q);
}

/* Sends argv and holds the request until the reply. Takes ownership of a and b (may be NULL). */
static void hold(struct bk_api *api, struct http_conn *conn, enum query_kind kind, char *a,
                 size_t a_len, char *b, size_t b_len, int argc, const char *const *argv,
                 const size_t *lens)
{
    struct api_query *q = calloc(1, sizeof *q);
    if (q == NULL) {
        free(a);
        free(b);
        respond_error(api, conn, 500, "out of memory");
        return;
    }
    *q = (struct api_query){
        .api = api, .conn = conn, .kind = kind, .a = a, .b = b, .a_len = a_len, .b_len = b_len};
    list_push_head(&api->held, &q->node);
    /* queries are not queued while Redis is away: the caller learns it at once */
    if (!redis_link_connected(api->b->cmd) ||
        redis_link_command_argv(api->b->cmd, argc, argv, lens, 0, query_reply_cb, q) != SIOC_OK) {
        query_free(q);
        respond_error(api, conn, 503, "redis unavailable");
        return;
    }
    struct http_conn_owner owner = {.on_close = query_conn_closed, .ctx = q};
    http_conn_set_owner(conn, &owner);
}

/* ---- pushes ---- */

static void ack_done(void *ctx, struct http_conn *conn, int status, const char *error,
                     const struct buf *json)
{
    if (error != NULL)
        respond_error(ctx, conn, status, error);
    else
        respond_json(conn, status, json->data, json->len);
}

/* An emit with "ack": calls.c asks each selected socket and answers (calls.h). */
static void start_ack_emit(struct bk_api *api, struct http_conn *conn, const struct api_body *body,
                           const struct api_selector *sel, const struct buf *emit)
{
    struct buf targets, except;
    buf_init(&targets, 0);
    buf_init(&except, 0);
    mp_write_array(&targets, (uint32_t)sel->rooms.count);
    for (size_t i = 0; i < sel->rooms.count; i++)
        mp_write_str(&targets, sel->rooms.names[i].p, sel->rooms.names[i].len);
    mp_write_array(&except, (uint32_t)sel->except.count);
    for (size_t i = 0; i < sel->except.count; i++)
        mp_write_str(&except, sel->except.names[i].p, sel->except.names[i].len);
    if (targets.err != SIOC_OK || except.err != SIOC_OK || emit->err != SIOC_OK) {
        respond_error(api, conn, 500, "out of memory");
    } else {
        (*api->pushes)++;
        struct bk_calls_request rq = {
            .nsp = body->nsp,
            .emit = {emit->data, emit->len},
            .targets = {targets.data, targets.len},
            .except = {except.data, except.len},
            .timeout_ms = body->ack_timeout_ms,
        };
        bk_calls_start(api->b->calls, conn, &rq, ack_done, api);
    }
    buf_deinit(&targets);
    buf_deinit(&except);
}

/* PUBLISH (classic) or SPUBLISH (adapter sharded); both answer the receivers' count. */
static void publish(struct bk_api *api, struct http_conn *conn, const struct buf *channel,
                    const struct buf *msg)
{
    if (channel->err != SIOC_OK || msg->err != SIOC_OK) {
        respond_error(api, conn, 500, "cannot encode the message");
        return;
    }
    (*api->pushes)++;
    const char *verb = api->b->sharded ? "SPUBLISH" : "PUBLISH";
    const char *argv[] = {verb, (const char *)channel->data, (const char *)msg->data};
    size_t lens[] = {strlen(verb), channel->len, msg->len};
    hold(api, conn, Q_PUBLISH, NULL, 0, NULL, 0, 3, argv, lens);
}

/* Recovery on (docs/contracts.md "Connection state recovery, cluster-wide"): the broadcast as the
 * Python SDK publishes it, one EVAL that stores it in P:rec:<nsp> and publishes it with the
 * stream id spliced in as its offset (adapter_rec.h). */
static void publish_recoverable(struct bk_api *api, struct http_conn *conn,
                                const struct adapter_broadcast *bc, const struct buf *channel,
                                unsigned window)
{
    struct buf msg, stream;
    char maxlen[24], pexpire[24];
    size_t split = 0;
    buf_init(&msg, 0);
    buf_init(&stream, 0);
    buf_append_cstr(&stream, api->b->prefix);
    buf_append_cstr(&stream, ":rec:");
    buf_append(&stream, bc->packet.nsp.p, bc->packet.nsp.len);
    if (channel->err != SIOC_OK || stream.err != SIOC_OK ||
        adapter_rec_encode(&msg, bc, &split) != SIOC_OK) {
        respond_error(api, conn, 500, "cannot encode the message");
    } else {
        snprintf(maxlen, sizeof maxlen, "%u", (unsigned)ADAPTER_REC_STREAM_MAXLEN);
        snprintf(pexpire, sizeof pexpire, "%u", window + ADAPTER_REC_GRACE_MS);
        const char *argv[] = {"EVAL",
                              adapter_rec_script(),
                              "1",
                              (const char *)stream.data,
                              (const char *)channel->data,
                              (const char *)msg.data,
                              (const char *)msg.data + split,
                              maxlen,
                              pexpire};
        size_t lens[] = {4,
                         strlen(argv[1]),
                         1,
                         stream.len,
                         channel->len,
                         split,
                         msg.len - split,
                         strlen(maxlen),
                         strlen(pexpire)};
        (*api->pushes)++;
        (*api->recoverable)++;
        hold(api, conn, Q_PUBLISH, NULL, 0, NULL, 0, 9, argv, lens);
    }
    buf_deinit(&msg);
    buf_deinit(&stream);
}

/* adapter sharded: the push as a createShardedAdapter message from uid "emitter"
 * (docs/contracts.md "Sharded adapter"): BROADCAST on its room's channel or the namespace's,
 * SOCKETS_JOIN / SOCKETS_LEAVE / DISCONNECT_SOCKETS on the namespace's. `data` is the event's
 * [event, ...args] for an emit. */
static void encode_sharded(const struct broker *b, enum api_body_kind kind,
                           const struct api_body *body, const struct api_selector *sel,
                           struct slice data, struct buf *channel, struct buf *msg)
{
    struct cluster_msg *m = calloc(1, sizeof *m);
    struct buf scratch;
    buf_init(&scratch, 0);
    if (m == NULL) {
        msg->err = SIOC_ENOMEM;
        return;
    }
    m->uid = (struct slice){(const uint8_t *)"emitter", 7};
    m->nsp = body->nsp;
    m->has_opts = true;
    m->opts.rooms = sel->rooms;
    m->opts.except = sel->except;
    m->opts.has_flags = true;
    if (kind == API_BODY_EMIT) {
        m->type = CLUSTER_MSG_BROADCAST;
        m->event = (struct adapter_packet){.type = 2, .data = data, .nsp = body->nsp};
        m->opts.flags.is_volatile = body->is_volatile;
    } else if (kind == API_BODY_DISCONNECT) {
        m->type = CLUSTER_MSG_DISCONNECT_SOCKETS;
        m->close = body->close;
    } else {
        m->type = kind == API_BODY_JOIN ? CLUSTER_MSG_SOCKETS_JOIN : CLUSTER_MSG_SOCKETS_LEAVE;
        m->has_rooms = api_list_to_rooms(&body->to, &m->rooms);
    }
    struct slice key = {(const uint8_t *)b->adapter_key, strlen(b->adapter_key)};
    cluster_msg_publish_channel(channel, key, (enum cluster_sub_mode)b->sub_mode, m);
    if (cluster_msg_encode(msg, &scratch, m) != SIOC_OK && msg->err == SIOC_OK)
        msg->err = SIOC_EINVAL;
    buf_deinit(&scratch);
    free(m);
}

static void handle_push(struct bk_api *api, struct http_conn *conn,
                        const struct http_server_request *req, enum api_body_kind kind)
{
    struct broker *b = api->b;
    char err[256];
    struct api_body body;
    struct api_selector *sel = calloc(1, sizeof *sel);
    struct adapter_broadcast *bc = calloc(1, sizeof *bc);
    struct adapter_request *rq = calloc(1, sizeof *rq);
    struct buf data, channel, msg;
    buf_init(&data, 0);
    buf_init(&channel, 0);
    buf_init(&msg, 0);
    bool ok = api_body_parse(&body, kind, req->body.p, req->body.len, err, sizeof err);
    if (sel == NULL || bc == NULL || rq == NULL) {
        respond_error(api, conn, 500, "out of memory");
        goto done_body;
    }
    if (!ok || !api_selector_build(sel, &body, b->user_room, err, sizeof err)) {
        respond_error(api, conn, 400, err);
        goto done;
    }
    struct slice key = {(const uint8_t *)b->adapter_key, strlen(b->adapter_key)};
    if (kind == API_BODY_EMIT) {
        /* PROTOCOL.md 3.9: [ "emitter", {type:2, data:[event, ...args], nsp}, {rooms, flags,
         * except} ] */
        mp_write_array(&data, 1 + body.args_count);
        mp_write_str(&data, body.event.p, body.event.len);
        buf_append(&data, body.args_items.p, body.args_items.len);
        if (body.has_ack) {
            start_ack_emit(api, conn, &body, sel, &data);
            goto done;
        }
    }
    if (b->sharded) {
        encode_sharded(b, kind, &body, sel, (struct slice){data.data, data.len}, &channel, &msg);
    } else if (kind == API_BODY_EMIT) {
        bc->packet =
            (struct adapter_packet){.type = 2, .data = {data.data, data.len}, .nsp = body.nsp};
        bc->opts.rooms = sel->rooms;
        bc->opts.except = sel->except;
        bc->opts.has_flags = true;
        bc->opts.flags.is_volatile = body.is_volatile;
        adapter_broadcast_channel(&channel, key, body.nsp, &sel->rooms);
        /* as Node and the SDK: volatile emits (and those with an ack, above) get no offset */
        unsigned window = body.is_volatile ? 0 : bk_rec_window(api->rec);
        if (window > 0) {
            publish_recoverable(api, conn, bc, &channel, window);
            goto done;
        }
        adapter_broadcast_encode_emitter(&msg, bc);
    } else {
        /* as the emitter's socketsJoin/socketsLeave/disconnectSockets: {type, opts, rooms|close} */
        rq->type = kind == API_BODY_JOIN    ? ADAPTER_REMOTE_JOIN
                   : kind == API_BODY_LEAVE ? ADAPTER_REMOTE_LEAVE
                                            : ADAPTER_REMOTE_DISCONNECT;
        rq->has_opts = true;
        rq->opts.rooms = sel->rooms;
        rq->opts.except = sel->except;
        if (kind == API_BODY_DISCONNECT) {
            rq->has_close = true;
            rq->close = body.close;
        } else {
            rq->has_rooms = api_list_to_rooms(&body.to, &rq->rooms);
        }
        adapter_request_channel(&channel, key, body.nsp);
        if (adapter_request_encode(&msg, rq) != SIOC_OK && msg.err == SIOC_OK)
            msg.err = SIOC_EINVAL;
    }
    buf_append_byte(&channel, 0); /* PUBLISH takes lengths; the NUL only helps logging */
    channel.len--;
    publish(api, conn, &channel, &msg);
done:
    api_selector_deinit(sel);
done_body:
    api_body_deinit(&body);
    buf_deinit(&data);
    buf_deinit(&channel);
    buf_deinit(&msg);
    free(sel);
    free(bc);
    free(rq);
}

/* ---- queries ---- */

static bool starts_with(struct slice s, const char *prefix)
{
    size_t n = strlen(prefix);
    return s.len >= n && memcmp(s.p, prefix, n) == 0;
}

static bool path_is(struct slice s, const char *p)
{
    return s.len == strlen(p) && memcmp(s.p, p, s.len) == 0;
}

/* The nsp query parameter, decoded ("/" when absent). NULL after answering 400. */
static char *query_nsp(struct bk_api *api, struct http_conn *conn,
                       const struct http_server_request *req, size_t *len)
{
    struct slice v;
    char *nsp = api_query_get(req->query, "nsp", &v)
                    ? api_percent_decode(v.p, v.len, true, len)
                    : api_percent_decode((const uint8_t *)"/", 1, false, len);
    if (nsp == NULL || nsp[0] != '/') {
        free(nsp);
        respond_error(api, conn, 400, "nsp must be a namespace starting with /");
        return NULL;
    }
    return nsp;
}

static void handle_get(struct bk_api *api, struct http_conn *conn,
                       const struct http_server_request *req)
{
    struct broker *b = api->b;
    struct slice path = req->path;
    if (path_is(path, "/v1/nodes")) {
        /* KEYS[1] = P: a key of the mirror's slot, so a cluster runs it on that master */
        const char *argv[] = {"EVAL", bk_script_nodes(), "1", b->prefix, b->prefix};
        hold(api, conn, Q_NODES, NULL, 0, NULL, 0, 5, argv, NULL);
        return;
    }
    if (path_is(path, "/v1/rooms")) {
        size_t nsp_len;
        char *nsp = query_nsp(api, conn, req, &nsp_len);
        if (nsp == NULL)
            return;
        const char *argv[] = {"EVAL", bk_script_rooms(),   "1", b->prefix, b->prefix,
                              nsp,    API_MAX_ROOMS_LISTED};
        size_t lens[] = {4,
                         strlen(argv[1]),
                         1,
                         strlen(b->prefix),
                         strlen(b->prefix),
                         nsp_len,
                         strlen(API_MAX_ROOMS_LISTED)};
        hold(api, conn, Q_ROOMS, nsp, nsp_len, NULL, 0, 7, argv, lens);
        return;
    }
    bool user = starts_with(path, "/v1/users/");
    if (user || starts_with(path, "/v1/rooms/")) {
        size_t skip = strlen("/v1/users/"), name_len;
        const uint8_t *raw = path.p + skip;
        size_t raw_len = path.len - skip;
        char *name =
            memchr(raw, '/', raw_len) ? NULL : api_percent_decode(raw, raw_len, false, &name_len);
        if (name == NULL || name_len == 0) {
            free(name);
            respond_error(api, conn, 400,
                          user ? "bad user id in the path" : "bad room name in the path");
            return;
        }
        if (user) {
            const char *argv[] = {"EVAL", bk_script_user(), "1", b->prefix, b->prefix, name};
            size_t lens[] = {4, strlen(argv[1]), 1, strlen(b->prefix), strlen(b->prefix), name_len};
            hold(api, conn, Q_USER, name, name_len, NULL, 0, 6, argv, lens);
            return;
        }
        size_t nsp_len;
        char *nsp = query_nsp(api, conn, req, &nsp_len);
        if (nsp == NULL) {
            free(name);
            return;
        }
        const char *argv[] = {"EVAL", bk_script_room(), "1", b->prefix, b->prefix, nsp, name};
        size_t lens[] = {4,       strlen(argv[1]), 1, strlen(b->prefix), strlen(b->prefix),
                         nsp_len, name_len};
        hold(api, conn, Q_ROOM, nsp, nsp_len, name, name_len, 7, argv, lens);
        return;
    }
    respond_error(api, conn, 404, "no such endpoint");
}

void bk_api_handle(struct bk_api *api, struct http_conn *conn, struct http_server_request *req)
{
    (*api->requests)++;
    if (!authorized(api, req)) {
        respond_error(api, conn, 401, "missing or wrong api key (Authorization: Bearer <api-key>)");
        return;
    }
    struct slice method = req->head->method;
    struct slice path = req->path;
    bool post = path_is(method, "POST"), get = path_is(method, "GET");
    static const struct {
        const char *path;
        enum api_body_kind kind;
    } pushes[] = {{"/v1/emit", API_BODY_EMIT},
                  {"/v1/join", API_BODY_JOIN},
                  {"/v1/leave", API_BODY_LEAVE},
                  {"/v1/disconnect", API_BODY_DISCONNECT}};
    for (size_t i = 0; i < sizeof pushes / sizeof pushes[0]; i++) {
        if (!path_is(path, pushes[i].path))
            continue;
        if (!post)
            respond_error(api, conn, 405, "use POST with a JSON body");
        else
            handle_push(api, conn, req, pushes[i].kind);
        return;
    }
    if (!get) {
        bool known = path_is(path, "/v1/nodes") || path_is(path, "/v1/rooms") ||
                     starts_with(path, "/v1/rooms/") || starts_with(path, "/v1/users/");
        respond_error(api, conn, known ? 405 : 404, known ? "use GET" : "no such endpoint");
        return;
    }
    handle_get(api, conn, req);
}

struct bk_api *bk_api_new(struct broker *b)
{
    struct bk_api *api = calloc(1, sizeof *api);
    if (api == NULL)
        return NULL;
    list_init(&api->held);
    api->b = b;
    api->requests =
        metrics_counter(b->metrics, "sioc_broker_api_requests_total", "API requests", NULL);
    api->client_errors = metrics_counter(b->metrics, "sioc_broker_api_errors_total",
                                         "API errors by class", "class=\"4xx\"");
    api->server_errors = metrics_counter(b->metrics, "sioc_broker_api_errors_total",
                                         "API errors by class", "class=\"5xx\"");
    api->pushes = metrics_counter(b->metrics, "sioc_broker_api_publishes_total",
                                  "emits, joins, leaves and disconnects published", NULL);
    api->recoverable =
        metrics_counter(b->metrics, "sioc_broker_api_recoverable_total",
                        "emits stored for connection state recovery as published", NULL);
    api->rec = bk_rec_new(b);
    if (api->requests == NULL || api->client_errors == NULL || api->server_errors == NULL ||
        api->pushes == NULL || api->recoverable == NULL || api->rec == NULL) {
        bk_rec_free(api->rec);
        free(api);
        return NULL;
    }
    return api;
}

void bk_api_free(struct bk_api *api)
{
    if (api == NULL)
        return;
    struct list_node *pos, *tmp;
    list_for_each_safe(pos, tmp, &api->held)
    {
        struct api_query *q = container_of(pos, struct api_query, node);
        http_conn_clear_owner(q->conn);
        redis_link_cancel(api->b->cmd, q);
        query_free(q);
    }
    bk_rec_free(api->rec);
    free(api);
}
