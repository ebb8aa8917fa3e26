/* bridge.c: the worker bridge of bridge.h. Upstream (DESIGN.md §3.2): one envelope per connect,
 * event and disconnect, XADDed (or PUBLISHed) through a COMMAND redis_link whose outage queue is
 * backed by an ordered overflow list that pauses client reads. Replies (§3.3): each P:node:<node>
 * message the subscriber connection (subscriber.h) reads is decoded with envelope_reply_decode and
 * applied through the sio ops table. Backend auth answers are awaited under one deadline list
 * and one timer for every socket. Encoding lives in common/envelope.c, reconnection in
 * common/net/redis_link.c. */
#include "gateway/bridge.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "common/container.h"
#include "common/user_room.h"
#include "common/deadline.h"
#include "common/envelope.h"
#include "common/error.h"
#include "common/idmap.h"
#include "common/list.h"
#include "common/metrics.h"
#include "common/mp.h"
#include "common/net/deadline_timer.h"
#include "common/net/log.h"
#include "common/net/process.h"
#include "common/net/redis_link.h"
#include "gateway/calls.h"
#include "gateway/redis_log.h"
#include "gateway/subscriber.h"

/* XADD key MAXLEN ~ N * + every field/value pair */
#define BRIDGE_MAX_ARGS (6 + 2 * ENVELOPE_MAX_FIELDS)
#define BRIDGE_LOG_ID_MAX 64 /* bytes of a peer-chosen nsp/sid/rid quoted in a log line */

/* An upstream command the link refused (SIOC_ETOOBIG), waiting for on_room_cb, in order. */
struct overflow_entry {
    struct overflow_entry *next;
    unsigned flags;
    int argc;
    size_t lens[BRIDGE_MAX_ARGS];
    size_t bytes;
    uint8_t data[]; /* the arguments back to back */
};

/* A socket awaiting its worker's backend auth answer: in b->pending under its rid (`node`), and
 * in b->auth_wait until auth-timeout. Allocated only meanwhile, so that the state every socket
 * keeps stays small (DESIGN.md §4). */
struct bridge_auth {
    struct idmap_node node;
    struct deadline_node deadline;
    struct bridge_sock *bs;
};

/* Per-socket state in the sio data slot: exists from a written connect entry until the socket
 * is gone or refused. */
struct bridge_sock {
    struct list_node all; /* b->socks: every state, for bridge_free */
    struct sio_socket *sock;
    struct call *calls;       /* worker calls awaiting this client's ack (calls.h) */
    struct bridge_auth *auth; /* while awaiting the backend auth answer */
};

struct bridge {
    struct sio_server *srv;
    const struct bridge_sio_ops *ops;
    struct log *log;
    char *prefix, *node, *user_room;
    enum bridge_upstream upstream;
    uint32_t shards;
    uint64_t maxlen;
    char maxlen_text[24];
    bool auth_backend;
    size_t overflow_limit;
    void (*on_pause)(void *ctx, bool paused);
    void *ctx;

    struct redis_link *cmd;
    struct subscriber *sub; /* borrowed: the replies' connection */
    bool replies_up;        /* sub has confirmed its subscriptions: cmd is not held */
    struct event *drain_event;

    struct idmap pending; /* bridge_auth by rid */
    bool pending_ready;
    struct deadline_list auth_wait; /* auth-timeout, oldest first */
    struct deadline_timer auth_timer;
    struct list_node socks;
    uint32_t rid_nonce;
    uint64_t rid_counter;

    struct overflow_entry *of_head, *of_tail;
    size_t of_count, of_bytes;
    bool paused;
    size_t inflight; /* accepted by the link, reply not yet seen */
    void (*drain_cb)(void *ctx);
    void *drain_ctx;

    struct buf key, hs, map; /* scratch, reused per entry */

    uint64_t *m_written, *m_errors, *m_overflow, *m_dropped;
    uint64_t *m_applied, *m_reply_errors, *m_unknown;
    uint64_t fallback[7]; /* counters when no registry is given */
};

/* ---- the real Socket.IO layer ---- */

static const struct bridge_sio_ops default_ops = {
    .server_find = sio_server_find,
    .socket_accept = sio_socket_accept,
    .socket_reject = sio_socket_reject,
    .socket_accepted = sio_socket_accepted,
    .socket_join = sio_socket_join,
    .socket_leave = sio_socket_leave,
    .socket_emit = sio_socket_emit,
    .socket_emit_with_ack = sio_socket_emit_with_ack,
    .socket_ack = sio_socket_ack,
    .socket_disconnect = sio_socket_disconnect,
    .socket_id = sio_socket_id,
    .socket_nsp = sio_socket_nsp,
    .socket_uid = sio_socket_uid,
    .socket_handshake = sio_socket_handshake,
    .socket_get_data = sio_socket_get_data,
    .socket_set_data = sio_socket_set_data,
};

const struct bridge_sio_ops *bridge_sio_ops_default(void)
{
    return &default_ops;
}

/* ---- small helpers ---- */

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t random_u64(void)
{
    return process_random_u64(&random_u64);
}

static struct slice cstr_slice(const char *s)
{
    return (struct slice){(const uint8_t *)(s != NULL ? s : ""), s != NULL ? strlen(s) : 0};
}

static int log_len(struct slice s)
{
    return (int)(s.len < BRIDGE_LOG_ID_MAX ? s.len : BRIDGE_LOG_ID_MAX);
}

