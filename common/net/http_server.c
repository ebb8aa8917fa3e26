/* http_server.c: listener and per-connection HTTP/1.1 request handling on libevent bufferevents
 * (see http_server.h). Each connection reads one request at a time: head (common/http.h parser),
 * then body (Content-Length or chunked), then the owner's callback; pipelined bytes wait until
 * the response is written. Parse state is allocated only while a request is in progress, so an
 * idle keep-alive or upgraded connection holds just its bufferevent and one timer. */
#include "common/net/http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/error.h"

#define DEFAULT_MAX_BODY (1u << 20)
#define DEFAULT_HEAD_TIMEOUT_MS 10000
#define DEFAULT_IDLE_TIMEOUT_MS 60000

enum conn_state {
    CONN_READING_HEAD,
    CONN_READING_BODY,
    CONN_WAITING_RESPONSE, /* the owner has the request */
    CONN_RESPONDING,       /* between respond_begin and respond_end */
    CONN_RAW,              /* upgraded: bytes go to the owner */
    CONN_CLOSING,          /* flushing output, then freed */
    CONN_DEAD,             /* freed from the loop at the next tick */
};

/* Parse state of the request in progress; freed between requests. */
struct conn_request {
    struct http_parser parser;
    struct http_request head;
    struct http_framing framing;
    struct http_body body;
    struct buf storage; /* head bytes, then the de-chunked body */
    size_t head_len;
    struct http_server_request pub;
};

struct http_conn {
    struct http_server *srv;
    struct http_conn *prev, *next;
    struct bufferevent *bev;
    /* One event for three jobs: timeouts (EV_TIMEOUT), "process buffered input" kicks and the
     * deferred free (both event_active with EV_WRITE as the marker). */
    struct event *tick;
    enum conn_state state;
    bool close_after_response;
    bool has_owner;
    bool paused;
    bool dirty; /* on the server's dirty list: output waits for this iteration's flush */
    struct http_conn *dirty_prev, *dirty_next;
    struct http_conn_owner owner;
    struct conn_request *req;
    char peer[64];
};

struct http_server {
    struct event_base *base;
    struct evconnlistener *listener;
    struct http_server_config cfg;
    uint16_t port;
    struct http_conn *conns;
    size_t conn_count;
    bool reads_paused; /* http_server_pause_reading */
    /* Writes are batched per loop iteration: connections whose output grew are listed here and
     * written by one flush event, directly (evbuffer_write: one writev each). The bufferevent's
     * own write event is enabled only when a socket would block, so a delivery costs one
     * system call instead of a writev plus two epoll_ctl (DESIGN.md §4). */
    struct http_conn *dirty;
    struct event *flush;
};

static void process_input(struct http_conn *conn);
static void schedule_free(struct http_conn *conn);
static void conn_lost(struct http_conn *conn, const char *reason);

static void dirty_unlink(struct http_conn *conn)
{
    if (!conn->dirty)
        return;
    if (conn->dirty_prev != NULL)
        conn->dirty_prev->dirty_next = conn->dirty_next;
    else
        conn->srv->dirty = conn->dirty_next;
    if (conn->dirty_next != NULL)
        conn->dirty_next->dirty_prev = conn->dirty_prev;
    conn->dirty = false;
    conn->dirty_prev = conn->dirty_next = NULL;
}

/* Output was appended: write it at the end of this loop iteration. */
static void mark_dirty(struct http_conn *conn)
{
    if (conn->dirty || conn->state == CONN_DEAD)
        return;
    struct http_server *srv = conn->srv;
    conn->dirty = true;
    conn->dirty_prev = NULL;
    conn->dirty_next = srv->dirty;
    if (srv->dirty != NULL)
        srv->dirty->dirty_prev = conn;
    srv->dirty = conn;
    event_active(srv->flush, EV_WRITE, 0);
}

static void conn_write(struct http_conn *conn, const void *p, size_t len)
{
    evbuffer_add(bufferevent_get_output(conn->bev), p, len);
    mark_dirty(conn);
}

/* Everything queued was written: what the bufferevent's write callback would do. */
static void output_drained(struct http_conn *conn)
{
    if (conn->state == CONN_CLOSING) {
        schedule_free(conn);
        return;
    }
    if (conn->has_owner && conn->owner.on_drained != NULL)
        conn->owner.on_drained(conn->owner.ctx, conn);
}

