/* eio_server.c: Engine.IO v4 and v3 sessions (see eio_server.h; PROTOCOL.md §1, §1.12). A
 * session is in one state (enum session_state, every transition in set_state): polling (packets
 * queue until a GET takes them), probing and probed (an upgrade's WebSocket link exists until the
 * client sends `5`), websocket, linger and closed. Every end goes through session_close: the
 * session leaves service at once; reap, from the loop, tells the owner and frees the session once
 * nothing refers to it any more (its links and held GET end on their own, ws_link.h and
 * http_server.h, and call back here). WebSocket connection rules are ws_link.c's; polling bodies
 * eio_polling.c's; CORS eio_cors.c's. */
#include "gateway/eio_server.h"
#include "gateway/heartbeat_hold.h"

#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/container.h"
#include "common/base64.h"
#include "common/deadline.h"
#include "common/eio.h"
#include "common/error.h"
#include "common/idmap.h"
#include "common/list.h"
#include "common/net/deadline_timer.h"
#include "common/ws.h"
#include "common/net/process.h"
#include "gateway/eio_cors.h"
#include "gateway/eio_polling.h"
#include "gateway/random_pool.h"
#include "gateway/ws_link.h"

#define DEFAULT_POLL_LINGER_MS                                                                     \
    30000 /* a closed polling session waits this long for its last GET                             \
           */
#define DEFAULT_HARD_LIMIT (4u << 20)
#define DEFAULT_HEARTBEAT_HOLD_MAX_MS 60000

/* A session's one state (PROTOCOL.md 1.5, 1.8, 1.9); set_state makes every transition. The
 * first four are open. */
enum session_state {
    STATE_POLLING,   /* packets queue for the next GET */
    STATE_PROBING,   /* polling; `probe` is a WebSocket link that has not sent 2probe yet */
    STATE_PROBED,    /* polling; the probe answered 3probe: GETs get a noop; its 5 upgrades */
    STATE_WEBSOCKET, /* on `ws` (a direct connection, or after the upgrade) */
    STATE_LINGER,    /* closed by the server; the sid waits for a last GET (1.5.5) */
    STATE_CLOSED,    /* out of the table; the reaper tells the owner and frees */
};

struct eio_session {
    struct idmap_node node; /* in the session table (container_of finds the session) */
    struct list_node all;   /* in srv->sessions_all until freed */
    struct eio_server *srv;
    void *user;
    enum session_state state;
    bool notified;              /* the owner's on_close ran (or it never had the session) */
    struct eio_poll_format fmt; /* revision, b64, JSONP (owned digits): fixed at the handshake */
    const char *reason;
    struct deadline_node heartbeat; /* in ping_wait, or pong_wait after a ping; v3: v3_wait */
    struct deadline_node deadline;  /* in upgrade_wait (a probe) or linger_wait */
    struct list_node reap;          /* in srv->reap_queue while a reap is due */
    struct http_conn *get; /* the held polling GET (we are its owner until it is answered) */
    char *get_origin;      /* its allowed Origin (whitelist CORS only), for the late answer */
    struct gw_frame **queue;
    size_t queue_len, queue_cap, queue_bytes;
    /* The links, each until its on_close (ws_link.h): live in the states named, closing in
     * the others. */
    struct ws_link *ws;    /* STATE_WEBSOCKET: the transport */
    struct ws_link *probe; /* STATE_PROBING, STATE_PROBED: the upgrading link */
};

struct eio_server {
    struct event_base *base;
    struct eio_server_config cfg;
    uint64_t unused_counter; /* where counters the owner did not ask for go */
    struct idmap sessions;
    struct list_node sessions_all; /* every session not yet freed (eio_session.all) */
    size_t count;
    uint32_t sid_counter;
    char sid_tag[EIO_SID_TAG_LEN + 1]; /* "" when ids have Node's form */
    struct gw_frame *ping, *pong, *noop, *close, *pong_probe;
    struct random_pool random; /* session ids */
    /* DESIGN.md §4: no timer per session. Each list has one timeout, so one timer serves all. */
    struct deadline_list ping_wait, pong_wait, upgrade_wait, linger_wait;
    struct deadline_list v3_wait; /* 1.12: v3 sessions await the client's ping */
    struct deadline_timer timer;  /* for the earliest deadline of the five lists */
    struct heartbeat_hold hold;   /* eio_server_hold_heartbeats */
    /* Sessions whose owner is told (and which are freed if done) from the loop. */
    struct list_node reap_queue;
    struct event *reap_event;
    char cors_buf[EIO_CORS_MAX_ORIGIN]; /* the reflected Origin of the response being built */
};

