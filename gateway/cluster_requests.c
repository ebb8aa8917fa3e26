/* cluster_requests.c: answering other nodes' adapter requests (PROTOCOL.md 3.5) on the local
 * sockets, and broadcasts with acknowledgements across nodes (3.6): BROADCAST_CLIENT_COUNT
 * first, then one BROADCAST_ACK per client ack, until every client acked or the request's
 * timeout passed. Channel routing and publishing are cluster.c's. */
#include <event2/event.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/adapter.h"
#include "common/clock.h"
#include "common/cluster_msg.h"
#include "common/container.h"
#include "common/error.h"
#include "common/mp.h"
#include "common/net/log.h"
#include "common/net/redis_link.h"
#include "gateway/cluster_internal.h"

static const uint8_t empty_map[] = {0x80};
static const uint8_t nil_value[] = {0xc0};

/* Encodes `res` and publishes it where the requester listens (3.8). */
/* PUBLISH channel payload on the cluster's one connection (PROTOCOL.md 3.7; queued while Redis
 * is away); a refusal is counted and logged. Slices are copied. */

static void publish_response(struct cluster *c, struct slice channel, struct slice payload)
{
    const char *argv[] = {"PUBLISH", (const char *)channel.p, (const char *)payload.p};
    size_t lens[] = {7, channel.len, payload.len};
    int rc = redis_link_command_argv(c->pub, 3, argv, lens, 0, NULL, NULL);
    if (rc != SIOC_OK) {
        (*c->publish_failed)++;
        log_write(c->log, LOG_LEVEL_WARN, "cluster.publish_failed", "channel=%.*s: %s",
                  (int)channel.len, channel.p, sioc_strerror(rc));
        return;
    }
    (*c->responses)++;
}

static void respond(struct cluster *c, const struct cluster_nsp *n, int request_type,
                    struct slice requester_uid, const struct adapter_response *res)
{
    buf_reset(&c->out);
    int rc = adapter_response_encode(&c->out, res);
    if (rc != SIOC_OK) {
        (*c->publish_failed)++;
        log_write(c->log, LOG_LEVEL_WARN, "cluster.response_failed", "nsp=%s type=%d: %s", n->name,
                  request_type, sioc_strerror(rc));
        return;
    }
    buf_reset(&c->channel);
    adapter_response_channel(&c->channel, cluster_key_slice(c), cluster_nsp_slice(n), request_type,
                             requester_uid, c->specific);
    if (c->channel.err != SIOC_OK) {
        (*c->publish_failed)++;
        return;
    }
    publish_response(c, (struct slice){c->channel.data, c->channel.len},
                     (struct slice){c->out.data, c->out.len});
}

void cluster_respond_sharded(struct cluster *c, const struct cluster_nsp *n,
                             struct slice requester_uid, struct cluster_msg *m)
{
    m->uid = (struct slice){(const uint8_t *)n->uid, strlen(n->uid)};
    m->nsp = cluster_nsp_slice(n);
    buf_reset(&c->out);
    int rc = cluster_msg_encode(&c->out, &c->shard_scratch, m);
    buf_reset(&c->channel);
    cluster_msg_sub_channel(&c->channel, cluster_key_slice(c), cluster_nsp_slice(n), requester_uid);
    if (rc == SIOC_OK)
        rc = c->channel.err;
    if (rc != SIOC_OK) {
        (*c->publish_failed)++;
        log_write(c->log, LOG_LEVEL_WARN, "cluster.response_failed", "nsp=%s type=%d: %s", n->name,
                  m->type, sioc_strerror(rc));
        return;
    }
    const char *argv[] = {"SPUBLISH", (const char *)c->channel.data, (const char *)c->out.data};
    size_t lens[] = {8, c->channel.len, c->out.len};
    rc = redis_link_command_argv(c->pub, 3, argv, lens, 0, NULL, NULL);
    if (rc != SIOC_OK) {
        (*c->publish_failed)++;
        log_write(c->log, LOG_LEVEL_WARN, "cluster.publish_failed", "channel=%.*s: %s",
                  (int)c->channel.len, c->channel.data, sioc_strerror(rc));
        return;
    }
    (*c->responses)++;
}

static struct slice request_uid(const struct adapter_request *req)
{
    return req->has_uid ? req->uid : (struct slice){(const uint8_t *)"", 0};
}

/* ---- selecting sockets: collect ids first, act after (sio_server_select's rule) ---- */

