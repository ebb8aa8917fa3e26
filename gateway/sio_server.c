/* sio_server.c: Socket.IO v5 over Engine.IO sessions (see sio_server.h; PROTOCOL.md §2).
 * A client is one Engine.IO session (or a plain WebSocket connection of ws-routes, whose
 * specifics are in sio_plain.c); it holds the namespace sockets it joined (usually one),
 * the binary reassembly state and the connect timer. Every packet is decoded once into
 * MessagePack and every outgoing packet is encoded once into shared frames. Sockets live in a
 * server-wide id table and in their namespace's room index (common/rooms). Broadcasts are in
 * sio_broadcast.c, the handshake facts in sio_handshake.c, the shared structures in
 * sio_internal.h. Clients of Engine.IO v3 sessions speak Socket.IO protocol v4 (§2.7). */
#include "gateway/sio_server.h"

#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/container.h"
#include "common/config.h"
#include "common/user_room.h"
#include "common/deadline.h"
#include "common/eio.h"
#include "common/error.h"
#include "common/http.h"
#include "common/idmap.h"
#include "common/json.h"
#include "common/mp.h"
#include "common/namemap.h"
#include "common/net/deadline_timer.h"
#include "common/rooms.h"
#include "common/sio.h"
#include "common/ws_routes.h"
#include "common/utf8.h"
#include "common/ws.h"
#include "common/net/process.h"
#include "gateway/plain_ws.h"
#include "gateway/random_pool.h"
#include "gateway/sio_handshake.h"
#include "gateway/sio_internal.h"

__attribute__((format(printf, 3, 4))) static void log_peer(struct sio_server *srv,
                                                           const char *event, const char *fmt, ...)
{
    if (srv->cfg.on_log == NULL)
        return;
    char detail[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt,
              ap); // NOLINT(clang-analyzer-valist.Uninitialized): va_start above
    va_end(ap);
    srv->cfg.on_log(srv->cfg.ctx, event, detail);
}

/* ---- small helpers ---- */

static bool id_list_add(struct id_list *l, uint64_t id)
{
    if (l->len == MAX_TRACKED_ACKS) {
        memmove(l->ids, l->ids + 1, (l->len - 1) * sizeof *l->ids); /* forget the oldest */
        l->len--;
    }
    if (l->len == l->cap) {
        uint32_t cap = l->cap ? l->cap * 2 : 4;
        uint64_t *ids = realloc(l->ids, cap * sizeof *ids);
        if (ids == NULL)
            return false;
        l->ids = ids;
        l->cap = cap;
    }
    l->ids[l->len++] = id;
    return true;
}

static bool id_list_take(struct id_list *l, uint64_t id)
{
    for (size_t i = 0; i < l->len; i++) {
        if (l->ids[i] == id) {
            memmove(l->ids + i, l->ids + i + 1, (l->len - i - 1) * sizeof *l->ids);
            l->len--;
            return true;
        }
    }
    return false;
}

static bool namespace_allowed(const struct sio_server *srv, struct slice nsp)
{
    if (srv->any_namespace) /* a name must be valid UTF-8 without NUL (it becomes keys and C
                               strings) */
        return nsp.len <= MAX_NAMESPACE && memchr(nsp.p, 0, nsp.len) == NULL &&
               utf8_valid(nsp.p, nsp.len);
    return config_list_has(srv->allowed, (const char *)nsp.p, nsp.len);
}

struct sio_nsp *sio_nsp_find(struct sio_server *srv, const char *name, size_t len)
{
    struct namemap_node *n = namemap_find(&srv->nsp_map, name, len);
    return container_of_or_null(n, struct sio_nsp, node);
}

static void arm_timer(struct sio_server *srv);

/* rooms_set_watch of every namespace: a room came to exist on this node or went away. */
static void room_watch_cb(void *ctx, const uint8_t *room, size_t len, bool created)
{
    struct sio_nsp *n = ctx;
    struct sio_server *srv = n->srv;
    bool is_id = sio_server_find(srv, n->name, n->len, (const char *)room, len) != NULL;
    srv->cfg.on_room_change(srv->cfg.ctx, n->name, n->len, room, len, created, is_id);
}

/* The namespace of that name, created when it does not exist yet. Under "*" a new one must fit
 * in max_namespaces and be admitted by on_namespace (the cluster subscribes its channels):
 * otherwise none is made, so no namespace is ever half there. */
struct sio_nsp *sio_nsp_get(struct sio_server *srv, const char *name, size_t len,
                            enum nsp_refusal *why)
{
    struct sio_nsp *n = sio_nsp_find(srv, name, len);
    *why = NSP_OK;
    if (n != NULL)
        return n;
    if (srv->any_namespace && srv->cfg.max_namespaces != 0 &&
        srv->dynamic_count >= srv->cfg.max_namespaces) {
        *why = NSP_LIMIT;
        return NULL;
    }
    n = calloc(1, sizeof *n + len + 1);
    if (n == NULL || (n->rooms = rooms_new(srv->cfg.seed ^ len)) == NULL) {
        free(n);
        *why = NSP_NO_MEMORY;
        return NULL;
    }
    memcpy(n->name, name, len);
    n->len = len;
    n->srv = srv;
    if (srv->cfg.on_room_change != NULL)
        rooms_set_watch(n->rooms, room_watch_cb, n);
    if (srv->any_namespace && srv->cfg.on_namespace != NULL &&
        srv->cfg.on_namespace(srv->cfg.ctx, n->name, len, true) != SIOC_OK) {
        rooms_free(n->rooms);
        free(n);
        *why = NSP_LIMIT;
        return NULL;
    }
    /* Node's main namespace is never removed; the others of "*" go once empty */
    n->dynamic = srv->any_namespace && !(len == 1 && name[0] == '/');
    srv->dynamic_count += srv->any_namespace;
    namemap_insert(&srv->nsp_map, &n->node, n->name, len);
    list_push_head(&srv->nsps, &n->all);
    return n;
}

