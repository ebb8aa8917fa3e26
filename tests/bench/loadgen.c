/* loadgen.c: the benchmark load generator (issue 6). Speaks Engine.IO v4 / Socket.IO v5 as a
 * client over WebSocket (RFC 6455 client frames, common/ws.h) and HTTP long-polling (PROTOCOL.md
 * 1.5, packets joined by 0x1e), on one epoll loop, and runs one scenario per invocation:
 *   connect  open N clients (ws, polling, or polling then upgrade) and hold them: memory per
 *            connection, server CPU per connect, connections/s (S1, S2)
 *   echo     emit-with-ack at a fixed total rate: RTT histogram, server CPU per echo (S3).
 *            Sends follow an exact schedule (message k at k/rate, not 1 ms bursts; at most one
 *            wake per 200 us, so from 5,000/s up a few leave together); each carries its actual
 *            send time, and the RTT ends at the kernel's receive time of the ack
 *            (SO_TIMESTAMPNS), so this process's own scheduling delays on the shared cores count
 *            on neither side, and it only wakes to send. How late sends were: send_lag.
 *   fanout   N receivers (optionally joined to a room), one broadcast source (Redis emitter
 *            publish, or a client emitting "bcast"), a rate sweep: deliveries/s, CPU per delivery,
 *            latency, loss (S4, S5, S6)
 * Server cost comes from /proc (lg_proc.h), never from this process. Results: one JSON object on
 * stdout. Protocol policy (what the server must do) is the gateway's; this only drives it. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/mp.h"
#include "common/ws.h"
#include "tests/bench/lg.h"
#include "tests/bench/lg_tls.h"
#include "tests/bench/lg_proc.h"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t rel_ns(const struct lg_ctx *ctx)
{
    return now_ns() - ctx->t0;
}

/* ---- connections ---- */

static void conn_init(struct lg_conn *c, enum lg_conn_kind kind, struct lg_client *cl)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->kind = kind;
    c->client = cl;
    buf_init(&c->in, 0);
    buf_init(&c->out, 0);
    buf_init(&c->msg, 0);
    buf_init(&c->ctl, 0);
}