static void collect_cb(void *ctx, struct sio_socket *sock)
{
    struct cluster *c = ctx;
    buf_append(&c->ids, sio_socket_key(sock), SIO_SOCKET_ID_LEN); /* fixed size */
}

/* Selects like a broadcast (union of rooms minus except) into c->ids; returns the count, or
 * a negative error when the list could not be built. */
static long select_ids(struct cluster *c, const struct cluster_nsp *n,
                       const struct adapter_rooms *rooms, const struct adapter_rooms *except)
{
    buf_reset(&c->ids);
    sio_server_select(c->srv, n->name, n->len, rooms ? rooms->names : NULL,
                      rooms ? rooms->count : 0, except ? except->names : NULL,
                      except ? except->count : 0, collect_cb, c);
    if (c->ids.err != SIOC_OK)
        return c->ids.err;
    return (long)(c->ids.len / SIO_SOCKET_ID_LEN);
}

/* The i-th selected socket, or NULL if it went away meanwhile (an earlier disconnect). */
static struct sio_socket *selected(struct cluster *c, const struct cluster_nsp *n, long i)
{
    const char *id = (const char *)c->ids.data + (size_t)i * SIO_SOCKET_ID_LEN;
    return sio_server_find(c->srv, n->name, n->len, id, SIO_SOCKET_ID_LEN);
}

/* ---- room lists ---- */

struct room_list {
    struct buf *out;
    uint32_t count;
    bool write;
};

static void room_cb(void *ctx, const uint8_t *room, size_t len, size_t size)
{
    (void)size;
    struct room_list *l = ctx;
    if (l->write)
        mp_write_str(l->out, room, len);
    else
        l->count++;
}

/* Appends a MessagePack array of every room name of the namespace (socket-id rooms included,
 * as Node's `this.rooms.keys()`). Returns the count. */
static uint32_t write_all_rooms(struct cluster *c, const struct cluster_nsp *n, struct buf *out)
{
    struct room_list l = {.out = out};
    sio_server_each_room(c->srv, n->name, n->len, room_cb, &l);
    mp_write_array(out, l.count);
    l.write = true;
    sio_server_each_room(c->srv, n->name, n->len, room_cb, &l);
    return l.count;
}

static void write_socket_rooms(const struct sio_socket *sock, struct buf *out)
{
    struct room_list l = {.out = out};
    sio_socket_each_room(sock, room_cb, &l);
    mp_write_array(out, l.count);
    l.write = true;
    sio_socket_each_room(sock, room_cb, &l);
}

/* ---- REMOTE_FETCH: one socket as Node's fetchSockets sees it ---- */

static bool headers_have_origin(struct slice headers)
{
    struct mp_reader r;
    struct mp_item it;
    mp_reader_init(&r, headers.p, headers.len);
    if (headers.len == 0 || mp_read(&r, &it) != SIOC_OK || it.kind != MP_MAP)
        return false;
    for (uint32_t i = 0; i < it.len; i++) {
        struct mp_item k;
        if (mp_read(&r, &k) != SIOC_OK)
            return false;
        if (mp_item_is_str(&k, "origin"))
            return true;
        if (mp_skip(&r) != SIOC_OK)
            return false;
    }
    return false;
}

static void write_raw_map(struct buf *out, struct slice value)
{
    if (value.len == 0)
        buf_append(out, empty_map, sizeof empty_map);
    else
        buf_append(out, value.p, value.len);
}

/* {"id","handshake":{headers,time,address,xdomain,secure,issued,url,query,auth},"rooms","data"}
 * (PROTOCOL.md 3.5). `time` is JavaScript's Date.prototype.toString() of the handshake time, in
 * UTC; `xdomain` is whether an Origin header came (Node: `!!req.headers.origin`); `data` is {}
 * (the gateway keeps no per-socket application data). */