void sio_nsp_release(struct sio_server *srv, struct sio_nsp *n)
{
    if (n->sockets == 0 && n->dynamic) {
        deadline_push(&srv->empty_wait, &n->empty, deadline_clock_ms());
        arm_timer(srv);
    }
}

static void nsp_free(struct sio_server *srv, struct sio_nsp *n)
{
    deadline_remove(&n->empty);
    namemap_remove(&srv->nsp_map, &n->node);
    list_remove(&n->all);
    rooms_free(n->rooms);
    free(n);
}

static void arm_timer(struct sio_server *srv)
{
    struct deadline_list *lists[] = {&srv->connect_wait, &srv->empty_wait};
    deadline_timer_arm(&srv->timer, lists, 2);
}

/* A dynamic namespace empty for empty_namespace_ms goes away (Node's
 * cleanupEmptyChildNamespaces), and the cluster stops following it. */
static void nsp_empty_due(struct sio_server *srv, struct sio_nsp *n)
{
    if (n->sockets != 0)
        return;
    if (srv->cfg.on_namespace != NULL)
        srv->cfg.on_namespace(srv->cfg.ctx, n->name, n->len, false);
    srv->dynamic_count--;
    srv->nsp_limit_logged = false;
    nsp_free(srv, n);
}

/* ---- sending ---- */

/* Encodes one packet and queues its frames on the client's session. */
static int send_packet(struct sio_client *c, enum sio_type type, const struct sio_nsp *nsp,
                       const char *nsp_name, size_t nsp_len, bool has_id, uint64_t id,
                       struct slice data, bool has_data)
{
    if (c->plain != NULL) /* ws-routes: an event's first argument; no other packet exists */
        return type == SIO_EVENT ? sio_plain_send_event(c, data) : SIOC_OK;
    struct sio_packet pkt = {
        .type = type,
        .nsp = {(const uint8_t *)(nsp ? nsp->name : nsp_name), nsp ? nsp->len : nsp_len},
        .has_id = has_id,
        .id = id,
        .has_data = has_data,
        .data = data,
    };
    struct gw_frame *frames[MAX_FRAMES];
    int n = sio_encode_frames(c->srv, c->v4 ? SIO_V4 : SIO_V5, &pkt, frames);
    if (n < 0)
        return n;
    for (int i = 0; i < n; i++)
        eio_session_send(c->session, frames[i]);
    sio_unref_frames(frames, n);
    return SIOC_OK;
}

/* ---- sockets ---- */

static void free_pending(struct sio_socket *s)
{
    while (s->pending != NULL) {
        struct pending_event *next = s->pending->next;
        free(s->pending);
        s->pending = next;
    }
    s->pending_tail = &s->pending;
    s->pending_count = 0;
}

/* Unlinks and frees a socket after telling the application (when it knew about it). */
void sio_socket_remove(struct sio_socket *s, const char *reason)
{
    struct sio_client *c = s->client;
    struct sio_server *srv = c->srv;
    for (size_t i = 0; s->ending && i < srv->ending_len; i++) {
        if (srv->ending[i].s == s) { /* its own end was due: its reason, and only once */
            reason = srv->ending[i].reason;
            srv->ending[i].s = NULL;
        }
    }
    for (struct sio_socket **pp = &c->sockets; *pp != NULL; pp = &(*pp)->next_in_client) {
        if (*pp == s) {
            *pp = s->next_in_client;
            break;
        }
    }
    if (srv->cfg.on_disconnect != NULL)
        srv->cfg.on_disconnect(srv->cfg.ctx, s, reason);
    if (s->in_rooms)
        rooms_remove_member(s->nsp->rooms, &s->member);
    idmap_remove(&srv->sockets, &s->node);
    srv->socket_count--;
    c->socket_count--;
    s->nsp->sockets--;
    sio_nsp_release(srv, s->nsp);
    free_pending(s);
    sio_held_free(s);
    free(s->floor);
    free(s->pid);
    free(s->client_acks.ids);
    free(s->server_acks.ids);
    free(s->group_acks);
    free(s->uid);
    free(s->auth);
    free(s->public_id);
    free(s);
}

struct sio_socket *sio_socket_new(struct sio_client *c, struct sio_nsp *nsp)
{
    struct sio_server *srv = c->srv;
    struct sio_socket *s = calloc(1, sizeof *s);
    uint8_t random12[12];
    if (s == NULL || !random_pool_take(&srv->random, random12, sizeof random12)) {
        free(s);
        return NULL;
    }
    /* PROTOCOL.md 2.6: same base64id format as the Engine.IO sid, a distinct value */
    char id[SIO_SOCKET_ID_LEN + 1];
    eio_sid_format(random12, srv->id_counter++, id);
    if (c->v4) {
        /* 2.7: "/" is the Engine.IO sid itself, another namespace "<nsp>#<sid>" (keyed by the
         * random id above; sio_server_find resolves the long form) */
        const char *sid = eio_session_id(c->session);
        if (nsp->len == 1 && nsp->name[0] == '/') {
            memcpy(id, sid, SIO_SOCKET_ID_LEN);
        } else if ((s->public_id = malloc(nsp->len + 2 + SIO_SOCKET_ID_LEN)) == NULL) {
            free(s);
            return NULL;
        } else {
            memcpy(s->public_id, nsp->name, nsp->len);
            s->public_id[nsp->len] = '#';
            memcpy(s->public_id + nsp->len + 1, sid, SIO_SOCKET_ID_LEN + 1);
        }
    }
    s->held_tail = &s->held;
    s->client = c;
    s->nsp = nsp;
    nsp->sockets++;
    deadline_remove(&nsp->empty);
    c->socket_count++;
    s->pending_tail = &s->pending;
    idmap_insert(&srv->sockets, &s->node, id); /* node.id is the socket's id from now on */
    srv->socket_count++;
    s->next_in_client = c->sockets;
    c->sockets = s;
    return s;
}