__attribute__((format(printf, 3, 4))) static void log_peer(struct eio_server *srv,
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

/* ---- responses ---- */

static bool cors_whitelist(const struct eio_server *srv)
{
    return eio_cors_whitelist(srv->cfg.cors_origin);
}

static bool cors_allows(const struct eio_server *srv, struct slice origin)
{
    return eio_cors_allows(srv->cfg.cors_origin, origin);
}

static struct slice request_origin(const struct http_server_request *req)
{
    return eio_cors_request_origin(req);
}

/* The CORS fields (eio_cors.h); a reflected Origin is valid until the next call. */
static void add_cors(struct eio_server *srv, struct slice origin, struct http_field *fields,
                     size_t *n)
{
    eio_cors_add(srv->cfg.cors_origin, origin, srv->cors_buf, fields, n);
}

static void respond(struct eio_server *srv, struct http_conn *conn,
                    const struct http_server_request *req, int status, const char *type,
                    const void *body, size_t len)
{
    struct http_field fields[8];
    size_t n = 0;
    add_cors(srv, request_origin(req), fields, &n);
    if (type != NULL)
        fields[n++] = (struct http_field){"Content-Type", type};
    if (status == 200)
        fields[n++] = (struct http_field){"cache-control", "no-store"};
    http_conn_respond(conn, status, fields, n, body, len, false);
}

/* §1.2 error answer: JSON for plain requests, a raw text response for upgrade requests. */
static void respond_error(struct eio_server *srv, struct http_conn *conn,
                          const struct http_server_request *req, enum eio_error_code code)
{
    struct buf body;
    buf_init(&body, 0);
    if (req->upgrade) {
        eio_error_upgrade_response(&body, code, NULL);
        http_conn_upgrade(conn, &(struct http_conn_owner){0});
        http_conn_write(conn, body.data, body.len);
        http_conn_close(conn, true);
    } else {
        eio_error_body_json(&body, code, NULL);
        respond(srv, conn, req, eio_error_status(code), "application/json", body.data, body.len);
    }
    buf_deinit(&body);
    log_peer(srv, "eio.request_refused", "%s", eio_error_message(code));
}

/* ---- sessions ---- */

static void session_close(struct eio_session *s, const char *reason, bool graceful,
                          struct gw_frame *release);

static void arm_server_timer(struct eio_server *srv)
{
    struct deadline_list *lists[] = {&srv->ping_wait, &srv->pong_wait, &srv->upgrade_wait,
                                     &srv->linger_wait, &srv->v3_wait};
    deadline_timer_arm(&srv->timer, lists, sizeof lists / sizeof lists[0]);
}

static void arm_deadline(struct eio_server *srv, struct deadline_node *n, struct deadline_list *l)
{
    deadline_push(l, n, deadline_clock_ms());
    arm_server_timer(srv);
}

static void schedule_reap(struct eio_session *s)
{
    struct eio_server *srv = s->srv;
    if (list_linked(&s->reap))
        return;
    list_push_tail(&srv->reap_queue, &s->reap);
    event_active(srv->reap_event, EV_WRITE, 0);
}

static void reap(struct eio_session *s);

static void reap_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct eio_server *srv = arg;
    struct list_node *n;
    while ((n = list_first(&srv->reap_queue)) != NULL) {
        list_remove(n);
        reap(list_entry(n, struct eio_session, reap));
    }
}

static void drop_queue(struct eio_session *s)
{
    for (size_t i = 0; i < s->queue_len; i++)
        gw_frame_unref(s->queue[i]);
    s->queue_len = 0;
    s->queue_bytes = 0;
}

/* Answers the held GET with frames[0..n), then `extra`. */
static void answer_get(struct eio_session *s, struct gw_frame *const *frames, size_t count,
                       struct gw_frame *extra)
{
    struct http_conn *conn = s->get;
    s->get = NULL;
    http_conn_clear_owner(conn);
    struct http_field fields[8];
    size_t n = 0;
    struct slice origin = {(const uint8_t *)s->get_origin,
                           s->get_origin ? strlen(s->get_origin) : 0};
    add_cors(s->srv, origin, fields, &n); /* the headers the GET would have had when it came */
    free(s->get_origin);
    s->get_origin = NULL;
    if (eio_poll_respond(conn, &s->fmt, fields, n, frames, count, extra) != SIOC_OK)
        session_close(s, "out of memory", false, NULL);
}

/* Answers the held GET with the queued packets (plus `extra`, e.g. the close packet). */
static void flush_poll(struct eio_session *s, struct gw_frame *extra)
{
    /* a GET whose connection is gone keeps the queue: its on_close (due from the loop) ends
     * the session (1.5.2), as if it had come at once */
    if (s->get == NULL || (s->queue_len == 0 && extra == NULL) || http_conn_closing(s->get))
        return;
    answer_get(s, s->queue, s->queue_len, extra);
    drop_queue(s);
}

static void ws_send(const struct eio_session *s, struct ws_link *link, struct gw_frame *f)
{
    size_t len = 0;
    /* 1.12: v3 binary frames start with the type byte (framed once per frame, then shared) */
    const uint8_t *p = s->fmt.version == EIO_V3 ? gw_frame_ws_v3(f, &len) : gw_frame_ws(f, &len);
    if (p != NULL)
        ws_link_write_ref(link, p, len, gw_frame_release_cb, gw_frame_ref(f));
}

static bool session_open(const struct eio_session *s)
{
    return s->state <= STATE_WEBSOCKET;
}

/* Every state change, with what it implies (PROTOCOL.md 1.8, 1.9). Leaving a probing state for
 * polling or an end closes the probe link; the upgrade hands it over as the transport; an end
 * closes the WebSocket and stops the heartbeat; linger waits for the last GET; closed leaves the
 * table and tells the owner from the loop. */
static void set_state(struct eio_session *s, enum session_state to)
{
    struct eio_server *srv = s->srv;
    enum session_state from = s->state;
    if (from == to)
        return;
    bool probing = from == STATE_PROBING || from == STATE_PROBED;
    if (probing && to == STATE_WEBSOCKET) {
        s->ws = s->probe; /* 1.8 step 3 */
        s->probe = NULL;
        deadline_remove(&s->deadline);
    } else if (probing && to != STATE_PROBED) {
        if (s->probe != NULL) /* it stays s->probe until its on_close */
            ws_link_close(s->probe, WS_CLOSE_NO_STATUS);
        deadline_remove(&s->deadline);
    }
    if (from == STATE_WEBSOCKET && s->ws != NULL)
        ws_link_close(s->ws, WS_CLOSE_NO_STATUS); /* PROTOCOL.md 1.6: no status code */
    s->state = to;
    switch (to) {
    case STATE_PROBING: arm_deadline(srv, &s->deadline, &srv->upgrade_wait); break;
    case STATE_LINGER:
        deadline_remove(&s->heartbeat);
        arm_deadline(srv, &s->deadline, &srv->linger_wait);
        schedule_reap(s);
        break;
    case STATE_CLOSED:
        deadline_remove(&s->heartbeat);
        deadline_remove(&s->deadline);
        idmap_remove(&srv->sessions, &s->node);
        schedule_reap(s);
        break;
    default: break;
    }
}

/* The one way a session ends (PROTOCOL.md 1.9). `graceful` (the server's close): the queued
 * packets go first, then the close packet (polling; without a held GET the sid lingers for the
 * next one, 1.5.5) or a close frame without status (WebSocket, 1.6). Otherwise (the client left,
 * broke the protocol or is too slow) nothing more is sent but the answer to a held GET:
 * `release` ("6" after the client's close packet, "1" otherwise). Either way no more input is
 * processed, and reap tells the owner from the loop. */
