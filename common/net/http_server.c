/* http_server.c: listener and per-connection HTTP/1.1 request handling on libevent (see
 * http_server.h). Each connection reads one request at a time: head (common/http.h parser),
 * then body (Content-Length or chunked), then the owner's callback; pipelined bytes wait until
 * the response is written.
 *
 * Memory (DESIGN.md §4): an idle connection is one struct http_conn with one embedded socket
 * event and nothing else. Reads go into a buffer shared by the whole server; only bytes nobody
 * consumed yet (a partial head or frame) are copied into the connection. Request parse state
 * exists only while a request is in progress. Timeouts are not per-connection timers: every
 * connection waiting for a head sits in one of two FIFO lists (one per timeout, so each list is
 * ordered by deadline) under one server timer.
 *
 * Writes: output is a queue of segments (borrowed shared frames, or small owned copies) written
 * with one sendmsg per connection per loop iteration: connections whose output grew are put on
 * the server's work list and flushed together by one event. The socket event asks for EV_WRITE
 * only while a socket would block. Closing and "process buffered input" are deferred through the
 * same work list, so a connection is never freed under its caller.
 *
 * TLS (http_server_config.tls, common/net/tls.h): the first byte tells a handshake from plain
 * bytes; the handshake runs on the connection's own socket under its own deadline list; then
 * reads go through SSL_read into the same shared buffer and output leaves through
 * tls_conn_writev from the same segment queue (one record per 16 KB instead of one sendmsg). The
 * listener and accepts are in http_listener.c. */
#include "common/container.h"
#include "common/net/http_server.h"

#include <assert.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "common/deadline.h"
#include "common/error.h"
#include "common/net/deadline_timer.h"
#include "common/net/http_output.h"
#include "common/net/http_server_internal.h"
#include "common/net/tls.h"

static void process_input(struct http_conn *conn);
static void conn_lost(struct http_conn *conn, enum conn_end why);
static void schedule_free(struct http_conn *conn);
static void conn_close_why(struct http_conn *conn, bool flush, enum conn_end why);
static void conn_tell_owner(struct http_conn *conn);

static void report(struct http_conn *conn, const char *what)
{
    if (conn->srv->cfg.on_error != NULL)
        conn->srv->cfg.on_error(conn->srv->cfg.ctx, what, http_conn_peer(conn));
}

/* ---- the socket event's interest ---- */

static void io_cb(evutil_socket_t fd, short what, void *arg);

/* Above the soft limit a connection's input waits until its peer has read some output. */
static bool output_full(const struct http_conn *conn)
{
    return conn->out_bytes >= conn->srv->cfg.output_soft_limit;
}

/* Adds the socket event with exactly the flags the state asks for (an epoll_ctl only when they
 * change): read unless paused or finished, write while output is blocked. */
static void update_interest(struct http_conn *conn, bool want_write)
{
    short want = 0;
    bool reading = conn->state != CONN_DEAD && (conn->state != CONN_CLOSING || conn->lingering) &&
                   !conn->paused && !conn->srv->reads_paused && conn->in_len < PIPELINE_MAX &&
                   !output_full(conn);
    if (reading)
        want |= EV_READ;
    if ((want_write || conn->tls_wants_write) && conn->state != CONN_DEAD)
        want |= EV_WRITE;
    if (want == conn->interest)
        return;
    if (conn->interest != 0)
        event_del(&conn->ev);
    conn->interest = want;
    if (want == 0)
        return;
    event_assign(&conn->ev, conn->srv->base, event_get_fd(&conn->ev), want | EV_PERSIST, io_cb,
                 conn);
    event_add(&conn->ev, NULL);
}

static bool write_blocked(const struct http_conn *conn)
{
    return (conn->interest & EV_WRITE) != 0;
}

/* ---- deferred work ---- */

static void add_work(struct http_conn *conn, uint8_t what)
{
    struct http_server *srv = conn->srv;
    if (conn->work == 0) {
        conn->work_next = NULL;
        if (srv->work_tail != NULL)
            srv->work_tail->work_next = conn;
        else
            srv->work = conn;
        srv->work_tail = conn;
        event_active(srv->work_event, EV_WRITE, 0);
    }
    conn->work |= what;
}

/* Takes the first connection off the work list; its work flags are returned and cleared. */
static uint8_t work_pop(struct http_server *srv, struct http_conn **out)
{
    struct http_conn *conn = srv->work;
    srv->work = conn->work_next;
    if (srv->work == NULL)
        srv->work_tail = NULL;
    conn->work_next = NULL;
    uint8_t w = conn->work;
    conn->work = 0;
    *out = conn;
    return w;
}

/* ---- timeouts ---- */