void sio_socket_end(struct sio_socket *s, const char *reason)
{
    struct sio_server *srv = s->client->srv;
    if (s->ending)
        return;
    if (srv->ending_len == srv->ending_cap) {
        size_t cap = srv->ending_cap ? srv->ending_cap * 2 : 16;
        struct sio_ending *grown = realloc(srv->ending, cap * sizeof *grown);
        if (grown == NULL) {
            sio_socket_remove(s, reason); /* out of memory: at once rather than never */
            return;
        }
        srv->ending = grown;
        srv->ending_cap = cap;
    }
    s->ending = true;
    srv->ending[srv->ending_len++] = (struct sio_ending){s, reason};
    event_active(srv->end_event, EV_WRITE, 0);
}

/* From the loop: the sockets ended since, in order (an on_disconnect may end more). */
static void end_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sio_server *srv = arg;
    for (size_t i = 0; i < srv->ending_len; i++) {
        struct sio_socket *s = srv->ending[i].s;
        if (s != NULL)
            sio_socket_remove(s, srv->ending[i].reason);
    }
    srv->ending_len = 0;
}

static struct sio_socket *client_socket(struct sio_client *c, struct slice nsp)
{
    for (struct sio_socket *s = c->sockets; s != NULL; s = s->next_in_client) {
        if (!s->ending && s->nsp->len == nsp.len && memcmp(s->nsp->name, nsp.p, nsp.len) == 0)
            return s;
    }
    return NULL;
}

/* ---- incoming packets ---- */

/* Splits an EVENT payload [name, args...] into the name (its JS string form) and a new array
 * of the args, written to srv->args. */
static bool split_event(struct sio_server *srv, struct slice data, struct slice *event,
                        struct slice *args, char numbuf[32])
{
    struct mp_reader r;
    struct mp_item head, name;
    mp_reader_init(&r, data.p, data.len);
    if (mp_read(&r, &head) != SIOC_OK || head.kind != MP_ARRAY || head.len == 0 ||
        mp_read(&r, &name) != SIOC_OK)
        return false;
    if (name.kind == MP_STR) {
        *event = (struct slice){name.data, name.len};
    } else {
        double v;
        if (!mp_item_to_double(&name, &v))
            return false;
        struct buf b;
        buf_init(&b, 31);
        json_write_number(&b, v); /* a numeric event name, as JS would stringify it */
        size_t n = b.err == SIOC_OK ? b.len : 0;
        memcpy(numbuf, b.data, n);
        buf_deinit(&b);
        *event = (struct slice){(const uint8_t *)numbuf, n};
    }
    buf_reset(&srv->args);
    mp_write_array(&srv->args, head.len - 1);
    buf_append(&srv->args, data.p + r.pos, data.len - r.pos);
    if (srv->args.err != SIOC_OK)
        return false;
    *args = (struct slice){srv->args.data, srv->args.len};
    return true;
}

void sio_forward_client_event(struct sio_socket *s, struct slice event, struct slice args,
                              bool has_ack, uint64_t id)
{
    struct sio_server *srv = s->client->srv;
    if (has_ack)
        id_list_add(&s->client_acks, id);
    if (srv->cfg.on_event != NULL)
        srv->cfg.on_event(srv->cfg.ctx, s, event, args, has_ack, id);
}

void sio_queue_event(struct sio_socket *s, struct slice event, struct slice args, bool has_ack,
                     uint64_t id)
{
    struct sio_server *srv = s->client->srv;
    size_t limit =
        srv->cfg.max_pending_events ? srv->cfg.max_pending_events : DEFAULT_MAX_PENDING_EVENTS;
    if (s->pending_count >= limit) {
        log_peer(srv, "sio.pending_overflow", "socket=%s: too many events before connect",
                 s->node.id);
        sio_client_close(s->client, WS_CLOSE_POLICY_VIOLATION, "too many events before connect");
        return;
    }
    struct pending_event *e = malloc(sizeof *e + event.len + args.len);
    if (e == NULL)
        return;
    e->next = NULL;
    e->has_ack = has_ack;
    e->ack_id = id;
    e->event_len = event.len;
    e->args_len = args.len;
    memcpy(e->bytes, event.p, event.len);
    memcpy(e->bytes + event.len, args.p, args.len);
    *s->pending_tail = e;
    s->pending_tail = &e->next;
    s->pending_count++;
}

/* Closes the whole connection because the client broke the protocol (PROTOCOL.md 2.4). */
static void client_violation(struct sio_client *c, const char *what)
{
    log_peer(c->srv, "sio.protocol_error", "sid=%s: %s", eio_session_id(c->session), what);
    eio_session_close(c->session, "parse error");
    c->closing = true;
}

/* CONNECT_ERROR {"message": message} (PROTOCOL.md 2.4); the connection stays open. */
static void connect_error(struct sio_client *c, struct slice nsp, const char *message)
{
    struct buf data;
    buf_init(&data, 0);
    mp_write_map(&data, 1);
    mp_write_str(&data, (const uint8_t *)"message", 7);
    mp_write_str(&data, (const uint8_t *)message, strlen(message));
    if (data.err == SIOC_OK)
        send_packet(c, SIO_CONNECT_ERROR, NULL, (const char *)nsp.p, nsp.len, false, 0,
                    (struct slice){data.data, data.len}, true);
    buf_deinit(&data);
}

/* Recovery on, a v5 CONNECT: the socket's private session id, 20 random base64id characters
 * then this node's id (docs/contracts.md "Connection state recovery"). Sockets made another
 * way (plain WebSocket routes) have none. */
