/* redis_conn.c: the Redis transport of redis_conn.h, one code path for plain TCP and TLS (the
 * only differences are the two I/O calls, recv/send or SSL_read_ex/SSL_write_ex, and the
 * handshake step). Replies are parsed with hiredis's reader (read.h), so owners keep receiving
 * hiredis's redisReply. Like the hiredis adapter it replaces, the read event stays armed
 * (EV_PERSIST) and writes happen in an event_active'd flush at the end of the loop iteration, so
 * every command issued in one iteration leaves in one write; EV_WRITE is armed only while
 * connecting and while the socket is full. The connection is freed only outside its own
 * callbacks: redis_conn_free from inside one closes the socket and leaves the memory to the
 * event callback that is running, which releases it on return. */
#include "common/net/redis_conn.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <hiredis/read.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "common/net/redis_tls.h"

#define READ_CHUNK 16384 /* as hiredis's redisBufferRead */
#define OUT_KEEP                                                                                   \
    65536 /* output buffer kept between writes; a larger one is released once empty                \
           */

enum conn_state { CONN_CONNECTING, CONN_HANDSHAKING, CONN_OPEN, CONN_DEAD };

struct redis_conn {
    int fd;
    SSL *ssl; /* NULL for plain TCP */
    enum conn_state state;
    redisReader *reader;
    struct event *rev, *wev, *flush;
    char *out; /* out[out_off..out_len) still to write */
    size_t out_off, out_len, out_cap;
    bool write_wants_read; /* TLS: SSL_write needs the socket readable before it can go on */
    bool read_wants_write; /* TLS: SSL_read needs the socket writable before it can go on */
    int busy;              /* event callbacks of this connection on the stack */
    bool free_pending;     /* redis_conn_free ran inside one: the outermost one frees */

    void *ctx;
    void (*on_open_cb)(void *ctx);
    void (*on_reply_cb)(void *ctx, struct redisReply *reply);
    void (*on_error_cb)(void *ctx, const char *reason);
};

static void conn_release(struct redis_conn *c)
{
    if (c->rev != NULL)
        event_free(c->rev);
    if (c->wev != NULL)
        event_free(c->wev);
    if (c->flush != NULL)
        event_free(c->flush);
    if (c->reader != NULL)
        redisReaderFree(c->reader);
    free(c->out);
    free(c);
}

/* Stops all I/O and closes the socket; the struct stays until released. `goodbye`: a healthy
 * open TLS connection sends its close_notify first (never after an error: the socket may be
 * broken). */