static void arm_server_timer(struct http_server *srv)
{
    struct deadline_list *lists[] = {&srv->head_wait, &srv->idle_wait, &srv->handshake_wait};
    deadline_timer_arm(&srv->timer, lists, 3);
}

static void arm_timer(struct http_conn *conn, struct deadline_list *list)
{
    deadline_push(list, &conn->timeout, deadline_clock_ms());
    arm_server_timer(conn->srv);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct http_server *srv = arg;
    uint64_t now = deadline_clock_ms();
    struct deadline_list *lists[] = {&srv->head_wait, &srv->idle_wait, &srv->handshake_wait};
    for (size_t i = 0; i < 3; i++) {
        struct deadline_node *n;
        while ((n = deadline_pop_expired(lists[i], now)) != NULL) {
            struct http_conn *conn = container_of(n, struct http_conn, timeout);
            if (conn->state == CONN_CLOSING) {
                schedule_free(conn); /* the peer does not read what is left: give up on it */
                continue;
            }
            /* An idle keep-alive connection or a stalled head (slowloris). Neither has an
             * owner worth telling. */
            if (conn->req != NULL && conn->in_len > 0)
                report(conn, "request head timeout");
            else if (lists[i] == &srv->handshake_wait)
                report(conn, "TLS handshake timeout");
            http_conn_close(conn, false);
        }
    }
    arm_server_timer(srv);
}

/* ---- output ---- */

/* Checked before `len` more bytes are queued: true when they would pass the hard limit (or it
 * was passed before), and then the connection is lost from the loop with every later write
 * dropped: a peer that reads nothing costs at most the limit. */
static bool output_over(struct http_conn *conn, size_t len)
{
    if (conn->out_bytes + len <= conn->srv->cfg.output_hard_limit && !conn->over_limit)
        return false;
    if (!conn->over_limit) {
        conn->over_limit = true;
        report(conn, "output limit");
        add_work(conn, WORK_LOST); /* not under the writer: the owner may be in the middle of it */
    }
    return true;
}

/* Room for `len` (> 0) more bytes at the end of the output, to be filled by the caller at once:
 * in the last small or owned segment when they fit, else in a new one (small bytes inside the
 * segment, larger ones in an owned block). Counted as queued and flushed at the end of the
 * iteration. NULL when out of memory (the connection is then lost). */
static uint8_t *out_space(struct http_conn *conn, size_t len)
{
    if (output_over(conn, len))
        return NULL;
    struct out_seg *last =
        conn->out_count > 0 ? &conn->out[conn->out_head + conn->out_count - 1] : NULL;
    /* the first segment may be partly written: appending to it is still fine */
    bool fits =
        last != NULL &&
        ((last->kind == SEG_SMALL && last->len + len <= SMALL_BYTES) ||
         (last->kind == SEG_OWNED && last->len + len <= (size_t)(uintptr_t)last->u.ref.arg));
    if (!fits) {
        uint8_t *block = NULL;
        size_t cap = len < OWNED_BLOCK_MIN ? OWNED_BLOCK_MIN : len;
        if ((len > SMALL_BYTES && (block = malloc(cap)) == NULL) ||
            (last = out_push(conn)) == NULL) {
            free(block);
            conn_lost(conn, END_NO_MEMORY);
            return NULL;
        }
        last->len = 0;
        last->kind = block != NULL ? SEG_OWNED : SEG_SMALL;
        if (block != NULL) {
            last->u.ref.p = block;
            last->u.ref.release = NULL;
            last->u.ref.arg = (void *)(uintptr_t)cap;
        }
    }
    uint8_t *dst = (last->kind == SEG_SMALL ? last->u.small : (uint8_t *)last->u.ref.p) + last->len;
    last->len += (uint32_t)len;
    conn->out_bytes += len;
    if (!write_blocked(conn))
        add_work(conn, WORK_FLUSH);
    return dst;
}

/* Copies bytes to the output. */
static void conn_write(struct http_conn *conn, const void *p, size_t len)
{
    uint8_t *dst = len > 0 ? out_space(conn, len) : NULL;
    if (dst != NULL)
        memcpy(dst, p, len);
}

/* Everything queued was written. */
static void output_drained(struct http_conn *conn)
{
    if (conn->out != conn->seg_inline)
        out_clear(conn); /* an idle connection keeps no segment array */
    if (conn->state == CONN_CLOSING) {
        /* lingering close (as nginx's): FIN after the last answer, then drain the peer */
        /* TLS: close_notify first (RFC 8446 6.1); the lingering reads that follow are raw */
        tls_conn_free(conn->tls, true);
        conn->tls = NULL;
        if (!conn->lingering && shutdown(event_get_fd(&conn->ev), SHUT_WR) == 0) {
            conn->lingering = true;
            update_interest(conn, false);
            return;
        }
        schedule_free(conn);
        return;
    }
    if (conn->has_owner && conn->owner.on_drained != NULL)
        conn->owner.on_drained(conn->owner.ctx, conn);
}