static void flush_conn(struct http_conn *conn)
{
    struct evbuffer *out = bufferevent_get_output(conn->bev);
    if (conn->state == CONN_DEAD || evbuffer_get_length(out) == 0)
        return;
    /* A socket bufferevent keeps the start of its output frozen and thaws it only around its
     * own writes (libevent's bufferevent_writecb does the same): a frozen buffer refuses the
     * write with -1 and leaves errno as it was. */
    evbuffer_unfreeze(out, 1);
    errno = 0;
    int n = evbuffer_write(out, bufferevent_getfd(conn->bev));
    evbuffer_freeze(out, 1);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        if (conn->state == CONN_CLOSING)
            schedule_free(conn); /* the peer is gone: nothing more can be sent */
        else
            conn_lost(conn, "transport error");
        return;
    }
    if (evbuffer_get_length(out) > 0) {
        bufferevent_enable(conn->bev, EV_WRITE); /* the rest once the socket is writable */
        return;
    }
    output_drained(conn);
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct http_server *srv = arg;
    while (srv->dirty != NULL) {
        struct http_conn *conn = srv->dirty;
        dirty_unlink(conn);
        flush_conn(conn);
    }
}

static void report(struct http_conn *conn, const char *what)
{
    if (conn->srv->cfg.on_error != NULL)
        conn->srv->cfg.on_error(conn->srv->cfg.ctx, what, conn->peer);
}

static void arm_timer(struct http_conn *conn, unsigned ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(conn->tick, &tv);
}

static void request_free(struct http_conn *conn)
{
    if (conn->req == NULL)
        return;
    buf_deinit(&conn->req->storage);
    free(conn->req);
    conn->req = NULL;
}

static void conn_destroy(struct http_conn *conn)
{
    struct http_server *srv = conn->srv;
    if (conn->prev != NULL)
        conn->prev->next = conn->next;
    else
        srv->conns = conn->next;
    if (conn->next != NULL)
        conn->next->prev = conn->prev;
    srv->conn_count--;
    dirty_unlink(conn);
    request_free(conn);
    bufferevent_free(conn->bev);
    event_free(conn->tick);
    free(conn);
}

/* The connection ended without the owner asking: tell the owner, then free from the loop. */
static void conn_lost(struct http_conn *conn, const char *reason)
{
    if (conn->state == CONN_DEAD)
        return;
    bool had_owner = conn->has_owner;
    struct http_conn_owner owner = conn->owner;
    conn->has_owner = false;
    schedule_free(conn);
    if (had_owner && owner.on_close != NULL)
        owner.on_close(owner.ctx, conn, reason);
}

static void schedule_free(struct http_conn *conn)
{
    conn->state = CONN_DEAD;
    bufferevent_disable(conn->bev, EV_READ | EV_WRITE);
    evtimer_del(conn->tick);
    event_active(conn->tick, EV_WRITE, 0);
}

/* Answers a peer error the server handles itself, then closes after the flush. */
static void fail_request(struct http_conn *conn, int status, const char *what)
{
    report(conn, what);
    struct buf head;
    buf_init(&head, 0);
    static const struct http_field fields[] = {{"Content-Length", "0"}, {"Connection", "close"}};
    http_write_response_head(&head, status, fields, 2);
    if (head.err == SIOC_OK)
        conn_write(conn, head.data, head.len);
    buf_deinit(&head);
    request_free(conn);
    http_conn_close(conn, true);
}

static int status_for(int err)
{
    switch (err) {
    case SIOC_ETOOBIG: return 431;
    case SIOC_ENOTSUP: return 505;
    default: return 400;
    }
}