static void conn_close(struct lg_ctx *ctx, struct lg_conn *c)
{
    lg_tls_free(c->ssl);
    c->ssl = NULL;
    c->tls_handshaking = false;
    if (c->fd >= 0) {
        epoll_ctl(ctx->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
    buf_deinit(&c->in);
    buf_deinit(&c->out);
    buf_deinit(&c->msg);
    buf_deinit(&c->ctl);
    c->out_off = 0;
    c->handshaken = c->busy = c->want_out = c->connecting = false;
}

static void conn_set_out(struct lg_ctx *ctx, struct lg_conn *c, bool on)
{
    if (c->want_out == on || c->fd < 0)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0u), .data.ptr = c};
    epoll_ctl(ctx->ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = on;
}

static void client_fail(struct lg_client *cl, const char *why);

/* Writes what it can of c->out; arms EPOLLOUT for the rest. */
static void conn_flush(struct lg_ctx *ctx, struct lg_conn *c)
{
    if (c->fd < 0 || c->connecting || c->tls_handshaking)
        return;
    while (c->out_off < c->out.len) {
        const uint8_t *p = c->out.data + c->out_off;
        size_t len = c->out.len - c->out_off;
        ssize_t n =
            c->ssl != NULL ? lg_tls_send(c->ssl, p, len) : send(c->fd, p, len, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            conn_set_out(ctx, c, true);
            return;
        }
        if (c->client)
            client_fail(c->client, "write failed");
        else
            ctx->error = "redis write failed";
        return;
    }
    buf_reset(&c->out);
    c->out_off = 0;
    conn_set_out(ctx, c, false);
}

static bool conn_open(struct lg_ctx *ctx, struct lg_conn *c, const struct sockaddr_in *sa)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return false;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (ctx->scenario == SC_ECHO) /* the RTT ends when the ack reached this host: rx_time() */
        setsockopt(c->fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
    if (connect(c->fd, (const struct sockaddr *)sa, sizeof *sa) < 0 && errno != EINPROGRESS) {
        close(c->fd);
        c->fd = -1;
        return false;
    }
    c->connecting = true;
    c->want_out = true;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(ctx->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        close(c->fd);
        c->fd = -1;
        return false;
    }
    return true;
}

/* ---- small text helpers ---- */

/* Finds "\r\n\r\n" in p[0..len); returns the head length including it, or 0. */
static size_t head_end(const uint8_t *p, size_t len)
{
    for (size_t i = 3; i < len; i++)
        if (p[i] == '\n' && p[i - 1] == '\r' && p[i - 2] == '\n' && p[i - 3] == '\r')
            return i + 1;
    return 0;
}

static int http_status(const uint8_t *p, size_t len)
{
    if (len < 12 || memcmp(p, "HTTP/1.1 ", 9) != 0)
        return -1;
    return (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
}

/* Content-Length of a response head, or -1 when absent. */
static long http_content_length(const uint8_t *p, size_t len)
{
    static const char key[] = "\r\ncontent-length:";
    size_t klen = sizeof key - 1;
    for (size_t i = 0; i + klen < len; i++) {
        size_t k = 0;
        while (k < klen) {
            uint8_t ch = p[i + k];
            if (ch >= 'A' && ch <= 'Z')
                ch = (uint8_t)(ch + 32);
            if (ch != (uint8_t)key[k])
                break;
            k++;
        }
        if (k == klen) {
            size_t j = i + klen;
            while (j < len && p[j] == ' ')
                j++;
            long v = 0;
            while (j < len && p[j] >= '0' && p[j] <= '9')
                v = v * 10 + (p[j++] - '0');
            return v;
        }
    }
    return -1;
}

/* Parses an unsigned decimal at *p (advancing it); false when there is none. */
static bool parse_u64(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    const uint8_t *s = *p;
    uint64_t v = 0;
    while (s < end && *s >= '0' && *s <= '9')
        v = v * 10 + (uint64_t)(*s++ - '0');
    if (s == *p)
        return false;
    *p = s;
    *out = v;
    return true;
}

/* ---- sending Engine.IO packets ---- */

static void poll_request(struct lg_client *cl);

/* Sends one Engine.IO text packet on whichever transport carries the session. */
static void client_send(struct lg_client *cl, const char *p, size_t len)
{
    struct lg_ctx *ctx = cl->ctx;
    if (cl->upgraded) {
        static const uint8_t mask[4] = {0x12, 0x34, 0x56, 0x78};
        ws_write_frame_masked(&cl->ws.out, WS_OP_TEXT, true, (const uint8_t *)p, len, mask);
        conn_flush(ctx, &cl->ws);
        return;
    }
    if (cl->poll_queue.len > 0)
        buf_append_byte(&cl->poll_queue, 0x1e);
    buf_append(&cl->poll_queue, p, len);
    if (!cl->poll.busy && cl->poll.fd >= 0 && !cl->poll.connecting)
        poll_request(cl);
}

static void client_send_cstr(struct lg_client *cl, const char *s)
{
    client_send(cl, s, strlen(s));
}

/* ---- scenario hooks ---- */

static void on_connected(struct lg_client *cl)
{
    struct lg_ctx *ctx = cl->ctx;
    if (cl->state != CL_OPENING)
        return;
    cl->state = CL_CONNECTED;
    ctx->connected++;
}

static void client_fail(struct lg_client *cl, const char *why)
{
    struct lg_ctx *ctx = cl->ctx;
    if (cl->state == CL_OPENING) {
        cl->state = CL_FAILED;
        ctx->failed++;
        if (!ctx->error)
            ctx->error = why;
    } else if (cl->state == CL_CONNECTED) {
        cl->state = CL_FAILED;
        ctx->disconnects++;
    }
    conn_close(ctx, &cl->ws);
    conn_close(ctx, &cl->poll);
}

/* A Socket.IO packet (the Engine.IO message data, after the '4'). */
static void on_sio(struct lg_client *cl, const uint8_t *p, size_t len, uint64_t t)
{
    struct lg_ctx *ctx = cl->ctx;
    const uint8_t *end = p + len;
    if (len == 0)
        return;
    switch (p[0]) {
    case '0':
        if (cl->transport == TR_UPGRADE && !cl->upgraded) {
            /* Connected over polling: now probe and upgrade (PROTOCOL.md 1.7). */
            conn_init(&cl->ws, CONN_WS, cl);
            if (!conn_open(ctx, &cl->ws, &ctx->addrs[cl->addr]))
                client_fail(cl, "upgrade connect failed");
            else {
                char req[512];
                int n = snprintf(req, sizeof req,
                                 "GET /socket.io/?EIO=4&transport=websocket&sid=%s HTTP/1.1\r\n"
                                 "Host: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                 "Sec-WebSocket-Key: " LG_WS_KEY "\r\n"
                                 "Sec-WebSocket-Version: 13\r\n\r\n",
                                 cl->sid, ctx->hosts[cl->addr]);
                buf_append(&cl->ws.out, req, (size_t)n);
            }
            return;
        }
        on_connected(cl);
        return;
    case '4': client_fail(cl, "CONNECT_ERROR"); return;
    case '3': { /* ack: 3<id>[...] */
        const uint8_t *s = p + 1;
        uint64_t id, ts;
        if (!parse_u64(&s, end, &id) || s >= end || *s != '[')
            return;
        s++;
        if (ctx->scenario == SC_ECHO && parse_u64(&s, end, &ts)) {
            ctx->acked++;
            if (ts >= ctx->measure_start && ts < ctx->measure_end && t > ts)
                lg_hist_record(&ctx->hist, t - ts);
        } else if (!cl->joined) {
            cl->joined = true;
            ctx->joined++;
        }
        return;
    }
    case '2': { /* event: 2["m",seq,ts,"pad"] */
        static const char m[] = "[\"m\",";
        if (len < sizeof m || memcmp(p + 1, m, sizeof m - 1) != 0)
            return;
        const uint8_t *s = p + sizeof m;
        uint64_t seq, ts;
        if (!parse_u64(&s, end, &seq) || s >= end || *s != ',')
            return;
        s++;
        if (!parse_u64(&s, end, &ts))
            return;
        cl->received++;
        ctx->delivered++;
        ctx->last_delivery = t;
        if (t > ts)
            lg_hist_record(&ctx->hist, t - ts);
        return;
    }
    default: return;
    }
}

/* One Engine.IO text packet from either transport. */
static void on_eio(struct lg_client *cl, const uint8_t *p, size_t len, uint64_t t)
{
    if (len == 0)
        return;
    switch (p[0]) {
    case '0': { /* open: take the sid, then CONNECT to "/" (PROTOCOL.md 2.4) */
        static const char key[] = "\"sid\":\"";
        for (size_t i = 0; i + sizeof key - 1 < len; i++) {
            if (memcmp(p + i, key, sizeof key - 1) == 0) {
                size_t j = i + sizeof key - 1, k = 0;
                while (j < len && p[j] != '"' && k < sizeof cl->sid - 1)
                    cl->sid[k++] = (char)p[j++];
                cl->sid[k] = '\0';
                break;
            }
        }
        client_send_cstr(cl, "40");
        return;
    }
    case '2': client_send_cstr(cl, "3"); return;
    case '3':
        if (len == 6 && memcmp(p, "3probe", 6) == 0) {
            /* Upgrade probe answered: finish the upgrade; the session now lives on the WS. */
            static const uint8_t mask[4] = {1, 2, 3, 4};
            ws_write_frame_masked(&cl->ws.out, WS_OP_TEXT, true, (const uint8_t *)"5", 1, mask);
            conn_flush(cl->ctx, &cl->ws);
            cl->upgraded = true;
            conn_close(cl->ctx, &cl->poll);
            on_connected(cl);
        }
        return;
    case '4': on_sio(cl, p + 1, len - 1, t); return;
    case '1': client_fail(cl, "server closed the session"); return;
    default: return;
    }
}

/* ---- WebSocket transport ---- */

static void ws_feed(struct lg_client *cl, const uint8_t *p, size_t len, uint64_t t)
{
    struct lg_conn *c = &cl->ws;
    while (len > 0 && c->fd >= 0) {
        size_t used = 0;
        struct ws_event ev;
        int rc = ws_parser_feed(&c->wp, p, len, &used, &ev);
        p += used;
        len -= used;
        if (rc == SIOC_EAGAIN)
            return;
        if (rc < 0) {
            client_fail(cl, "bad websocket frame");
            return;
        }
        switch (ev.type) {
        case WS_EVENT_TEXT: on_eio(cl, ev.data, ev.len, t); break;
        case WS_EVENT_PING: {
            static const uint8_t mask[4] = {9, 8, 7, 6};
            ws_write_frame_masked(&c->out, WS_OP_PONG, true, ev.data, ev.len, mask);
            conn_flush(cl->ctx, c);
            break;
        }
        case WS_EVENT_CLOSE: client_fail(cl, "websocket closed"); return;
        default: break;
        }
    }
}

static void ws_on_read(struct lg_client *cl, const uint8_t *p, size_t len, uint64_t t)
{
    struct lg_conn *c = &cl->ws;
    if (c->handshaken) {
        ws_feed(cl, p, len, t);
        return;
    }
    buf_append(&c->in, p, len);
    size_t h = head_end(c->in.data, c->in.len);
    if (h == 0) {
        if (c->in.len > LG_HEAD_MAX)
            client_fail(cl, "handshake response too long");
        return;
    }
    if (http_status(c->in.data, h) != 101) {
        client_fail(cl, "websocket handshake refused");
        return;
    }
    c->handshaken = true;
    ws_parser_init(&c->wp, &c->msg, &c->ctl, 0, WS_PARSER_CLIENT);
    if (cl->transport == TR_UPGRADE) {
        static const uint8_t mask[4] = {5, 6, 7, 8};
        ws_write_frame_masked(&c->out, WS_OP_TEXT, true, (const uint8_t *)"2probe", 6, mask);
        conn_flush(cl->ctx, c);
    } else {
        cl->upgraded = true;
    }
    size_t rest = c->in.len - h;
    uint8_t tail[LG_HEAD_MAX];
    if (rest > sizeof tail)
        rest = sizeof tail;
    memcpy(tail, c->in.data + h, rest);
    buf_deinit(&c->in);
    if (rest)
        ws_feed(cl, tail, rest, t);
}

/* ---- polling transport ---- */

/* Issues the next request: a POST of the queued packets, else a GET (PROTOCOL.md 1.5). */
static void poll_request(struct lg_client *cl)
{
    struct lg_ctx *ctx = cl->ctx;
    struct lg_conn *c = &cl->poll;
    char head[512];
    int n;
    if (cl->poll_queue.len > 0) {
        n = snprintf(head, sizeof head,
                     "POST /socket.io/?EIO=4&transport=polling&sid=%s HTTP/1.1\r\nHost: %s\r\n"
                     "Content-Type: text/plain;charset=UTF-8\r\nContent-Length: %zu\r\n\r\n",
                     cl->sid, ctx->hosts[cl->addr], cl->poll_queue.len);
        buf_append(&c->out, head, (size_t)n);
        buf_append(&c->out, cl->poll_queue.data, cl->poll_queue.len);
        buf_reset(&cl->poll_queue);
    } else if (cl->sid[0]) {
        n = snprintf(head, sizeof head,
                     "GET /socket.io/?EIO=4&transport=polling&sid=%s HTTP/1.1\r\nHost: %s\r\n\r\n",
                     cl->sid, ctx->hosts[cl->addr]);
        buf_append(&c->out, head, (size_t)n);
    } else {
        n = snprintf(head, sizeof head,
                     "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: %s\r\n\r\n",
                     ctx->hosts[cl->addr]);
        buf_append(&c->out, head, (size_t)n);
    }
    c->busy = true;
    conn_flush(ctx, c);
}

static void poll_on_read(struct lg_client *cl, const uint8_t *p, size_t len, uint64_t t)
{
    struct lg_conn *c = &cl->poll;
    buf_append(&c->in, p, len);
    for (;;) {
        size_t h = head_end(c->in.data, c->in.len);
        if (h == 0)
            return;
        long clen = http_content_length(c->in.data, h);
        if (http_status(c->in.data, h) != 200 || clen < 0) {
            client_fail(cl, "polling request refused");
            return;
        }
        if (c->in.len < h + (size_t)clen)
            return;
        c->busy = false;
        const uint8_t *body = c->in.data + h, *end = body + clen;
        /* A POST answers "ok"; a GET carries packets joined by 0x1e (PROTOCOL.md 1.5.1). */
        if (!(clen == 2 && memcmp(body, "ok", 2) == 0)) {
            const uint8_t *s = body;
            while (s < end && cl->poll.fd >= 0) {
                const uint8_t *e = memchr(s, 0x1e, (size_t)(end - s));
                if (!e)
                    e = end;
                on_eio(cl, s, (size_t)(e - s), t);
                s = e + 1;
            }
        }
        if (c->fd < 0)
            return;
        size_t used = h + (size_t)clen;
        memmove(c->in.data, c->in.data + used, c->in.len - used);
        buf_truncate(&c->in, c->in.len - used);
        /* Upgrade mode: once the polling CONNECT is answered the WebSocket takes over. */
        if (cl->transport == TR_UPGRADE && cl->ws.fd >= 0)
            return;
        if (!c->busy)
            poll_request(cl);
    }
}

/* ---- clients ---- */

static void client_start(struct lg_ctx *ctx, struct lg_client *cl)
{
    cl->state = CL_OPENING;
    ctx->opened++;
    buf_init(&cl->poll_queue, 0);
    if (cl->transport == TR_WS) {
        conn_init(&cl->ws, CONN_WS, cl);
        conn_init(&cl->poll, CONN_POLL, cl);
        if (!conn_open(ctx, &cl->ws, &ctx->addrs[cl->addr])) {
            client_fail(cl, "connect failed");
            return;
        }
        char req[512];
        int n = snprintf(req, sizeof req,
                         "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: %s\r\n"
                         "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                         "Sec-WebSocket-Key: " LG_WS_KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n",
                         ctx->hosts[cl->addr]);
        buf_append(&cl->ws.out, req, (size_t)n);
        return;
    }
    conn_init(&cl->ws, CONN_WS, cl);
    conn_init(&cl->poll, CONN_POLL, cl);
    if (!conn_open(ctx, &cl->poll, &ctx->addrs[cl->addr])) {
        client_fail(cl, "connect failed");
        return;
    }
    poll_request(cl);
}

/* When the kernel received the bytes recvmsg returned (SCM_TIMESTAMPNS, CLOCK_REALTIME: the
 * last segment read), on this process's monotonic timeline; `now` (rel_ns, taken just before)
 * when there is no timestamp. This keeps the time the loadgen itself took to be scheduled and
 * reach the socket (it shares 2 cores with 4 busy processes) out of the server's RTT. */
static uint64_t rx_time(struct msghdr *mh, uint64_t now)
{
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm != NULL; cm = CMSG_NXTHDR(mh, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_TIMESTAMPNS)
            continue;
        struct timespec k, rt;
        memcpy(&k, CMSG_DATA(cm), sizeof k);
        clock_gettime(CLOCK_REALTIME, &rt);
        int64_t age = ((int64_t)rt.tv_sec - (int64_t)k.tv_sec) * 1000000000 +
                      ((int64_t)rt.tv_nsec - (int64_t)k.tv_nsec);
        if (age < 0 || (uint64_t)age > now)
            return now; /* the wall clock was stepped: keep the user-space time */
        return now - (uint64_t)age;
    }
    return now;
}

static void on_conn_event(struct lg_ctx *ctx, struct lg_conn *c, uint32_t events, uint8_t *rbuf)
{
    if (c->connecting && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
        int err = 0;
        socklen_t elen = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen);
        if (err) {
            if (c->client)
                client_fail(c->client, "connect refused");
            else
                ctx->error = "redis connect failed";
            return;
        }
        c->connecting = false;
        if (ctx->ssl_ctx != NULL && c->kind != CONN_REDIS) {
            c->ssl = lg_tls_new(ctx->ssl_ctx, c->fd, ctx->hosts[c->client->addr]);
            if (c->ssl == NULL) {
                client_fail(c->client, "TLS: out of memory");
                return;
            }
            c->tls_handshaking = true;
        }
        conn_flush(ctx, c);
        if (c->fd < 0)
            return;
    } else if ((events & EPOLLOUT) && !c->tls_handshaking) {
        conn_flush(ctx, c);
        if (c->fd < 0)
            return;
    }
    if (c->tls_handshaking) {
        bool want_write = false;
        int rc = lg_tls_handshake(c->ssl, &want_write);
        if (rc < 0) {
            client_fail(c->client, "TLS handshake failed");
            return;
        }
        if (rc == 0) {
            conn_set_out(ctx, c, want_write);
            return;
        }
        c->tls_handshaking = false;
        ctx->tls_resumed += lg_tls_resumed(c->ssl);
        conn_set_out(ctx, c, false);
        conn_flush(ctx, c); /* what the client queued while TLS was starting */
        if (c->fd < 0)
            return;
    }
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && c->ssl == NULL)
        return;
    if (c->ssl != NULL) { /* no kernel receive times through TLS: the time read */
        ssize_t n = lg_tls_recv(c->ssl, rbuf, LG_READ_CHUNK);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0) {
            client_fail(c->client, "connection closed");
            return;
        }
        if (c->kind == CONN_WS)
            ws_on_read(c->client, rbuf, (size_t)n, rel_ns(ctx));
        else
            poll_on_read(c->client, rbuf, (size_t)n, rel_ns(ctx));
        return;
    }
    struct iovec iov = {.iov_base = rbuf, .iov_len = LG_READ_CHUNK};
    union {
        char buf[CMSG_SPACE(sizeof(struct timespec))];
        struct cmsghdr align;
    } control;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (ctx->scenario == SC_ECHO) {
        mh.msg_control = control.buf;
        mh.msg_controllen = sizeof control.buf;
    }
    ssize_t n = recvmsg(c->fd, &mh, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        if (c->client)
            client_fail(c->client, "connection closed");
        else
            ctx->error = "redis closed";
        return;
    }
    uint64_t t = rel_ns(ctx);
    if (ctx->scenario == SC_ECHO)
        t = rx_time(&mh, t);
    if (c->kind == CONN_REDIS)
        return; /* PUBLISH replies: the count of receivers, not needed */
    if (c->kind == CONN_WS)
        ws_on_read(c->client, rbuf, (size_t)n, t);
    else
        poll_on_read(c->client, rbuf, (size_t)n, t);
}