static void session_close(struct eio_session *s, const char *reason, bool graceful,
                          struct gw_frame *release)
{
    if (!session_open(s))
        return;
    s->reason = reason;
    if (graceful && s->state != STATE_WEBSOCKET && s->get == NULL) {
        /* as Node does it (reference transcript e): the next GET gets "6\x1e1" when nothing
         * is buffered; otherwise it gets the buffered packets and the GET after it "6\x1e1"
         * (polling_get queues those once the queue went out: a queue ending in the close
         * packet is the last answer) */
        if (s->queue_len == 0) {
            eio_session_send(s, s->srv->noop);
            eio_session_send(s, s->srv->close);
        }
        set_state(s, STATE_LINGER);
        return;
    }
    if (s->get != NULL && !graceful)
        drop_queue(s); /* the held GET gets only the release packet: the rest is for no one */
    flush_poll(s, graceful ? s->srv->close : release);
    set_state(s, STATE_CLOSED); /* closes the links */
}

/* From the loop: tells the owner the session ended (once), and frees it once nothing refers to
 * it (closed, and its links and held GET have ended; each of those ends schedules a reap). */
static void reap(struct eio_session *s)
{
    struct eio_server *srv = s->srv;
    if (!s->notified) {
        s->notified = true;
        if (srv->cfg.on_close != NULL)
            srv->cfg.on_close(srv->cfg.ctx, s, s->user, s->reason);
        s->user = NULL;
    }
    if (s->state != STATE_CLOSED || s->ws != NULL || s->probe != NULL || s->get != NULL)
        return;
    list_remove(&s->all);
    list_remove(&s->reap);
    srv->count--;
    drop_queue(s);
    free(s->queue);
    free(s->get_origin);
    eio_poll_format_deinit(&s->fmt);
    deadline_remove(&s->heartbeat);
    deadline_remove(&s->deadline);
    free(s);
}

void eio_session_close(struct eio_session *s, const char *reason)
{
    session_close(s, reason, true, NULL);
}

/* The list a session waits in after a ping. While reading is paused for back-pressure
 * (eio_server_hold_heartbeats, up to heartbeat_hold_max_ms) its pong waits unread, yet the
 * client closes a connection that sends no ping within pingInterval + pingTimeout: the pong is
 * not awaited then, and the next ping comes pingInterval later, as if it had been read. */
static struct deadline_list *after_ping(struct eio_server *srv)
{
    return heartbeat_hold_waives(&srv->hold, deadline_clock_ms()) ? &srv->ping_wait
                                                                  : &srv->pong_wait;
}

/* pingInterval passed since the last pong (or the open): ping, then pingTimeout for the pong
 * (PROTOCOL.md 1.7). */
static void ping_due(struct eio_session *s)
{
    if (!session_open(s))
        return;
    eio_session_send(s, s->srv->ping);
    if (session_open(s))
        arm_deadline(s->srv, &s->heartbeat, after_ping(s->srv));
}

static void schedule_ping(struct eio_session *s)
{
    arm_deadline(s->srv, &s->heartbeat, &s->srv->ping_wait);
}

/* A closed polling session's wait for its last GET timed out: the GET never came. */
static void linger_expired(struct eio_session *s)
{
    if (s->state == STATE_LINGER)
        set_state(s, STATE_CLOSED);
}

/* The upgrade probe timed out: the session stays on polling. */
static void upgrade_expired(struct eio_session *s)
{
    if (s->state == STATE_PROBING || s->state == STATE_PROBED) {
        log_peer(s->srv, "eio.upgrade_timeout", "sid=%s", s->node.id);
        set_state(s, STATE_POLLING);
    }
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct eio_server *srv = arg;
    uint64_t now = deadline_clock_ms();
    struct deadline_node *n;
    while ((n = deadline_pop_expired(&srv->ping_wait, now)) != NULL)
        ping_due(container_of(n, struct eio_session, heartbeat));
    while ((n = deadline_pop_expired(&srv->pong_wait, now)) != NULL ||
           (n = deadline_pop_expired(&srv->v3_wait, now)) != NULL) {
        struct eio_session *s = container_of(n, struct eio_session, heartbeat);
        bool v3 = s->fmt.version == EIO_V3;
        if (heartbeat_hold_waives(&srv->hold, now)) {
            /* our pause, not the client's silence: ping again (the client closes a connection
             * that stops pinging), then every pingInterval while the hold lasts; a v3
             * client's ping may wait unread: wait once more */
            if (!v3)
                ping_due(s);
            else if (session_open(s))
                deadline_push(&srv->v3_wait, n, now);
            continue;
        }
        if (heartbeat_hold_expire_once(&srv->hold))
            log_peer(srv, "eio.backpressure_timeout",
                     "reading paused for %llu ms: closing the sessions whose pong waits unread",
                     (unsigned long long)(now - srv->hold.since_ms));
        session_close(s, srv->hold.held ? "backpressure timeout" : "ping timeout", false,
                      srv->close);
    }
    while ((n = deadline_pop_expired(&srv->upgrade_wait, now)) != NULL)
        upgrade_expired(container_of(n, struct eio_session, deadline));
    while ((n = deadline_pop_expired(&srv->linger_wait, now)) != NULL)
        linger_expired(container_of(n, struct eio_session, deadline));
    arm_server_timer(srv);
}

void eio_session_send(struct eio_session *s, struct gw_frame *f)
{
    if (s->state == STATE_CLOSED)
        return;
    (*s->srv->cfg.packets_out)++;
    *s->srv->cfg.bytes_out += f->len;
    if (s->state == STATE_WEBSOCKET && s->ws != NULL) {
        ws_send(s, s->ws, f);
        size_t pending = ws_link_output_pending(s->ws);
        if (pending > s->srv->cfg.out_hard_limit) {
            log_peer(s->srv, "eio.slow_consumer", "sid=%s: %zu bytes queued", s->node.id, pending);
            session_close(s, "slow consumer", false, NULL);
        }
        return;
    }
    if (s->queue_len == s->queue_cap) {
        size_t cap = s->queue_cap ? s->queue_cap * 2 : 8;
        struct gw_frame **q = realloc(s->queue, cap * sizeof *q);
        if (q == NULL) {
            session_close(s, "out of memory", false, NULL);
            return;
        }
        s->queue = q;
        s->queue_cap = cap;
    }
    s->queue[s->queue_len++] = gw_frame_ref(f);
    s->queue_bytes += f->len;
    if (s->queue_bytes > s->srv->cfg.out_hard_limit && session_open(s)) {
        log_peer(s->srv, "eio.slow_consumer", "sid=%s: %zu bytes queued", s->node.id,
                 s->queue_bytes);
        session_close(s, "slow consumer", false, NULL);
        return;
    }
    if (s->get != NULL)
        flush_poll(s, NULL);
}