static void set_paused(struct bridge *b, bool paused)
{
    if (b->paused == paused)
        return;
    b->paused = paused;
    log_write(b->log, paused ? LOG_LEVEL_WARN : LOG_LEVEL_INFO,
              paused ? "upstream.pause" : "upstream.resume", "overflow=%zu bytes=%zu", b->of_count,
              b->of_bytes);
    if (b->on_pause != NULL)
        b->on_pause(b->ctx, paused);
}

static void maybe_drained(struct bridge *b)
{
    if (b->drain_cb != NULL && bridge_pending(b) == 0)
        event_active(b->drain_event, EV_TIMEOUT, 0);
}

/* ---- upstream submission: link first, then the overflow list, in order ---- */

static void upstream_reply_cb(void *ctx, const struct redisReply *reply,
                              enum redis_link_result result)
{
    struct bridge *b = ctx;
    b->inflight--;
    if (result == REDIS_LINK_LOST) {
        /* only PUBLISH (pubsub mode, at-most-once) is sent without REDIS_LINK_RETRY */
        (*b->m_errors)++;
        log_write(b->log, LOG_LEVEL_WARN, "upstream.lost", "connection lost before the reply");
    } else if (reply->type == REDIS_REPLY_ERROR) {
        (*b->m_errors)++;
        log_write(b->log, LOG_LEVEL_WARN, "upstream.error", "%.*s", (int)reply->len, reply->str);
    } else {
        (*b->m_written)++;
    }
    maybe_drained(b);
}

static int link_send(struct bridge *b, int argc, const char *const *argv, const size_t *lens,
                     unsigned flags)
{
    int r = redis_link_command_argv(b->cmd, argc, argv, lens, flags, upstream_reply_cb, b);
    if (r == SIOC_OK)
        b->inflight++;
    return r;
}

static void drop_entry(struct bridge *b, int err, const char *why)
{
    (*b->m_dropped)++;
    log_write(b->log, LOG_LEVEL_WARN, "upstream.drop", "%s: %s (overflow=%zu bytes=%zu)", why,
              sioc_strerror(err), b->of_count, b->of_bytes);
}

static int overflow_push(struct bridge *b, int argc, const char *const *argv, const size_t *lens,
                         unsigned flags)
{
    size_t bytes = 0;
    for (int i = 0; i < argc; i++)
        bytes += lens[i];
    if (b->of_bytes + bytes > b->overflow_limit) {
        drop_entry(b, SIOC_ETOOBIG, "overflow list full");
        return SIOC_ETOOBIG;
    }
    struct overflow_entry *e = malloc(sizeof *e + bytes);
    if (e == NULL) {
        drop_entry(b, SIOC_ENOMEM, "overflow entry");
        return SIOC_ENOMEM;
    }
    e->next = NULL;
    e->flags = flags;
    e->argc = argc;
    e->bytes = bytes;
    size_t off = 0;
    for (int i = 0; i < argc; i++) {
        e->lens[i] = lens[i];
        if (lens[i] > 0)
            memcpy(e->data + off, argv[i], lens[i]);
        off += lens[i];
    }
    if (b->of_tail != NULL)
        b->of_tail->next = e;
    else
        b->of_head = e;
    b->of_tail = e;
    b->of_count++;
    b->of_bytes += bytes;
    (*b->m_overflow)++;
    set_paused(b, true);
    return SIOC_OK;
}

/* Resubmits the overflow list in order until the link refuses again (its next on_room_cb
 * resumes) or the list is empty (client reads resume). */
static void overflow_flush(struct bridge *b)
{
    while (b->of_head != NULL) {
        struct overflow_entry *e = b->of_head;
        const char *argv[BRIDGE_MAX_ARGS];
        size_t off = 0;
        for (int i = 0; i < e->argc; i++) {
            argv[i] = (const char *)e->data + off;
            off += e->lens[i];
        }
        int r = link_send(b, e->argc, argv, e->lens, e->flags);
        if (r == SIOC_ETOOBIG)
            break;
        if (r != SIOC_OK)
            drop_entry(b, r, "resubmit");
        b->of_head = e->next;
        if (b->of_head == NULL)
            b->of_tail = NULL;
        b->of_count--;
        b->of_bytes -= e->bytes;
        free(e);
    }
    if (b->of_head == NULL)
        set_paused(b, false);
    maybe_drained(b);
}

/* DESIGN.md §3.2: while anything waits in the overflow list, later entries queue behind it so
 * the stream order is the order of the client's packets. */
static int upstream_submit(struct bridge *b, int argc, const char *const *argv, const size_t *lens,
                           unsigned flags)
{
    if (b->of_head == NULL) {
        int r = link_send(b, argc, argv, lens, flags);
        if (r == SIOC_OK)
            return SIOC_OK;
        if (r != SIOC_ETOOBIG) {
            drop_entry(b, r, "redis command");
            return r;
        }
    }
    return overflow_push(b, argc, argv, lens, flags);
}

/* Writes one entry according to the upstream mode. Returns SIOC_OK when it was handed to Redis
 * or queued (or mode off), else the error (already counted and logged). */