/* ---- broadcasts ---- */

/* The Python SDK's recovery script (sdk/python/sioc/emitter.py RECOVERY_SCRIPT), byte for byte. */
static const char recovery_script[] =
    "\nlocal id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], '*', 'a', ARGV[2], 'b', ARGV[3])\n"
    "redis.call('PEXPIRE', KEYS[1], ARGV[5])\n"
    "local n = #id\n"
    "local hdr\n"
    "if n < 32 then hdr = string.char(160 + n) else hdr = string.char(217, n) end\n"
    "return redis.call('PUBLISH', ARGV[1], ARGV[2] .. hdr .. id .. ARGV[3])\n";

static void resp_bulk(struct buf *out, const void *p, size_t n)
{
    char head[32];
    int hl = snprintf(head, sizeof head, "$%zu\r\n", n);
    buf_append(out, head, (size_t)hl);
    buf_append(out, p, n);
    buf_append(out, "\r\n", 2);
}

/* The broadcast as the SDK publishes it with recovery on: EVAL of the recovery script, the
 * adapter message split around the offset (data = ["m", seq, ts, pad, <stream id>]). */
static void publish_recoverable(struct lg_ctx *ctx, uint64_t seq, uint64_t ts, size_t pad)
{
    struct buf *b = &ctx->scratch;
    struct buf *out = &ctx->redis.out;
    buf_reset(b);
    mp_write_array(b, 3);
    mp_write_cstr(b, "emitter");
    mp_write_map(b, 3);
    mp_write_cstr(b, "type");
    mp_write_uint(b, 2);
    mp_write_cstr(b, "data");
    mp_write_array(b, 5);
    mp_write_cstr(b, "m");
    mp_write_uint(b, seq);
    mp_write_uint(b, ts);
    mp_write_str(b, ctx->pad, pad);
    size_t pre_len = b->len;
    mp_write_cstr(b, "nsp");
    mp_write_cstr(b, "/");
    mp_write_map(b, 3);
    mp_write_cstr(b, "rooms");
    mp_write_array(b, ctx->room[0] ? 1 : 0);
    if (ctx->room[0])
        mp_write_cstr(b, ctx->room);
    mp_write_cstr(b, "flags");
    mp_write_map(b, 0);
    mp_write_cstr(b, "except");
    mp_write_array(b, 0);
    char chan[128];
    int cl = snprintf(chan, sizeof chan, "socket.io#/#%s%s", ctx->room, ctx->room[0] ? "#" : "");
    buf_append(out, "*9\r\n", 4);
    resp_bulk(out, "EVAL", 4);
    resp_bulk(out, recovery_script, sizeof recovery_script - 1);
    resp_bulk(out, "1", 1);
    resp_bulk(out, "sioc:rec:/", 10);
    resp_bulk(out, chan, (size_t)cl);
    resp_bulk(out, b->data, pre_len);
    resp_bulk(out, b->data + pre_len, b->len - pre_len);
    resp_bulk(out, "100000", 6);
    resp_bulk(out, "125000", 6);
    conn_flush(ctx, &ctx->redis);
}