static void conn_close(struct redis_conn *c, bool goodbye)
{
    if (c->rev != NULL)
        event_del(c->rev);
    if (c->wev != NULL)
        event_del(c->wev);
    if (c->flush != NULL)
        event_del(c->flush);
    if (c->ssl != NULL) {
        if (goodbye && c->state == CONN_OPEN)
            SSL_shutdown(c->ssl); /* one close_notify, best effort: we do not wait for the peer's */
        SSL_free(c->ssl);
        c->ssl = NULL;
        ERR_clear_error();
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    c->state = CONN_DEAD;
}

static void conn_fail(struct redis_conn *c, const char *reason)
{
    if (c->state == CONN_DEAD)
        return;
    conn_close(c, false);
    if (c->on_error_cb != NULL)
        c->on_error_cb(c->ctx, reason);
}

/* Entered and left by every event callback: a redis_conn_free from inside one releases the
 * memory only when the outermost returns. */
static void enter(struct redis_conn *c)
{
    c->busy++;
}

static void leave(struct redis_conn *c)
{
    if (--c->busy == 0 && c->free_pending)
        conn_release(c);
}

/* False once the connection failed or its owner freed it: stop touching the socket. */
static bool alive(const struct redis_conn *c)
{
    return c->state != CONN_DEAD && !c->free_pending;
}

/* Why the TLS call that returned `ret` failed, for the owner's log line. */
static void tls_reason(struct redis_conn *c, int ret, const char *what, char *out, size_t n)
{
    int code = SSL_get_error(c->ssl, ret);
    long verify = SSL_get_verify_result(c->ssl);
    unsigned long e = ERR_peek_last_error();
    if (c->state == CONN_HANDSHAKING && verify != X509_V_OK)
        snprintf(out, n, "%s: certificate verify failed: %s", what,
                 X509_verify_cert_error_string(verify));
    else if (e != 0 && ERR_reason_error_string(e) != NULL)
        snprintf(out, n, "%s: %s", what, ERR_reason_error_string(e));
    else if (code == SSL_ERROR_ZERO_RETURN || (code == SSL_ERROR_SYSCALL && errno == 0))
        snprintf(out, n, "%s: connection closed by peer", what);
    else
        snprintf(out, n, "%s: %s", what, strerror(errno));
    ERR_clear_error();
}

/* ---- replies ---- */

static void deliver_replies(struct redis_conn *c)
{
    while (alive(c)) {
        void *reply = NULL;
        if (redisReaderGetReply(c->reader, &reply) != REDIS_OK) {
            char reason[160];
            snprintf(reason, sizeof(reason), "protocol error: %s", c->reader->errstr);
            conn_fail(c, reason);
            return;
        }
        if (reply == NULL)
            return;
        if (c->on_reply_cb != NULL)
            c->on_reply_cb(c->ctx, reply);
        freeReplyObject(reply);
    }
}

/* Reads what the socket has (TLS: until OpenSSL has nothing buffered), handing out every
 * complete reply after each chunk. An end of stream or an error comes after the replies that
 * preceded it. */
static void conn_read(struct redis_conn *c)
{
    char buf[READ_CHUNK];
    c->read_wants_write = false;
    for (;;) {
        size_t n = 0;
        char reason[200] = "";
        if (c->ssl == NULL) {
            ssize_t r = recv(c->fd, buf, sizeof(buf), 0);
            if (r > 0)
                n = (size_t)r;
            else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
                return;
            else
                snprintf(reason, sizeof(reason), "%s",
                         r == 0 ? "connection closed by peer" : strerror(errno));
        } else {
            ERR_clear_error();
            int r = SSL_read_ex(c->ssl, buf, sizeof(buf), &n);
            if (r != 1) {
                int code = SSL_get_error(c->ssl, r);
                if (code == SSL_ERROR_WANT_READ)
                    return;
                if (code == SSL_ERROR_WANT_WRITE) { /* TLS 1.2 renegotiation */
                    c->read_wants_write = true;
                    event_add(c->wev, NULL);
                    return;
                }
                tls_reason(c, r, "TLS read", reason, sizeof(reason));
            }
        }
        if (reason[0] != '\0') {
            conn_fail(c, reason);
            return;
        }
        if (redisReaderFeed(c->reader, buf, n) != REDIS_OK) {
            conn_fail(c, "out of memory");
            return;
        }
        deliver_replies(c);
        /* A short plain read means the socket is empty; OpenSSL may still hold decrypted data. */
        if (!alive(c) || (c->ssl == NULL && n < sizeof(buf)))
            return;
    }
}

/* ---- writes ---- */

static void conn_flush(struct redis_conn *c)
{
    c->write_wants_read = false;
    while (c->out_off < c->out_len) {
        const char *p = c->out + c->out_off;
        size_t left = c->out_len - c->out_off, n = 0;
        if (c->ssl == NULL) {
            ssize_t r = send(c->fd, p, left, MSG_NOSIGNAL);
            if (r >= 0) {
                n = (size_t)r;
            } else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                event_add(c->wev, NULL); /* full: wait for room */
                return;
            } else {
                conn_fail(c, strerror(errno));
                return;
            }
        } else {
            ERR_clear_error();
            int r = SSL_write_ex(c->ssl, p, left, &n);
            if (r != 1) {
                int code = SSL_get_error(c->ssl, r);
                if (code == SSL_ERROR_WANT_WRITE) {
                    event_add(c->wev, NULL);
                    return;
                }
                if (code == SSL_ERROR_WANT_READ) {
                    c->write_wants_read = true; /* the persistent read event retries it */
                    return;
                }
                char reason[200];
                tls_reason(c, r, "TLS write", reason, sizeof(reason));
                conn_fail(c, reason);
                return;
            }
        }
        c->out_off += n;
    }
    c->out_off = c->out_len = 0;
    if (c->out_cap > OUT_KEEP) { /* a burst (outage queue, big values) does not stay allocated */
        free(c->out);
        c->out = NULL;
        c->out_cap = 0;
    }
    if (!c->read_wants_write)
        event_del(c->wev);
}

/* ---- connecting ---- */

static void conn_opened(struct redis_conn *c)
{
    c->state = CONN_OPEN;
    if (c->on_open_cb != NULL)
        c->on_open_cb(c->ctx);
    if (alive(c) && c->out_len > c->out_off)
        conn_flush(c);
}

static void tls_handshake_step(struct redis_conn *c)
{
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        event_del(c->wev);
        conn_opened(c);
        return;
    }
    int code = SSL_get_error(c->ssl, r);
    if (code == SSL_ERROR_WANT_READ) {
        event_del(c->wev); /* the persistent read event brings us back */
        return;
    }
    if (code == SSL_ERROR_WANT_WRITE) {
        event_add(c->wev, NULL);
        return;
    }
    char reason[256];
    tls_reason(c, r, "TLS handshake failed", reason, sizeof(reason));
    conn_fail(c, reason);
}

/* The non-blocking connect finished (EV_WRITE): see whether it worked. */
static void connect_done(struct redis_conn *c)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err != 0) {
        conn_fail(c, strerror(err));
        return;
    }
    event_add(c->rev, NULL);
    if (c->ssl == NULL) {
        event_del(c->wev);
        conn_opened(c);
        return;
    }
    c->state = CONN_HANDSHAKING;
    tls_handshake_step(c);
}

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct redis_conn *c = arg;
    enter(c);
    if (c->state == CONN_HANDSHAKING) {
        tls_handshake_step(c);
    } else if (c->state == CONN_OPEN) {
        if (c->write_wants_read)
            conn_flush(c);
        if (alive(c))
            conn_read(c);
    }
    leave(c);
}

