/* recovery.c: connection state recovery across gateways (see recovery.h; docs/contracts.md).
 * Keys (P = key-prefix, O = the origin node, the gateway that made the pid, named by the pid
 * after its 20 random characters): P:rec:{O}:n (hash pid -> session of connected sockets,
 * wherever they are now), P:rec:{O}:s:<pid> (a parked session), P:rec:<nsp> (missed-packet
 * stream, written by the publishers), P:rec:window (tells publishers recovery is on). A session
 * value is "<nsp>\0<holder node>\0" followed by the MessagePack array [sid, uid, [room, ...]].
 * Every gateway refreshes the TTL of the origin hashes of the sockets it holds. */
#include "gateway/recovery.h"

#include "common/adapter_rec.h"

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/container.h"
#include "common/user_room.h"
#include "common/adapter.h"
#include "common/buf.h"
#include "common/deadline.h"
#include "common/error.h"
#include "common/list.h"
#include "common/metrics.h"
#include "common/mp.h"
#include "common/net/deadline_timer.h"
#include "common/net/log.h"
#include "common/net/redis_link.h"

#define BEAT_MS 2000
#define MAX_PID_LEN 128
#define MAX_OFFSET_LEN 41 /* "<u64>-<u64>" */
#define MAX_RESTORE_BYTES ((size_t)16 << 20)

/* Claims a session: the parked key first, else the node hash (its gateway died); the
 * namespace must match. KEYS: s-key, n-hash; ARGV: pid, nsp. */
/* The holder named in a session value v (between its first two NULs), as Lua. */
#define HOLDER_OF(v)                                                                               \
    "local a = string.find(" v ", '\\0', 1, true) "                                                \
    "local b = a and string.find(" v ", '\\0', a + 1, true) "                                      \
    "local holder = b and string.sub(" v ", a + 1, b - 1) "

/* Claims a session: the parked key first, else the origin hash (its gateway died, or the old
 * connection is half-open there), whose holder must have beaten within the window
 * (P:rec:{O}:hb:<holder>): a stale one is removed instead. The namespace must match.
 * KEYS: s-key, n-hash; ARGV: pid, nsp, "P:rec:{O}:hb:". */
static const char claim_script[] =
    "local v = redis.call('GET', KEYS[1]) local parked = true "
    "if not v then "
    "  v = redis.call('HGET', KEYS[2], ARGV[1]) parked = false "
    "  if v then " HOLDER_OF(
        "v") "    if not holder or redis.call('EXISTS', ARGV[3] .. holder) == 0 then "
             "      redis.call('HDEL', KEYS[2], ARGV[1]) return false end "
             "  end "
             "end "
             "if not v or string.sub(v, 1, #ARGV[2] + 1) ~= ARGV[2] .. '\\0' then return false end "
             "if parked then redis.call('DEL', KEYS[1]) else redis.call('HDEL', KEYS[2], ARGV[1]) "
             "end "
             "return v";

/* Removes from this node's hash, a few fields per beat, the sessions whose holder has not
 * beaten for the window (a killed gateway whose clients never came back). KEYS: n-hash; ARGV:
 * cursor, "P:rec:{O}:hb:", count. Returns the next cursor. */
static const char prune_script[] =
    "local r = redis.call('HSCAN', KEYS[1], ARGV[1], 'COUNT', ARGV[3]) local f = r[2] "
    "for i = 1, #f, 2 do local v = f[i + 1] " HOLDER_OF(
        "v") "  if not holder or redis.call('EXISTS', ARGV[2] .. holder) == 0 then "
             "    redis.call('HDEL', KEYS[1], f[i]) end "
             "end "
             "return r[1]";

/* Parks a session, only if this node still holds it (a socket recovered elsewhere while its
 * old connection lingered here has moved: nothing to park, no disconnect to report).
 * KEYS: n-hash, s-key; ARGV: pid, holder, value, px. */
#define HOLDER_CHECK                                                                               \
    "local v = redis.call('HGET', KEYS[1], ARGV[1]) "                                              \
    "if not v then return 0 end "                                                                  \
    "local a = string.find(v, '\\0', 1, true) "                                                    \
    "local b = a and string.find(v, '\\0', a + 1, true) "                                          \
    "if not b or string.sub(v, a + 1, b - 1) ~= ARGV[2] then return 0 end "                        \
    "redis.call('HDEL', KEYS[1], ARGV[1]) "
static const char park_script[] =
    HOLDER_CHECK "redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4]) return 1";
/* The same without parking (a socket gone for good). KEYS: n-hash; ARGV: pid, holder. */
static const char forget_script[] = HOLDER_CHECK "return 1";

/* Origin nodes of the pids of the sockets held here, with how many: their hashes' TTLs are
 * refreshed on every beat. */
struct origin {
    struct origin *next;
    size_t count;
    char cursor[24]; /* the prune scan's HSCAN cursor in this origin's hash */
    char name[];
};

struct parked {
    struct deadline_node due;
    struct recovery *r;
    char *pid, *sid, *nsp, *uid, *reason;
};