/* Writes `"m",seq,ts,"pad…"` sized so the whole Engine.IO message is about ctx->payload bytes. */
static void publish_one(struct lg_ctx *ctx)
{
    uint64_t seq = ctx->published++;
    uint64_t ts = rel_ns(ctx);
    char head[96];
    int hl = snprintf(head, sizeof head, "42[\"m\",%" PRIu64 ",%" PRIu64 ",\"\"]", seq, ts);
    size_t pad = ctx->payload > (size_t)hl ? ctx->payload - (size_t)hl : 0;
    struct buf *b = &ctx->scratch;
    buf_reset(b);
    if (ctx->redis_source && ctx->recovery) {
        publish_recoverable(ctx, seq, ts, pad);
        return;
    }
    if (ctx->redis_source) {
        /* The @socket.io/redis-emitter message: [uid, packet, opts] (DESIGN.md 3.1). */
        mp_write_array(b, 3);
        mp_write_cstr(b, "emitter");
        mp_write_map(b, 3);
        mp_write_cstr(b, "type");
        mp_write_uint(b, 2);
        mp_write_cstr(b, "data");
        mp_write_array(b, 4);
        mp_write_cstr(b, "m");
        mp_write_uint(b, seq);
        mp_write_uint(b, ts);
        mp_write_str(b, ctx->pad, pad);
        mp_write_cstr(b, "nsp");
        mp_write_cstr(b, "/");
        mp_write_map(b, 3);
        mp_write_cstr(b, "rooms");
        mp_write_array(b, ctx->room[0] ? 1 : 0);
        if (ctx->room[0])
            mp_write_cstr(b, ctx->room);
        mp_write_cstr(b, "flags");
        mp_write_map(b, 0);
        mp_write_cstr(b, "except");
        mp_write_array(b, 0);
        char chan[128];
        int cl =
            snprintf(chan, sizeof chan, "socket.io#/#%s%s", ctx->room, ctx->room[0] ? "#" : "");
        char cmd[128];
        int n = snprintf(cmd, sizeof cmd, "*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%s\r\n$%zu\r\n", cl, chan,
                         b->len);
        buf_append(&ctx->redis.out, cmd, (size_t)n);
        buf_append(&ctx->redis.out, b->data, b->len);
        buf_append(&ctx->redis.out, "\r\n", 2);
        conn_flush(ctx, &ctx->redis);
        return;
    }
    /* A client emitting "bcast"(room, seq, ts, pad): the Node server re-broadcasts it. */
    char pre[160];
    int n = snprintf(pre, sizeof pre, "42[\"bcast\",\"%s\",%" PRIu64 ",%" PRIu64 ",\"", ctx->room,
                     seq, ts);
    buf_append(b, pre, (size_t)n);
    buf_append(b, ctx->pad, pad);
    buf_append(b, "\"]", 2);
    client_send(&ctx->clients[ctx->conns], (const char *)b->data, b->len);
}