/* The request is complete: re-parse the head from its stable copy and hand it over. */
static void deliver(struct http_conn *conn)
{
    struct conn_request *r = conn->req;
    http_parser_reset(&r->parser);
    int rc = http_request_parse(&r->parser, r->storage.data, r->head_len, &r->head);
    if (rc != (int)r->head_len) { /* cannot happen: the same bytes parsed before */
        fail_request(conn, 500, "internal: head re-parse failed");
        return;
    }
    struct http_server_request *pub = &r->pub;
    pub->head = &r->head;
    http_target_split(r->head.target, &pub->path, &pub->query);
    pub->body.p = r->storage.data + r->head_len;
    pub->body.len = r->storage.len - r->head_len;
    pub->keep_alive = r->framing.keep_alive;
    pub->upgrade = r->framing.upgrade;
    conn->state = CONN_WAITING_RESPONSE;
    conn->close_after_response = !r->framing.keep_alive;
    evtimer_del(conn->tick);
    conn->srv->cfg.on_request(conn->srv->cfg.ctx, conn, pub);
}

/* Reads a head from the input buffer. Returns true when it made progress and the state moved
 * on; false when more bytes are needed or the connection failed. */
static bool read_head(struct http_conn *conn, struct evbuffer *in)
{
    size_t avail = evbuffer_get_length(in);
    if (avail == 0) {
        arm_timer(conn, conn->srv->cfg.idle_timeout_ms);
        return false;
    }
    if (conn->req == NULL) {
        conn->req = calloc(1, sizeof *conn->req);
        if (conn->req == NULL) {
            fail_request(conn, 503, "out of memory");
            return false;
        }
        struct http_limits limits = {conn->srv->cfg.max_head, 0};
        http_parser_init(&conn->req->parser, &limits);
        buf_init(&conn->req->storage, 0);
        arm_timer(conn, conn->srv->cfg.head_timeout_ms);
    }
    struct conn_request *r = conn->req;
    /* The parser stops with ETOOBIG once it has seen more than max_head bytes. */
    size_t n = avail < r->parser.max_head + 2 ? avail : r->parser.max_head + 2;
    const uint8_t *p = evbuffer_pullup(in, (ev_ssize_t)n);
    int rc = http_request_parse(&r->parser, p, n, &r->head);
    if (rc == SIOC_EAGAIN)
        return false;
    if (rc < 0) {
        fail_request(conn, status_for(rc), rc == SIOC_ETOOBIG ? "request head too large"
                                                              : "malformed request head");
        return false;
    }
    r->head_len = (size_t)rc;
    int frc = http_request_framing(&r->head, &r->framing);
    if (frc != SIOC_OK) {
        fail_request(conn, frc == SIOC_ENOTSUP ? 501 : 400, "bad request framing");
        return false;
    }
    if (http_body_init(&r->body, &r->framing, conn->srv->cfg.max_body) != SIOC_OK) {
        fail_request(conn, 413, "request body too large");
        return false;
    }
    buf_append(&r->storage, p, r->head_len);
    evbuffer_drain(in, r->head_len);
    if (r->storage.err != SIOC_OK) {
        fail_request(conn, 503, "out of memory");
        return false;
    }
    conn->state = CONN_READING_BODY;
    return true;
}

static bool read_body(struct http_conn *conn, struct evbuffer *in)
{
    struct conn_request *r = conn->req;
    for (;;) {
        size_t avail = evbuffer_get_length(in);
        const uint8_t *p = avail > 0 ? evbuffer_pullup(in, (ev_ssize_t)avail) : (const uint8_t *)"";
        struct slice data = {NULL, 0};
        size_t consumed = 0;
        int rc = http_body_decode(&r->body, p, avail, &data, &consumed);
        if (data.len > 0)
            buf_append(&r->storage, data.p, data.len);
        evbuffer_drain(in, consumed);
        if (r->storage.err != SIOC_OK) {
            fail_request(conn, 503, "out of memory");
            return false;
        }
        if (rc == SIOC_OK) {
            deliver(conn);
            return true;
        }
        if (rc == SIOC_EAGAIN) {
            if (consumed == 0 || consumed == avail)
                return false;
            continue;
        }
        fail_request(conn, rc == SIOC_ETOOBIG ? 413 : 400,
                     rc == SIOC_ETOOBIG ? "request body too large" : "malformed chunked body");
        return false;
    }
}