struct restore {
    struct list_node node; /* in r->restores */
    struct recovery *r;
    struct sio_socket *sock; /* NULL once the socket went away */
    int stage;               /* 1 validate, 2 claim, 3 tail */
    bool offset_found;
    char pid[MAX_PID_LEN + 1];
    char last[MAX_OFFSET_LEN + 1]; /* the newest stream id delivered */
    char from[MAX_OFFSET_LEN + 1]; /* the client's offset */
    struct buf msgs;               /* stage 1's messages: u32 length, then the bytes */
    size_t nmsgs;
    struct buf session; /* the claimed session (after the nsp and NUL) */
};

struct recovery {
    struct recovery_config cfg;
    struct sio_server *srv;
    struct log *log;
    struct redis_link *link;
    char *prefix, *node, *user_room;
    struct list_node restores; /* in progress, newest first */
    struct origin *origins;
    char cursor[24];   /* the prune scan's HSCAN cursor in this node's hash */
    char pruning[256]; /* the origin whose hash a prune step is scanning now ("" = none) */
    size_t prune_turn;
    struct deadline_list parked;
    size_t nparked;
    struct deadline_timer timer;
    struct event *beat;
    struct buf scratch, key, key2;
    uint64_t *m_recovered, *m_failed, *m_parked, *m_expired;
};

/* ---- small helpers ---- */

static void cmd(struct recovery *r, int argc, const char *const *argv, const size_t *lens,
                redis_link_reply_cb *cb, void *ctx)
{
    int rc = redis_link_command_argv(r->link, argc, argv, lens, 0, cb, ctx);
    if (rc != SIOC_OK)
        log_write(r->log, LOG_LEVEL_WARN, "recovery.redis", "%s not sent: %s", argv[0],
                  sioc_strerror(rc));
}

static void log_reply(void *ctx, const struct redisReply *reply, enum redis_link_result res)
{
    struct recovery *r = ctx;
    if (res == REDIS_LINK_LOST || reply->type == REDIS_REPLY_ERROR)
        log_write(r->log, LOG_LEVEL_WARN, "recovery.redis", "%s",
                  res == REDIS_LINK_LOST ? "connection lost" : reply->str);
}

/* P:rec:{<node>}:n, or with pid P:rec:{<node>}:s:<pid>. */
static void session_key(struct buf *out, const char *prefix, const char *node, size_t node_len,
                        const char *pid)
{
    buf_reset(out);
    buf_append(out, prefix, strlen(prefix));
    buf_append(out, ":rec:{", 6);
    buf_append(out, node, node_len);
    if (pid == NULL) {
        buf_append(out, "}:n", 4); /* with the NUL */
        return;
    }
    buf_append(out, "}:s:", 4);
    buf_append(out, pid, strlen(pid) + 1);
}

static bool stream_id_parse(const uint8_t *p, size_t len, uint64_t *ms, uint64_t *seq)
{
    uint64_t v[2] = {0, 0};
    int part = 0;
    size_t digits = 0;
    if (len == 0 || len > MAX_OFFSET_LEN)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '-' && part == 0 && digits > 0) {
            part = 1;
            digits = 0;
        } else if (p[i] >= '0' && p[i] <= '9' && digits < 19) {
            v[part] = v[part] * 10 + (uint64_t)(p[i] - '0');
            digits++;
        } else {
            return false;
        }
    }
    *ms = v[0];
    *seq = v[1];
    return part == 1 && digits > 0;
}

/* ---- sessions of connected sockets ---- */

struct rooms_out {
    struct buf *b;
    const char *sid;
    uint32_t n;
};

static void count_room(void *ctx, const uint8_t *room, size_t len, size_t size)
{
    struct rooms_out *o = ctx;
    (void)size;
    if (len != strlen(o->sid) || memcmp(room, o->sid, len) != 0)
        o->n++;
}

static void write_room(void *ctx, const uint8_t *room, size_t len, size_t size)
{
    struct rooms_out *o = ctx;
    (void)size;
    if (len != strlen(o->sid) || memcmp(room, o->sid, len) != 0)
        mp_write_str(o->b, room, len);
}

/* "<nsp>\0<holder>\0" [sid, uid, [rooms but the own id]]; false when too many rooms. */
static bool session_encode(struct buf *b, struct sio_socket *sock, const char *holder)
{
    const char *nsp = sio_socket_nsp(sock);
    buf_reset(b);
    buf_append(b, nsp, strlen(nsp) + 1);
    buf_append(b, holder, strlen(holder) + 1);
    struct rooms_out o = {b, sio_socket_id(sock), 0};
    sio_socket_each_room(sock, count_room, &o);
    if (o.n > RECOVERY_MAX_ROOMS)
        return false;
    mp_write_array(b, 3);
    mp_write_cstr(b, o.sid);
    mp_write_cstr(b, sio_socket_uid(sock));
    mp_write_array(b, o.n);
    sio_socket_each_room(sock, write_room, &o);
    return b->err == SIOC_OK;
}

/* P:rec:{<origin>}:hb: (the holders' beat keys of one origin's sessions), NUL-terminated. */
static void hb_prefix(struct buf *out, const char *prefix, const char *origin)
{
    buf_reset(out);
    buf_append(out, prefix, strlen(prefix));
    buf_append(out, ":rec:{", 6);
    buf_append(out, origin, strlen(origin));
    buf_append(out, "}:hb:", 6);
}