/* ---- scenario driver ---- */

static unsigned receivers_alive(const struct lg_ctx *ctx)
{
    unsigned n = 0;
    for (unsigned i = 0; i < ctx->conns; i++)
        n += ctx->clients[i].state == CL_CONNECTED;
    return n;
}

static void step_begin(struct lg_ctx *ctx, double rate)
{
    struct lg_step *s = &ctx->steps[ctx->nsteps];
    memset(s, 0, sizeof *s);
    s->rate = rate;
    lg_hist_reset(&ctx->hist);
    ctx->published = 0;
    ctx->step_start = rel_ns(ctx);
    ctx->step_delivered0 = ctx->delivered;
    ctx->step_disconnects0 = ctx->disconnects;
    ctx->last_delivery = ctx->step_start;
    ctx->publishing = true;
    ctx->cpu0 = lg_pids_cpu(ctx->pids, ctx->npids);
    ctx->aux0 = lg_pids_cpu(ctx->aux, ctx->naux);
}

/* Closes the current step; returns true when the sweep should stop (saturated or done). */
static bool step_end(struct lg_ctx *ctx, unsigned receivers)
{
    struct lg_step *s = &ctx->steps[ctx->nsteps++];
    int64_t cpu = lg_pids_cpu(ctx->pids, ctx->npids) - ctx->cpu0;
    int64_t aux = lg_pids_cpu(ctx->aux, ctx->naux) - ctx->aux0;
    s->published = ctx->published;
    s->expected = ctx->published * receivers;
    s->delivered = ctx->delivered - ctx->step_delivered0;
    s->disconnects = ctx->disconnects - ctx->step_disconnects0;
    s->elapsed_s = (double)(ctx->last_delivery - ctx->step_start) / 1e9;
    s->deliveries_per_s = s->elapsed_s > 0 ? (double)s->delivered / s->elapsed_s : 0;
    s->cpu_us_per_delivery = s->delivered ? (double)cpu / (double)s->delivered : 0;
    s->aux_cpu_us_per_delivery = s->delivered ? (double)aux / (double)s->delivered : 0;
    s->p50 = lg_hist_quantile(&ctx->hist, 0.5);
    s->p99 = lg_hist_quantile(&ctx->hist, 0.99);
    s->p999 = lg_hist_quantile(&ctx->hist, 0.999);
    s->max = ctx->hist.max;
    fprintf(stderr,
            "loadgen: step rate %.0f/s: published %" PRIu64 ", delivered %" PRIu64 "/%" PRIu64
            " in %.2fs (%.0f/s), %.3f us cpu/delivery, p99 %.1f us\n",
            s->rate, s->published, s->delivered, s->expected, s->elapsed_s, s->deliveries_per_s,
            s->cpu_us_per_delivery, (double)s->p99 / 1e3);
    bool lossy = s->delivered < s->expected || s->disconnects > 0;
    /* Saturated: deliveries fell behind (loss after the drain), or the publish window took
     * more than 1.5x as long to deliver as to publish (a growing backlog). */
    bool behind = s->elapsed_s > 1.5 * ctx->duration;
    return lossy || behind || ctx->nsteps >= LG_MAX_STEPS || s->rate * 2 > ctx->rate_max + 1e-9;
}