bool eio_session_writable(const struct eio_session *s)
{
    if (!session_open(s))
        return false;
    if (s->state == STATE_WEBSOCKET)
        return s->ws != NULL && ws_link_output_pending(s->ws) < 64 * 1024;
    return s->get != NULL;
}

const char *eio_session_id(const struct eio_session *s)
{
    return s->node.id;
}

bool eio_session_is_websocket(const struct eio_session *s)
{
    return s->state == STATE_WEBSOCKET;
}

enum eio_version eio_session_version(const struct eio_session *s)
{
    return s->fmt.version;
}

bool eio_server_has_session(const struct eio_server *srv, const char *sid, size_t len)
{
    return idmap_find(&srv->sessions, sid, len) != NULL;
}

void eio_server_refuse(struct eio_server *srv, struct http_conn *conn,
                       const struct http_server_request *req, enum eio_error_code code)
{
    respond_error(srv, conn, req, code);
}

void *eio_server_find_user(struct eio_server *srv, const char *sid, size_t len)
{
    struct eio_session *s =
        container_of_or_null(idmap_find(&srv->sessions, sid, len), struct eio_session, node);
    return s != NULL && session_open(s) ? s->user : NULL;
}

/* ---- packets from the client (both transports) ---- */

static void client_packet_in(struct eio_session *s, const struct eio_packet *pkt)
{
    (*s->srv->cfg.packets_in)++;
    *s->srv->cfg.bytes_in += pkt->data.len;
    switch (pkt->type) {
    case EIO_PACKET_MESSAGE:
        if (s->srv->cfg.on_message != NULL)
            s->srv->cfg.on_message(s->srv->cfg.ctx, s, s->user, pkt->data.p, pkt->data.len,
                                   pkt->binary);
        break;
    case EIO_PACKET_PONG:
        if (s->fmt.version == EIO_V3) {
            log_peer(s->srv, "eio.invalid_packet", "sid=%s: pong from a v3 client", s->node.id);
            session_close(s, "invalid heartbeat direction", false, s->srv->close);
            break;
        }
        /* PROTOCOL.md 1.7: the next ping comes pingInterval after the pong */
        if (s->heartbeat.list == &s->srv->pong_wait)
            schedule_ping(s);
        break;
    case EIO_PACKET_CLOSE:
        /* 1.5.3: a held GET gets a noop; on WebSocket we close at once (1.6 recommendation) */
        session_close(s, "transport close", false, s->srv->noop);
        break;
    case EIO_PACKET_PING:
        if (s->fmt.version == EIO_V3) {
            /* 1.12: the client pings, the server answers and waits interval + timeout again */
            arm_deadline(s->srv, &s->heartbeat, &s->srv->v3_wait);
            eio_session_send(s, s->srv->pong);
            break;
        }
        log_peer(s->srv, "eio.invalid_packet", "sid=%s: ping from a v4 client", s->node.id);
        session_close(s, "invalid heartbeat direction", false, s->srv->close);
        break;
    default: break; /* open, upgrade and noop outside an upgrade are ignored (1.4) */
    }
}

/* ---- WebSocket links ---- */

/* 1.8 step 3: the client sent 5 on the probed link. The polling transport is closed (a held
 * GET gets a noop) and everything buffered goes out on the WebSocket. */
static void complete_upgrade(struct eio_session *s)
{
    if (s->get != NULL)
        answer_get(s, NULL, 0, s->srv->noop); /* the queue goes out on the WebSocket */
    set_state(s, STATE_WEBSOCKET);
    for (size_t i = 0; i < s->queue_len; i++)
        ws_send(s, s->ws, s->queue[i]);
    drop_queue(s);
}

/* A message on the probe link (PROTOCOL.md 1.8 steps 2-3): 2probe, then 5. Anything else fails
 * the upgrade (the link is closed) and the polling session carries on. */
static void probe_message(struct eio_session *s, const uint8_t *p, size_t len, bool binary)
{
    if (!binary && s->state == STATE_PROBING && len == 6 && memcmp(p, "2probe", 6) == 0) {
        set_state(s, STATE_PROBED);
        ws_send(s, s->probe, s->srv->pong_probe);
        if (s->get != NULL && s->queue_len == 0)
            flush_poll(s, s->srv->noop); /* release the poll so the client can send 5 */
        return;
    }
    if (!binary && s->state == STATE_PROBED && len == 1 && p[0] == '5') {
        complete_upgrade(s);
        return;
    }
    log_peer(s->srv, "eio.upgrade_failed", "sid=%s: unexpected packet on the probe", s->node.id);
    set_state(s, STATE_POLLING);
}

/* A whole message on the session's WebSocket: one Engine.IO packet (1.6; 1.12 for v3 binary). */
static void link_message_cb(void *ctx, struct ws_link *link, const uint8_t *p, size_t len,
                            bool binary)
{
    struct eio_session *s = ctx;
    if (link == s->probe) {
        probe_message(s, p, len, binary);
        return;
    }
    if (link != s->ws || !session_open(s))
        return;
    struct eio_packet pkt;
    if (binary && s->fmt.version == EIO_V4) {
        /* 1.6: a v4 binary frame is message data, nothing else */
        pkt = (struct eio_packet){EIO_PACKET_MESSAGE, true, {p, len}};
        client_packet_in(s, &pkt);
        return;
    }
    struct buf bin; /* a "b<base64>" text packet decodes here; allocates only then */
    buf_init(&bin, s->srv->cfg.max_payload);
    int rc = binary ? eio_binary_frame_decode(EIO_V3, p, len, &pkt)
                    : eio_packet_decode(s->fmt.version, p, len, &bin, &pkt);
    if (rc == SIOC_OK) {
        client_packet_in(s, &pkt);
    } else {
        log_peer(s->srv, "eio.invalid_packet", "sid=%s: parse error", s->node.id);
        session_close(s, "parse error", false, NULL);
    }
    buf_deinit(&bin);
}