static void write_socket(struct buf *out, const struct sio_socket *sock)
{
    const struct sio_handshake *hs = sio_socket_handshake(sock);
    mp_write_map(out, 4);
    mp_write_cstr(out, "id");
    mp_write_cstr(out, sio_socket_id(sock));
    mp_write_cstr(out, "handshake");
    mp_write_map(out, 9);
    mp_write_cstr(out, "headers");
    write_raw_map(out, hs->headers);
    mp_write_cstr(out, "time");
    char when[96] = "";
    time_t secs = (time_t)(hs->issued_ms / 1000);
    struct tm tm;
    if (gmtime_r(&secs, &tm) != NULL)
        strftime(when, sizeof when, "%a %b %d %Y %H:%M:%S GMT+0000 (Coordinated Universal Time)",
                 &tm);
    mp_write_cstr(out, when);
    mp_write_cstr(out, "address");
    mp_write_cstr(out, hs->address ? hs->address : "");
    mp_write_cstr(out, "xdomain");
    mp_write_bool(out, headers_have_origin(hs->headers));
    mp_write_cstr(out, "secure");
    mp_write_bool(out, hs->secure);
    mp_write_cstr(out, "issued");
    mp_write_int(out, hs->issued_ms);
    mp_write_cstr(out, "url");
    mp_write_cstr(out, hs->url ? hs->url : "");
    mp_write_cstr(out, "query");
    write_raw_map(out, hs->query);
    mp_write_cstr(out, "auth");
    write_raw_map(out, sio_socket_auth(sock));
    mp_write_cstr(out, "rooms");
    write_socket_rooms(sock, out);
    mp_write_cstr(out, "data");
    buf_append(out, empty_map, sizeof empty_map);
}

/* ---- broadcasts with acks (3.6) ---- */

static void ack_free(struct cluster *c, struct cluster_ack *a)
{
    for (struct cluster_ack **pp = &c->acks; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == a) {
            *pp = a->next;
            break;
        }
    }
    c->ack_count--;
    *c->acks_pending = (int64_t)c->ack_count;
    timer_heap_remove(&c->ack_deadlines, &a->deadline);
    free(a->request_id);
    free(a->requester_uid);
    free(a);
}

void cluster_acks_free(struct cluster *c)
{
    while (c->acks != NULL)
        ack_free(c, c->acks);
    timer_heap_deinit(&c->ack_deadlines);
    if (c->ack_timer.ev != NULL)
        event_free(c->ack_timer.ev);
    c->ack_timer.ev = NULL;
}

void cluster_acks_forget(struct cluster *c, const struct cluster_nsp *n)
{
    struct cluster_ack *a = c->acks;
    while (a != NULL) {
        struct cluster_ack *next = a->next;
        if (a->nsp == n)
            ack_free(c, a);
        a = next;
    }
}

static void ack_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct cluster *c = arg;
    uint64_t now = clock_mono_ms();
    struct timer_heap_node *n;
    while ((n = timer_heap_pop_expired(&c->ack_deadlines, now)) != NULL) {
        struct cluster_ack *a = container_of(n, struct cluster_ack, deadline);
        /* the requester has given up by now too (it uses the same opts.flags.timeout) */
        (*c->acks_expired)++;
        log_write(c->log, LOG_LEVEL_DEBUG, "cluster.ack_expired", "nsp=%s requestId=%s missing=%zu",
                  a->nsp->name, a->request_id, a->remaining);
        ack_free(c, a);
    }
    deadline_timer_arm_at(&c->ack_timer, timer_heap_next(&c->ack_deadlines), clock_mono_ms());
}

/* The answers of a broadcast with acks, in the requester's format: BROADCAST_CLIENT_COUNT
 * (has_count) or BROADCAST_ACK with `packet` (absent: the client acked with no argument). */
static void ack_answer(struct cluster *c, const struct cluster_nsp *n, bool sharded,
                       struct slice request_id, struct slice requester_uid, bool has_count,
                       uint64_t count, const struct slice *packet)
{
    if (sharded) {
        struct cluster_msg *m = &c->reply;
        memset(m, 0, offsetof(struct cluster_msg, opts));
        m->type = has_count ? CLUSTER_MSG_BROADCAST_CLIENT_COUNT : CLUSTER_MSG_BROADCAST_ACK;
        m->has_request_id = true;
        m->request_id = request_id;
        m->has_client_count = has_count;
        m->client_count = count;
        m->has_packet = packet != NULL;
        m->packet = packet != NULL ? *packet : (struct slice){NULL, 0};
        m->has_sockets = false;
        cluster_respond_sharded(c, n, requester_uid, m);
        return;
    }
    struct adapter_response res = {
        .has_type = true,
        .type = has_count ? ADAPTER_BROADCAST_CLIENT_COUNT : ADAPTER_BROADCAST_ACK,
        .has_request_id = true,
        .request_id = request_id,
        .has_client_count = has_count,
        .client_count = count,
        .has_packet = packet != NULL,
    };
    if (packet != NULL)
        res.packet = *packet;
    respond(c, n, ADAPTER_BROADCAST, requester_uid, &res);
}

static struct slice cstr_slice(const char *s)
{
    return (struct slice){(const uint8_t *)s, strlen(s)};
}