static void process_input(struct http_conn *conn)
{
    struct evbuffer *in = bufferevent_get_input(conn->bev);
    for (;;) {
        switch (conn->state) {
        case CONN_READING_HEAD:
            if (!read_head(conn, in))
                return;
            break;
        case CONN_READING_BODY:
            if (!read_body(conn, in))
                return;
            break;
        case CONN_RAW:
            if (conn->has_owner && conn->owner.on_data != NULL && evbuffer_get_length(in) > 0)
                conn->owner.on_data(conn->owner.ctx, conn, in);
            return;
        default:
            return; /* waiting for a response, closing or dead: bytes stay buffered */
        }
    }
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    process_input(arg);
}

/* The bufferevent wrote what a flush left behind (its write event is on only then). */
static void write_cb(struct bufferevent *bev, void *arg)
{
    bufferevent_disable(bev, EV_WRITE);
    output_drained(arg);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct http_conn *conn = arg;
    if (conn->state == CONN_CLOSING) {
        schedule_free(conn); /* the peer went away while we flushed: nothing more to send */
        return;
    }
    conn_lost(conn, (what & BEV_EVENT_EOF) ? "transport close" : "transport error");
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    struct http_conn *conn = arg;
    if (conn->state == CONN_DEAD) {
        conn_destroy(conn);
        return;
    }
    if (what & EV_TIMEOUT) {
        /* Only READING_HEAD/BODY arm the timer: an idle keep-alive connection or a stalled
         * head (slowloris). Neither has an owner worth telling. */
        if (conn->req != NULL && evbuffer_get_length(bufferevent_get_input(conn->bev)) > 0)
            report(conn, "request head timeout");
        request_free(conn);
        http_conn_close(conn, false);
        return;
    }
    process_input(conn);
}

static void accept_cb(struct evconnlistener *listener, evutil_socket_t fd, struct sockaddr *addr,
                      int addrlen, void *arg)
{
    (void)listener;
    (void)addrlen;
    struct http_server *srv = arg;
    char peer[64] = "?";
    if (addr->sa_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)(const void *)addr;
        char ip[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &in4->sin_addr, ip, sizeof ip);
        snprintf(peer, sizeof peer, "%s:%u", ip, ntohs(in4->sin_port));
    } else if (addr->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)addr;
        char ip[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
        snprintf(peer, sizeof peer, "[%s]:%u", ip, ntohs(in6->sin6_port));
    }
    if (srv->cfg.max_connections != 0 && srv->conn_count >= srv->cfg.max_connections) {
        if (srv->cfg.on_error != NULL)
            srv->cfg.on_error(srv->cfg.ctx, "connection limit reached", peer);
        evutil_closesocket(fd);
        return;
    }
    struct http_conn *conn = calloc(1, sizeof *conn);
    if (conn == NULL) {
        evutil_closesocket(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* frames are latency-bound */
    conn->srv = srv;
    memcpy(conn->peer, peer, sizeof peer);
    conn->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
    conn->tick = evtimer_new(srv->base, tick_cb, conn);
    if (conn->bev == NULL || conn->tick == NULL) {
        if (conn->bev != NULL)
            bufferevent_free(conn->bev);
        else
            evutil_closesocket(fd);
        if (conn->tick != NULL)
            event_free(conn->tick);
        free(conn);
        return;
    }
    conn->next = srv->conns;
    if (srv->conns != NULL)
        srv->conns->prev = conn;
    srv->conns = conn;
    srv->conn_count++;
    conn->state = CONN_READING_HEAD;
    bufferevent_setcb(conn->bev, read_cb, write_cb, event_cb, conn);
    bufferevent_disable(conn->bev, EV_WRITE); /* writes go through the flush (see dirty) */
    if (!srv->reads_paused)
        bufferevent_enable(conn->bev, EV_READ);
    arm_timer(conn, srv->cfg.head_timeout_ms);
}

/* "host:port" or "[v6]:port" (port 0 = any free port) -> socket address; names resolve once
 * at startup. */
static bool parse_listen(const char *listen, struct sockaddr_storage *ss, int *sslen)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    if (colon == NULL || colon == listen || (size_t)(colon - listen) >= sizeof host)
        return false;
    size_t hlen = (size_t)(colon - listen);
    const char *h = listen;
    if (h[0] == '[' && hlen >= 2 && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0 || res == NULL)
        return false;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *sslen = (int)res->ai_addrlen;
    freeaddrinfo(res);
    return true;
}