/* SET P:rec:{<origin>}:hb:<this node> PX window + grace: this node holds sessions of that
 * origin and lives. */
static void holder_beat(struct recovery *r, const char *origin)
{
    char px[24];
    snprintf(px, sizeof px, "%u", r->cfg.window_ms + ADAPTER_REC_GRACE_MS);
    hb_prefix(&r->key2, r->prefix, origin);
    r->key2.len--;
    buf_append(&r->key2, r->node, strlen(r->node) + 1);
    const char *argv[5] = {"SET", (const char *)r->key2.data, "1", "PX", px};
    cmd(r, 5, argv, NULL, log_reply, r);
}

/* The node named by a pid (what follows its random part). */
static const char *pid_origin(const char *pid)
{
    return pid + SIO_SOCKET_ID_LEN;
}

static void origin_add(struct recovery *r, const char *name, int delta)
{
    struct origin **pp = &r->origins;
    for (; *pp != NULL; pp = &(*pp)->next)
        if (strcmp((*pp)->name, name) == 0)
            break;
    if (*pp == NULL && delta > 0) {
        struct origin *o = calloc(1, sizeof *o + strlen(name) + 1);
        if (o == NULL)
            return; /* its hash is then refreshed by nobody but its own node */
        memcpy(o->name, name, strlen(name) + 1);
        *pp = o;
        holder_beat(r, name);
    }
    if (*pp == NULL)
        return;
    if (delta > 0) {
        (*pp)->count++;
    } else if (--(*pp)->count == 0) {
        struct origin *o = *pp;
        *pp = o->next;
        free(o);
    }
}

static void session_write(struct recovery *r, struct sio_socket *sock)
{
    const char *pid = sio_socket_pid(sock);
    if (pid == NULL || !sio_socket_accepted(sock))
        return;
    session_key(&r->key, r->prefix, pid_origin(pid), strlen(pid_origin(pid)), NULL);
    if (!session_encode(&r->scratch, sock, r->node)) {
        const char *argv[3] = {"HDEL", (const char *)r->key.data, pid};
        cmd(r, 3, argv, NULL, log_reply, r);
        return;
    }
    const char *argv[4] = {"HSET", (const char *)r->key.data, pid, (const char *)r->scratch.data};
    size_t lens[4] = {4, r->key.len - 1, strlen(pid), r->scratch.len};
    cmd(r, 4, argv, lens, log_reply, r);
}

void recovery_on_accepted(struct recovery *r, struct sio_socket *sock)
{
    const char *pid = sio_socket_pid(sock);
    if (pid == NULL)
        return;
    origin_add(r, pid_origin(pid), 1);
    session_write(r, sock);
}

void recovery_on_room(struct recovery *r, struct sio_socket *sock)
{
    struct list_node *pos, *tmp;
    list_for_each_safe(pos, tmp, &r->restores)
    {
        if (container_of(pos, struct restore, node)->sock == sock)
            return; /* written once the restore has joined them all */
    }
    session_write(r, sock);
}

/* ---- parking ---- */

static bool recoverable(const char *reason)
{
    static const char *const reasons[] = {"transport error",      "transport close",
                                          "forced close",         "ping timeout",
                                          "server shutting down", "forced server close"};
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
        if (strcmp(reason, reasons[i]) == 0)
            return true;
    return false;
}

static void parked_free(struct parked *p)
{
    free(p->pid);
    free(p->sid);
    free(p->nsp);
    free(p->uid);
    free(p->reason);
    free(p);
}

static void arm(struct recovery *r)
{
    struct deadline_list *lists[1] = {&r->parked};
    deadline_timer_arm(&r->timer, lists, 1);
}

static void forget_restore(struct recovery *r, struct sio_socket *sock)
{
    struct list_node *pos, *tmp;
    list_for_each_safe(pos, tmp, &r->restores)
    {
        struct restore *q = container_of(pos, struct restore, node);
        if (q->sock == sock)
            q->sock = NULL;
    }
}

bool recovery_on_disconnect(struct recovery *r, struct sio_socket *sock, const char *reason)
{
    forget_restore(r, sock);
    const char *pid = sio_socket_pid(sock);
    if (pid == NULL || !sio_socket_accepted(sock))
        return false;
    const char *origin = pid_origin(pid);
    origin_add(r, origin, -1);
    session_key(&r->key, r->prefix, origin, strlen(origin), NULL);
    struct parked *p = NULL;
    if (recoverable(reason) && r->nparked < RECOVERY_MAX_PARKED &&
        session_encode(&r->scratch, sock, r->node) && (p = calloc(1, sizeof *p)) != NULL) {
        p->r = r;
        p->pid = strdup(pid);
        p->sid = strdup(sio_socket_id(sock));
        p->nsp = strdup(sio_socket_nsp(sock));
        p->uid = strdup(sio_socket_uid(sock));
        p->reason = strdup(reason);
        if (!p->pid || !p->sid || !p->nsp || !p->uid || !p->reason) {
            parked_free(p);
            p = NULL;
        }
    }
    if (p == NULL) {
        /* gone for good: its session too, unless it moved to another gateway meanwhile */
        const char *argv[6] = {"EVAL", forget_script, "1", (const char *)r->key.data, pid, r->node};
        cmd(r, 6, argv, NULL, log_reply, r);
        return false;
    }
    session_key(&r->key2, r->prefix, origin, strlen(origin), pid);
    char px[24];
    snprintf(px, sizeof px, "%u", r->cfg.window_ms + ADAPTER_REC_GRACE_MS);
    const char *argv[9] = {"EVAL",
                           park_script,
                           "2",
                           (const char *)r->key.data,
                           (const char *)r->key2.data,
                           pid,
                           r->node,
                           (const char *)r->scratch.data,
                           px};
    size_t lens[9] = {4,
                      strlen(park_script),
                      1,
                      r->key.len - 1,
                      r->key2.len - 1,
                      strlen(pid),
                      strlen(r->node),
                      r->scratch.len,
                      strlen(px)};
    cmd(r, 9, argv, lens, log_reply, r);
    r->nparked++;
    (*r->m_parked)++;
    deadline_push(&r->parked, &p->due, deadline_clock_ms());
    arm(r);
    return true;
}