/* A client's ACK to a broadcast delivered for a BROADCAST request: BROADCAST_ACK with its
 * first argument (no `packet` key when it acked with none, as notepack drops undefined). */
static void client_ack_cb(void *ctx, struct sio_socket *sock, uint64_t ack_id, struct slice args)
{
    struct cluster *c = ctx;
    const char *name = sio_socket_nsp(sock);
    const struct cluster_nsp *n = cluster_nsp_find(c, name, strlen(name));
    struct cluster_ack *a = c->acks;
    while (a != NULL && !(a->nsp == n && a->ack_id == ack_id))
        a = a->next;
    if (a == NULL)
        return; /* expired */
    struct slice packet, *first = NULL;
    struct mp_reader r;
    struct mp_item it;
    mp_reader_init(&r, args.p, args.len);
    if (mp_read(&r, &it) == SIOC_OK && it.kind == MP_ARRAY && it.len > 0) {
        size_t start = r.pos;
        if (mp_skip(&r) == SIOC_OK) {
            packet = (struct slice){args.p + start, r.pos - start};
            first = &packet;
        }
    }
    ack_answer(c, a->nsp, a->sharded, cstr_slice(a->request_id), cstr_slice(a->requester_uid),
               false, 0, first);
    if (--a->remaining == 0)
        ack_free(c, a);
}

static struct cluster_ack *ack_new(struct cluster *c, struct cluster_nsp *n,
                                   const struct cluster_ack_request *q)
{
    if (c->ack_count >= CLUSTER_MAX_PENDING_ACKS)
        return NULL;
    struct cluster_ack *a = calloc(1, sizeof *a);
    if (a == NULL)
        return NULL;
    a->nsp = n;
    a->sharded = q->sharded;
    a->request_id = slice_strdup(q->request_id);
    a->requester_uid = slice_strdup(q->requester_uid);
    if (c->ack_timer.ev == NULL)
        c->ack_timer.ev = evtimer_new(c->base, ack_timeout_cb, c);
    double ms = CLUSTER_DEFAULT_ACK_TIMEOUT_MS;
    if (q->opts != NULL && q->opts->flags.has_timeout && q->opts->flags.timeout > 0)
        ms = q->opts->flags.timeout < CLUSTER_MAX_ACK_TIMEOUT_MS ? q->opts->flags.timeout
                                                                 : CLUSTER_MAX_ACK_TIMEOUT_MS;
    uint64_t at = clock_mono_ms() + (uint64_t)ms;
    if (a->request_id == NULL || a->requester_uid == NULL || c->ack_timer.ev == NULL ||
        timer_heap_push(&c->ack_deadlines, &a->deadline, at) != SIOC_OK) {
        free(a->request_id);
        free(a->requester_uid);
        free(a);
        return NULL;
    }
    deadline_timer_arm_at(&c->ack_timer, at, clock_mono_ms());
    a->next = c->acks;
    c->acks = a;
    c->ack_count++;
    *c->acks_pending = (int64_t)c->ack_count;
    return a;
}

void cluster_broadcast_with_ack(struct cluster *c, struct cluster_nsp *n,
                                const struct cluster_ack_request *q)
{
    struct sio_broadcast b = {
        .nsp = n->name,
        .nsp_len = n->len,
        .data = q->data,
        .rooms = q->opts != NULL ? q->opts->rooms.names : NULL,
        .nrooms = q->opts != NULL ? q->opts->rooms.count : 0,
        .except = q->opts != NULL ? q->opts->except.names : NULL,
        .nexcept = q->opts != NULL ? q->opts->except.count : 0,
    };
    struct cluster_ack *a = ack_new(c, n, q);
    bool tracked = a != NULL;
    int count;
    if (tracked) {
        uint64_t ack_id = 0;
        count = sio_server_broadcast_with_ack(c->srv, &b, &ack_id, client_ack_cb, c);
        a->ack_id = ack_id;
        a->remaining = count > 0 ? (size_t)count : 0;
        if (count <= 0)
            ack_free(c, a); /* nobody to wait for */
    } else {
        /* over CLUSTER_MAX_PENDING_ACKS: delivered without an ack id, and announced as 0
         * clients, so the requester does not wait for acks we could not forward */
        log_write(c->log, LOG_LEVEL_WARN, "cluster.ack_untracked",
                  "nsp=%s: %zu ack broadcasts pending; delivering without acks", n->name,
                  c->ack_count);
        count = sio_server_broadcast(c->srv, &b);
        if (count > 0)
            *c->delivered += (uint64_t)count;
        count = count < 0 ? count : 0;
    }
    if (count < 0) {
        log_write(c->log, LOG_LEVEL_WARN, "cluster.broadcast_failed", "nsp=%s requestId=%.*s: %s",
                  n->name, (int)q->request_id.len, q->request_id.p, sioc_strerror(count));
        count = 0;
    }
    if (tracked)
        *c->delivered += (uint64_t)count;
    ack_answer(c, n, q->sharded, q->request_id, q->requester_uid, true, (uint64_t)count, NULL);
}