/* TLS output: sendmsg's contract (bytes, or -1 with errno EAGAIN when the socket is full), one
 * record per TLS_STAGE bytes. Only the encryption is per connection: shared frames are read in
 * place (DESIGN.md §4). */
static ssize_t tls_send(struct http_conn *conn, const struct iovec *iov, int n)
{
    char why[160] = "";
    ssize_t w =
        tls_conn_writev(conn->tls, iov, n, conn->srv->tls_stage, TLS_STAGE, why, sizeof why);
    if (w > 0)
        return w;
    if (w == TLS_WANT_WRITE) {
        errno = EAGAIN;
        return -1;
    }
    /* TLS_WANT_READ would mean a handshake under way (renegotiation, refused) */
    char what[200];
    snprintf(what, sizeof what, "TLS write failed: %s", w == TLS_WANT_READ ? "renegotiation" : why);
    report(conn, what);
    errno = EPIPE;
    return -1;
}

/* Writes as much queued output as the socket takes, one sendmsg per WRITE_IOV_MAX segments. */
static void flush_conn(struct http_conn *conn)
{
    if (conn->state == CONN_DEAD)
        return;
    while (conn->out_count > 0) {
        struct iovec iov[WRITE_IOV_MAX];
        int n = 0;
        size_t want = 0;
        for (uint32_t i = 0; i < conn->out_count && n < WRITE_IOV_MAX; i++) {
            const struct out_seg *seg = &conn->out[conn->out_head + i];
            size_t skip = i == 0 ? conn->out_off : 0;
            iov[n].iov_base = (void *)(seg_bytes(seg) + skip);
            iov[n].iov_len = seg->len - skip;
            want += iov[n].iov_len;
            n++;
        }
        ssize_t w;
        if (conn->tls != NULL) {
            w = tls_send(conn, iov, n);
        } else {
            struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
            w = sendmsg(event_get_fd(&conn->ev), &msg, MSG_NOSIGNAL);
        }
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            if (conn->state == CONN_CLOSING)
                schedule_free(conn); /* the peer is gone: nothing more can be sent */
            else
                conn_lost(conn, END_TRANSPORT_ERROR);
            return;
        }
        size_t left = (size_t)w;
        conn->out_bytes -= left;
        while (left > 0) {
            struct out_seg *seg = &conn->out[conn->out_head];
            size_t rest = seg->len - conn->out_off;
            if (left < rest) {
                conn->out_off += left;
                break;
            }
            left -= rest;
            conn->out_off = 0;
            seg_release(seg);
            conn->out_head++;
            conn->out_count--;
        }
        if (conn->out_count == 0)
            conn->out_head = 0;
        if ((size_t)w < want)
            break; /* the socket is full */
    }
    /* write the rest once the socket is writable; read again once below the soft limit */
    update_interest(conn, conn->out_count > 0);
    if (conn->input_stalled && !output_full(conn)) {
        conn->input_stalled = false;
        add_work(conn, WORK_INPUT); /* the input that waited for the peer to read */
    }
    if (conn->out_count == 0)
        output_drained(conn);
}

/* ---- connection lifetime ---- */

/* A zeroed request state with an empty storage buffer, from the spares when there is one. */
static struct conn_request *request_get(struct http_server *srv)
{
    if (srv->spare_count == 0) {
        struct conn_request *r = calloc(1, sizeof *r);
        if (r != NULL)
            buf_init(&r->storage, 0);
        return r;
    }
    struct conn_request *r = srv->spare[--srv->spare_count];
    struct buf storage = r->storage;
    memset(r, 0, sizeof *r);
    r->storage = storage;
    buf_reset(&r->storage);
    return r;
}

static void request_free(struct http_conn *conn)
{
    struct conn_request *r = conn->req;
    struct http_server *srv = conn->srv;
    if (r == NULL)
        return;
    conn->req = NULL;
    if (srv->spare_count < SPARE_REQUESTS && r->storage.cap <= SPARE_STORAGE_MAX) {
        srv->spare[srv->spare_count++] = r;
        return;
    }
    buf_deinit(&r->storage);
    free(r);
}

static void input_free(struct http_conn *conn)
{
    free(conn->in);
    conn->in = NULL;
    conn->in_len = conn->in_cap = 0;
}

static void conn_destroy(struct http_conn *conn)
{
    struct http_server *srv = conn->srv;
    list_remove(&conn->link);
    srv->conn_count--;
    if (conn->over_limit_conn)
        http_listener_reserve_remove(srv, conn);
    http_listener_conn_gone(srv);
    deadline_remove(&conn->timeout);
    if (conn->interest != 0)
        event_del(&conn->ev);
    tls_conn_free(conn->tls, false);
    evutil_closesocket(event_get_fd(&conn->ev));
    out_clear(conn);
    input_free(conn);
    request_free(conn);
    free(conn);
}