static void expire_reply(void *ctx, const struct redisReply *reply, enum redis_link_result res)
{
    struct parked *p = ctx;
    struct recovery *r = p->r;
    if (res == REDIS_LINK_REPLY && reply->type == REDIS_REPLY_INTEGER && reply->integer == 1) {
        (*r->m_expired)++;
        r->cfg.on_expired(r->cfg.ctx, p->nsp, p->sid, p->uid, p->reason);
    } else if (res == REDIS_LINK_LOST || reply->type != REDIS_REPLY_INTEGER) {
        /* unknown: report it gone rather than never (workers dedupe a disconnect) */
        r->cfg.on_expired(r->cfg.ctx, p->nsp, p->sid, p->uid, p->reason);
    }
    parked_free(p);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct recovery *r = arg;
    r->timer.at = 0;
    struct deadline_node *n;
    while ((n = deadline_pop_expired(&r->parked, deadline_clock_ms())) != NULL) {
        struct parked *p = container_of(n, struct parked, due);
        r->nparked--;
        session_key(&r->key2, r->prefix, pid_origin(p->pid), strlen(pid_origin(p->pid)), p->pid);
        const char *argv[2] = {"DEL", (const char *)r->key2.data};
        if (redis_link_command_argv(r->link, 2, argv, NULL, 0, expire_reply, p) != SIOC_OK) {
            r->cfg.on_expired(r->cfg.ctx, p->nsp, p->sid, p->uid, p->reason);
            parked_free(p);
        }
    }
    arm(r);
}

static char *origin_cursor(struct recovery *r, const char *origin)
{
    if (strcmp(origin, r->node) == 0)
        return r->cursor;
    for (struct origin *o = r->origins; o != NULL; o = o->next)
        if (strcmp(o->name, origin) == 0)
            return o->cursor;
    return NULL; /* no longer held here */
}

static void prune_reply(void *ctx, const struct redisReply *reply, enum redis_link_result res)
{
    struct recovery *r = ctx;
    char *cursor = origin_cursor(r, r->pruning);
    r->pruning[0] = '\0';
    if (res == REDIS_LINK_REPLY && reply->type == REDIS_REPLY_STRING && reply->len < 24) {
        if (cursor != NULL)
            memcpy(cursor, reply->str, reply->len + 1);
    } else {
        log_reply(r, reply, res);
    }
}

/* One step, per beat, of the scan of the hashes this node keeps alive (its own, then in turn
 * those of the origins whose sessions it holds) for sessions whose holder is dead. */
static void prune(struct recovery *r)
{
    if (r->pruning[0] != '\0')
        return; /* the last step is still out */
    const char *origin = r->node;
    size_t n = 0, turn = r->prune_turn++;
    for (struct origin *o = r->origins; o != NULL; o = o->next)
        n++;
    if (n > 0 && turn % (n + 1) != 0) {
        struct origin *o = r->origins;
        for (size_t i = 1; i < turn % (n + 1); i++)
            o = o->next;
        origin = o->name;
    }
    const char *cursor = origin_cursor(r, origin);
    if (cursor == NULL || strlen(origin) >= sizeof r->pruning)
        return;
    memcpy(r->pruning, origin, strlen(origin) + 1);
    session_key(&r->key, r->prefix, origin, strlen(origin), NULL);
    hb_prefix(&r->key2, r->prefix, origin);
    const char *argv[7] = {"EVAL",
                           prune_script,
                           "1",
                           (const char *)r->key.data,
                           cursor[0] ? cursor : "0",
                           (const char *)r->key2.data,
                           "200"};
    if (redis_link_command_argv(r->link, 7, argv, NULL, 0, prune_reply, r) != SIOC_OK)
        r->pruning[0] = '\0';
}