/* BROADCAST (7): deliver with one ack id, answer BROADCAST_CLIENT_COUNT at once, even 0
 * (3.6: without it every Node ack-broadcast in the cluster times out). The request's flags
 * are dropped on the receiving side (3.5), volatile included. */
static void on_broadcast_request(struct cluster *c, struct cluster_nsp *n,
                                 const struct adapter_request *req)
{
    struct cluster_ack_request q = {
        .data = req->packet.data,
        .opts = req->has_opts ? &req->opts : NULL,
        .request_id = req->request_id,
        .requester_uid = request_uid(req),
    };
    cluster_broadcast_with_ack(c, n, &q);
}

/* ---- room operations and disconnects (opts forms: no self filter, 3.5) ---- */

void cluster_apply_rooms(struct cluster *c, const struct cluster_nsp *n,
                         const struct adapter_opts *opts, const struct adapter_rooms *rooms,
                         bool join)
{
    long count = select_ids(c, n, &opts->rooms, &opts->except);
    for (long i = 0; i < count; i++) {
        struct sio_socket *sock = selected(c, n, i);
        for (size_t r = 0; sock != NULL && rooms != NULL && r < rooms->count; r++) {
            if (join)
                sio_socket_join(sock, rooms->names[r].p, rooms->names[r].len);
            else
                sio_socket_leave(sock, rooms->names[r].p, rooms->names[r].len);
        }
    }
}

/* The legacy sid-targeted forms of join, leave and disconnect: only the owner acts and answers
 * {"requestId"}. */
static void apply_legacy(struct cluster *c, const struct cluster_nsp *n,
                         const struct adapter_request *req)
{
    if (!req->has_sid)
        return;
    struct sio_socket *sock =
        sio_server_find(c->srv, n->name, n->len, (const char *)req->sid.p, req->sid.len);
    if (sock == NULL)
        return;
    if (req->type == ADAPTER_REMOTE_JOIN && req->has_room)
        sio_socket_join(sock, req->room.p, req->room.len);
    else if (req->type == ADAPTER_REMOTE_LEAVE && req->has_room)
        sio_socket_leave(sock, req->room.p, req->room.len);
    else if (req->type == ADAPTER_REMOTE_DISCONNECT)
        sio_socket_disconnect(sock, req->has_close && req->close);
    if (!req->has_request_id)
        return;
    struct adapter_response res = {.has_request_id = true, .request_id = req->request_id};
    respond(c, n, req->type, request_uid(req), &res);
}

void cluster_apply_disconnect(struct cluster *c, const struct cluster_nsp *n,
                              const struct adapter_opts *opts, bool close)
{
    long count = select_ids(c, n, &opts->rooms, &opts->except);
    for (long i = 0; i < count; i++) {
        /* found again each time: closing a transport may take other sockets with it */
        struct sio_socket *sock = selected(c, n, i);
        if (sock != NULL)
            sio_socket_disconnect(sock, close);
    }
}

/* ---- queries ---- */

static void answer_sockets(struct cluster *c, const struct cluster_nsp *n,
                           const struct adapter_request *req)
{
    long count = select_ids(c, n, req->has_rooms ? &req->rooms : NULL, NULL);
    buf_reset(&c->list);
    mp_write_array(&c->list, count > 0 ? (uint32_t)count : 0);
    for (long i = 0; i < count; i++) {
        const struct sio_socket *sock = selected(c, n, i); /* present: nothing ran since */
        mp_write_cstr(&c->list, sock != NULL ? sio_socket_id(sock) : "");
    }
    struct adapter_response res = {
        .has_request_id = true,
        .request_id = req->request_id,
        .has_sockets = true,
        .sockets = {c->list.data, c->list.len},
        .sockets_count = count > 0 ? (uint32_t)count : 0,
    };
    respond(c, n, req->type, request_uid(req), &res);
}