static const char *const end_reasons[] = {
    [END_NONE] = "local close",
    [END_LOCAL] = "local close",
    [END_TRANSPORT_CLOSE] = "transport close",
    [END_TRANSPORT_ERROR] = "transport error",
    [END_NO_MEMORY] = "out of memory",
    [END_OUTPUT_LIMIT] = "output limit",
    [END_TLS_HANDSHAKE] = "TLS handshake failed",
    [END_TLS_RENEGOTIATION] = "TLS renegotiation",
    [END_SHUTDOWN] = "server shutdown",
    [END_EVICTED] = "connection limit",
};

/* The one end of every connection (http_server.h "How a connection ends"): the owner hears the
 * first cause, once, right before the memory goes. Runs from the work event (or from
 * http_server_free), never under a caller of this connection. */
static void conn_tell_owner(struct http_conn *conn)
{
    if (conn->has_owner) {
        struct http_conn_owner owner = conn->owner;
        conn->has_owner = false;
        if (owner.on_close != NULL)
            owner.on_close(owner.ctx, conn, end_reasons[conn->end]);
    }
}

static void conn_finish(struct http_conn *conn)
{
    conn_tell_owner(conn);
    conn_destroy(conn);
}

/* The connection ended without the owner asking: it is freed (and the owner told) from the
 * loop. */
static void conn_lost(struct http_conn *conn, enum conn_end why)
{
    if (conn->state == CONN_DEAD)
        return;
    if (conn->end == END_NONE)
        conn->end = (uint8_t)why;
    schedule_free(conn);
}