static void drive(struct lg_ctx *ctx)
{
    uint64_t t = rel_ns(ctx);
    if ((double)(t - ctx->phase_start) / 1e9 > ctx->timeout && ctx->phase != PH_RUN) {
        if (!ctx->error)
            ctx->error = "phase timed out";
        ctx->phase = PH_DONE;
        return;
    }
    switch (ctx->phase) {
    case PH_CONNECT: {
        unsigned limit = ctx->warm_done ? ctx->nclients : ctx->warm_at;
        /* --tls-resume: the others wait for the first one's ticket */
        bool wait_ticket = ctx->tls_resume && !lg_tls_have_session(ctx->ssl_ctx);
        while (ctx->opened < limit &&
               ctx->opened - ctx->connected - ctx->failed < ctx->concurrency &&
               !(wait_ticket && ctx->opened > 0))
            client_start(ctx, &ctx->clients[ctx->opened]);
        if (!ctx->warm_done) {
            if (ctx->connected + ctx->failed < ctx->warm_at)
                return;
            if (ctx->pause_start == 0) {
                ctx->pause_start = t; /* everyone so far is connected: idle for a second */
                ctx->pause_cpu0 = lg_pids_cpu(ctx->pids, ctx->npids);
                return;
            }
            if (t - ctx->pause_start < 1000000000u)
                return;
            ctx->rss_warm = lg_pids_rss(ctx->pids, ctx->npids);
            ctx->paused_ns = t - ctx->pause_start;
            ctx->paused_cpu = lg_pids_cpu(ctx->pids, ctx->npids) - ctx->pause_cpu0;
            ctx->warm_done = true;
            ctx->phase_start = t;
            return;
        }
        if (ctx->connected + ctx->failed < ctx->nclients)
            return;
    }
        ctx->connect_t1 = rel_ns(ctx);
        ctx->cpu_connect = lg_pids_cpu(ctx->pids, ctx->npids) - ctx->cpu_connect0 - ctx->paused_cpu;
        if (ctx->failed) {
            ctx->phase = PH_DONE;
            return;
        }
        ctx->phase_start = t;
        if (ctx->scenario == SC_FANOUT && ctx->room[0]) {
            char pkt[128];
            for (unsigned i = 0; i < ctx->conns; i++) {
                struct lg_client *cl = &ctx->clients[i];
                snprintf(pkt, sizeof pkt, "42%" PRIu64 "[\"join\",\"%s\"]", cl->next_ack_id++,
                         ctx->room);
                client_send_cstr(cl, pkt);
            }
            ctx->phase = PH_JOIN;
            fprintf(stderr, "loadgen: %u connected, joining room %s\n", ctx->connected, ctx->room);
            return;
        }
        ctx->phase = PH_RUN;
        ctx->run_start = t;
        return;
    case PH_JOIN:
        if (ctx->joined < ctx->conns)
            return;
        ctx->phase = PH_RUN;
        ctx->phase_start = ctx->run_start = t;
        fprintf(stderr, "loadgen: %u joined\n", ctx->joined);
        return;
    case PH_RUN: break;
    case PH_DONE: return;
    }
    double el = (double)(t - ctx->run_start) / 1e9;
    switch (ctx->scenario) {
    case SC_CONNECT:
        if (el >= ctx->hold)
            ctx->phase = PH_DONE;
        return;
    case SC_ECHO: {
        if (ctx->measure_start == 0) {
            ctx->measure_start = ctx->run_start + (uint64_t)(ctx->warmup * 1e9);
            ctx->measure_end = ctx->measure_start + (uint64_t)(ctx->duration * 1e9);
        }
        if (t < ctx->measure_end) {
            char pkt[96];
            for (;;) {
                /* echo k is due at k/rate: the main loop sleeps until exactly then */
                uint64_t due = ctx->run_start + (uint64_t)((double)ctx->sent * 1e9 / ctx->rate);
                if (due > t) {
                    ctx->next_due = due;
                    break;
                }
                struct lg_client *cl = &ctx->clients[ctx->sent % ctx->conns];
                ctx->sent++;
                if (cl->state != CL_CONNECTED)
                    continue;
                uint64_t ts = rel_ns(ctx);
                if (due >= ctx->measure_start && due < ctx->measure_end)
                    lg_hist_record(&ctx->send_lag, ts - due);
                int n = snprintf(pkt, sizeof pkt, "42%" PRIu64 "[\"ack\",%" PRIu64 "]",
                                 cl->next_ack_id++, ts);
                client_send(cl, pkt, (size_t)n);
                t = ts;
            }
            if (ctx->cpu0 == 0 && t >= ctx->measure_start) {
                ctx->cpu0 = lg_pids_cpu(ctx->pids, ctx->npids);
                ctx->aux0 = lg_pids_cpu(ctx->aux, ctx->naux);
            }
            return;
        }
        ctx->next_due = 0;
        if (ctx->cpu1 == 0) {
            ctx->cpu1 = lg_pids_cpu(ctx->pids, ctx->npids);
            ctx->aux1 = lg_pids_cpu(ctx->aux, ctx->naux);
        }
        if (ctx->acked >= ctx->sent || t > ctx->measure_end + (uint64_t)(ctx->drain * 1e9))
            ctx->phase = PH_DONE;
        return;
    }
    case SC_FANOUT: {
        if (ctx->nsteps == 0 && ctx->step_start == 0) {
            step_begin(ctx, ctx->rate);
            return;
        }
        struct lg_step *cur = &ctx->steps[ctx->nsteps];
        double sel = (double)(t - ctx->step_start) / 1e9;
        if (ctx->publishing) {
            uint64_t due = (uint64_t)(sel * cur->rate);
            if (sel >= ctx->duration) {
                due = (uint64_t)(ctx->duration * cur->rate);
                ctx->publishing = false;
                ctx->publish_end = t;
            }
            while (ctx->published < due)
                publish_one(ctx);
            return;
        }
        unsigned alive = receivers_alive(ctx);
        bool drained = ctx->delivered - ctx->step_delivered0 >= ctx->published * alive;
        bool timed_out = t > ctx->publish_end + (uint64_t)(ctx->drain * 1e9);
        if (!drained && !timed_out)
            return;
        if (step_end(ctx, ctx->conns) || alive == 0) {
            ctx->phase = PH_DONE;
            return;
        }
        step_begin(ctx, cur->rate * 2);
        return;
    }
    }
}