/* A link ended (always, once, from the loop: ws_link.h). One the session closed itself (a
 * failed probe, the transport of a closed session) only stops referring to it; one that ended
 * on the peer's side (its close frame, a WebSocket protocol error, the connection went away)
 * fails the upgrade (a probe) or ends the session (the transport). A closed session may be
 * freed now. */
static void link_close_cb(void *ctx, struct ws_link *link, int err, const char *reason)
{
    struct eio_session *s = ctx;
    bool probing = s->state == STATE_PROBING || s->state == STATE_PROBED;
    bool live_probe = link == s->probe && probing;
    bool live_ws = link == s->ws && s->state == STATE_WEBSOCKET;
    if (err != SIOC_OK)
        log_peer(s->srv, "ws.protocol_error", "%s", sioc_strerror(err));
    if (link == s->probe)
        s->probe = NULL; /* freed by the link layer when this returns */
    if (link == s->ws)
        s->ws = NULL;
    if (live_probe)
        set_state(s, STATE_POLLING);
    else if (live_ws)
        session_close(s,
                      err == SIOC_ETOOBIG ? "message too big"
                      : err != SIOC_OK    ? "parse error"
                                          : reason,
                      false, NULL);
    if (s->state == STATE_CLOSED)
        schedule_reap(s);
}

static const struct ws_link_handler link_handler = {link_message_cb, link_close_cb, NULL};

/* Checks the WebSocket request, writes the 101 (with the CORS headers of 1.10) and makes the
 * connection a link for session `s` (NULL: a link closed at once). NULL on failure (the
 * connection got its 400 and is closing). */
static struct ws_link *accept_websocket(struct eio_server *srv, struct http_conn *conn,
                                        struct http_server_request *req, struct eio_session *s)
{
    if (!ws_link_request_valid(req)) {
        respond_error(srv, conn, req, EIO_ERR_BAD_REQUEST);
        return NULL;
    }
    struct http_field cors[4];
    size_t n = 0;
    add_cors(srv, request_origin(req), cors, &n);
    struct buf extra;
    buf_init(&extra, 0);
    for (size_t i = 0; i < n; i++)
        http_write_header(&extra, cors[i].name, cors[i].value);
    struct ws_link *link = ws_link_accept(conn, req, srv->cfg.max_payload, extra.data, extra.len,
                                          s != NULL ? &link_handler : NULL, s);
    buf_deinit(&extra);
    return link;
}

/* An upgrade request that passed the checks but cannot proceed: 101, then an immediate close
 * frame without status (PROTOCOL.md 1.2). */
static void accept_and_close(struct eio_server *srv, struct http_conn *conn,
                             struct http_server_request *req)
{
    struct ws_link *link = accept_websocket(srv, conn, req, NULL);
    if (link != NULL)
        ws_link_close(link, WS_CLOSE_NO_STATUS);
}

/* ---- handshake and polling ---- */

/* A new session id: Node's base64id, or (sid_tag) the routing tag and 12 random bytes, drawn
 * again in the (2^-96) case that it is taken, since the counter no longer tells ids apart. */
static bool session_id(struct eio_server *srv, uint8_t random12[12], char sid[EIO_SID_LEN + 1])
{
    sid[EIO_SID_LEN] = '\0';
    if (srv->sid_tag[0] == '\0') {
        eio_sid_format(random12, srv->sid_counter++, sid);
        return true;
    }
    for (int tries = 0; tries < 4; tries++) {
        memcpy(sid, srv->sid_tag, EIO_SID_TAG_LEN);
        base64url_encode(random12, 12, sid + EIO_SID_TAG_LEN);
        if (idmap_find(&srv->sessions, sid, EIO_SID_LEN) == NULL)
            return true;
        if (!random_pool_take(&srv->random, random12, 12))
            return false;
    }
    return false;
}

static struct eio_session *session_new(struct eio_server *srv, bool websocket,
                                       const struct eio_poll_format *fmt)
{
    struct eio_session *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->srv = srv;
    s->state = websocket ? STATE_WEBSOCKET : STATE_POLLING;
    s->fmt = *fmt; /* takes the JSONP digits */
    uint8_t random12[12];
    if (!random_pool_take(&srv->random, random12, sizeof random12)) {
        free(s);
        return NULL;
    }
    char sid[EIO_SID_LEN + 1];
    if (!session_id(srv, random12, sid)) {
        free(s);
        return NULL;
    }
    idmap_insert(&srv->sessions, &s->node, sid); /* node.id is the session's id from now on */
    list_push_head(&srv->sessions_all, &s->all);
    srv->count++;
    return s;
}

static void open_packet(struct eio_server *srv, const struct eio_session *s, bool websocket,
                        struct buf *out)
{
    static const char *const upgrades[] = {"websocket"};
    struct eio_open open = {
        .sid = s->node.id,
        .upgrades = upgrades,
        .upgrades_len = !websocket && srv->cfg.websocket ? 1 : 0, /* 1.3 */
        .ping_interval_ms = srv->cfg.ping_interval_ms,
        .ping_timeout_ms = srv->cfg.ping_timeout_ms,
        .max_payload = srv->cfg.max_payload,
    };
    eio_open_encode(out, &open);
}