static int write_entry(struct bridge *b, const struct envelope_up *up)
{
    if (b->upstream == BRIDGE_UPSTREAM_OFF)
        return SIOC_OK;
    const char *argv[BRIDGE_MAX_ARGS];
    size_t lens[BRIDGE_MAX_ARGS];
    int argc = 0;
    int r;
    buf_reset(&b->key);
    if (b->upstream == BRIDGE_UPSTREAM_STREAM) {
        struct envelope_fields f;
        r = envelope_up_to_fields(up, &f);
        if (r != SIOC_OK) {
            drop_entry(b, r, "encode entry");
            return r;
        }
        uint32_t shard = envelope_shard(up->sid.p, up->sid.len, b->shards);
        envelope_key_up_stream(&b->key, b->prefix, up->nsp, shard, b->shards);
        if (b->key.err != SIOC_OK) {
            drop_entry(b, b->key.err, "stream key");
            return b->key.err;
        }
        argv[argc] = "XADD", lens[argc++] = 4;
        argv[argc] = (const char *)b->key.data, lens[argc++] = b->key.len;
        if (b->maxlen > 0) {
            argv[argc] = "MAXLEN", lens[argc++] = 6;
            argv[argc] = "~", lens[argc++] = 1;
            argv[argc] = b->maxlen_text, lens[argc++] = strlen(b->maxlen_text);
        }
        argv[argc] = "*", lens[argc++] = 1;
        for (size_t i = 0; i < f.n; i++) {
            argv[argc] = (const char *)f.kv[i].p;
            lens[argc++] = f.kv[i].len;
        }
        /* at-least-once: an XADD lost in flight is written again on reconnect (§3.2) */
        return upstream_submit(b, argc, argv, lens, REDIS_LINK_RETRY);
    }
    buf_reset(&b->map);
    r = envelope_up_encode_map(up, &b->map);
    if (r != SIOC_OK) {
        drop_entry(b, r, "encode map");
        return r;
    }
    envelope_key_up_channel(&b->key, b->prefix, up->nsp);
    if (b->key.err != SIOC_OK) {
        drop_entry(b, b->key.err, "channel name");
        return b->key.err;
    }
    argv[argc] = "PUBLISH", lens[argc++] = 7;
    argv[argc] = (const char *)b->key.data, lens[argc++] = b->key.len;
    argv[argc] = (const char *)b->map.data, lens[argc++] = b->map.len;
    /* pub/sub is at-most-once (§3.2): a PUBLISH lost in flight is not repeated */
    return upstream_submit(b, argc, argv, lens, 0);
}

static void entry_init(struct bridge *b, struct sio_socket *sock, enum envelope_up_type type,
                       struct envelope_up *up)
{
    memset(up, 0, sizeof *up);
    up->type = type;
    up->nsp = cstr_slice(b->ops->socket_nsp(sock));
    up->sid = cstr_slice(b->ops->socket_id(sock));
    up->node = cstr_slice(b->node);
    up->uid = cstr_slice(b->ops->socket_uid(sock));
    up->ts = wall_ms();
}

/* The `hs` map of a connect entry (§3.2): address, headers, query, url, time (ms), secure. */
static void encode_handshake(struct buf *out, const struct sio_handshake *h)
{
    static const uint8_t empty_map = 0x80;
    buf_reset(out);
    mp_write_map(out, 6);
    mp_write_cstr(out, "address");
    mp_write_cstr(out, h != NULL && h->address != NULL ? h->address : "");
    mp_write_cstr(out, "headers");
    if (h != NULL && h->headers.len > 0)
        buf_append(out, h->headers.p, h->headers.len);
    else
        buf_append(out, &empty_map, 1);
    mp_write_cstr(out, "query");
    if (h != NULL && h->query.len > 0)
        buf_append(out, h->query.p, h->query.len);
    else
        buf_append(out, &empty_map, 1);
    mp_write_cstr(out, "url");
    mp_write_cstr(out, h != NULL && h->url != NULL ? h->url : "");
    mp_write_cstr(out, "time");
    mp_write_int(out, h != NULL ? h->issued_ms : 0);
    mp_write_cstr(out, "secure");
    mp_write_bool(out, h != NULL && h->secure);
}

static int write_connect(struct bridge *b, struct sio_socket *sock, const uint8_t *auth,
                         size_t auth_len, const char *rid, bool recovered)
{
    static const uint8_t empty_map = 0x80;
    struct envelope_up up;
    entry_init(b, sock, ENVELOPE_UP_CONNECT, &up);
    up.auth = auth_len > 0 ? (struct slice){auth, auth_len} : (struct slice){&empty_map, 1};
    encode_handshake(&b->hs, b->ops->socket_handshake(sock));
    if (b->hs.err != SIOC_OK) {
        drop_entry(b, b->hs.err, "handshake map");
        return b->hs.err;
    }
    up.hs = (struct slice){b->hs.data, b->hs.len};
    if (rid != NULL) {
        up.has_rid = true;
        up.rid = (struct slice){(const uint8_t *)rid, BRIDGE_RID_LEN};
    }
    up.recovered = recovered;
    return write_entry(b, &up);
}

static void write_disconnect(struct bridge *b, struct sio_socket *sock, const char *reason)
{
    struct envelope_up up;
    entry_init(b, sock, ENVELOPE_UP_DISCONNECT, &up);
    up.reason = cstr_slice(reason);
    write_entry(b, &up);
}

/* ---- worker calls (docs/contracts.md "Calls") ---- */