/* EV_WRITE: connect completion, handshake progress, or room again in a full socket. */
static void write_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct redis_conn *c = arg;
    enter(c);
    if (c->state == CONN_CONNECTING) {
        connect_done(c);
    } else if (c->state == CONN_HANDSHAKING) {
        tls_handshake_step(c);
    } else if (c->state == CONN_OPEN) {
        if (c->read_wants_write)
            conn_read(c);
        if (alive(c))
            conn_flush(c);
    }
    leave(c);
}

/* The end-of-iteration flush of everything written during it. */
static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct redis_conn *c = arg;
    enter(c);
    if (c->state == CONN_OPEN && !c->write_wants_read)
        conn_flush(c);
    leave(c);
}

/* A non-blocking TCP socket connecting to the first address of host:port, as hiredis does. */
static int start_connect(const char *host, int port, char *err, size_t errlen)
{
    char service[16];
    snprintf(service, sizeof(service), "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(host, service, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        freeaddrinfo(res);
        return -1;
    }
    int one = 1, idle = 15, interval = 5, count = 3;
    /* Commands are small and latency matters (hiredis sets it too). */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    /* A peer that vanished without a FIN/RST (host down, cable) is otherwise never noticed by a
     * command link waiting for replies; keepalive turns that into an error in ~30 s (the values
     * of hiredis's redisEnableKeepAlive). */
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count));
    if (connect(fd, res->ai_addr, res->ai_addrlen) != 0 && errno != EINPROGRESS) {
        snprintf(err, errlen, "%s", strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

struct redis_conn *redis_conn_new(struct event_base *base, const struct redis_conn_config *cfg,
                                  char *err, size_t errlen)
{
    struct redis_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->fd = -1;
    c->ctx = cfg->ctx;
    c->on_open_cb = cfg->on_open_cb;
    c->on_reply_cb = cfg->on_reply_cb;
    c->on_error_cb = cfg->on_error_cb;
    c->reader = redisReaderCreate();
    if (c->reader == NULL ||
        (cfg->tls != NULL && (c->ssl = redis_tls_session_new(cfg->tls, cfg->host)) == NULL)) {
        snprintf(err, errlen, "out of memory");
        redis_conn_free(c);
        return NULL;
    }
    c->fd = start_connect(cfg->host, cfg->port, err, errlen);
    if (c->fd < 0) {
        redis_conn_free(c);
        return NULL;
    }
    if (c->ssl != NULL && SSL_set_fd(c->ssl, c->fd) != 1) {
        snprintf(err, errlen, "out of memory");
        redis_conn_free(c);
        return NULL;
    }
    c->rev = event_new(base, c->fd, EV_READ | EV_PERSIST, read_cb, c);
    c->wev = event_new(base, c->fd, EV_WRITE, write_cb, c);
    c->flush = event_new(base, -1, 0, flush_cb, c);
    /* EV_WRITE first: the non-blocking connect's completion */
    if (c->rev == NULL || c->wev == NULL || c->flush == NULL || event_add(c->wev, NULL) != 0) {
        snprintf(err, errlen, "out of memory");
        redis_conn_free(c);
        return NULL;
    }
    return c;
}

void redis_conn_free(struct redis_conn *c)
{
    if (c == NULL || c->free_pending)
        return;
    conn_close(c, true);
    if (c->busy > 0)
        c->free_pending = true;
    else
        conn_release(c);
}

bool redis_conn_write(struct redis_conn *c, const char *data, size_t len)
{
    if (c->out_len + len > c->out_cap) {
        /* Compact only when what moves is no more than the room it frees: with a full socket
         * (a slow Redis) most of the buffer is unsent, and moving all of it for every small
         * append made writing quadratic. Otherwise grow (doubling: amortized O(1)). */
        if (c->out_off > 0 && c->out_off >= c->out_len - c->out_off) {
            memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
            c->out_len -= c->out_off;
            c->out_off = 0;
        }
        if (c->out_len + len > c->out_cap) {
            size_t cap = c->out_cap ? c->out_cap : 16384;
            while (cap < c->out_len + len)
                cap *= 2;
            char *grown = realloc(c->out, cap);
            if (grown == NULL)
                return false;
            c->out = grown;
            c->out_cap = cap;
        }
    }
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
    /* Open and not waiting for room: write at the end of this loop iteration. */
    if (c->state == CONN_OPEN && !c->write_wants_read && !event_pending(c->wev, EV_WRITE, NULL))
        event_active(c->flush, EV_WRITE, 0);
    return true;
}

bool redis_conn_open(const struct redis_conn *c)
{
    return c->state == CONN_OPEN;
}