struct http_server *http_server_new(struct event_base *base, const struct http_server_config *cfg,
                                    char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    int sslen = 0;
    memset(&ss, 0, sizeof ss);
    if (cfg->listen == NULL || !parse_listen(cfg->listen, &ss, &sslen)) {
        snprintf(err, errlen, "cannot parse listen address '%s' (want host:port)",
                 cfg->listen ? cfg->listen : "");
        return NULL;
    }
    struct http_server *srv = calloc(1, sizeof *srv);
    if (srv == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    srv->base = base;
    srv->cfg = *cfg;
    srv->cfg.listen = NULL; /* borrowed string: not kept */
    if (srv->cfg.max_body == 0)
        srv->cfg.max_body = DEFAULT_MAX_BODY;
    if (srv->cfg.head_timeout_ms == 0)
        srv->cfg.head_timeout_ms = DEFAULT_HEAD_TIMEOUT_MS;
    if (srv->cfg.idle_timeout_ms == 0)
        srv->cfg.idle_timeout_ms = DEFAULT_IDLE_TIMEOUT_MS;
    srv->flush = event_new(base, -1, 0, flush_cb, srv);
    if (srv->flush == NULL) {
        snprintf(err, errlen, "out of memory");
        free(srv);
        return NULL;
    }
    srv->listener = evconnlistener_new_bind(base, accept_cb, srv,
                                            LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE |
                                                LEV_OPT_CLOSE_ON_EXEC,
                                            1024, (struct sockaddr *)&ss, sslen);
    if (srv->listener == NULL) {
        snprintf(err, errlen, "cannot listen on %s: %s", cfg->listen, strerror(errno));
        event_free(srv->flush);
        free(srv);
        return NULL;
    }
    struct sockaddr_storage bound;
    socklen_t blen = sizeof bound;
    if (getsockname(evconnlistener_get_fd(srv->listener), (struct sockaddr *)&bound, &blen) == 0)
        srv->port = ntohs(bound.ss_family == AF_INET6
                              ? ((struct sockaddr_in6 *)(void *)&bound)->sin6_port
                              : ((struct sockaddr_in *)(void *)&bound)->sin_port);
    return srv;
}

void http_server_stop_listening(struct http_server *srv)
{
    if (srv->listener != NULL) {
        evconnlistener_free(srv->listener);
        srv->listener = NULL;
    }
}

void http_server_pause_reading(struct http_server *srv, bool paused)
{
    srv->reads_paused = paused;
    for (struct http_conn *conn = srv->conns; conn != NULL; conn = conn->next) {
        if (conn->state == CONN_DEAD || conn->state == CONN_CLOSING)
            continue;
        if (paused)
            bufferevent_disable(conn->bev, EV_READ);
        else if (!conn->paused)
            bufferevent_enable(conn->bev, EV_READ);
    }
}

void http_server_close_all(struct http_server *srv)
{
    struct http_conn *conn = srv->conns;
    while (conn != NULL) {
        struct http_conn *next = conn->next;
        if (conn->state != CONN_DEAD)
            conn_lost(conn, "server shutdown");
        conn = next;
    }
}

void http_server_free(struct http_server *srv)
{
    if (srv == NULL)
        return;
    http_server_stop_listening(srv);
    http_server_close_all(srv);
    /* close_all left every connection dead; nothing calls back into the list from here */
    struct http_conn *next;
    for (struct http_conn *conn = srv->conns; conn != NULL; conn = next) {
        next = conn->next;
        conn_destroy(conn);
    }
    event_free(srv->flush);
    free(srv);
}

uint16_t http_server_port(const struct http_server *srv)
{
    return srv->port;
}

size_t http_server_connection_count(const struct http_server *srv)
{
    return srv->conn_count;
}

/* ---- responses ---- */

static void write_head(struct http_conn *conn, int status, const struct http_field *fields,
                       size_t nfields, size_t content_length)
{
    struct buf head;
    buf_init(&head, 0);
    http_write_status_line(&head, status);
    for (size_t i = 0; i < nfields; i++)
        http_write_header(&head, fields[i].name, fields[i].value);
    http_write_header_u64(&head, "Content-Length", content_length);
    if (conn->close_after_response)
        http_write_header(&head, "Connection", "close");
    buf_append(&head, "\r\n", 2);
    if (head.err == SIOC_OK)
        conn_write(conn, head.data, head.len);
    else
        report(conn, "internal: invalid response header");
    buf_deinit(&head);
}

void http_conn_respond_begin(struct http_conn *conn, int status, const struct http_field *fields,
                             size_t nfields, size_t content_length, bool close_after)
{
    if (conn->state != CONN_WAITING_RESPONSE)
        return;
    conn->close_after_response = conn->close_after_response || close_after;
    write_head(conn, status, fields, nfields, content_length);
    conn->state = CONN_RESPONDING;
}

void http_conn_respond_end(struct http_conn *conn)
{
    if (conn->state != CONN_RESPONDING)
        return;
    request_free(conn);
    if (conn->close_after_response) {
        http_conn_close(conn, true);
        return;
    }
    conn->state = CONN_READING_HEAD;
    /* Pipelined bytes may be waiting; process them from the loop, not under the caller. */
    event_active(conn->tick, EV_WRITE, 0);
}

void http_conn_respond(struct http_conn *conn, int status, const struct http_field *fields,
                       size_t nfields, const void *body, size_t len, bool close_after)
{
    if (conn->state != CONN_WAITING_RESPONSE)
        return;
    http_conn_respond_begin(conn, status, fields, nfields, len, close_after);
    if (len > 0)
        conn_write(conn, body, len);
    http_conn_respond_end(conn);
}

void http_conn_write(struct http_conn *conn, const void *p, size_t len)
{
    if (conn->state == CONN_DEAD || conn->state == CONN_CLOSING || len == 0)
        return;
    conn_write(conn, p, len);
}

void http_conn_write_ref(struct http_conn *conn, const void *p, size_t len,
                         void (*release)(const void *p, size_t len, void *arg), void *arg)
{
    if (conn->state == CONN_DEAD || conn->state == CONN_CLOSING ||
        evbuffer_add_reference(bufferevent_get_output(conn->bev), p, len, release, arg) != 0) {
        release(p, len, arg);
        return;
    }
    mark_dirty(conn);
}

size_t http_conn_output_pending(const struct http_conn *conn)
{
    return evbuffer_get_length(bufferevent_get_output(conn->bev));
}

/* ---- ownership ---- */

void http_conn_set_owner(struct http_conn *conn, const struct http_conn_owner *owner)
{
    conn->owner = *owner;
    conn->has_owner = true;
}

void http_conn_clear_owner(struct http_conn *conn)
{
    conn->has_owner = false;
    memset(&conn->owner, 0, sizeof conn->owner);
}

void http_conn_upgrade(struct http_conn *conn, const struct http_conn_owner *owner)
{
    if (conn->state != CONN_WAITING_RESPONSE)
        return;
    request_free(conn);
    http_conn_set_owner(conn, owner);
    conn->state = CONN_RAW;
    evtimer_del(conn->tick);
    if (evbuffer_get_length(bufferevent_get_input(conn->bev)) > 0)
        event_active(conn->tick, EV_WRITE, 0);
}

void http_conn_close(struct http_conn *conn, bool flush)
{
    if (conn->state == CONN_DEAD || conn->state == CONN_CLOSING)
        return;
    http_conn_clear_owner(conn);
    request_free(conn);
    evtimer_del(conn->tick);
    if (flush && evbuffer_get_length(bufferevent_get_output(conn->bev)) > 0) {
        conn->state = CONN_CLOSING;
        bufferevent_disable(conn->bev, EV_READ);
        mark_dirty(conn); /* the flush (or write_cb, if it blocks) frees once it is written */
        return;
    }
    schedule_free(conn);
}

void http_conn_pause_reading(struct http_conn *conn, bool paused)
{
    if (conn->state == CONN_DEAD || conn->state == CONN_CLOSING || conn->paused == paused)
        return;
    conn->paused = paused;
    if (paused)
        bufferevent_disable(conn->bev, EV_READ);
    else if (!conn->srv->reads_paused)
        bufferevent_enable(conn->bev, EV_READ);
}

const char *http_conn_peer(const struct http_conn *conn)
{
    return conn->peer;
}

bool http_conn_is_tls(const struct http_conn *conn)
{
    (void)conn;
    return false;
}