static void beat(struct recovery *r)
{
    char window[24], px[24];
    snprintf(window, sizeof window, "%u", r->cfg.window_ms);
    snprintf(px, sizeof px, "%u", r->cfg.window_ms + ADAPTER_REC_GRACE_MS);
    buf_reset(&r->scratch);
    buf_append(&r->scratch, r->prefix, strlen(r->prefix));
    buf_append(&r->scratch, ":rec:window", 12);
    const char *set[5] = {"SET", (const char *)r->scratch.data, window, "PX", "10000"};
    if (redis_link_connected(r->link)) { /* skipped, not queued, while Redis is away */
        cmd(r, 5, set, NULL, log_reply, r);
        session_key(&r->key, r->prefix, r->node, strlen(r->node), NULL);
        const char *exp[3] = {"PEXPIRE", (const char *)r->key.data, px};
        cmd(r, 3, exp, NULL, log_reply, r);
        holder_beat(r, r->node);
        for (struct origin *o = r->origins; o != NULL; o = o->next) {
            if (strcmp(o->name, r->node) == 0)
                continue;
            session_key(&r->key, r->prefix, o->name, strlen(o->name), NULL);
            exp[1] = (const char *)r->key.data;
            cmd(r, 3, exp, NULL, log_reply, r);
            holder_beat(r, o->name);
        }
        prune(r);
    }
}

static void beat_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    beat(arg);
}

/* Publishers learn that recovery is on as soon as Redis is there. */
static void link_state_cb(void *ctx, bool connected)
{
    if (connected)
        beat(ctx);
}

/* ---- restore ---- */

static void restore_free(struct restore *q)
{
    list_remove(&q->node);
    buf_deinit(&q->msgs);
    buf_deinit(&q->session);
    free(q);
}

static void restore_fail(struct restore *q, const char *why)
{
    struct recovery *r = q->r;
    struct sio_socket *sock = q->sock;
    (*r->m_failed)++;
    if (sock != NULL)
        log_write(r->log, LOG_LEVEL_INFO, "recovery.refused", "nsp=%s pid=%.24s...: %s",
                  sio_socket_nsp(sock), q->pid, why);
    restore_free(q);
    if (sock != NULL)
        r->cfg.on_fallback(r->cfg.ctx, sock);
}

static bool slice_eq(struct slice a, struct slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

/* Does a packet with these opts reach a socket in `rooms` (Node's shouldIncludePacket)? */
static bool selects(const struct adapter_opts *o, const struct slice *rooms, size_t n)
{
    bool in = o->rooms.count == 0, out = false;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < o->rooms.count && !in; j++)
            in = slice_eq(rooms[i], o->rooms.names[j]);
        for (size_t j = 0; j < o->except.count && !out; j++)
            out = slice_eq(rooms[i], o->except.names[j]);
    }
    return in && !out;
}

/* The session's rooms as slices into q->session: own id, user room, then the rest. */
static size_t session_rooms(struct restore *q, struct slice *rooms, char *user_room, size_t cap,
                            struct slice *sid, struct slice *uid)
{
    struct mp_reader rd;
    struct mp_item it;
    size_t n = 0;
    mp_reader_init(&rd, q->session.data, q->session.len);
    if (mp_read(&rd, &it) != SIOC_OK || it.kind != MP_ARRAY || it.len != 3)
        return 0;
    if (mp_read(&rd, &it) != SIOC_OK || it.kind != MP_STR || it.len != SIO_SOCKET_ID_LEN)
        return 0;
    *sid = (struct slice){it.data, it.len};
    rooms[n++] = *sid;
    if (mp_read(&rd, &it) != SIOC_OK || it.kind != MP_STR || it.len > 256)
        return 0;
    *uid = (struct slice){it.data, it.len};
    const char *pattern = q->r->user_room;
    if (uid->len > 0 && pattern != NULL) {
        size_t len = user_room_format(user_room, 512, pattern, *uid);
        if (len > 0)
            rooms[n++] = (struct slice){(const uint8_t *)user_room, len};
    }
    if (mp_read(&rd, &it) != SIOC_OK || it.kind != MP_ARRAY || it.len > cap - n)
        return 0;
    for (uint32_t count = it.len; count > 0; count--) {
        if (mp_read(&rd, &it) != SIOC_OK || it.kind != MP_STR)
            return 0;
        rooms[n++] = (struct slice){it.data, it.len};
    }
    return n;
}

/* The adapter message of one stream entry [id, [a, pre, b, post]]: pre, the id as a
 * MessagePack str, post. */
static bool entry_message(const struct redisReply *e, struct buf *out, char *id, size_t idcap)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING || e->element[1]->type != REDIS_REPLY_ARRAY ||
        e->element[0]->len >= idcap)
        return false;
    const struct redisReply *f = e->element[1];
    const struct redisReply *pre = NULL, *post = NULL;
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
        if (f->element[i]->type != REDIS_REPLY_STRING ||
            f->element[i + 1]->type != REDIS_REPLY_STRING)
            return false;
        if (f->element[i]->len == 1 && f->element[i]->str[0] == 'a')
            pre = f->element[i + 1];
        else if (f->element[i]->len == 1 && f->element[i]->str[0] == 'b')
            post = f->element[i + 1];
    }
    if (pre == NULL || post == NULL)
        return false;
    memcpy(id, e->element[0]->str, e->element[0]->len);
    id[e->element[0]->len] = '\0';
    buf_append(out, pre->str, pre->len);
    mp_write_str(out, id, e->element[0]->len);
    buf_append(out, post->str, post->len);
    return out->err == SIOC_OK;
}