static int make_pid(struct sio_server *srv, struct sio_socket *s)
{
    uint8_t random15[15];
    size_t slen = strlen(srv->cfg.pid_suffix);
    if (!random_pool_take(&srv->random, random15, sizeof random15) ||
        (s->pid = malloc(SIO_SOCKET_ID_LEN + slen + 1)) == NULL)
        return SIOC_ENOMEM;
    sio_pid_random(random15, s->pid);
    memcpy(s->pid + SIO_SOCKET_ID_LEN, srv->cfg.pid_suffix, slen + 1);
    return SIOC_OK;
}

static void handle_connect(struct sio_client *c, const struct sio_packet *pkt)
{
    struct sio_server *srv = c->srv;
    if (client_socket(c, pkt->nsp) != NULL) {
        client_violation(c, "CONNECT for a namespace already joined");
        return;
    }
    if (!namespace_allowed(srv, pkt->nsp)) {
        /* §2.4: answered, connection stays open */
        connect_error(c, pkt->nsp, "Invalid namespace");
        return;
    }
    size_t per_client = srv->cfg.max_namespaces_per_client ? srv->cfg.max_namespaces_per_client
                                                           : DEFAULT_MAX_NAMESPACES_PER_CLIENT;
    if (c->socket_count >= per_client) {
        if (!c->nsp_cap_logged) /* once per connection: a client may try thousands */
            log_peer(srv, "sio.namespace_refused",
                     "sid=%s: more than %zu namespaces on one connection",
                     eio_session_id(c->session), per_client);
        c->nsp_cap_logged = true;
        connect_error(c, pkt->nsp, "Too many namespaces on this connection");
        return;
    }
    enum nsp_refusal why;
    struct sio_nsp *nsp = sio_nsp_get(srv, (const char *)pkt->nsp.p, pkt->nsp.len, &why);
    if (why == NSP_LIMIT) {
        if (!srv->nsp_limit_logged) /* once until a namespace is freed */
            log_peer(srv, "sio.namespace_refused", "sid=%s: namespace limit reached (%zu)",
                     eio_session_id(c->session), srv->dynamic_count);
        srv->nsp_limit_logged = true;
        connect_error(c, pkt->nsp, "Namespace limit reached");
        return;
    }
    struct sio_socket *s = nsp ? sio_socket_new(c, nsp) : NULL;
    if (s == NULL) {
        if (nsp != NULL)
            sio_nsp_release(srv, nsp); /* a namespace made for it goes once unused */
        eio_session_close(c->session, "out of memory");
        return;
    }
    if (srv->cfg.pid_suffix != NULL && !c->v4 && make_pid(srv, s) != SIOC_OK) {
        eio_session_close(c->session, "out of memory"); /* the socket goes with the client */
        return;
    }
    static const uint8_t empty_map[] = {0x80};
    struct slice auth = pkt->has_data ? pkt->data : (struct slice){empty_map, 1};
    struct buf query_auth;
    buf_init(&query_auth, srv->cfg.max_payload);
    if (c->v4 && sio_query_auth(pkt->query, &query_auth) == SIOC_OK)
        auth = (struct slice){query_auth.data, query_auth.len}; /* 2.7: the query is the auth */
    /* kept for sio_socket_auth (REMOTE_FETCH); out of memory just leaves it empty ({}) */
    if ((s->auth = malloc(auth.len)) != NULL) {
        memcpy(s->auth, auth.p, auth.len);
        s->auth_len = auth.len;
    }
    if (srv->cfg.on_connect != NULL)
        srv->cfg.on_connect(srv->cfg.ctx, s, auth.p, auth.len);
    else
        sio_socket_accept(s, NULL, NULL);
    buf_deinit(&query_auth);
}

static void client_packet_in(struct sio_client *c, const struct sio_packet *pkt)
{
    struct sio_server *srv = c->srv;
    if (pkt->type == SIO_CONNECT) {
        handle_connect(c, pkt);
        return;
    }
    struct sio_socket *s = client_socket(c, pkt->nsp);
    if (s == NULL) {
        client_violation(c, "packet for a namespace not joined");
        return;
    }
    switch (pkt->type) {
    case SIO_DISCONNECT:
        sio_socket_end(s, "client namespace disconnect"); /* §2.4: no reply */
        break;
    case SIO_EVENT:
    case SIO_BINARY_EVENT: {
        struct slice event, args;
        char numbuf[32];
        if (!pkt->has_data || !split_event(srv, pkt->data, &event, &args, numbuf)) {
            client_violation(c, "event without a name");
            return;
        }
        if (s->accepted)
            sio_forward_client_event(s, event, args, pkt->has_id, pkt->id);
        else
            sio_queue_event(s, event, args, pkt->has_id, pkt->id);
        break;
    }
    case SIO_ACK:
    case SIO_BINARY_ACK: {
        static const uint8_t empty_array[] = {0x90};
        struct slice args = pkt->has_data ? pkt->data : (struct slice){empty_array, 1};
        if (!pkt->has_id)
            break;
        for (size_t i = 0; i < s->group_len; i++) {
            if (s->group_acks[i].id == pkt->id) {
                struct group_ack g = s->group_acks[i];
                s->group_acks[i] = s->group_acks[--s->group_len];
                g.cb(g.ctx, s, g.id, args);
                return;
            }
        }
        if (id_list_take(&s->server_acks, pkt->id) && srv->cfg.on_ack != NULL)
            srv->cfg.on_ack(srv->cfg.ctx, s, pkt->id, args); /* unknown ids are ignored */
        break;
    }
    default: client_violation(c, "CONNECT_ERROR from a client"); break;
    }
}