static void handshake(struct eio_server *srv, struct http_conn *conn,
                      struct http_server_request *req, bool websocket, enum eio_version version)
{
    struct eio_poll_format fmt;
    struct eio_session *s =
        eio_poll_format_init(&fmt, req->query, version) ? session_new(srv, websocket, &fmt) : NULL;
    if (s == NULL) {
        eio_poll_format_deinit(&fmt);
        respond(srv, conn, req, 503, NULL, NULL, 0);
        return;
    }
    if (srv->cfg.on_open != NULL)
        s->user = srv->cfg.on_open(srv->cfg.ctx, s, req, http_conn_peer(conn));
    if (s->user == NULL) {
        s->notified = true; /* the owner refused it: there is nobody to tell */
        session_close(s, "refused", false, NULL);
        respond_error(srv, conn, req, EIO_ERR_FORBIDDEN);
        return;
    }
    struct buf open;
    buf_init(&open, 0);
    open_packet(srv, s, websocket, &open);
    if (websocket) {
        s->ws = accept_websocket(srv, conn, req, s);
        if (s->ws == NULL) {
            buf_deinit(&open);
            session_close(s, "transport error", false, NULL);
            return;
        }
        struct gw_frame *f = gw_frame_new_text('0', open.data + 1, open.len - 1);
        if (f != NULL) {
            ws_send(s, s->ws, f);
            gw_frame_unref(f);
        }
        /* what the owner sent from on_open (v3: Socket.IO's implicit CONNECT) follows the open */
        for (size_t i = 0; i < s->queue_len; i++)
            ws_send(s, s->ws, s->queue[i]);
        drop_queue(s);
    } else {
        /* the open packet is a payload of one packet, in the session's format */
        struct gw_frame *f = gw_frame_new_text('0', open.data + 1, open.len - 1);
        struct http_field fields[8];
        size_t n = 0;
        add_cors(srv, request_origin(req), fields, &n);
        if (f == NULL)
            http_conn_respond(conn, 503, fields, n, NULL, 0, false);
        else
            eio_poll_respond(conn, &s->fmt, fields, n, &f, 1, NULL);
        gw_frame_unref(f);
    }
    buf_deinit(&open);
    if (s->fmt.version == EIO_V3)
        arm_deadline(srv, &s->heartbeat, &srv->v3_wait); /* 1.12: from the handshake */
    else
        schedule_ping(s);
}

static void poll_get_close_cb(void *ctx, struct http_conn *conn, const char *reason)
{
    (void)conn;
    (void)reason;
    struct eio_session *s = ctx;
    s->get = NULL;
    /* 1.5.2: a pending GET aborted by the client closes the session */
    session_close(s, "transport close", false, NULL);
    if (s->state == STATE_CLOSED)
        schedule_reap(s); /* it may have waited for this GET to end */
}

static void polling_get(struct eio_server *srv, struct http_conn *conn,
                        struct http_server_request *req, struct eio_session *s)
{
    if (s->get != NULL) {
        /* 1.5.4: a second concurrent GET gets 400; the session closes and the first GET gets
         * the close packet */
        respond(srv, conn, req, 400, NULL, NULL, 0);
        log_peer(srv, "eio.concurrent_get", "sid=%s", s->node.id);
        session_close(s, "transport error", false, srv->close);
        return;
    }
    s->get = conn;
    free(s->get_origin); /* a previous GET's, if its connection went away unanswered */
    s->get_origin = NULL;
    if (cors_whitelist(srv) && cors_allows(srv, request_origin(req))) {
        struct slice o = request_origin(req);
        s->get_origin = slice_strdup(o); /* NULL: answered without CORS fields */
    }
    struct http_conn_owner owner = {NULL, NULL, poll_get_close_cb, s};
    http_conn_set_owner(conn, &owner);
    bool last = s->queue_len > 0 && s->queue[s->queue_len - 1] == srv->close;
    if (s->queue_len > 0 || s->state == STATE_PROBED)
        flush_poll(s, s->queue_len > 0 ? NULL : srv->noop); /* 1.8: during an upgrade, noop */
    if (s->state == STATE_LINGER && s->get == NULL && !last) {
        /* 1.5.5: the buffered packets went out; the next GET gets noop and close */
        eio_session_send(s, srv->noop);
        eio_session_send(s, srv->close);
        arm_deadline(srv, &s->deadline, &srv->linger_wait);
    } else if (s->state == STATE_LINGER && s->get == NULL) {
        set_state(s, STATE_CLOSED);
    }
}

static void polling_post(struct eio_server *srv, struct http_conn *conn,
                         struct http_server_request *req, struct eio_session *s)
{
    const struct http_header *type = http_header_find(req->head, "Content-Type", NULL);
    bool octet = type != NULL && type->value.len >= 24 &&
                 strncasecmp((const char *)type->value.p, "application/octet-stream", 24) == 0;
    struct buf scratch; /* a JSONP body's decoded `d` */
    buf_init(&scratch, srv->cfg.max_payload);
    struct slice payload;
    enum eio_payload_format format;
    int rc = eio_poll_post_payload(&s->fmt, req->body.p, req->body.len, octet, &scratch, &payload,
                                   &format);
    if (rc == SIOC_EINVAL) {
        /* 1.5.3: binary payloads are a v3 feature */
        buf_deinit(&scratch);
        respond(srv, conn, req, 400, NULL, NULL, 0);
        log_peer(srv, "eio.invalid_content", "sid=%s: application/octet-stream", s->node.id);
        session_close(s, "transport error", false, srv->close);
        return;
    }
    if (!session_open(s) || rc == SIOC_EPROTO) {
        /* 1.5.7: a JSONP body without one `d` is ignored by Node, and still gets "ok" */
        buf_deinit(&scratch);
        respond(srv, conn, req, 200, "text/html", "ok", 2);
        return;
    }
    struct eio_payload_iter it;
    eio_payload_iter_init(&it, format, payload.p, rc == SIOC_OK ? payload.len : 0);
    struct buf bin;
    buf_init(&bin, srv->cfg.max_payload);
    struct eio_packet pkt;
    rc = rc == SIOC_OK ? 0 : rc;
    while (rc == 0 && session_open(s) && (rc = eio_payload_next(&it, &bin, &pkt)) == 1) {
        client_packet_in(s, &pkt);
        rc = 0;
    }
    buf_deinit(&bin);
    buf_deinit(&scratch);
    if (session_open(s) && rc < 0) {
        /* 1.5.3: the valid packets before the error were processed; the session closes. An
         * empty body still gets "ok"; other invalid payloads a 400. */
        log_peer(srv, "eio.invalid_payload", "sid=%s: parse error", s->node.id);
        session_close(s, "parse error", false, srv->close);
        if (req->body.len > 0) {
            respond(srv, conn, req, 400, NULL, NULL, 0);
            return;
        }
    }
    respond(srv, conn, req, 200, "text/html", "ok", 2);
}