long cluster_write_fetch(struct cluster *c, const struct cluster_nsp *n,
                         const struct adapter_opts *opts)
{
    long count = select_ids(c, n, &opts->rooms, &opts->except);
    buf_reset(&c->list);
    mp_write_array(&c->list, count > 0 ? (uint32_t)count : 0);
    for (long i = 0; i < count; i++)
        write_socket(&c->list, selected(c, n, i)); /* nothing can go away during a query */
    return count;
}

static void answer_fetch(struct cluster *c, const struct cluster_nsp *n,
                         const struct adapter_request *req)
{
    long count = cluster_write_fetch(c, n, &req->opts);
    struct adapter_response res = {
        .has_request_id = true,
        .request_id = req->request_id,
        .has_sockets = true,
        .sockets_fetch = count > 0,
        .sockets = {c->list.data, c->list.len},
        .sockets_count = count > 0 ? (uint32_t)count : 0,
    };
    respond(c, n, req->type, request_uid(req), &res);
}

static void answer_all_rooms(struct cluster *c, const struct cluster_nsp *n,
                             const struct adapter_request *req)
{
    buf_reset(&c->list);
    uint32_t count = write_all_rooms(c, n, &c->list);
    struct adapter_response res = {
        .has_request_id = true,
        .request_id = req->request_id,
        .has_rooms = true,
        .rooms = {c->list.data, c->list.len},
        .rooms_count = count,
    };
    respond(c, n, req->type, request_uid(req), &res);
}

/* SERVER_SIDE_EMIT (6): the gateway has no server-side listeners. When the sender asked for an
 * ack (requestId present), answer once with null, as a Node listener calling back with null
 * would, so the sender's serverSideEmitWithAck completes with one null per gateway instead of
 * timing out. The answer always goes to the shared response channel (3.8). */
static void answer_server_side_emit(struct cluster *c, const struct cluster_nsp *n,
                                    const struct adapter_request *req)
{
    if (req->has_uid && req->uid.len == ADAPTER_UID_LEN &&
        memcmp(req->uid.p, n->uid, ADAPTER_UID_LEN) == 0)
        return; /* 3.5 self filter */
    if (!req->has_request_id)
        return;
    struct adapter_response res = {
        .has_type = true,
        .type = ADAPTER_SERVER_SIDE_EMIT,
        .has_request_id = true,
        .request_id = req->request_id,
        .has_data = true,
        .data = {nil_value, sizeof nil_value},
    };
    respond(c, n, ADAPTER_SERVER_SIDE_EMIT, request_uid(req), &res);
}

void cluster_on_request(struct cluster *c, struct cluster_nsp *n, struct slice payload)
{
    struct adapter_request *req = &c->req;
    int rc = adapter_request_decode(payload.p, payload.len, &c->scratch, req);
    if (rc == SIOC_ENOTSUP)
        return; /* a type of a later adapter version: Node ignores those too */
    if (rc < 0) {
        (*c->requests_invalid)++;
        log_write(c->log, LOG_LEVEL_WARN, "cluster.invalid_request", "nsp=%s: %s (%zu bytes)",
                  n->name, sioc_strerror(rc), payload.len);
        return;
    }
    (*c->requests[req->type])++;
    /* The gateway originates no requests, so the "one of my pending requestIds" self filters of
     * SOCKETS, ALL_ROOMS, REMOTE_FETCH and BROADCAST never match (3.5). */
    switch (req->type) {
    case ADAPTER_SOCKETS: answer_sockets(c, n, req); break;
    case ADAPTER_ALL_ROOMS: answer_all_rooms(c, n, req); break;
    case ADAPTER_REMOTE_JOIN:
    case ADAPTER_REMOTE_LEAVE:
        if (req->has_opts)
            cluster_apply_rooms(c, n, &req->opts, req->has_rooms ? &req->rooms : NULL,
                                req->type == ADAPTER_REMOTE_JOIN);
        else
            apply_legacy(c, n, req);
        break;
    case ADAPTER_REMOTE_DISCONNECT:
        if (req->has_opts)
            cluster_apply_disconnect(c, n, &req->opts, req->has_close && req->close);
        else
            apply_legacy(c, n, req);
        break;
    case ADAPTER_REMOTE_FETCH: answer_fetch(c, n, req); break;
    case ADAPTER_SERVER_SIDE_EMIT: answer_server_side_emit(c, n, req); break;
    case ADAPTER_BROADCAST: on_broadcast_request(c, n, req); break;
    default: break;
    }
}