static void eio_message_in(void *ctx, struct eio_session *session, void *user, const uint8_t *p,
                           size_t len, bool binary)
{
    struct sio_server *srv = ctx;
    struct sio_client *c = user;
    (void)session;
    if (c->closing)
        return;
    struct sio_packet pkt;
    if (binary) {
        if (c->assembler == NULL) {
            client_violation(c, sio_reason_string(SIO_REASON_UNEXPECTED_BINARY));
            return;
        }
        int rc = sio_assembler_add(c->assembler, p, len);
        if (rc < 0) {
            client_violation(c, sio_reason_string(sio_assembler_reason(c->assembler)));
            return;
        }
        if (rc > 0)
            return; /* more attachments to come */
        buf_reset(&srv->packet);
        if (sio_assembler_finish(c->assembler, &pkt, &srv->packet) != SIOC_OK) {
            client_violation(c, sio_reason_string(sio_assembler_reason(c->assembler)));
            return;
        }
        client_packet_in(c, &pkt);
        if (c->assembler != NULL) {
            sio_assembler_deinit(c->assembler);
            free(c->assembler);
            c->assembler = NULL;
        }
        return;
    }
    if (c->assembler != NULL) {
        client_violation(c, sio_reason_string(SIO_REASON_UNEXPECTED_TEXT));
        return;
    }
    buf_reset(&srv->packet);
    if (sio_packet_decode(c->v4 ? SIO_V4 : SIO_V5, p, len, &pkt, &srv->packet) != SIOC_OK) {
        client_violation(c, sio_reason_string(pkt.reason));
        return;
    }
    if (pkt.type == SIO_BINARY_EVENT || pkt.type == SIO_BINARY_ACK) {
        c->assembler = malloc(sizeof *c->assembler);
        if (c->assembler == NULL) {
            eio_session_close(c->session, "out of memory");
            return;
        }
        sio_assembler_init(c->assembler, srv->cfg.max_payload);
        if (sio_assembler_start(c->assembler, &pkt) != SIOC_OK)
            client_violation(c, sio_reason_string(sio_assembler_reason(c->assembler)));
        return;
    }
    client_packet_in(c, &pkt);
}

/* ---- clients (Engine.IO sessions) ---- */

/* No namespace was joined within connectTimeout (PROTOCOL.md 2.5): close. */
static void connect_timeout(struct sio_client *c)
{
    for (struct sio_socket *s = c->sockets; s != NULL; s = s->next_in_client) {
        if (s->accepted)
            return;
    }
    log_peer(c->srv, "sio.connect_timeout", "sid=%s", eio_session_id(c->session));
    eio_session_close(c->session, "connect timeout");
    c->closing = true;
}

static void connect_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sio_server *srv = arg;
    uint64_t now = deadline_clock_ms();
    struct deadline_node *n;
    while ((n = deadline_pop_expired(&srv->connect_wait, now)) != NULL)
        connect_timeout(container_of(n, struct sio_client, connect_deadline));
    while ((n = deadline_pop_expired(&srv->empty_wait, now)) != NULL)
        nsp_empty_due(srv, container_of(n, struct sio_nsp, empty));
    arm_timer(srv);
}

static void *on_open(void *ctx, struct eio_session *session, const struct http_server_request *req,
                     const char *peer)
{
    struct sio_server *srv = ctx;
    struct sio_client *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->srv = srv;
    c->session = session;
    c->v4 = eio_session_version(session) == EIO_V3;
    c->hs_bytes = sio_handshake_build(&c->hs, req, peer);
    if (c->v4) {
        /* 2.7: the client is connected to "/" at once, without a CONNECT of its own (Node's
         * client.ts setup for protocol 3: no connect timeout); the reply follows the open */
        struct sio_packet root = {.type = SIO_CONNECT, .nsp = {(const uint8_t *)"/", 1}};
        handle_connect(c, &root);
        return c;
    }
    deadline_push(&srv->connect_wait, &c->connect_deadline, deadline_clock_ms());
    arm_timer(srv);
    return c;
}

static void on_close(void *ctx, struct eio_session *session, void *user, const char *reason)
{
    (void)ctx;
    (void)session;
    if (user != NULL)
        sio_client_free(user, reason);
}

void sio_client_free(struct sio_client *c, const char *reason)
{
    c->closing = true;
    while (c->sockets != NULL)
        sio_socket_remove(c->sockets, reason);
    if (c->assembler != NULL) {
        sio_assembler_deinit(c->assembler);
        free(c->assembler);
    }
    deadline_remove(&c->connect_deadline);
    free(c->hs_bytes);
    free(c);
}

/* What either transport (Engine.IO, plain WebSocket) logs goes to the owner's on_log. */
static void on_transport_log(void *ctx, const char *event, const char *detail)
{
    struct sio_server *srv = ctx;
    if (srv->cfg.on_log != NULL)
        srv->cfg.on_log(srv->cfg.ctx, event, detail);
}

/* ---- server ---- */

/* ---- plain WebSocket clients (ws-routes; sio_plain.c opens them) ---- */

#define PLAIN_EVENT "message"

/* One message from a plain client: the event "message" with the string or the bytes. */
static void on_plain_message(void *ctx, struct plain_ws_conn *pc, void *user, const uint8_t *p,
                             size_t len, bool binary)
{
    struct sio_server *srv = ctx;
    struct sio_client *c = user;
    (void)pc;
    struct sio_socket *s = c->sockets;
    if (c->closing || s == NULL || s->ending)
        return;
    buf_reset(&srv->args);
    if (ws_routes_message_args(p, len, binary, &srv->args) != SIOC_OK) {
        sio_client_close(c, WS_CLOSE_INTERNAL_ERROR, "out of memory");
        return;
    }
    struct slice event = {(const uint8_t *)PLAIN_EVENT, sizeof PLAIN_EVENT - 1};
    struct slice args = {srv->args.data, srv->args.len};
    if (s->accepted)
        sio_forward_client_event(s, event, args, false, 0);
    else
        sio_queue_event(s, event, args, false, 0); /* auth backend: until the worker answers */
}

static void on_plain_close(void *ctx, struct plain_ws_conn *pc, void *user, const char *reason)
{
    (void)ctx;
    (void)pc;
    sio_client_free(user, reason);
}