/* A well-formed id of another node's session (sid_tag set): NUL-terminates it in `sid`. */
static bool foreign_sid(const struct eio_server *srv, struct buf *sid)
{
    if (srv->cfg.on_foreign_sid == NULL || srv->sid_tag[0] == '\0' || sid->err != SIOC_OK ||
        sid->len != EIO_SID_LEN || memcmp(sid->data, srv->sid_tag, EIO_SID_TAG_LEN) == 0)
        return false;
    for (size_t i = 0; i < EIO_SID_LEN; i++) {
        uint8_t c = sid->data[i];
        bool b64 = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                   c == '-' || c == '_';
        if (!b64)
            return false;
    }
    buf_append(sid, "", 1); /* the terminator, for on_foreign_sid */
    return sid->err == SIOC_OK;
}

bool eio_server_handle(struct eio_server *srv, struct http_conn *conn,
                       struct http_server_request *req)
{
    size_t plen = strlen(srv->cfg.path);
    struct slice target = req->head->target;
    if (target.len < plen || memcmp(target.p, srv->cfg.path, plen) != 0)
        return false; /* 1.1: a prefix test on the raw URL */

    bool cors = srv->cfg.cors_origin != NULL && srv->cfg.cors_origin[0] != '\0';
    struct slice method = req->head->method;
    if (cors && method.len == 7 && memcmp(method.p, "OPTIONS", 7) == 0 &&
        http_header_find(req->head, "Access-Control-Request-Method", NULL) != NULL) {
        eio_cors_preflight(srv->cfg.cors_origin, srv->cors_buf, conn, req);
        return true;
    }

    struct buf transport, eio, sid;
    buf_init(&transport, 64);
    buf_init(&eio, 64);
    buf_init(&sid, 64);
    http_query_get(req->query, "transport", &transport);
    http_query_get(req->query, "EIO", &eio);
    /* A sid too long for the buffer (ids are 20 characters) is present but unknown: it must
     * not read as absent, which would start a new session (PROTOCOL.md 1.2 code 1). */
    bool has_sid = http_query_get(req->query, "sid", &sid) < 0 || sid.len > 0; /* "" as engine.io */

    struct eio_session *s = NULL;
    if (sid.len > 0 && sid.err == SIOC_OK) {
        struct idmap_node *node = idmap_find(&srv->sessions, (const char *)sid.data, sid.len);
        s = container_of_or_null(node, struct eio_session, node);
    }
    if (s == NULL && foreign_sid(srv, &sid) &&
        srv->cfg.on_foreign_sid(srv->cfg.foreign_ctx, conn, req, (const char *)sid.data)) {
        buf_deinit(&transport);
        buf_deinit(&eio);
        buf_deinit(&sid);
        return true; /* another node's session: forwarded to its owner */
    }
    bool is_get = method.len == 3 && memcmp(method.p, "GET", 3) == 0;
    struct eio_request check = {
        .transport = {transport.data, transport.len},
        .eio = {eio.data, eio.len},
        .has_sid = has_sid,
        .is_get = is_get,
        .is_upgrade = req->upgrade,
        /* the enum values are the bits (eio.h) */
        .enabled_transports = (srv->cfg.polling ? (unsigned)EIO_TRANSPORT_POLLING : 0u) |
                              (srv->cfg.websocket ? (unsigned)EIO_TRANSPORT_WEBSOCKET : 0u),
        .allow_eio3 = srv->cfg.allow_eio3,
        .session_found = s != NULL,
        .session_transport = s != NULL && s->state == STATE_WEBSOCKET ? EIO_TRANSPORT_WEBSOCKET
                                                                      : EIO_TRANSPORT_POLLING,
        .session_version = s != NULL ? s->fmt.version : EIO_V4,
    };
    enum eio_transport chosen = EIO_TRANSPORT_NONE;
    enum eio_version version = EIO_V4;
    enum eio_error_code code = eio_check_request(&check, &chosen, &version);
    buf_deinit(&transport);
    buf_deinit(&eio);
    buf_deinit(&sid);
    if (code != EIO_ERR_NONE) {
        respond_error(srv, conn, req, code);
        return true;
    }

    if (req->upgrade) {
        /* a probe that is still closing (ws_link.h) counts as one in progress */
        if (chosen != EIO_TRANSPORT_WEBSOCKET ||
            (s != NULL && (s->state != STATE_POLLING || s->probe != NULL))) {
            accept_and_close(srv, conn, req); /* 1.2: 101, then an immediate close */
            return true;
        }
        if (s == NULL) {
            handshake(srv, conn, req, true, version);
            return true;
        }
        s->probe = accept_websocket(srv, conn, req, s);
        if (s->probe != NULL)
            set_state(s, STATE_PROBING);
        return true;
    }
    if (s == NULL) {
        handshake(srv, conn, req, false, version);
        return true;
    }
    if (is_get)
        polling_get(srv, conn, req, s);
    else if (method.len == 4 && memcmp(method.p, "POST", 4) == 0)
        polling_post(srv, conn, req, s);
    else
        respond(srv, conn, req, 500, NULL, NULL, 0); /* 1.2: other methods on a session */
    return true;
}

/* ---- server ---- */