/* Emits one stored message if the session's rooms select it. */
static void deliver(struct restore *q, const uint8_t *msg, size_t len, const struct slice *rooms,
                    size_t nrooms)
{
    struct adapter_broadcast b;
    if (adapter_broadcast_decode(msg, len, &b) < 0 || b.packet.type != 2)
        return;
    if (selects(&b.opts, rooms, nrooms))
        sio_socket_emit(q->sock, b.packet.data);
}

static void tail_reply(void *ctx, const struct redisReply *reply, enum redis_link_result res)
{
    struct restore *q = ctx;
    struct recovery *r = q->r;
    if (q->sock == NULL) {
        restore_free(q);
        return;
    }
    struct slice rooms[RECOVERY_MAX_ROOMS + 2], sid, uid;
    char user_room[512];
    size_t nrooms = session_rooms(q, rooms, user_room, RECOVERY_MAX_ROOMS + 2, &sid, &uid);
    if (res == REDIS_LINK_REPLY && reply->type == REDIS_REPLY_ARRAY) {
        char id[MAX_OFFSET_LEN + 1];
        for (size_t i = 0; i < reply->elements; i++) {
            buf_reset(&r->scratch);
            if (entry_message(reply->element[i], &r->scratch, id, sizeof id)) {
                deliver(q, r->scratch.data, r->scratch.len, rooms, nrooms);
                memcpy(q->last, id, sizeof id);
            }
        }
    } else {
        log_write(r->log, LOG_LEVEL_WARN, "recovery.tail", "sid=%s: %s", sio_socket_id(q->sock),
                  res == REDIS_LINK_LOST ? "connection lost" : "bad reply");
    }
    struct sio_socket *sock = q->sock;
    char last[MAX_OFFSET_LEN + 1];
    memcpy(last, q->last, sizeof last);
    restore_free(q);
    session_write(r, sock);
    /* may close the connection (hold overflow): the socket may be gone after it */
    sio_socket_release(sock, last, false);
}

static void claim_reply(void *ctx, const struct redisReply *reply, enum redis_link_result res)
{
    struct restore *q = ctx;
    struct recovery *r = q->r;
    if (q->sock == NULL) {
        restore_free(q);
        return;
    }
    if (res != REDIS_LINK_REPLY || reply->type != REDIS_REPLY_STRING) {
        restore_fail(q, res == REDIS_LINK_REPLY && reply->type == REDIS_REPLY_NIL
                            ? "no session (expired, or another namespace)"
                            : "Redis error");
        return;
    }
    const char *nul = memchr(reply->str, '\0', reply->len);
    if (nul != NULL)
        nul = memchr(nul + 1, '\0', reply->len - (size_t)(nul + 1 - reply->str));
    if (nul == NULL) {
        restore_fail(q, "bad session");
        return;
    }
    buf_append(&q->session, nul + 1, reply->len - (size_t)(nul + 1 - reply->str));
    struct slice rooms[RECOVERY_MAX_ROOMS + 2], sid, uid;
    char user_room[512];
    size_t nrooms = session_rooms(q, rooms, user_room, RECOVERY_MAX_ROOMS + 2, &sid, &uid);
    char sidz[SIO_SOCKET_ID_LEN + 1], uidz[257];
    if (nrooms == 0 || q->session.err != SIOC_OK) {
        restore_fail(q, "bad session");
        return;
    }
    memcpy(sidz, sid.p, sid.len);
    sidz[sid.len] = '\0';
    memcpy(uidz, uid.p, uid.len);
    uidz[uid.len] = '\0';
    if (sio_socket_adopt(q->sock, sidz, q->pid) != SIOC_OK) {
        restore_fail(q, "the old socket is still connected here");
        return;
    }
    /* from here the socket is the recovered one: accept, rooms, missed packets, live ones */
    struct sio_socket *sock = q->sock;
    sio_socket_hold(sock);
    sio_socket_accept(sock, uidz, r->user_room);
    for (size_t i = 1; i < nrooms; i++)
        sio_socket_join(sock, rooms[i].p, rooms[i].len);
    (*r->m_recovered)++;
    r->cfg.on_recovered(r->cfg.ctx, sock);
    log_write(r->log, LOG_LEVEL_INFO, "recovery.restored",
              "nsp=%s sid=%s rooms=%zu after=%s read=%zu (more may follow)", sio_socket_nsp(sock),
              sidz, nrooms - 1, q->from, q->nmsgs);
    size_t off = 0;
    for (size_t i = 0; i < q->nmsgs && q->sock != NULL; i++) {
        uint32_t len;
        memcpy(&len, q->msgs.data + off, 4);
        deliver(q, q->msgs.data + off + 4, len, rooms, nrooms);
        off += 4 + len;
    }
    if (q->sock == NULL) { /* closed while sending */
        restore_free(q);
        return;
    }
    /* what was published after the first read: read again, then release the held ones */
    q->stage = 3;
    buf_reset(&r->key);
    buf_append(&r->key, r->prefix, strlen(r->prefix));
    buf_append(&r->key, ":rec:", 5);
    buf_append(&r->key, sio_socket_nsp(sock), strlen(sio_socket_nsp(sock)) + 1);
    char from[MAX_OFFSET_LEN + 2], count[16];
    snprintf(from, sizeof from, "(%s", q->last);
    snprintf(count, sizeof count, "%d", RECOVERY_MAX_PACKETS);
    const char *argv[6] = {"XRANGE", (const char *)r->key.data, from, "+", "COUNT", count};
    if (redis_link_command_argv(r->link, 6, argv, NULL, 0, tail_reply, q) != SIOC_OK)
        tail_reply(q, NULL, REDIS_LINK_LOST);
}