static int plain_init(struct sio_server *srv, const struct eio_server_config *eio)
{
    struct plain_ws_config pcfg = srv->cfg.plain;
    if (pcfg.ping_interval_ms == 0)
        pcfg.ping_interval_ms = eio->ping_interval_ms;
    if (pcfg.ping_timeout_ms == 0)
        pcfg.ping_timeout_ms = eio->ping_timeout_ms;
    if (pcfg.max_payload == 0)
        pcfg.max_payload = eio->max_payload;
    if (pcfg.heartbeat_hold_max_ms == 0)
        pcfg.heartbeat_hold_max_ms = eio->heartbeat_hold_max_ms;
    if (pcfg.out_hard_limit == 0)
        pcfg.out_hard_limit = eio->out_hard_limit;
    pcfg.on_message = on_plain_message;
    pcfg.on_close = on_plain_close;
    pcfg.on_log = on_transport_log;
    pcfg.ctx = srv;
    srv->plain = plain_ws_new(srv->base, &pcfg);
    return srv->plain != NULL ? SIOC_OK : SIOC_ENOMEM;
}

struct sio_server *sio_server_new(struct event_base *base, const struct sio_server_config *cfg,
                                  const struct eio_server_config *eio)
{
    struct sio_server *srv = calloc(1, sizeof *srv);
    if (srv == NULL)
        return NULL;
    srv->base = base;
    srv->cfg = *cfg;
    list_init(&srv->nsps);
    const char *list = cfg->namespaces ? cfg->namespaces : "/";
    srv->any_namespace = strcmp(list, "*") == 0;
    srv->allowed = strdup(list);
    buf_init(&srv->packet, 0);
    buf_init(&srv->text, 0);
    buf_init(&srv->args, 0);
    buf_init(&srv->plain_text, 0);
    random_pool_init(&srv->random);
    deadline_list_init(&srv->connect_wait,
                       cfg->connect_timeout_ms ? cfg->connect_timeout_ms : 45000);
    deadline_list_init(&srv->empty_wait, cfg->empty_namespace_ms ? cfg->empty_namespace_ms
                                                                 : DEFAULT_EMPTY_NAMESPACE_MS);
    srv->timer.ev = evtimer_new(base, connect_timer_cb, srv);
    srv->end_event = event_new(base, -1, 0, end_cb, srv);
    srv->id_counter = (uint32_t)process_random_u64(srv);
    struct eio_server_config ecfg = *eio;
    ecfg.on_open = on_open;
    ecfg.on_message = eio_message_in;
    ecfg.on_close = on_close;
    ecfg.on_log = on_transport_log;
    ecfg.ctx = srv;
    if (srv->allowed == NULL || srv->timer.ev == NULL || srv->end_event == NULL ||
        idmap_init(&srv->sockets, cfg->seed) != SIOC_OK ||
        namemap_init(&srv->nsp_map, cfg->seed ^ 0x6e73706d6170ull) != SIOC_OK ||
        (srv->eio = eio_server_new(base, &ecfg)) == NULL || plain_init(srv, eio) != SIOC_OK) {
        sio_server_free(srv);
        return NULL;
    }
    return srv;
}

void sio_server_free(struct sio_server *srv)
{
    if (srv == NULL)
        return;
    eio_server_free(srv->eio); /* closes every session: on_close frees the clients */
    plain_ws_free(srv->plain); /* the same for plain connections */
    struct list_node *pos;
    while ((pos = list_first(&srv->nsps)) != NULL)
        nsp_free(srv, list_entry(pos, struct sio_nsp, all));
    namemap_deinit(&srv->nsp_map);
    idmap_deinit(&srv->sockets);
    buf_deinit(&srv->packet);
    buf_deinit(&srv->text);
    buf_deinit(&srv->args);
    buf_deinit(&srv->plain_text);
    if (srv->timer.ev != NULL)
        event_free(srv->timer.ev);
    random_pool_wipe(&srv->random);
    if (srv->end_event != NULL)
        event_free(srv->end_event);
    free(srv->ending); /* every socket went with its client above */
    free(srv->allowed);
    free(srv);
}

bool sio_server_handle(struct sio_server *srv, struct http_conn *conn,
                       struct http_server_request *req)
{
    return eio_server_handle(srv->eio, conn, req);
}

void sio_server_close_all(struct sio_server *srv, const char *reason)
{
    eio_server_close_all(srv->eio, reason);
    plain_ws_close_all(srv->plain, WS_CLOSE_GOING_AWAY, reason);
}

struct eio_server *sio_server_eio(struct sio_server *srv)
{
    return srv->eio;
}

size_t sio_server_socket_count(const struct sio_server *srv)
{
    return srv->socket_count;
}

struct sio_socket *sio_server_find_id(struct sio_server *srv, const char *sid, size_t sid_len)
{
    if (sid_len > SIO_SOCKET_ID_LEN + 1 && sid[sid_len - SIO_SOCKET_ID_LEN - 1] == '#') {
        /* 2.7: "<nsp>#<engine sid>", a protocol v4 socket outside "/" */
        size_t nsp_len = sid_len - SIO_SOCKET_ID_LEN - 1;
        struct sio_client *c = eio_server_find_user(srv->eio, sid + nsp_len + 1, SIO_SOCKET_ID_LEN);
        return c != NULL && c->v4 ? client_socket(c, (struct slice){(const uint8_t *)sid, nsp_len})
                                  : NULL;
    }
    struct sio_socket *s =
        container_of_or_null(idmap_find(&srv->sockets, sid, sid_len), struct sio_socket, node);
    return s != NULL && !s->ending ? s : NULL;
}

struct sio_socket *sio_server_find(struct sio_server *srv, const char *nsp, size_t nsp_len,
                                   const char *sid, size_t sid_len)
{
    struct sio_socket *s = sio_server_find_id(srv, sid, sid_len);
    if (s == NULL || s->nsp->len != nsp_len || memcmp(s->nsp->name, nsp, nsp_len) != 0)
        return NULL;
    return s;
}

