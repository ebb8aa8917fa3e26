/* plain_ws.c: plain WebSocket connections (see plain_ws.h). A connection is open or closed;
 * a closed one is out of service at once, and it ends with its ws_link: the link's on_close
 * (from the loop, once, ws_link.h) tells the owner and frees the connection. The heartbeat uses
 * two FIFO deadline lists (one timeout each) and one timer for all connections (DESIGN.md §4). */
#include "gateway/plain_ws.h"
#include "gateway/heartbeat_hold.h"

#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/container.h"
#include "common/deadline.h"
#include "common/error.h"
#include "common/list.h"
#include "common/net/deadline_timer.h"
#include "common/ws.h"
#include "gateway/ws_link.h"

#define DEFAULT_HARD_LIMIT (4u << 20)
#define WRITABLE_LIMIT (64u * 1024) /* volatile messages are dropped above this, as eio's */

struct plain_ws_conn {
    struct plain_ws *pw;
    struct list_node link_all; /* in pw->conns until freed */
    struct ws_link *link;      /* until its on_close, which ends this connection */
    void *user;
    const char *reason;             /* set once closed */
    struct deadline_node heartbeat; /* in ping_wait, or pong_wait after a ping */
    bool closed;
};

struct plain_ws {
    struct plain_ws_config cfg;
    uint64_t unused_counter;
    struct list_node conns; /* every connection not yet freed (plain_ws_conn.link_all) */
    size_t open;
    struct deadline_list ping_wait, pong_wait;
    struct deadline_timer timer;
    struct heartbeat_hold hold; /* plain_ws_hold_heartbeats */
};

/* An unmasked ping without payload (RFC 6455 5.5.2), shared by every connection. */
static const uint8_t ping_frame[2] = {0x80 | WS_OP_PING, 0};

static void static_release_cb(const void *p, size_t len, void *arg)
{
    (void)p;
    (void)len;
    (void)arg;
}

__attribute__((format(printf, 3, 4))) static void log_peer(struct plain_ws *pw, const char *event,
                                                           const char *fmt, ...)
{
    if (pw->cfg.on_log == NULL)
        return;
    char detail[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt,
              ap); // NOLINT(clang-analyzer-valist.Uninitialized): va_start above
    va_end(ap);
    pw->cfg.on_log(pw->cfg.ctx, event, detail);
}

static void arm_timer(struct plain_ws *pw)
{
    struct deadline_list *lists[] = {&pw->ping_wait, &pw->pong_wait};
    deadline_timer_arm(&pw->timer, lists, 2);
}

static void arm(struct plain_ws *pw, struct deadline_node *n, struct deadline_list *l)
{
    deadline_push(l, n, deadline_clock_ms());
    arm_timer(pw);
}

/* Takes the connection out of service (the first cause is the reason); its end comes with the
 * link's. */
static void conn_end(struct plain_ws_conn *c, const char *reason)
{
    if (c->closed)
        return;
    c->closed = true;
    c->reason = reason;
    c->pw->open--;
    deadline_remove(&c->heartbeat);
}

/* The owner's on_close, then the memory (from the link's on_close, or plain_ws_free). */
static void conn_finish(struct plain_ws_conn *c)
{
    struct plain_ws *pw = c->pw;
    if (pw->cfg.on_close != NULL)
        pw->cfg.on_close(pw->cfg.ctx, c, c->user, c->reason);
    list_remove(&c->link_all);
    free(c);
}

void plain_ws_conn_close(struct plain_ws_conn *c, unsigned code, const char *reason)
{
    if (c->closed)
        return;
    conn_end(c, reason);
    ws_link_close_reason(c->link, code, reason); /* its on_close follows from the loop */
}

/* The list a connection waits in after a ping: while reading is held for back-pressure its pong
 * waits unread, so the next ping simply follows ping_interval later (eio_server.c's rule). */
static struct deadline_list *after_ping(struct plain_ws *pw)
{
    return heartbeat_hold_waives(&pw->hold, deadline_clock_ms()) ? &pw->ping_wait : &pw->pong_wait;
}