static void offset_reply(void *ctx, const struct redisReply *reply, enum redis_link_result res)
{
    struct restore *q = ctx;
    q->offset_found =
        res == REDIS_LINK_REPLY && reply->type == REDIS_REPLY_ARRAY && reply->elements == 1;
}

static void range_reply(void *ctx, const struct redisReply *reply, enum redis_link_result res)
{
    struct restore *q = ctx;
    struct recovery *r = q->r;
    if (q->sock == NULL) {
        restore_free(q);
        return;
    }
    if (res != REDIS_LINK_REPLY || reply->type != REDIS_REPLY_ARRAY) {
        restore_fail(q, res == REDIS_LINK_REPLY && reply->type == REDIS_REPLY_ERROR
                            ? reply->str
                            : "Redis error");
        return;
    }
    if (!q->offset_found) {
        restore_fail(q, "offset not in the stream (too old, or not a recoverable packet)");
        return;
    }
    if (reply->elements > RECOVERY_MAX_PACKETS) {
        restore_fail(q, "too many missed packets");
        return;
    }
    char id[MAX_OFFSET_LEN + 1];
    for (size_t i = 0; i < reply->elements; i++) {
        size_t at = q->msgs.len;
        uint32_t zero = 0;
        buf_append(&q->msgs, &zero, 4);
        if (!entry_message(reply->element[i], &q->msgs, id, sizeof id) ||
            q->msgs.len > MAX_RESTORE_BYTES) {
            restore_fail(q, "bad or too large stream entries");
            return;
        }
        uint32_t len = (uint32_t)(q->msgs.len - at - 4);
        memcpy(q->msgs.data + at, &len, 4);
        memcpy(q->last, id, sizeof id);
        q->nmsgs++;
    }
    /* claim the session (nobody else can now) */
    q->stage = 2;
    const char *node = q->pid + SIO_SOCKET_ID_LEN;
    session_key(&r->key, r->prefix, node, strlen(node), q->pid);
    session_key(&r->key2, r->prefix, node, strlen(node), NULL);
    const char *nsp = sio_socket_nsp(q->sock);
    hb_prefix(&r->scratch, r->prefix, node);
    const char *argv[8] = {"EVAL",
                           claim_script,
                           "2",
                           (const char *)r->key.data,
                           (const char *)r->key2.data,
                           q->pid,
                           nsp,
                           (const char *)r->scratch.data};
    if (redis_link_command_argv(r->link, 8, argv, NULL, 0, claim_reply, q) != SIOC_OK)
        restore_fail(q, "Redis unavailable");
}

/* The string value of `key` in the MessagePack map `auth`, or a zero slice. */
static struct slice auth_string(const uint8_t *auth, size_t len, const char *key)
{
    struct mp_reader rd;
    struct mp_item it;
    mp_reader_init(&rd, auth, len);
    if (mp_read(&rd, &it) != SIOC_OK || it.kind != MP_MAP)
        return (struct slice){NULL, 0};
    for (uint32_t n = it.len; n > 0; n--) {
        struct mp_item k, v;
        if (mp_read(&rd, &k) != SIOC_OK)
            break;
        size_t at = rd.pos;
        if (mp_read(&rd, &v) != SIOC_OK)
            break;
        if (k.kind == MP_STR && k.len == strlen(key) && memcmp(k.data, key, k.len) == 0)
            return v.kind == MP_STR ? (struct slice){v.data, v.len} : (struct slice){NULL, 0};
        rd.pos = at;
        if (mp_skip(&rd) != SIOC_OK)
            break;
    }
    return (struct slice){NULL, 0};
}