/* ---- one socket ---- */

void sio_socket_accept(struct sio_socket *s, const char *uid, const char *user_room)
{
    if (s->accepted || s->ending || s->client->closing)
        return;
    struct sio_client *c = s->client;
    /* {"sid":"<20 chars>"} (PROTOCOL.md 2.5), and "pid" with recovery on (as Node); the pid
     * is 20 characters and a node id (at most 255 bytes in all) */
    uint8_t reply[1 + 4 + 1 + SIO_SOCKET_ID_LEN + 4 + 2 + 255] = {0x81, 0xa3, 's', 'i', 'd', 0xb4};
    size_t reply_len = 6 + SIO_SOCKET_ID_LEN;
    memcpy(reply + 6, s->node.id, SIO_SOCKET_ID_LEN);
    size_t pid_len = s->pid != NULL ? strlen(s->pid) : 0;
    if (s->pid != NULL && pid_len <= 255) {
        reply[0] = 0x82;
        static const uint8_t pid_key[4] = {0xa3, 'p', 'i', 'd'};
        memcpy(reply + reply_len, pid_key, sizeof pid_key);
        reply_len += sizeof pid_key;
        if (pid_len < 32) {
            reply[reply_len++] = (uint8_t)(0xa0 | pid_len);
        } else {
            reply[reply_len++] = 0xd9;
            reply[reply_len++] = (uint8_t)pid_len;
        }
        memcpy(reply + reply_len, s->pid, pid_len);
        reply_len += pid_len;
    }
    s->accepted = true;
    if (rooms_add_member(s->nsp->rooms, &s->member, s) == SIOC_OK) {
        s->in_rooms = true;
        const char *id = sio_socket_id(s);
        rooms_join(s->nsp->rooms, &s->member, id, strlen(id)); /* 2.6: own-id room */
    }
    if ((uid == NULL || uid[0] == '\0') && s->uid != NULL)
        uid = s->uid; /* the user its ws-routes path named (sio_server_open_plain) */
    if (uid != NULL && uid[0] != '\0') {
        if (uid != s->uid) {
            free(s->uid);
            s->uid = strdup(uid);
        }
        if (user_room != NULL && s->in_rooms) {
            /* the operator's pattern (e.g. "user:%s") is data, not a format string */
            char room[ROOMS_MAX_NAME];
            size_t n = user_room_format(room, sizeof room, user_room,
                                        (struct slice){(const uint8_t *)uid, strlen(uid)});
            if (n > 0)
                rooms_join(s->nsp->rooms, &s->member, room, n);
            else
                log_peer(c->srv, "sio.user_room_too_long", "uid=%.64s", uid);
        }
    }
    deadline_remove(&c->connect_deadline);
    /* 2.7: protocol v4 replies `40` / `40/nsp,` without a payload */
    send_packet(c, SIO_CONNECT, s->nsp, NULL, 0, false, 0, (struct slice){reply, reply_len},
                !c->v4);
    if (c->srv->cfg.on_accepted != NULL)
        c->srv->cfg.on_accepted(c->srv->cfg.ctx, s);
    /* the CONNECT reply goes before anything the connect handler emits (2.5), then the events
     * the client sent while waiting */
    while (s->pending != NULL && !c->closing) {
        struct pending_event *e = s->pending;
        s->pending = e->next;
        if (s->pending == NULL)
            s->pending_tail = &s->pending;
        s->pending_count--;
        sio_forward_client_event(s, (struct slice){e->bytes, e->event_len},
                                 (struct slice){e->bytes + e->event_len, e->args_len}, e->has_ack,
                                 e->ack_id);
        free(e);
    }
}

void sio_socket_reject(struct sio_socket *s, const char *message, const uint8_t *data,
                       size_t data_len)
{
    if (s->accepted || s->ending)
        return;
    struct sio_client *c = s->client;
    struct buf err;
    buf_init(&err, 0);
    if (c->v4) {
        /* 2.7: Node sends `err.data || err.message` to protocol v4 clients */
        if (data != NULL)
            buf_append(&err, data, data_len);
        else
            mp_write_cstr(&err, message != NULL ? message : "connection refused");
    } else {
        mp_write_map(&err, data != NULL ? 2 : 1);
        mp_write_cstr(&err, "message");
        mp_write_cstr(&err, message != NULL ? message : "connection refused");
        if (data != NULL) {
            mp_write_cstr(&err, "data");
            buf_append(&err, data, data_len);
        }
    }
    if (err.err == SIOC_OK && !c->closing)
        send_packet(c, SIO_CONNECT_ERROR, s->nsp, NULL, 0, false, 0,
                    (struct slice){err.data, err.len}, true);
    buf_deinit(&err);
    free_pending(s);
    sio_socket_end(s, "connect refused");
    if (c->plain != NULL && !c->closing) {
        /* a plain connection is its one socket: refused, it closes (RFC 6455 7.4.1: 1008) */
        c->closing = true;
        sio_client_close(c, WS_CLOSE_POLICY_VIOLATION,
                         message != NULL ? message : "connection refused");
    }
}

bool sio_socket_accepted(const struct sio_socket *s)
{
    return s->accepted;
}

int sio_socket_join(struct sio_socket *s, const void *room, size_t len)
{
    if (!s->in_rooms)
        return SIOC_EINVAL;
    if (rooms_is_member(s->nsp->rooms, &s->member, room, len))
        return SIOC_OK;
    int rc = rooms_join(s->nsp->rooms, &s->member, room, len);
    struct sio_server *srv = s->client->srv;
    if (rc == SIOC_OK && srv->cfg.on_room != NULL)
        srv->cfg.on_room(srv->cfg.ctx, s, room, len, true);
    return rc;
}