struct eio_server *eio_server_new(struct event_base *base, const struct eio_server_config *cfg)
{
    struct eio_server *srv = calloc(1, sizeof *srv);
    if (srv == NULL)
        return NULL;
    srv->base = base;
    list_init(&srv->sessions_all);
    list_init(&srv->reap_queue);
    srv->cfg = *cfg;
    if (srv->cfg.ping_interval_ms == 0)
        srv->cfg.ping_interval_ms = 25000;
    if (srv->cfg.ping_timeout_ms == 0)
        srv->cfg.ping_timeout_ms = 20000;
    if (srv->cfg.upgrade_timeout_ms == 0)
        srv->cfg.upgrade_timeout_ms = 10000;
    if (srv->cfg.poll_linger_ms == 0)
        srv->cfg.poll_linger_ms = DEFAULT_POLL_LINGER_MS;
    if (srv->cfg.max_payload == 0)
        srv->cfg.max_payload = 1000000;
    if (srv->cfg.out_hard_limit == 0)
        srv->cfg.out_hard_limit = DEFAULT_HARD_LIMIT;
    if (srv->cfg.heartbeat_hold_max_ms == 0)
        srv->cfg.heartbeat_hold_max_ms = DEFAULT_HEARTBEAT_HOLD_MAX_MS;
    srv->hold.max_ms = srv->cfg.heartbeat_hold_max_ms;
    uint64_t **counters[] = {&srv->cfg.packets_in, &srv->cfg.packets_out, &srv->cfg.bytes_in,
                             &srv->cfg.bytes_out};
    for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++) {
        if (*counters[i] == NULL)
            *counters[i] = &srv->unused_counter;
    }
    uint64_t seed = process_random_u64(srv);
    srv->sid_counter = (uint32_t)seed;
    if (cfg->sid_tag != NULL)
        snprintf(srv->sid_tag, sizeof srv->sid_tag, "%s", cfg->sid_tag);
    srv->cfg.sid_tag = NULL; /* the copy above is the one used */
    random_pool_init(&srv->random);
    srv->ping = gw_frame_new_text('2', NULL, 0);
    srv->pong = gw_frame_new_text('3', NULL, 0);
    srv->noop = gw_frame_new_text('6', NULL, 0);
    srv->close = gw_frame_new_text('1', NULL, 0);
    srv->pong_probe = gw_frame_new_text('3', "probe", 5);
    deadline_list_init(&srv->ping_wait, srv->cfg.ping_interval_ms);
    deadline_list_init(&srv->pong_wait, srv->cfg.ping_timeout_ms);
    deadline_list_init(&srv->upgrade_wait, srv->cfg.upgrade_timeout_ms);
    deadline_list_init(&srv->linger_wait, srv->cfg.poll_linger_ms);
    deadline_list_init(&srv->v3_wait, srv->cfg.ping_interval_ms + srv->cfg.ping_timeout_ms);
    srv->timer.ev = evtimer_new(base, timer_cb, srv);
    srv->reap_event = event_new(base, -1, 0, reap_cb, srv);
    if (idmap_init(&srv->sessions, seed) != SIOC_OK || srv->ping == NULL || srv->pong == NULL ||
        srv->noop == NULL || srv->close == NULL || srv->pong_probe == NULL ||
        srv->timer.ev == NULL || srv->reap_event == NULL) {
        eio_server_free(srv);
        return NULL;
    }
    return srv;
}

void eio_server_hold_heartbeats(struct eio_server *srv, bool hold)
{
    uint64_t now = deadline_clock_ms();
    if (!heartbeat_hold_set(&srv->hold, hold, now) || hold)
        return;
    /* Every v4 session awaiting a pong that waited unread gets a ping now and a full
     * pingTimeout for its pong: its last ping may be almost pingInterval + pingTimeout old for
     * the client, and the backlog may take a while to be read. A v3 session gets a full
     * pingInterval + pingTimeout for its client's ping. Each is moved from the head to the tail
     * once (the lists stay in deadline order); a session the ping closes leaves the list. */
    size_t n = deadline_count(&srv->pong_wait);
    while (n-- > 0 && deadline_first(&srv->pong_wait) != NULL)
        ping_due(container_of(deadline_first(&srv->pong_wait), struct eio_session, heartbeat));
    n = deadline_count(&srv->v3_wait);
    while (n-- > 0)
        deadline_push(&srv->v3_wait, deadline_first(&srv->v3_wait), now);
    arm_server_timer(srv);
}

void eio_server_close_all(struct eio_server *srv, const char *reason)
{
    struct list_node *pos, *tmp;
    list_for_each_safe(pos, tmp, &srv->sessions_all)
    {
        eio_session_close(list_entry(pos, struct eio_session, all), reason);
    }
}

void eio_server_free(struct eio_server *srv)
{
    if (srv == NULL)
        return;
    /* Teardown: the loop will not run again before the HTTP server goes, so each session ends
     * here, and its links and held GET (which end with their connections) no longer call
     * back. on_close cannot free another session from here (only reap frees). */
    struct list_node *pos;
    while ((pos = list_first(&srv->sessions_all)) != NULL) {
        struct eio_session *s = list_entry(pos, struct eio_session, all);
        session_close(s, "server shutdown", false, NULL); /* closes the links too */
        set_state(s, STATE_CLOSED);                       /* a lingering one */
        if (s->get != NULL) {
            http_conn_clear_owner(s->get);
            http_conn_close(s->get, false);
            s->get = NULL;
        }
        struct ws_link **links[] = {&s->ws, &s->probe};
        for (size_t i = 0; i < 2; i++) {
            if (*links[i] != NULL)
                ws_link_disown(*links[i]);
            *links[i] = NULL;
        }
        reap(s); /* notifies and frees */
    }
    if (srv->timer.ev != NULL)
        event_free(srv->timer.ev);
    if (srv->reap_event != NULL)
        event_free(srv->reap_event);
    idmap_deinit(&srv->sessions);
    gw_frame_unref(srv->ping);
    gw_frame_unref(srv->pong);
    gw_frame_unref(srv->noop);
    gw_frame_unref(srv->close);
    gw_frame_unref(srv->pong_probe);
    random_pool_wipe(&srv->random);
    free(srv);
}

size_t eio_server_session_count(const struct eio_server *srv)
{
    return srv->count;
}

size_t eio_server_count_transport(const struct eio_server *srv, bool websocket)
{
    size_t n = 0;
    const struct list_node *pos;
    for (pos = srv->sessions_all.next; pos != &srv->sessions_all; pos = pos->next) {
        const struct eio_session *s = list_entry(pos, const struct eio_session, all);
        n += session_open(s) && (s->state == STATE_WEBSOCKET) == websocket;
    }
    return n;
}