static void call_result_cb(void *ctx, const struct redisReply *reply, enum redis_link_result result)
{
    struct bridge *b = ctx;
    if (result == REDIS_LINK_LOST || reply->type == REDIS_REPLY_ERROR) {
        (*b->m_reply_errors)++;
        log_write(b->log, LOG_LEVEL_WARN, "call.publish", "%s",
                  result == REDIS_LINK_LOST ? "connection lost" : reply->str);
    }
}

/* Publishes the answer to a call on channel `to`: `res` holds the client's ack arguments or an
 * error. Retried across a Redis reconnect, like upstream entries. */
static void publish_call_result(struct bridge *b, struct slice to,
                                const struct envelope_call_result *res)
{
    buf_reset(&b->map);
    int r = envelope_call_result_encode(res, &b->map);
    const char *argv[3] = {"PUBLISH", (const char *)to.p, (const char *)b->map.data};
    size_t lens[3] = {7, to.len, b->map.len};
    if (r == SIOC_OK)
        r = redis_link_command_argv(b->cmd, 3, argv, lens, REDIS_LINK_RETRY, call_result_cb, b);
    if (r != SIOC_OK) {
        (*b->m_reply_errors)++;
        log_write(b->log, LOG_LEVEL_WARN, "call.publish", "sid=%.*s call=%.*s: %s",
                  log_len(res->sid), (const char *)res->sid.p, log_len(res->id),
                  (const char *)res->id.p, sioc_strerror(r));
    }
}

/* The answer for a pending call of `sock`: `args` (the client's ack) or `error`. */
static void finish_call(struct bridge *b, struct sio_socket *sock, const struct call *c,
                        const struct slice *args, const char *error)
{
    struct envelope_call_result res = {
        .id = call_id(c),
        .nsp = cstr_slice(b->ops->socket_nsp(sock)),
        .sid = cstr_slice(b->ops->socket_id(sock)),
        .has_args = args != NULL,
        .args = args != NULL ? *args : (struct slice){NULL, 0},
        .error = cstr_slice(error),
    };
    publish_call_result(b, call_to(c), &res);
}

/* A call that cannot be made is answered with `why` at once: the worker never waits in vain. */
static void refuse_call(struct bridge *b, const struct envelope_reply *r, const char *why, int e)
{
    log_write(b->log, LOG_LEVEL_WARN, "call.refused", "sid=%.*s call=%.*s: %s%s%s", log_len(r->sid),
              (const char *)r->sid.p, log_len(r->call_id), (const char *)r->call_id.p, why,
              e != SIOC_OK ? ": " : "", e != SIOC_OK ? sioc_strerror(e) : "");
    struct envelope_call_result res = {
        .id = r->call_id, .nsp = r->nsp, .sid = r->sid, .error = cstr_slice(why)};
    publish_call_result(b, r->call_to, &res);
}

/* A reply's "call": emits the event with an ack id and remembers where the answer goes. */
static void start_call(struct bridge *b, struct sio_socket *sock, const struct envelope_reply *r)
{
    struct bridge_sock *bs = b->ops->socket_get_data(sock);
    if (bs == NULL) { /* no state: its connect entry was never written */
        refuse_call(b, r, BRIDGE_CALL_UNAVAILABLE, SIOC_OK);
        return;
    }
    int64_t ack_id = b->ops->socket_emit_with_ack(sock, r->call_emit);
    if (ack_id < 0) {
        refuse_call(b, r, BRIDGE_CALL_UNAVAILABLE, (int)ack_id);
        return;
    }
    int e = calls_add(&bs->calls, (uint64_t)ack_id, r->call_id, r->call_to);
    if (e != SIOC_OK)
        refuse_call(b, r, e == SIOC_ETOOBIG ? BRIDGE_CALL_TOO_MANY : BRIDGE_CALL_UNAVAILABLE, e);
}

/* ---- per-socket state ---- */

/* The socket no longer awaits a backend auth answer (answered, timed out or gone). */
static void auth_done(struct bridge *b, struct bridge_sock *bs)
{
    if (bs->auth == NULL)
        return;
    deadline_remove(&bs->auth->deadline);
    idmap_remove(&b->pending, &bs->auth->node);
    free(bs->auth);
    bs->auth = NULL;
}

static void sock_state_free(struct bridge *b, struct bridge_sock *bs)
{
    struct call *c;
    while ((c = calls_pop(&bs->calls)) != NULL)
        free(c);
    auth_done(b, bs);
    list_remove(&bs->all);
    free(bs);
}

/* Forgets a socket's state before it is refused (sio_socket_reject removes the socket, and its
 * on_disconnect then finds no state: the worker knows it was refused). */
static void sock_state_drop(struct bridge *b, struct bridge_sock *bs)
{
    b->ops->socket_set_data(bs->sock, NULL);
    sock_state_free(b, bs);
}

/* auth-timeout passed without the worker's answer (DESIGN.md §3.3). */
static void auth_timeout(struct bridge *b, struct bridge_sock *bs)
{
    struct sio_socket *sock = bs->sock;
    log_write(b->log, LOG_LEVEL_INFO, "auth.timeout", "nsp=%s sid=%s rid=%.*s",
              b->ops->socket_nsp(sock), b->ops->socket_id(sock), IDMAP_ID_LEN, bs->auth->node.id);
    /* a worker that answers late must still learn that this socket is gone */
    write_disconnect(b, sock, BRIDGE_AUTH_TIMEOUT_MESSAGE);
    sock_state_drop(b, bs);
    b->ops->socket_reject(sock, BRIDGE_AUTH_TIMEOUT_MESSAGE, NULL, 0);
}