bool sio_socket_leave(struct sio_socket *s, const void *room, size_t len)
{
    if (!s->in_rooms || !rooms_leave(s->nsp->rooms, &s->member, room, len))
        return false;
    struct sio_server *srv = s->client->srv;
    if (srv->cfg.on_room != NULL)
        srv->cfg.on_room(srv->cfg.ctx, s, room, len, false);
    return true;
}

void sio_socket_each_room(const struct sio_socket *s,
                          void (*cb)(void *ctx, const uint8_t *room, size_t len, size_t size),
                          void *ctx)
{
    if (s->in_rooms)
        rooms_each_of_member(&s->member, cb, ctx);
}

int sio_socket_emit(struct sio_socket *s, struct slice data)
{
    if (!s->accepted || s->ending || s->client->closing)
        return SIOC_EINVAL;
    return send_packet(s->client, SIO_EVENT, s->nsp, NULL, 0, false, 0, data, true);
}

int64_t sio_socket_emit_with_ack(struct sio_socket *s, struct slice data)
{
    if (!s->accepted || s->ending || s->client->closing)
        return SIOC_EINVAL;
    uint64_t id = s->nsp->ack_counter++;
    int rc = send_packet(s->client, SIO_EVENT, s->nsp, NULL, 0, true, id, data, true);
    if (rc != SIOC_OK)
        return rc;
    if (s->client->plain == NULL) /* a plain client cannot answer: nothing to wait for */
        id_list_add(&s->server_acks, id);
    return (int64_t)id;
}

int sio_socket_ack(struct sio_socket *s, uint64_t ack_id, struct slice args)
{
    if (!s->accepted || s->ending || s->client->closing)
        return SIOC_EINVAL;
    if (!id_list_take(&s->client_acks, ack_id))
        return SIOC_OK; /* §2.4: only the first answer per id is sent */
    return send_packet(s->client, SIO_ACK, s->nsp, NULL, 0, true, ack_id, args, true);
}

void sio_socket_disconnect(struct sio_socket *s, bool close_transport)
{
    struct sio_client *c = s->client;
    if (s->ending)
        return; /* it is leaving already */
    if (c->plain != NULL) {
        /* a plain connection is its one socket: a normal closure (RFC 6455 7.4.1: 1000) */
        sio_socket_end(s, "server namespace disconnect");
        if (!c->closing)
            sio_client_close(c, WS_CLOSE_NORMAL, "server namespace disconnect");
        c->closing = true;
        return;
    }
    if (close_transport && !c->closing) {
        /* Node's client._disconnect: a DISCONNECT for every namespace of the connection, in the
         * order they connected (reference transcripts b and e), then the close. The list is
         * newest first. */
        for (;;) {
            struct sio_socket *oldest = NULL;
            for (struct sio_socket *x = c->sockets; x != NULL; x = x->next_in_client)
                oldest = x->ending ? oldest : x;
            if (oldest == NULL)
                break;
            send_packet(c, SIO_DISCONNECT, oldest->nsp, NULL, 0, false, 0, (struct slice){NULL, 0},
                        false);
            sio_socket_end(oldest, "server namespace disconnect");
        }
        c->closing = true;
        sio_client_close(c, WS_CLOSE_NORMAL, "forced server close");
        return;
    }
    if (!c->closing)
        send_packet(c, SIO_DISCONNECT, s->nsp, NULL, 0, false, 0, (struct slice){NULL, 0}, false);
    sio_socket_end(s, "server namespace disconnect");
}

const char *sio_socket_id(const struct sio_socket *s)
{
    return s->public_id != NULL ? s->public_id : s->node.id;
}

const char *sio_socket_key(const struct sio_socket *s)
{
    return s->node.id;
}

const char *sio_socket_nsp(const struct sio_socket *s)
{
    return s->nsp->name;
}

const char *sio_socket_uid(const struct sio_socket *s)
{
    return s->uid != NULL ? s->uid : "";
}

const struct sio_handshake *sio_socket_handshake(const struct sio_socket *s)
{
    return &s->client->hs;
}

struct slice sio_socket_auth(const struct sio_socket *s)
{
    static const uint8_t empty_map[] = {0x80};
    return s->auth != NULL ? (struct slice){s->auth, s->auth_len} : (struct slice){empty_map, 1};
}

bool sio_socket_protocol_v4(const struct sio_socket *s)
{
    return s->client->v4;
}

void *sio_socket_get_data(const struct sio_socket *s)
{
    return s->data;
}

void sio_socket_set_data(struct sio_socket *s, void *data)
{
    s->data = data;
}

/* ---- connection state recovery (gateway/recovery.h) ---- */

void sio_pid_random(const uint8_t random15[15], char out[SIO_SOCKET_ID_LEN + 1])
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (int i = 0; i < 5; i++) { /* 3 bytes -> 4 characters, base64url like base64id */
        uint32_t v = (uint32_t)random15[3 * i] << 16 | (uint32_t)random15[3 * i + 1] << 8 |
                     random15[3 * i + 2];
        for (int j = 0; j < 4; j++)
            out[4 * i + j] = alphabet[(v >> (18 - 6 * j)) & 63];
    }
    out[SIO_SOCKET_ID_LEN] = '\0';
}

const char *sio_socket_pid(const struct sio_socket *s)
{
    return s->pid;
}

int sio_socket_adopt(struct sio_socket *s, const char *sid, const char *pid)
{
    struct sio_server *srv = s->client->srv;
    if (s->accepted || s->public_id != NULL || s->pid == NULL || strlen(sid) != SIO_SOCKET_ID_LEN)
        return SIOC_EINVAL;
    if (idmap_find(&srv->sockets, sid, SIO_SOCKET_ID_LEN) != NULL)
        return SIOC_ENOTSUP; /* the old socket is still here */
    char *copy = strdup(pid);
    if (copy == NULL)
        return SIOC_ENOMEM;
    free(s->pid);
    s->pid = copy;
    idmap_remove(&srv->sockets, &s->node);
    idmap_insert(&srv->sockets, &s->node, sid);
    return SIOC_OK;
}