bool recovery_restore(struct recovery *r, struct sio_socket *sock, const uint8_t *auth,
                      size_t auth_len)
{
    if (sio_socket_pid(sock) == NULL)
        return false;
    struct slice pid = auth_string(auth, auth_len, "pid");
    struct slice offset = auth_string(auth, auth_len, "offset");
    uint64_t ms, seq;
    if (pid.p == NULL || offset.p == NULL)
        return false; /* as Node: both strings, else a new session */
    if (!redis_link_connected(r->link)) {
        (*r->m_failed)++; /* a client must not wait for Redis to come back: a new session */
        log_write(r->log, LOG_LEVEL_INFO, "recovery.refused", "nsp=%s: Redis unavailable",
                  sio_socket_nsp(sock));
        return false;
    }
    if (pid.len <= SIO_SOCKET_ID_LEN || pid.len > MAX_PID_LEN ||
        memchr(pid.p, '\0', pid.len) != NULL || !stream_id_parse(offset.p, offset.len, &ms, &seq)) {
        (*r->m_failed)++;
        log_write(r->log, LOG_LEVEL_INFO, "recovery.refused", "nsp=%s: malformed pid or offset",
                  sio_socket_nsp(sock));
        return false;
    }
    struct restore *q = calloc(1, sizeof *q);
    if (q == NULL)
        return false;
    q->r = r;
    q->sock = sock;
    q->stage = 1;
    memcpy(q->pid, pid.p, pid.len);
    buf_init(&q->msgs, 0);
    buf_init(&q->session, 0);
    list_push_head(&r->restores, &q->node);
    buf_reset(&r->key);
    buf_append(&r->key, r->prefix, strlen(r->prefix));
    buf_append(&r->key, ":rec:", 5);
    buf_append(&r->key, sio_socket_nsp(sock), strlen(sio_socket_nsp(sock)) + 1);
    char at[MAX_OFFSET_LEN + 1], from[MAX_OFFSET_LEN + 2], count[16];
    memcpy(at, offset.p, offset.len);
    at[offset.len] = '\0';
    memcpy(q->last, at, sizeof at);
    memcpy(q->from, at, sizeof at);
    snprintf(from, sizeof from, "(%s", at);
    snprintf(count, sizeof count, "%d", RECOVERY_MAX_PACKETS + 1);
    const char *one[4] = {"XRANGE", (const char *)r->key.data, at, at};
    const char *range[6] = {"XRANGE", (const char *)r->key.data, from, "+", "COUNT", count};
    if (redis_link_command_argv(r->link, 4, one, NULL, 0, offset_reply, q) != SIOC_OK ||
        redis_link_command_argv(r->link, 6, range, NULL, 0, range_reply, q) != SIOC_OK) {
        redis_link_cancel(r->link, q);
        restore_free(q);
        return false;
    }
    return true;
}

/* ---- lifetime ---- */

struct recovery *recovery_new(struct event_base *base, const struct recovery_config *cfg,
                              struct sio_server *srv, struct log *log, struct metrics *metrics)
{
    if (cfg->redis_url == NULL || cfg->node_id == NULL || cfg->window_ms == 0 ||
        cfg->on_fallback == NULL || cfg->on_recovered == NULL || cfg->on_expired == NULL)
        return NULL;
    struct recovery *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    list_init(&r->restores);
    r->cfg = *cfg;
    r->srv = srv;
    r->log = log;
    r->prefix = strdup(cfg->key_prefix ? cfg->key_prefix : "sioc");
    r->node = strdup(cfg->node_id);
    r->user_room = cfg->user_room ? strdup(cfg->user_room) : NULL;
    buf_init(&r->scratch, 0);
    buf_init(&r->key, 0);
    buf_init(&r->key2, 0);
    deadline_list_init(&r->parked, (uint64_t)cfg->window_ms + 1000);
    struct redis_link_config lcfg = {.url = cfg->redis_url,
                                     .tls = cfg->redis_tls,
                                     .mode = REDIS_LINK_COMMAND,
                                     .ctx = r,
                                     .on_state_cb = link_state_cb};
    r->link = redis_link_new(base, &lcfg);
    r->timer.ev = evtimer_new(base, timer_cb, r);
    r->beat = event_new(base, -1, EV_PERSIST, beat_cb, r);
    r->m_recovered = metrics_counter(metrics, "sioc_recovery_total",
                                     "connection state recovery attempts", "result=\"recovered\"");
    r->m_failed = metrics_counter(metrics, "sioc_recovery_total",
                                  "connection state recovery attempts", "result=\"refused\"");
    r->m_parked = metrics_counter(metrics, "sioc_recovery_parked_total",
                                  "sessions parked for recovery", NULL);
    r->m_expired = metrics_counter(metrics, "sioc_recovery_expired_total",
                                   "parked sessions nobody recovered", NULL);
    if (r->prefix == NULL || r->node == NULL || (cfg->user_room && r->user_room == NULL) ||
        r->link == NULL || r->timer.ev == NULL || r->beat == NULL || r->m_recovered == NULL ||
        r->m_failed == NULL || r->m_parked == NULL || r->m_expired == NULL) {
        recovery_free(r);
        return NULL;
    }
    struct timeval tv = {BEAT_MS / 1000, 0};
    event_add(r->beat, &tv);
    return r;
}

void recovery_free(struct recovery *r)
{
    if (r == NULL)
        return;
    redis_link_free(r->link);
    struct list_node *pos, *tmp;
    list_for_each_safe(pos, tmp, &r->restores)
    {
        restore_free(container_of(pos, struct restore, node));
    }
    while (r->origins != NULL) {
        struct origin *o = r->origins;
        r->origins = o->next;
        free(o);
    }
    struct deadline_node *n;
    while ((n = deadline_pop_expired(&r->parked, UINT64_MAX)) != NULL)
        parked_free(container_of(n, struct parked, due));
    if (r->timer.ev != NULL)
        event_free(r->timer.ev);
    if (r->beat != NULL)
        event_free(r->beat);
    buf_deinit(&r->scratch);
    buf_deinit(&r->key);
    buf_deinit(&r->key2);
    free(r->prefix);
    free(r->node);
    free(r->user_room);
    free(r);
}