static void schedule_free(struct http_conn *conn)
{
    if (conn->end == END_NONE)
        conn->end = END_LOCAL;
    conn->state = CONN_DEAD;
    update_interest(conn, false);
    deadline_remove(&conn->timeout);
    add_work(conn, WORK_FREE);
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

/* ---- reading requests ---- */

/* A plain request on the TLS port: only the paths the owner lets through (health checks). */
static bool plain_path_allowed(const struct http_server *srv, struct slice path)
{
    for (const char *const *p = srv->cfg.plain_paths; p != NULL && *p != NULL; p++) {
        if (strlen(*p) == path.len && memcmp(*p, path.p, path.len) == 0)
            return true;
    }
    return false;
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
    pub->over_limit = conn->over_limit_conn;
    pub->secure = conn->tls != NULL;
    if (conn->plain_on_tls && !plain_path_allowed(conn->srv, pub->path)) {
        fail_request(conn, 400, "plain HTTP on the TLS port");
        return;
    }
    conn->state = CONN_WAITING_RESPONSE;
    conn->close_after_response = !r->framing.keep_alive || conn->over_limit_conn;
    deadline_remove(&conn->timeout);
    conn->srv->cfg.on_request(conn->srv->cfg.ctx, conn, pub);
}

/* Reads a head from p[0..avail). Returns true when it made progress and the state moved on
 * (*used bytes consumed); false when more bytes are needed or the connection failed. The
 * bytes of an incomplete head are not consumed: the parser sees them again with more. */
static bool read_head(struct http_conn *conn, const uint8_t *p, size_t avail, size_t *used)
{
    if (avail == 0) {
        if (conn->req == NULL)
            arm_timer(conn, &conn->srv->idle_wait);
        return false;
    }
    if (conn->req == NULL) {
        conn->req = request_get(conn->srv);
        if (conn->req == NULL) {
            fail_request(conn, 503, "out of memory");
            return false;
        }
        struct http_limits limits = {conn->srv->cfg.max_head, 0};
        http_parser_init(&conn->req->parser, &limits);
        arm_timer(conn, &conn->srv->head_wait);
    }
    struct conn_request *r = conn->req;
    /* The parser stops with ETOOBIG once it has seen more than max_head bytes. */
    size_t window = http_parser_window(&r->parser);
    size_t n = avail < window ? avail : window;
    int rc = http_request_parse(&r->parser, p, n, &r->head);
    if (rc == SIOC_EAGAIN)
        return false;
    if (rc < 0) {
        fail_request(conn, status_for(rc),
                     rc == SIOC_ETOOBIG ? "request head too large" : "malformed request head");
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
    *used = r->head_len;
    if (r->storage.err != SIOC_OK) {
        fail_request(conn, 503, "out of memory");
        return false;
    }
    conn->state = CONN_READING_BODY;
    return true;
}

static bool read_body(struct http_conn *conn, const uint8_t *p, size_t avail, size_t *used)
{
    struct conn_request *r = conn->req;
    size_t off = 0;
    for (;;) {
        struct slice data = {NULL, 0};
        size_t consumed = 0;
        int rc = http_body_decode(&r->body, p + off, avail - off, &data, &consumed);
        if (data.len > 0)
            buf_append(&r->storage, data.p, data.len);
        off += consumed;
        *used = off;
        if (r->storage.err != SIOC_OK) {
            fail_request(conn, 503, "out of memory");
            return false;
        }
        if (rc == SIOC_OK) {
            deliver(conn);
            return true;
        }
        if (rc == SIOC_EAGAIN) {
            if (consumed == 0 || off == avail)
                return false;
            continue;
        }
        fail_request(conn, rc == SIOC_ETOOBIG ? 413 : 400,
                     rc == SIOC_ETOOBIG ? "request body too large" : "malformed chunked body");
        return false;
    }
}

/* Runs the connection's state machine over p[0..len); returns how many bytes it consumed.
 * Bytes of a request that must wait (a response is pending) are not consumed. */
static size_t consume(struct http_conn *conn, const uint8_t *p, size_t len)
{
    size_t off = 0;
    for (;;) {
        size_t used = 0;
        bool more = false;
        if (output_full(conn) && off < len &&
            (conn->state == CONN_READING_HEAD || conn->state == CONN_RAW)) {
            /* The peer is not reading what we answer: its next request (or raw bytes, which
             * may ask for pongs) waits, and so does the socket, until the output drains. */
            conn->input_stalled = true;
            update_interest(conn, write_blocked(conn));
            /* a peer that reads nothing for the keep-alive idle time is closed as idle */
            if (conn->state == CONN_READING_HEAD && conn->req == NULL)
                arm_timer(conn, &conn->srv->idle_wait);
            return off;
        }
        switch (conn->state) {
        case CONN_READING_HEAD: more = read_head(conn, p + off, len - off, &used); break;
        case CONN_READING_BODY: more = read_body(conn, p + off, len - off, &used); break;
        case CONN_RAW:
            if (conn->has_owner && conn->owner.on_data != NULL && len > off)
                used = conn->owner.on_data(conn->owner.ctx, conn, p + off, len - off);
            break;
        default: break; /* waiting for a response, closing or dead: bytes stay buffered */
        }
        off += used;
        if (!more)
            return off;
    }
}

/* Keeps p[0..len) (not consumed yet) in front of whatever comes next. */
static bool keep_input(struct http_conn *conn, const uint8_t *p, size_t len)
{
    if (len == 0)
        return true;
    if (conn->in_len + len > conn->in_cap) {
        size_t cap = conn->in_cap ? conn->in_cap : 512;
        while (cap < conn->in_len + len)
            cap *= 2;
        uint8_t *grown = realloc(conn->in, cap);
        if (grown == NULL) {
            conn_lost(conn, END_NO_MEMORY);
            return false;
        }
        conn->in = grown;
        conn->in_cap = cap;
    }
    memcpy(conn->in + conn->in_len, p, len);
    conn->in_len += len;
    return true;
}

/* Feeds the buffered input to the state machine and keeps what it left. */
static void process_input(struct http_conn *conn)
{
    static const uint8_t none[1] = {0};
    size_t used = consume(conn, conn->in != NULL ? conn->in : none, conn->in_len);
    if (conn->state == CONN_DEAD || conn->state == CONN_CLOSING || used == conn->in_len) {
        input_free(conn); /* nothing left, or nobody left to read it */
    } else if (used > 0 && conn->in != NULL) {
        memmove(conn->in, conn->in + used, conn->in_len - used);
        conn->in_len -= used;
    }
    update_interest(conn, write_blocked(conn));
}

/* New bytes from the socket. Without earlier leftovers they are parsed where they landed (the
 * shared read buffer) and only an unconsumed tail is copied into the connection. */
static void input_arrived(struct http_conn *conn, const uint8_t *p, size_t len)
{
    if (conn->in_len > 0) {
        if (keep_input(conn, p, len))
            process_input(conn);
        return;
    }
    size_t used = consume(conn, p, len);
    if (conn->state != CONN_DEAD && conn->state != CONN_CLOSING && used < len) {
        if (keep_input(conn, p + used, len - used))
            update_interest(conn, write_blocked(conn));
    }
}

/* ---- TLS input ---- */

static void report_tls(struct http_conn *conn, const char *what, const char *why)
{
    char line[240];
    snprintf(line, sizeof line, "%s: %s", what, why);
    report(conn, line);
}

/* The first byte on a TLS port decides: 0x16 (a handshake record, RFC 8446 5.1) starts TLS;
 * anything else is plain HTTP (plain_paths only) or garbage. Returns true to go on reading. */
static bool tls_sniff(struct http_conn *conn)
{
    static const char refusal[] = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
                                  "Content-Length: 27\r\nConnection: close\r\n\r\n"
                                  "this port speaks TLS: https";
    struct http_server *srv = conn->srv;
    uint8_t first;
    ssize_t n = recv(event_get_fd(&conn->ev), &first, 1, MSG_PEEK);
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
        return false;
    if (n <= 0) {
        conn_lost(conn, n == 0 ? END_TRANSPORT_CLOSE : END_TRANSPORT_ERROR);
        return false;
    }
    conn->tls_sniff = false;
    if (first == 0x16) {
        conn->tls = tls_conn_new(srv->cfg.tls, event_get_fd(&conn->ev));
        if (conn->tls == NULL) {
            report(conn, "TLS: out of memory");
            conn_lost(conn, END_NO_MEMORY);
            return false;
        }
        conn->tls_handshaking = true; /* still under the handshake timeout armed at accept */
        return true;
    }
    deadline_remove(&conn->timeout);
    if (srv->cfg.plain_paths != NULL) {
        conn->plain_on_tls = true;
        arm_timer(conn, &srv->head_wait);
        return true;
    }
    report(conn, "not TLS (plain HTTP or garbage) on the TLS port");
    conn_write(conn, refusal, sizeof refusal - 1);
    http_conn_close(conn, true);
    return false;
}

/* Advances the handshake; true once it is complete. */
static bool tls_handshake_step(struct http_conn *conn)
{
    char why[160] = "";
    int rc = tls_conn_handshake(conn->tls, why, sizeof why);
    if (rc == 1) {
        conn->tls_handshaking = false;
        deadline_remove(&conn->timeout);
        arm_timer(conn, &conn->srv->head_wait); /* now as a fresh plain connection */
        return true;
    }
    if (rc == TLS_WANT_WRITE) {
        conn->tls_wants_write = true;
        update_interest(conn, true);
    } else if (rc != TLS_WANT_READ) {
        report_tls(conn, "TLS handshake failed", rc == TLS_CLOSED ? "peer closed" : why);
        conn_lost(conn, END_TLS_HANDSHAKE);
    }
    return false;
}

static void tls_read(struct http_conn *conn)
{
    struct http_server *srv = conn->srv;
    char why[160] = "";
    for (int i = 0; i < READS_PER_EVENT; i++) {
        ssize_t n = tls_conn_read(conn->tls, srv->scratch, READ_CHUNK, why, sizeof why);
        if (tls_conn_renegotiating(conn->tls)) {
            report(conn, "TLS renegotiation refused");
            conn_lost(conn, END_TLS_RENEGOTIATION);
            return;
        }
        if (n == TLS_WANT_READ)
            return;
        if (n == TLS_WANT_WRITE) {
            conn->tls_wants_write = true;
            update_interest(conn, true);
            return;
        }
        if (n <= 0) {
            if (n == TLS_FAILED)
                report_tls(conn, "TLS error", why);
            conn_lost(conn, n == TLS_CLOSED ? END_TRANSPORT_CLOSE : END_TRANSPORT_ERROR);
            return;
        }
        input_arrived(conn, srv->scratch, (size_t)n);
        if (!(conn->interest & EV_READ))
            return;
    }
}

static void read_socket(struct http_conn *conn)
{
    struct http_server *srv = conn->srv;
    int fd = event_get_fd(&conn->ev);
    if (conn->tls_sniff && !tls_sniff(conn))
        return;
    if (conn->tls_handshaking && !tls_handshake_step(conn))
        return;
    if (conn->tls != NULL && !conn->lingering) {
        tls_read(conn);
        return;
    }
    for (int i = 0; i < READS_PER_EVENT; i++) {
        ssize_t n = recv(fd, srv->scratch, READ_CHUNK, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n > 0 && conn->lingering)
            continue; /* dropped: the connection is closing */
        if (n <= 0) {
            if (conn->state == CONN_CLOSING)
                schedule_free(conn); /* the peer went away while we flushed */
            else
                conn_lost(conn, n == 0 ? END_TRANSPORT_CLOSE : END_TRANSPORT_ERROR);
            return;
        }
        input_arrived(conn, srv->scratch, (size_t)n);
        if ((size_t)n < READ_CHUNK || !(conn->interest & EV_READ))
            return;
    }
}

static void io_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    struct http_conn *conn = arg;
    if ((what & EV_WRITE) && conn->tls_wants_write) {
        /* TLS: the handshake or a read needed to write; output, if any, goes next */
        conn->tls_wants_write = false;
        read_socket(conn);
        if (conn->state != CONN_DEAD && conn->out_count > 0 && !conn->tls_wants_write)
            flush_conn(conn);
        return;
    }
    if (what & EV_WRITE)
        flush_conn(conn);
    if ((what & EV_READ) && (conn->interest & EV_READ))
        read_socket(conn);
}

static void work_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct http_server *srv = arg;
    while (srv->work != NULL) {
        struct http_conn *conn;
        uint8_t w = work_pop(srv, &conn);
        if (w & WORK_FREE) {
            conn_finish(conn);
            continue;
        }
        if (w & WORK_LOST) {
            if (conn->state == CONN_CLOSING)
                schedule_free(conn);
            else
                conn_lost(conn, END_OUTPUT_LIMIT);
            continue;
        }
        if (w & WORK_TELL)
            conn_tell_owner(conn);
        if ((w & WORK_INPUT) && conn->state != CONN_DEAD)
            process_input(conn);
        if ((w & WORK_FLUSH) && !write_blocked(conn))
            flush_conn(conn);
    }
}