static void arm_auth_timer(struct bridge *b)
{
    struct deadline_list *lists[] = {&b->auth_wait};
    deadline_timer_arm(&b->auth_timer, lists, 1);
}

/* The one timer of every pending backend auth: rejects what expired, in order. */
static void auth_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct bridge *b = arg;
    uint64_t now = deadline_clock_ms();
    struct deadline_node *n;
    while ((n = deadline_pop_expired(&b->auth_wait, now)) != NULL)
        auth_timeout(b, container_of(n, struct bridge_auth, deadline)->bs);
    arm_auth_timer(b);
}

static void on_connect_entry(struct bridge *b, struct sio_socket *sock, const uint8_t *auth,
                             size_t auth_len, bool needs_answer, bool recovered);

void bridge_on_connect(struct bridge *b, struct sio_socket *sock, const uint8_t *auth,
                       size_t auth_len, bool needs_answer)
{
    on_connect_entry(b, sock, auth, auth_len, needs_answer, false);
}

void bridge_on_recovered(struct bridge *b, struct sio_socket *sock)
{
    on_connect_entry(b, sock, NULL, 0, false, true);
}

void bridge_on_park(struct bridge *b, struct sio_socket *sock)
{
    struct bridge_sock *bs = b->ops->socket_get_data(sock);
    if (bs == NULL)
        return;
    struct call *c;
    while ((c = calls_pop(&bs->calls)) != NULL) {
        finish_call(b, sock, c, NULL, BRIDGE_CALL_DISCONNECTED);
        free(c);
    }
    sock_state_drop(b, bs);
}

void bridge_write_disconnect(struct bridge *b, const char *nsp, const char *sid, const char *uid,
                             const char *reason)
{
    struct envelope_up up;
    memset(&up, 0, sizeof up);
    up.type = ENVELOPE_UP_DISCONNECT;
    up.nsp = cstr_slice(nsp);
    up.sid = cstr_slice(sid);
    up.node = cstr_slice(b->node);
    up.uid = cstr_slice(uid);
    up.ts = wall_ms();
    up.reason = cstr_slice(reason);
    write_entry(b, &up);
}

static void on_connect_entry(struct bridge *b, struct sio_socket *sock, const uint8_t *auth,
                             size_t auth_len, bool needs_answer, bool recovered)
{
    struct bridge_sock *bs = calloc(1, sizeof *bs);
    char rid[BRIDGE_RID_LEN + 1];
    if (bs != NULL && needs_answer) {
        snprintf(rid, sizeof rid, "%08x%012llx", (unsigned)b->rid_nonce,
                 (unsigned long long)(b->rid_counter++ & 0xffffffffffffull));
        bs->auth = calloc(1, sizeof *bs->auth);
    }
    if (bs == NULL || (needs_answer && bs->auth == NULL) ||
        write_connect(b, sock, auth, auth_len, needs_answer ? rid : NULL, recovered) != SIOC_OK) {
        if (bs != NULL)
            free(bs->auth);
        free(bs);
        if (needs_answer)
            b->ops->socket_reject(sock, BRIDGE_AUTH_UNAVAILABLE_MESSAGE, NULL, 0);
        return;
    }
    bs->sock = sock;
    list_push_tail(&b->socks, &bs->all);
    if (needs_answer) {
        bs->auth->bs = bs;
        idmap_insert(&b->pending, &bs->auth->node, rid);
        deadline_push(&b->auth_wait, &bs->auth->deadline, deadline_clock_ms());
        arm_auth_timer(b);
    }
    b->ops->socket_set_data(sock, bs);
}

void bridge_on_event(struct bridge *b, struct sio_socket *sock, struct slice event,
                     struct slice args, bool has_ack, uint64_t ack_id)
{
    struct envelope_up up;
    entry_init(b, sock, ENVELOPE_UP_EVENT, &up);
    up.event = event;
    up.args = args;
    up.has_ack = has_ack;
    up.ack = ack_id;
    write_entry(b, &up);
}

void bridge_on_disconnect(struct bridge *b, struct sio_socket *sock, const char *reason)
{
    struct bridge_sock *bs = b->ops->socket_get_data(sock);
    if (bs == NULL)
        return;
    write_disconnect(b, sock, reason);
    struct call *c;
    while ((c = calls_pop(&bs->calls)) != NULL) {
        finish_call(b, sock, c, NULL, BRIDGE_CALL_DISCONNECTED);
        free(c);
    }
    sock_state_drop(b, bs);
}

void bridge_on_ack(struct bridge *b, struct sio_socket *sock, uint64_t ack_id, struct slice args)
{
    struct bridge_sock *bs = b->ops->socket_get_data(sock);
    struct call *c = bs != NULL ? calls_take(&bs->calls, ack_id) : NULL;
    if (c == NULL) {
        (*b->m_unknown)++;
        log_write(b->log, LOG_LEVEL_DEBUG, "call.unknown_ack", "sid=%s id=%llu",
                  b->ops->socket_id(sock), (unsigned long long)ack_id);
        return;
    }
    finish_call(b, sock, c, &args, NULL);
    free(c);
}