static void ping(struct plain_ws_conn *c)
{
    if (c->closed)
        return;
    ws_link_write_ref(c->link, ping_frame, sizeof ping_frame, static_release_cb, NULL);
    arm(c->pw, &c->heartbeat, after_ping(c->pw));
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct plain_ws *pw = arg;
    uint64_t now = deadline_clock_ms();
    struct deadline_node *n;
    while ((n = deadline_pop_expired(&pw->ping_wait, now)) != NULL)
        ping(container_of(n, struct plain_ws_conn, heartbeat));
    while ((n = deadline_pop_expired(&pw->pong_wait, now)) != NULL) {
        struct plain_ws_conn *c = container_of(n, struct plain_ws_conn, heartbeat);
        if (heartbeat_hold_waives(&pw->hold, now)) {
            ping(c); /* our pause, not the client's silence */
            continue;
        }
        if (pw->hold.held) {
            if (heartbeat_hold_expire_once(&pw->hold))
                log_peer(pw, "ws.backpressure_timeout",
                         "reading paused for %llu ms: closing the plain connections whose pong "
                         "waits unread",
                         (unsigned long long)(now - pw->hold.since_ms));
            plain_ws_conn_close(c, WS_CLOSE_INTERNAL_ERROR, "backpressure timeout");
            continue;
        }
        log_peer(pw, "ws.ping_timeout", "plain connection: no pong within %llu ms, closed with %d",
                 (unsigned long long)pw->pong_wait.timeout_ms, WS_CLOSE_GOING_AWAY);
        plain_ws_conn_close(c, WS_CLOSE_GOING_AWAY, "ping timeout");
    }
    arm_timer(pw);
}

/* The client is alive (a pong, or any message): the next ping comes ping_interval later. */
static void alive(struct plain_ws_conn *c)
{
    if (c->heartbeat.list == &c->pw->pong_wait)
        arm(c->pw, &c->heartbeat, &c->pw->ping_wait);
}

static void link_message_cb(void *ctx, struct ws_link *link, const uint8_t *p, size_t len,
                            bool binary)
{
    (void)link;
    struct plain_ws_conn *c = ctx;
    if (c->closed)
        return;
    struct plain_ws *pw = c->pw;
    (*pw->cfg.messages_in)++;
    *pw->cfg.bytes_in += len;
    alive(c);
    if (pw->cfg.on_message != NULL)
        pw->cfg.on_message(pw->cfg.ctx, c, c->user, p, len, binary);
}

static void link_pong_cb(void *ctx, struct ws_link *link)
{
    (void)link;
    struct plain_ws_conn *c = ctx;
    if (!c->closed)
        alive(c);
}

/* The link ended (after plain_ws_conn_close; or on the peer's side: its close frame, already
 * answered; a protocol error, already closed with its code; or the connection went away): so
 * does the connection. */
static void link_close_cb(void *ctx, struct ws_link *link, int err, const char *reason)
{
    (void)link;
    struct plain_ws_conn *c = ctx;
    if (err != SIOC_OK)
        log_peer(c->pw, "ws.protocol_error", "plain connection closed with %u: %s",
                 (unsigned)ws_error_close_code(err), sioc_strerror(err));
    conn_end(c, err == SIOC_ETOOBIG ? "message too big" : err != SIOC_OK ? "parse error" : reason);
    conn_finish(c);
}

static const struct ws_link_handler link_handler = {link_message_cb, link_close_cb, link_pong_cb};

struct plain_ws_conn *plain_ws_accept(struct plain_ws *pw, struct http_conn *conn,
                                      const struct http_server_request *req, void *user)
{
    struct plain_ws_conn *c = calloc(1, sizeof *c);
    if (c == NULL) {
        http_conn_close(conn, false);
        return NULL;
    }
    c->link = ws_link_accept(conn, req, pw->cfg.max_payload, NULL, 0, &link_handler, c);
    if (c->link == NULL) {
        free(c);
        return NULL;
    }
    c->pw = pw;
    c->user = user;
    list_push_head(&pw->conns, &c->link_all);
    pw->open++;
    arm(pw, &c->heartbeat, &pw->ping_wait);
    return c;
}