/* Makes a connection of an accepted socket (which it owns from now on: closed on failure).
 * `over` puts it in the reserve above max_connections; `plain` skips TLS (http_server_adopt). */
static void conn_accepted(struct http_server *srv, int fd, bool over, bool plain)
{
    struct http_conn *conn = calloc(1, sizeof *conn);
    if (conn == NULL) {
        evutil_closesocket(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* frames are latency-bound */
    conn->srv = srv;
    conn->over_limit_conn = over;
    if (over)
        srv->reserve[srv->reserve_count++] = conn;
    conn->out = conn->seg_inline;
    conn->out_cap = INLINE_SEGS;
    event_assign(&conn->ev, srv->base, fd, 0, io_cb, conn); /* interest set below */
    list_push_head(&srv->conns, &conn->link);
    srv->conn_count++;
    conn->state = CONN_READING_HEAD;
    conn->tls_sniff = srv->cfg.tls != NULL && !plain;
    update_interest(conn, false);
    arm_timer(conn, conn->tls_sniff ? &srv->handshake_wait : &srv->head_wait);
}

void http_server_adopt(struct http_server *srv, int fd)
{
    conn_accepted(srv, fd, false, true);
}

static void server_free_parts(struct http_server *srv)
{
    while (srv->spare_count > 0) {
        struct conn_request *r = srv->spare[--srv->spare_count];
        buf_deinit(&r->storage);
        free(r);
    }
    if (srv->work_event != NULL)
        event_free(srv->work_event);
    if (srv->accept_retry != NULL)
        event_free(srv->accept_retry);
    if (srv->timer.ev != NULL)
        event_free(srv->timer.ev);
    free(srv->scratch);
    free(srv->tls_stage);
    free(srv->reserve);
    free(srv);
}

struct http_server *http_server_new(struct event_base *base, const struct http_server_config *cfg,
                                    char *err, size_t errlen)
{
    struct http_server *srv = calloc(1, sizeof *srv);
    if (srv == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    srv->base = base;
    list_init(&srv->conns);
    srv->cfg = *cfg;
    srv->cfg.listen = NULL; /* borrowed string: not kept */
    if (srv->cfg.max_body == 0)
        srv->cfg.max_body = DEFAULT_MAX_BODY;
    if (srv->cfg.head_timeout_ms == 0)
        srv->cfg.head_timeout_ms = DEFAULT_HEAD_TIMEOUT_MS;
    if (srv->cfg.idle_timeout_ms == 0)
        srv->cfg.idle_timeout_ms = DEFAULT_IDLE_TIMEOUT_MS;
    if (srv->cfg.output_soft_limit == 0)
        srv->cfg.output_soft_limit = DEFAULT_OUTPUT_SOFT;
    if (srv->cfg.output_hard_limit == 0)
        srv->cfg.output_hard_limit = DEFAULT_OUTPUT_HARD;
    if (srv->cfg.output_hard_limit < srv->cfg.output_soft_limit)
        srv->cfg.output_hard_limit = srv->cfg.output_soft_limit;
    deadline_list_init(&srv->head_wait, srv->cfg.head_timeout_ms);
    deadline_list_init(&srv->idle_wait, srv->cfg.idle_timeout_ms);
    if (srv->cfg.handshake_timeout_ms == 0)
        srv->cfg.handshake_timeout_ms = DEFAULT_HANDSHAKE_TIMEOUT_MS;
    deadline_list_init(&srv->handshake_wait, srv->cfg.handshake_timeout_ms);
    if (srv->cfg.tls != NULL)
        srv->tls_stage = malloc(TLS_STAGE);
    srv->work_event = event_new(base, -1, 0, work_cb, srv);
    srv->timer.ev = evtimer_new(base, timer_cb, srv);
    srv->scratch = malloc(READ_CHUNK);
    srv->accept_retry = evtimer_new(base, http_listener_retry_cb, srv);
    if (srv->cfg.max_connections == 0)
        srv->cfg.reserve_connections = 0;
    if (srv->cfg.reserve_connections > 0)
        srv->reserve = calloc(srv->cfg.reserve_connections, sizeof *srv->reserve);
    if (srv->work_event == NULL || srv->timer.ev == NULL || srv->scratch == NULL ||
        srv->accept_retry == NULL || (srv->cfg.reserve_connections > 0 && srv->reserve == NULL) ||
        (srv->cfg.tls != NULL && srv->tls_stage == NULL)) {
        snprintf(err, errlen, "out of memory");
        server_free_parts(srv);
        return NULL;
    }
    if (!http_listener_open(srv, cfg->listen, conn_accepted, conn_close_why, err, errlen)) {
        server_free_parts(srv);
        return NULL;
    }
    return srv;
}

void http_server_pause_reading(struct http_server *srv, bool paused)
{
    srv->reads_paused = paused;
    struct list_node *pos, *tmp;
    list_for_each_safe(pos, tmp, &srv->conns)
    {
        struct http_conn *conn = list_entry(pos, struct http_conn, link);
        update_interest(conn, write_blocked(conn));
    }
}

void http_server_close_all(struct http_server *srv)
{
    struct list_node *pos, *tmp;
    list_for_each_safe(pos, tmp, &srv->conns)
    {
        struct http_conn *conn = list_entry(pos, struct http_conn, link);
        conn_lost(conn, END_SHUTDOWN); /* a closing one (flushing) is dropped too */
    }
}

void http_server_free(struct http_server *srv)
{
    if (srv == NULL)
        return;
    http_server_stop_listening(srv);
    http_server_close_all(srv);
    /* Every connection is dead now and the loop will not run their ends: they end here, each
     * owner told as from the loop. An owner's on_close cannot create or free another
     * connection (closing a dead one is a no-op), so the walk stays valid. */
    srv->work = srv->work_tail = NULL;
    struct list_node *pos;
    while ((pos = list_first(&srv->conns)) != NULL)
        conn_finish(list_entry(pos, struct http_conn, link));
    server_free_parts(srv);
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
    add_work(conn, WORK_INPUT);
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
    struct out_seg *seg = NULL;
    if (conn->state == CONN_DEAD || conn->state == CONN_CLOSING || len == 0 || len > UINT32_MAX ||
        output_over(conn, len) || (seg = out_push(conn)) == NULL) {
        release(p, len, arg);
        if (seg == NULL && !conn->over_limit && conn->state != CONN_DEAD &&
            conn->state != CONN_CLOSING && len > 0)
            conn_lost(conn, END_NO_MEMORY);
        return;
    }
    seg->kind = SEG_REF;
    seg->len = (uint32_t)len;
    seg->u.ref.p = p;
    seg->u.ref.release = release;
    seg->u.ref.arg = arg;
    conn->out_bytes += len;
    if (!write_blocked(conn))
        add_work(conn, WORK_FLUSH);
}

uint8_t *http_conn_write_space(struct http_conn *conn, size_t len)
{
    if (conn->state == CONN_DEAD || conn->state == CONN_CLOSING || len == 0 || len > UINT32_MAX)
        return NULL;
    return out_space(conn, len);
}

size_t http_conn_output_pending(const struct http_conn *conn)
{
    return conn->out_bytes;
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
    deadline_remove(&conn->timeout);
    if (conn->in_len > 0)
        add_work(conn, WORK_INPUT);
}

void http_conn_close(struct http_conn *conn, bool flush)
{
    conn_close_why(conn, flush, END_LOCAL);
}

static void conn_close_why(struct http_conn *conn, bool flush, enum conn_end why)
{
    if (conn->state == CONN_DEAD || conn->state == CONN_CLOSING)
        return;
    conn->end = (uint8_t)why;
    request_free(conn);
    deadline_remove(&conn->timeout);
    if (flush && conn->out_bytes > 0) {
        conn->state = CONN_CLOSING;
        input_free(conn);
        update_interest(conn, write_blocked(conn)); /* stops reading */
        arm_timer(conn, &conn->srv->head_wait);     /* flushed within head_timeout_ms, or dropped */
        if (!write_blocked(conn))
            add_work(conn, WORK_FLUSH); /* output_drained frees once it is written */
        add_work(conn, WORK_TELL);      /* the owner is done now; the flush is the server's */
        return;
    }
    schedule_free(conn);
}

bool http_conn_closing(const struct http_conn *conn)
{
    return conn->state == CONN_DEAD || conn->state == CONN_CLOSING;
}

void http_conn_pause_reading(struct http_conn *conn, bool paused)
{
    if (conn->state == CONN_DEAD || conn->state == CONN_CLOSING || conn->paused == paused)
        return;
    conn->paused = paused;
    update_interest(conn, write_blocked(conn));
}

bool http_conn_is_tls(const struct http_conn *conn)
{
    return conn->tls != NULL && !conn->tls_handshaking;
}