/* ---- replies (DESIGN.md §3.3) ---- */

static void apply_rooms(struct bridge *b, struct sio_socket *sock, const struct envelope_list *l,
                        bool join)
{
    struct envelope_iter it;
    struct slice room;
    envelope_iter_init(&it, l);
    while (envelope_iter_next(&it, &room)) {
        if (!join) {
            b->ops->socket_leave(sock, room.p, room.len);
            continue;
        }
        int r = b->ops->socket_join(sock, room.p, room.len);
        if (r != SIOC_OK)
            log_write(b->log, LOG_LEVEL_WARN, "reply.join", "sid=%s room=%.*s: %s",
                      b->ops->socket_id(sock), log_len(room), (const char *)room.p,
                      sioc_strerror(r));
    }
}

static void apply_socket_reply(struct bridge *b, const struct envelope_reply *r)
{
    struct sio_socket *sock = b->ops->server_find(b->srv, (const char *)r->nsp.p, r->nsp.len,
                                                  (const char *)r->sid.p, r->sid.len);
    if (sock == NULL || !b->ops->socket_accepted(sock)) {
        /* the socket left (or never got here): normal under at-least-once delivery */
        (*b->m_unknown)++;
        log_write(b->log, LOG_LEVEL_DEBUG, "reply.unknown_socket", "nsp=%.*s sid=%.*s",
                  log_len(r->nsp), (const char *)r->nsp.p, log_len(r->sid), (const char *)r->sid.p);
        if (r->has_call)
            refuse_call(b, r, BRIDGE_CALL_DISCONNECTED, SIOC_OK);
        return;
    }
    /* §3.3 order: join, leave, ack, emit, disconnect (Flask-SocketIO handler semantics) */
    apply_rooms(b, sock, &r->join, true);
    apply_rooms(b, sock, &r->leave, false);
    if (r->has_ack) {
        int e = b->ops->socket_ack(sock, r->ack_id, r->ack_args);
        if (e != SIOC_OK)
            log_write(b->log, LOG_LEVEL_WARN, "reply.ack", "sid=%s id=%llu: %s",
                      b->ops->socket_id(sock), (unsigned long long)r->ack_id, sioc_strerror(e));
    }
    struct envelope_iter it;
    struct slice item;
    envelope_iter_init(&it, &r->emit);
    while (envelope_iter_next(&it, &item)) {
        int e = b->ops->socket_emit(sock, item);
        if (e != SIOC_OK)
            log_write(b->log, LOG_LEVEL_WARN, "reply.emit", "sid=%s: %s", b->ops->socket_id(sock),
                      sioc_strerror(e));
    }
    if (r->has_call)
        start_call(b, sock, r);
    (*b->m_applied)++;
    if (r->disconnect)
        b->ops->socket_disconnect(sock, false); /* last: the socket is gone afterwards */
}

static void apply_connect_reply(struct bridge *b, const struct envelope_reply *r)
{
    struct idmap_node *n = idmap_find(&b->pending, (const char *)r->rid.p, r->rid.len);
    if (n == NULL) {
        /* answered after auth-timeout, or after the client left */
        (*b->m_unknown)++;
        log_write(b->log, LOG_LEVEL_DEBUG, "auth.unknown_rid", "rid=%.*s", log_len(r->rid),
                  (const char *)r->rid.p);
        return;
    }
    struct bridge_sock *bs = container_of(n, struct bridge_auth, node)->bs;
    struct sio_socket *sock = bs->sock;
    char *uid = NULL;
    bool ok = r->ok;
    if (ok && r->has_uid && r->uid.len > 0 && (uid = slice_strdup(r->uid)) == NULL) {
        (*b->m_reply_errors)++;
        log_write(b->log, LOG_LEVEL_WARN, "auth.bad_uid", "rid=%.*s: uid unusable", IDMAP_ID_LEN,
                  n->id);
        ok = false;
    }
    if (ok) {
        /* the state stays (no longer pending): its disconnect entry is still owed */
        auth_done(b, bs);
        b->ops->socket_accept(sock, uid, b->user_room);
        free(uid);
        /* §3.3: CONNECT reply first, then rooms */
        apply_rooms(b, sock, &r->rooms, true);
        (*b->m_applied)++;
        return;
    }
    /* ok:false (or an unusable uid): CONNECT_ERROR {message, data} */
    char *message = !r->ok && r->has_error ? slice_strdup(r->error_message) : NULL;
    struct slice data = {NULL, 0};
    if (!r->ok && r->has_error && r->has_error_data)
        data = r->error_data;
    else if (!r->ok && r->has_data)
        data = r->data;
    sock_state_drop(b, bs);
    b->ops->socket_reject(sock, message != NULL ? message : BRIDGE_DEFAULT_REJECT_MESSAGE, data.p,
                          data.len);
    free(message);
    (*b->m_applied)++;
}

bool bridge_apply_reply(struct bridge *b, const uint8_t *p, size_t len)
{
    struct envelope_reply r;
    long n = envelope_reply_decode(p, len, &r);
    if (n < 0) {
        (*b->m_reply_errors)++;
        log_write(b->log, LOG_LEVEL_WARN, "reply.invalid", "%zu bytes: %s", len,
                  sioc_strerror((int)n));
        return true;
    }
    if (r.t == ENVELOPE_REPLY)
        apply_socket_reply(b, &r);
    else if (r.t == ENVELOPE_REPLY_CONNECT)
        apply_connect_reply(b, &r);
    else
        return false; /* ENVELOPE_SNAPSHOT_REQUEST: the registry's */
    return true;
}