int main(int argc, char **argv)
{
    struct lg_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return 1;
    if (!lg_parse_args(ctx, argc, argv)) {
        lg_usage();
        return 2;
    }
    /* Thousands of sockets: take the hard limit of open files (20,000 on the bench machine). */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)ctx->conns + 64) {
        fprintf(stderr,
                "loadgen: %u connections need more than the %llu open files allowed; "
                "run several loadgen processes\n",
                ctx->conns, (unsigned long long)rl.rlim_cur);
        return 2;
    }
    if (ctx->tls) {
        const char *err = NULL;
        ctx->ssl_ctx = lg_tls_ctx_new(ctx->tls_ca, ctx->tls_resume, &err);
        if (ctx->ssl_ctx == NULL) {
            fprintf(stderr, "loadgen: %s\n", err);
            return 2;
        }
    }
    ctx->ep = epoll_create1(EPOLL_CLOEXEC);
    ctx->t0 = now_ns();
    buf_init(&ctx->scratch, 0);
    ctx->pad = malloc(ctx->payload + 1);
    if (!ctx->pad)
        return 1;
    for (size_t i = 0; i < ctx->payload; i++)
        ctx->pad[i] = (char)('a' + i % 26);
    ctx->nclients = ctx->conns + (ctx->scenario == SC_FANOUT && !ctx->redis_source ? 1 : 0);
    ctx->clients = calloc(ctx->nclients, sizeof *ctx->clients);
    if (ctx->ep < 0 || !ctx->clients)
        return 1;
    for (unsigned i = 0; i < ctx->nclients; i++) {
        struct lg_client *cl = &ctx->clients[i];
        cl->ctx = ctx;
        cl->index = i;
        cl->addr = i % ctx->naddrs;
        cl->transport = ctx->transport;
        if (i == ctx->conns) { /* the broadcast source: always a WebSocket client */
            cl->is_source = true;
            cl->transport = TR_WS;
            cl->addr = 0;
        }
    }
    conn_init(&ctx->redis, CONN_REDIS, NULL);
    if (ctx->redis_source && !conn_open(ctx, &ctx->redis, &ctx->redis_addr)) {
        fprintf(stderr, "loadgen: cannot connect to redis\n");
        return 1;
    }
    ctx->rss0 = lg_pids_rss(ctx->pids, ctx->npids);
    ctx->slab0 = lg_proc_slab_bytes();
    ctx->warm_at = ctx->scenario == SC_CONNECT && ctx->conns >= 1000 ? ctx->conns / 10 : 0;
    ctx->warm_done = ctx->warm_at == 0;
    ctx->cpu_connect0 = lg_pids_cpu(ctx->pids, ctx->npids);
    ctx->connect_t0 = rel_ns(ctx);
    ctx->phase = PH_CONNECT;
    uint8_t *rbuf = malloc(LG_READ_CHUNK);
    struct epoll_event events[512];
    if (!rbuf)
        return 1;
    if (ctx->scenario == SC_ECHO) /* sends are scheduled to the microsecond: no 50 us slack */
        prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    drive(ctx);
    while (ctx->phase != PH_DONE && !(ctx->error && ctx->redis_source && ctx->redis.fd < 0)) {
        struct timespec timeout = {0, 1000000}; /* 1 ms: phases and sweeps poll */
        if (ctx->next_due != 0) {
            /* Echo: sleep until the next send is due without watching the sockets, then take
             * whatever arrived. An ack's time comes from the kernel (rx_time), so reading it
             * later changes nothing, and this process (on the cores it measures) wakes once per
             * send instead of once per send and once per ack. At 10,000/s one wake per send
             * would be this process's largest cost: wakes are at least LG_ECHO_WAKE_NS apart. */
            uint64_t at = ctx->next_due;
            if (at < ctx->woke_at + LG_ECHO_WAKE_NS)
                at = ctx->woke_at + LG_ECHO_WAKE_NS;
            at += ctx->t0;
            struct timespec due = {(time_t)(at / 1000000000u), (long)(at % 1000000000u)};
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &due, NULL) == EINTR)
                ;
            ctx->woke_at = rel_ns(ctx);
            timeout.tv_nsec = 0;
        }
        int n = epoll_pwait2(ctx->ep, events, 512, &timeout, NULL);
        for (int i = 0; i < n; i++)
            on_conn_event(ctx, events[i].data.ptr, events[i].events, rbuf);
        drive(ctx);
    }
    lg_report(ctx);
    free(rbuf);
    return ctx->failed || (ctx->error && ctx->connected == 0) ? 1 : 0;
}