void plain_ws_conn_send(struct plain_ws_conn *c, struct gw_frame *f)
{
    if (c->closed)
        return;
    struct plain_ws *pw = c->pw;
    size_t len = 0;
    const uint8_t *p = gw_frame_ws(f, &len);
    (*pw->cfg.messages_out)++;
    *pw->cfg.bytes_out += f->len;
    ws_link_write_ref(c->link, p, len, gw_frame_release_cb, gw_frame_ref(f));
    size_t pending = ws_link_output_pending(c->link);
    if (pending > pw->cfg.out_hard_limit) {
        log_peer(pw, "ws.slow_consumer", "plain connection: %zu bytes queued, closed with %d",
                 pending, WS_CLOSE_POLICY_VIOLATION);
        plain_ws_conn_close(c, WS_CLOSE_POLICY_VIOLATION, "slow consumer");
    }
}

bool plain_ws_conn_writable(const struct plain_ws_conn *c)
{
    return !c->closed && ws_link_output_pending(c->link) < WRITABLE_LIMIT;
}

void plain_ws_close_all(struct plain_ws *pw, unsigned code, const char *reason)
{
    struct list_node *pos, *tmp;
    list_for_each_safe(pos, tmp, &pw->conns)
    {
        plain_ws_conn_close(list_entry(pos, struct plain_ws_conn, link_all), code, reason);
    }
}

void plain_ws_hold_heartbeats(struct plain_ws *pw, bool hold)
{
    if (!heartbeat_hold_set(&pw->hold, hold, deadline_clock_ms()) || hold)
        return;
    /* each connection awaiting a pong moves once from the head to the tail with a new ping */
    size_t n = deadline_count(&pw->pong_wait);
    while (n-- > 0 && deadline_first(&pw->pong_wait) != NULL)
        ping(container_of(deadline_first(&pw->pong_wait), struct plain_ws_conn, heartbeat));
    arm_timer(pw);
}

size_t plain_ws_count(const struct plain_ws *pw)
{
    return pw->open;
}

struct plain_ws *plain_ws_new(struct event_base *base, const struct plain_ws_config *cfg)
{
    struct plain_ws *pw = calloc(1, sizeof *pw);
    if (pw == NULL)
        return NULL;
    pw->cfg = *cfg;
    list_init(&pw->conns);
    if (pw->cfg.ping_interval_ms == 0)
        pw->cfg.ping_interval_ms = 25000;
    if (pw->cfg.ping_timeout_ms == 0)
        pw->cfg.ping_timeout_ms = 20000;
    if (pw->cfg.max_payload == 0)
        pw->cfg.max_payload = 1000000;
    if (pw->cfg.out_hard_limit == 0)
        pw->cfg.out_hard_limit = DEFAULT_HARD_LIMIT;
    if (pw->cfg.heartbeat_hold_max_ms == 0)
        pw->cfg.heartbeat_hold_max_ms = 60000;
    pw->hold.max_ms = pw->cfg.heartbeat_hold_max_ms;
    uint64_t **counters[] = {&pw->cfg.messages_in, &pw->cfg.messages_out, &pw->cfg.bytes_in,
                             &pw->cfg.bytes_out};
    for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++) {
        if (*counters[i] == NULL)
            *counters[i] = &pw->unused_counter;
    }
    deadline_list_init(&pw->ping_wait, pw->cfg.ping_interval_ms);
    deadline_list_init(&pw->pong_wait, pw->cfg.ping_timeout_ms);
    pw->timer.ev = evtimer_new(base, timer_cb, pw);
    if (pw->timer.ev == NULL) {
        plain_ws_free(pw);
        return NULL;
    }
    return pw;
}

void plain_ws_free(struct plain_ws *pw)
{
    if (pw == NULL)
        return;
    plain_ws_close_all(pw, WS_CLOSE_GOING_AWAY, "server shutdown");
    /* Teardown: the loop will not run again before the HTTP server goes, so the ends due run
     * here, and the links (which end with their connections) no longer call back. */
    struct list_node *pos;
    while ((pos = list_first(&pw->conns)) != NULL) {
        struct plain_ws_conn *c = list_entry(pos, struct plain_ws_conn, link_all);
        ws_link_disown(c->link);
        conn_finish(c);
    }
    if (pw->timer.ev != NULL)
        event_free(pw->timer.ev);
    free(pw);
}