/* ---- link callbacks ---- */

static void cmd_event_cb(void *ctx, enum redis_link_event ev, const char *detail)
{
    redis_log_event(((struct bridge *)ctx)->log, "bridge-command", ev, detail);
}

static void cmd_state_cb(void *ctx, bool connected)
{
    if (connected)
        overflow_flush(ctx);
}

static void cmd_room_cb(void *ctx)
{
    overflow_flush(ctx);
}

/* DESIGN.md §3.3: replies (acks) come on P:node:<node>, pub/sub, lost when nobody listens. An
 * entry written while the subscriber is not subscribed (at start, or when its connection came
 * back after the command link's) could be answered into the void; so upstream waits, held in
 * the command link's queue (and then the overflow list, pausing reads), until Redis has
 * confirmed the subscriptions. */
static void sub_state_cb(void *ctx, bool connected)
{
    struct bridge *b = ctx;
    b->replies_up = connected;
    redis_link_hold(b->cmd, !connected);
    if (connected)
        overflow_flush(b);
}

static void drain_event_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct bridge *b = arg;
    void (*cb)(void *) = b->drain_cb;
    if (cb == NULL || bridge_pending(b) != 0)
        return;
    b->drain_cb = NULL;
    cb(b->drain_ctx); /* last: the bridge may be freed inside */
}

/* ---- metrics ---- */

static double gauge_queue_bytes(void *ctx)
{
    struct bridge *b = ctx;
    struct redis_link_stats st;
    redis_link_get_stats(b->cmd, &st);
    return (double)(st.queue_bytes + b->of_bytes);
}

static double gauge_pending(void *ctx)
{
    return (double)bridge_pending(ctx);
}

static double gauge_cmd_connected(void *ctx)
{
    return redis_link_connected(((struct bridge *)ctx)->cmd) ? 1.0 : 0.0;
}

static double gauge_sub_connected(void *ctx)
{
    return subscriber_connected(((struct bridge *)ctx)->sub) ? 1.0 : 0.0;
}

static bool register_metrics(struct bridge *b, struct metrics *m)
{
    static const char replies_help[] = "Worker replies on P:node:<node> by outcome.";
    for (size_t i = 0; i < sizeof b->fallback / sizeof b->fallback[0]; i++)
        b->fallback[i] = 0;
    b->m_written = &b->fallback[0];
    b->m_errors = &b->fallback[1];
    b->m_overflow = &b->fallback[2];
    b->m_dropped = &b->fallback[3];
    b->m_applied = &b->fallback[4];
    b->m_reply_errors = &b->fallback[5];
    b->m_unknown = &b->fallback[6];
    if (m == NULL)
        return true;
    b->m_written = metrics_counter(m, "sioc_upstream_written_total",
                                   "Upstream entries Redis confirmed.", NULL);
    b->m_errors =
        metrics_counter(m, "sioc_upstream_errors_total",
                        "Upstream entries Redis refused or lost in flight (pubsub).", NULL);
    b->m_overflow = metrics_counter(m, "sioc_upstream_overflow_total",
                                    "Upstream entries the Redis queue refused, kept in the "
                                    "overflow list while client reads pause.",
                                    NULL);
    b->m_dropped =
        metrics_counter(m, "sioc_upstream_dropped_total",
                        "Upstream entries dropped (overflow list full or unencodable).", NULL);
    b->m_applied = metrics_counter(m, "sioc_replies_total", replies_help, "result=\"applied\"");
    b->m_reply_errors =
        metrics_counter(m, "sioc_replies_total", replies_help, "result=\"invalid\"");
    b->m_unknown = metrics_counter(m, "sioc_replies_total", replies_help, "result=\"unknown\"");
    if (b->m_written == NULL || b->m_errors == NULL || b->m_overflow == NULL ||
        b->m_dropped == NULL || b->m_applied == NULL || b->m_reply_errors == NULL ||
        b->m_unknown == NULL)
        return false;
    static const char conn_help[] = "1 while the bridge's Redis link is connected.";
    return metrics_gauge_fn(m, "sioc_upstream_queue_bytes",
                            "Upstream bytes waiting for Redis (link queue + overflow list).", NULL,
                            gauge_queue_bytes, b) == SIOC_OK &&
           metrics_gauge_fn(m, "sioc_upstream_queue_entries",
                            "Upstream entries not yet confirmed by Redis.", NULL, gauge_pending,
                            b) == SIOC_OK &&
           metrics_gauge_fn(m, "sioc_bridge_redis_connected", conn_help, "link=\"command\"",
                            gauge_cmd_connected, b) == SIOC_OK &&
           metrics_gauge_fn(m, "sioc_bridge_redis_connected", conn_help, "link=\"subscriber\"",
                            gauge_sub_connected, b) == SIOC_OK;
}

/* ---- lifetime ---- */

struct bridge *bridge_new(struct event_base *base, const struct bridge_config *cfg,
                          struct sio_server *srv, struct log *log, struct metrics *metrics)
{
    if (cfg->redis_url == NULL || cfg->node_id == NULL || cfg->node_id[0] == '\0' ||
        cfg->subscriber == NULL || (cfg->auth_backend && cfg->upstream == BRIDGE_UPSTREAM_OFF) ||
        (cfg->user_room != NULL && !user_room_valid(cfg->user_room)))
        return NULL;
    struct redis_url url;
    if (redis_url_parse(cfg->redis_url, &url) != SIOC_OK)
        return NULL;
    struct bridge *b = calloc(1, sizeof *b);
    if (b == NULL)
        return NULL;
    b->srv = srv;
    b->ops = cfg->ops != NULL ? cfg->ops : &default_ops;
    b->log = log;
    b->upstream = cfg->upstream;
    b->shards = cfg->shards > 0 ? cfg->shards : 1;
    b->maxlen = cfg->maxlen;
    snprintf(b->maxlen_text, sizeof b->maxlen_text, "%llu", (unsigned long long)cfg->maxlen);
    b->auth_backend = cfg->auth_backend;
    b->sub = cfg->subscriber;
    list_init(&b->socks);
    deadline_list_init(&b->auth_wait, cfg->auth_timeout_ms > 0 ? cfg->auth_timeout_ms
                                                               : BRIDGE_DEFAULT_AUTH_TIMEOUT_MS);
    b->overflow_limit =
        cfg->overflow_limit_bytes > 0 ? cfg->overflow_limit_bytes : BRIDGE_DEFAULT_OVERFLOW_LIMIT;
    b->on_pause = cfg->on_pause;
    b->ctx = cfg->ctx;
    b->rid_nonce = (uint32_t)random_u64();
    buf_init(&b->key, 0);
    buf_init(&b->hs, 0);
    buf_init(&b->map, 0);
    b->prefix = strdup(cfg->key_prefix != NULL ? cfg->key_prefix : ENVELOPE_DEFAULT_PREFIX);
    b->node = strdup(cfg->node_id);
    b->user_room = cfg->user_room != NULL ? strdup(cfg->user_room) : NULL;
    if (b->prefix == NULL || b->node == NULL || (cfg->user_room != NULL && b->user_room == NULL))
        goto fail;
    if (idmap_init(&b->pending, cfg->seed != 0 ? cfg->seed : random_u64()) != SIOC_OK)
        goto fail;
    b->pending_ready = true;

    struct redis_link_config lc = {
        .url = cfg->redis_url,
        .tls = cfg->redis_tls,
        .mode = REDIS_LINK_COMMAND,
        .jitter_seed = random_u64(),
        .queue_limit_bytes = cfg->queue_limit_bytes,
        .ctx = b,
        .on_state_cb = cmd_state_cb,
        .on_event_cb = cmd_event_cb,
        .on_room_cb = cmd_room_cb,
    };
    b->cmd = redis_link_new(base, &lc);
    b->drain_event = event_new(base, -1, 0, drain_event_cb, b);
    b->auth_timer.ev = evtimer_new(base, auth_timer_cb, b);
    if (b->cmd == NULL || b->drain_event == NULL || b->auth_timer.ev == NULL ||
        !register_metrics(b, metrics))
        goto fail;
    /* upstream waits until the subscriptions are confirmed (sub_state_cb) */
    b->replies_up = subscriber_up(b->sub);
    redis_link_hold(b->cmd, !b->replies_up);
    subscriber_attach(b->sub, b->cmd, sub_state_cb, b);
    return b;
fail:
    /* a metric registered before the failure keeps pointing at b: the gateway exits then */
    bridge_free(b);
    return NULL;
}

void bridge_free(struct bridge *b)
{
    if (b == NULL)
        return;
    /* sockets still holding state (the sio_server should have been freed first) */
    if (b->socks.next != NULL) { /* NULL: failed before list_init */
        struct list_node *pos, *tmp;
        list_for_each_safe(pos, tmp, &b->socks)
        {
            sock_state_free(b, container_of(pos, struct bridge_sock, all));
        }
    }
    while (b->of_head != NULL) {
        struct overflow_entry *e = b->of_head;
        b->of_head = e->next;
        free(e);
    }
    if (b->sub != NULL && b->cmd != NULL)
        subscriber_attach(b->sub, NULL, NULL, NULL); /* the probe link goes */
    redis_link_free(b->cmd);
    if (b->auth_timer.ev != NULL)
        event_free(b->auth_timer.ev);
    if (b->drain_event != NULL)
        event_free(b->drain_event);
    if (b->pending_ready)
        idmap_deinit(&b->pending);
    buf_deinit(&b->key);
    buf_deinit(&b->hs);
    buf_deinit(&b->map);
    free(b->prefix);
    free(b->node);
    free(b->user_room);
    free(b);
}

bool bridge_ready(const struct bridge *b)
{
    /* both directions: replies and adapter messages are pub/sub, lost while the subscriber is
     * away, so a node is not ready before its subscriber connection is back; and Redis
     * answers: a stall of more than the subscriber's liveness timeout is not ready */
    return redis_link_connected(b->cmd) && b->replies_up && subscriber_ready(b->sub);
}

size_t bridge_pending(const struct bridge *b)
{
    return b->of_count + b->inflight;
}

void bridge_drain(struct bridge *b, void (*cb)(void *ctx), void *ctx)
{
    b->drain_cb = cb;
    b->drain_ctx = ctx;
    maybe_drained(b);
}
