/* test_http_server.c: the HTTP server runtime against a raw-socket client: responses, keep-alive
 * and pipelining, chunked bodies, the errors it answers itself (400, 413, 431), held requests
 * answered later, a held request whose client goes away, and the upgrade handoff to raw mode.
 * The server runs its event loop in a forked child; the parent is a blocking client with
 * bounded waits. */
#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <ctype.h>

#include "common/net/http_server.h"
#include "tests/net/adopt_test.h"
#include "tests/unit/test.h"

struct server_state {
    struct event_base *base;
    struct http_server *srv;
    struct event *resume;
    struct http_conn *held;
    struct event *release;
    int held_closed;    /* held requests whose client went away */
    size_t max_pending; /* the most output seen queued on a connection when a request arrived */
};

static void release_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct server_state *st = arg;
    if (st->held != NULL) {
        static const struct http_field ct[] = {{"Content-Type", "text/plain"}};
        http_conn_clear_owner(st->held);
        http_conn_respond(st->held, 200, ct, 1, "released", 8, false);
        st->held = NULL;
    }
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct server_state *st = arg;
    http_server_pause_reading(st->srv, false);
}

static void held_close_cb(void *ctx, struct http_conn *conn, const char *reason)
{
    (void)conn;
    (void)reason;
    struct server_state *st = ctx;
    st->held_closed++;
    st->held = NULL;
}

static size_t raw_data_cb(void *ctx, struct http_conn *conn, const uint8_t *p, size_t len)
{
    (void)ctx;
    uint8_t tmp[512];
    size_t done = 0;
    while (done < len) {
        size_t k = len - done < sizeof tmp ? len - done : sizeof tmp;
        for (size_t i = 0; i < k; i++)
            tmp[i] = (uint8_t)toupper(p[done + i]);
        http_conn_write(conn, tmp, k);
        done += k;
    }
    return len;
}

static void raw_close_cb(void *ctx, struct http_conn *conn, const char *reason)
{
    (void)ctx;
    (void)conn;
    (void)reason;
}

static bool path_is(const struct http_server_request *req, const char *s)
{
    return req->path.len == strlen(s) && memcmp(req->path.p, s, req->path.len) == 0;
}

static void on_request(void *ctx, struct http_conn *conn, struct http_server_request *req)
{
    struct server_state *st = ctx;
    static const struct http_field ct[] = {{"Content-Type", "text/plain"}};
    char body[256];
    size_t pending = http_conn_output_pending(conn);
    if (pending > st->max_pending)
        st->max_pending = pending;
    if (path_is(req, "/kb")) {
        static char kb[1000];
        memset(kb, 'k', sizeof kb);
        http_conn_respond(conn, 200, ct, 1, kb, sizeof kb, false);
        return;
    }
    if (path_is(req, "/spew")) { /* 8 MiB answer: more than the output hard limit (4 MiB) */
        static char mb[1 << 20];
        http_conn_respond_begin(conn, 200, ct, 1, 8 * sizeof mb, false);
        for (int i = 0; i < 8; i++)
            http_conn_write(conn, mb, sizeof mb);
        http_conn_respond_end(conn);
        return;
    }
    if (path_is(req, "/hold")) {
        struct http_conn_owner owner = {NULL, NULL, held_close_cb, st};
        http_conn_set_owner(conn, &owner);
        st->held = conn;
        struct timeval tv = {0, 100000};
        evtimer_add(st->release, &tv);
        return;
    }
    if (path_is(req, "/pause-all")) {
        /* back-pressure: nobody's requests are read for 300 ms */
        http_server_pause_reading(st->srv, true);
        struct timeval tv = {0, 300000};
        evtimer_add(st->resume, &tv);
        http_conn_respond(conn, 200, ct, 1, "paused", 6, false);
        return;
    }
    if (path_is(req, "/stats")) {
        int n = snprintf(body, sizeof body, "held_closed=%d max_pending=%zu", st->held_closed,
                         st->max_pending);
        http_conn_respond(conn, 200, ct, 1, body, (size_t)n, false);
        return;
    }
    if (path_is(req, "/upgrade") && req->upgrade) {
        http_conn_write(conn, "HTTP/1.1 101 Switching Protocols\r\n\r\n", 36);
        struct http_conn_owner owner = {raw_data_cb, NULL, raw_close_cb, st};
        http_conn_upgrade(conn, &owner);
        return;
    }
    int n = snprintf(body, sizeof body, "%.*s %.*s q=%.*s body=%zu:%.*s",
                     (int)req->head->method.len, req->head->method.p, (int)req->path.len,
                     req->path.p, (int)req->query.len, req->query.p, req->body.len,
                     (int)(req->body.len < 40 ? req->body.len : 40), req->body.p);
    http_conn_respond(conn, 200, ct, 1, body, (size_t)n, false);
}

static pid_t start_server(uint16_t *port)
{
    int fds[2];
    if (pipe(fds) != 0)
        exit(2);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        struct server_state st;
        memset(&st, 0, sizeof st);
        st.base = event_base_new();
        st.release = evtimer_new(st.base, release_cb, &st);
        st.resume = evtimer_new(st.base, resume_cb, &st);
        struct http_server_config cfg = {0};
        cfg.listen = "127.0.0.1:0";
        cfg.max_body = 1000;
        cfg.max_head = 4096;
        cfg.head_timeout_ms = 500;
        cfg.output_hard_limit = 4u << 20;
        cfg.on_request = on_request;
        cfg.ctx = &st;
        char err[128];
        struct http_server *srv = http_server_new(st.base, &cfg, err, sizeof err);
        st.srv = srv;
        uint16_t p = srv ? http_server_port(srv) : 0;
        if (srv == NULL)
            fprintf(stderr, "server: %s\n", err);
        if (write(fds[1], &p, sizeof p) != sizeof p)
            _exit(2);
        close(fds[1]);
        event_base_dispatch(st.base);
        _exit(0);
    }
    close(fds[1]);
    if (read(fds[0], port, sizeof *port) != sizeof *port)
        *port = 0;
    close(fds[0]);
    return pid;
}

static int connect_to(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void send_all(int fd, const void *p, size_t n)
{
    const char *s = p;
    while (n > 0) {
        ssize_t k = write(fd, s, n);
        if (k <= 0)
            return;
        s += k;
        n -= (size_t)k;
    }
}

/* Reads until `want` bytes arrived, the peer closed, or 2 s passed. Returns bytes read;
 * *closed tells whether the peer closed. */
static size_t read_until(int fd, char *out, size_t cap, size_t want, bool *closed)
{
    size_t n = 0;
    *closed = false;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (n < want && n < cap - 1) {
        struct pollfd pfd = {fd, POLLIN, 0};
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long left =
            2000 - ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000);
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
            break;
        ssize_t k = read(fd, out + n, cap - 1 - n);
        if (k <= 0) {
            *closed = true;
            break;
        }
        n += (size_t)k;
    }
    out[n] = '\0';
    return n;
}

static uint16_t port;

static void test_simple_and_keep_alive(void)
{
    int fd = connect_to(port);
    CHECK(fd >= 0);
    const char *req = "GET /a?x=1 HTTP/1.1\r\nHost: t\r\n\r\n";
    const char *want = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 20\r\n\r\n"
                       "GET /a q=x=1 body=0:";
    char out[2048];
    bool closed;
    send_all(fd, req, strlen(req));
    CHECK_STR(out, read_until(fd, out, sizeof out, strlen(want), &closed), want);
    /* the same connection serves the next request */
    send_all(fd, req, strlen(req));
    CHECK_STR(out, read_until(fd, out, sizeof out, strlen(want), &closed), want);
    close(fd);
}

static void test_pipelined_and_chunked(void)
{
    int fd = connect_to(port);
    const char *reqs = "POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
                       "POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n"
                       "GET /last HTTP/1.0\r\n\r\n";
    send_all(fd, reqs, strlen(reqs));
    char out[4096];
    bool closed;
    size_t n = read_until(fd, out, sizeof out, 100000, &closed);
    CHECK(closed); /* HTTP/1.0 without keep-alive: closed after the third response */
    const char *first = strstr(out, "POST /p q= body=5:hello");
    const char *second = strstr(out, "POST /c q= body=5:abcde");
    const char *third = strstr(out, "GET /last q= body=0:");
    CHECK(first != NULL && second != NULL && third != NULL && first < second && second < third);
    CHECK(strstr(out, "Connection: close\r\n") != NULL);
    CHECK(n > 0);
    close(fd);
}

static void expect_status_and_close(const char *req, size_t len, const char *status_line)
{
    int fd = connect_to(port);
    send_all(fd, req, len);
    char out[1024];
    bool closed;
    read_until(fd, out, sizeof out, 100000, &closed);
    CHECK(strncmp(out, status_line, strlen(status_line)) == 0);
    CHECK(closed);
    close(fd);
}

static void test_errors_answered_by_server(void)
{
    expect_status_and_close("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11,
                            "HTTP/1.1 400 Bad Request\r\n");
    static char big[6000];
    int n = snprintf(big, sizeof big, "GET / HTTP/1.1\r\nHost: t\r\nX-Big: ");
    memset(big + n, 'a', sizeof big - (size_t)n - 5);
    memcpy(big + sizeof big - 5, "\r\n\r\n", 4);
    expect_status_and_close(big, sizeof big - 1,
                            "HTTP/1.1 431 Request Header Fields Too Large\r\n");
    const char *toobig = "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1001\r\n\r\n";
    expect_status_and_close(toobig, strlen(toobig), "HTTP/1.1 413 Payload Too Large\r\n");
    const char *smuggle =
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n";
    expect_status_and_close(smuggle, strlen(smuggle), "HTTP/1.1 400 Bad Request\r\n");
}

/* A body found too large while the client is still sending it (a browser or Node upload): the
 * client must be able to finish sending and then read the 413. Closing at once, with the
 * client's bytes unread in the kernel, resets the connection: the client's next write fails
 * (ECONNRESET / EPIPE) and HTTP clients such as Node's abort the request without ever reading
 * the answer. The server lingers instead: FIN after the answer, then it drops what arrives
 * until the client closes (head_timeout_ms at most). */
static void test_error_during_upload_is_read(void)
{
    int fd = connect_to(port);
    CHECK(fd >= 0);
    const char *head = "POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
    send_all(fd, head, strlen(head));
    static char chunk[8192 + 16];
    int hl = snprintf(chunk, sizeof chunk, "%x\r\n", 8192);
    memset(chunk + hl, 'u', 8192);
    memcpy(chunk + hl + 8192, "\r\n", 2);
    size_t chunk_len = (size_t)hl + 8192 + 2, sent = 0;
    size_t total = 2048 * chunk_len; /* 16 MB: more than the kernel buffers hold */
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    while (sent < total) {
        ssize_t k = send(fd, chunk + sent % chunk_len, chunk_len - sent % chunk_len, MSG_NOSIGNAL);
        if (k <= 0)
            break; /* reset by the server (or stalled 2 s) */
        sent += (size_t)k;
    }
    CHECK(sent == total); /* the whole upload went out without a reset */
    char out[1024];
    bool closed;
    const char *want = "HTTP/1.1 413 Payload Too Large\r\n";
    read_until(fd, out, sizeof out, strlen(want), &closed);
    CHECK(strncmp(out, want, strlen(want)) == 0);
    close(fd);
}

static void test_slow_head_times_out(void)
{
    int fd = connect_to(port);
    send_all(fd, "GET / HTTP/1.1\r\nHo", 18);
    char out[256];
    bool closed;
    read_until(fd, out, sizeof out, 100000, &closed);
    CHECK(closed); /* head_timeout_ms is 500 */
    close(fd);
}

static void test_held_request(void)
{
    int fd = connect_to(port);
    send_all(fd, "GET /hold HTTP/1.1\r\nHost: t\r\n\r\n", 31);
    char out[512];
    bool closed;
    read_until(fd, out, sizeof out, 100000, &closed);
    CHECK(strstr(out, "\r\n\r\nreleased") != NULL); /* answered 100 ms later */
    close(fd);
    /* a held request whose client leaves: the owner hears about it */
    fd = connect_to(port);
    send_all(fd, "GET /hold HTTP/1.1\r\nHost: t\r\n\r\n", 31);
    usleep(20000);
    close(fd);
    usleep(50000);
    fd = connect_to(port);
    send_all(fd, "GET /stats HTTP/1.1\r\nHost: t\r\n\r\n", 32);
    read_until(fd, out, sizeof out, 100000, &closed);
    CHECK(strstr(out, "held_closed=1") != NULL);
    close(fd);
}

static void test_upgrade_to_raw(void)
{
    int fd = connect_to(port);
    const char *req =
        "GET /upgrade HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nearly";
    send_all(fd, req, strlen(req));
    char out[512];
    bool closed;
    size_t n = read_until(fd, out, sizeof out, 36 + 5, &closed);
    CHECK_STR(out, n, "HTTP/1.1 101 Switching Protocols\r\n\r\nEARLY");
    send_all(fd, "more", 4);
    n = read_until(fd, out, sizeof out, 4, &closed);
    CHECK_STR(out, n, "MORE");
    close(fd);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void test_pause_reading(void)
{
    int fd = connect_to(port);
    char out[512];
    bool closed;
    send_all(fd, "GET /pause-all HTTP/1.1\r\nHost: t\r\n\r\n", 36);
    const char *head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\n";
    read_until(fd, out, sizeof out, strlen(head) + 6, &closed);
    CHECK(strstr(out, "paused") != NULL);
    double start = now_ms();
    int other = connect_to(port); /* accepted while paused, read only after the resume */
    send_all(other, "GET /x HTTP/1.1\r\nHost: t\r\n\r\n", 28);
    size_t n = read_until(other, out, sizeof out, 20, &closed);
    double waited = now_ms() - start;
    CHECK(n > 0 && strncmp(out, "HTTP/1.1 200", 12) == 0);
    CHECK(waited >= 250); /* the resume comes 300 ms after the pause */
    close(other);
    close(fd);
}

/* 3,000 requests pipelined behind a held one (about 80 KB, more than the server buffers while a
 * response is pending): reading stops, resumes after the answer, and every request is answered
 * in order. */
static void test_pipeline_behind_held_request(void)
{
    enum { N = 3000 };
    static char reqs[N * 40 + 64];
    size_t len = (size_t)snprintf(reqs, sizeof reqs, "GET /hold HTTP/1.1\r\nHost: t\r\n\r\n");
    for (int i = 0; i < N; i++)
        len += (size_t)snprintf(reqs + len, sizeof reqs - len,
                                "GET /p%d HTTP/1.1\r\nHost: t\r\n\r\n", i % 10);
    int fd = connect_to(port);
    send_all(fd, reqs, len);
    static char out[1 << 20];
    size_t n = 0;
    int answered = 0;
    double start = now_ms();
    while (answered < N + 1 && now_ms() - start < 5000 && n < sizeof out - 1) {
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, 200) <= 0)
            continue;
        ssize_t k = read(fd, out + n, sizeof out - 1 - n);
        if (k <= 0)
            break;
        n += (size_t)k;
        out[n] = '\0';
        answered = 0;
        for (const char *q = out; (q = strstr(q, "HTTP/1.1 200")) != NULL; q += 12)
            answered++;
    }
    CHECK(answered == N + 1);
    CHECK(strstr(out, "released") != NULL && strstr(out, "released") < strstr(out, "GET /p0 "));
    const char *last = strstr(out, "GET /p9 ");
    CHECK(last != NULL);
    close(fd);
}

/* Issue 10 item 1: a client pipelines 5,000 requests answered at once (1 KB each, 5 MB of
 * answers) and reads nothing. The server stops parsing and reading once the connection's queued
 * output passes its soft limit (256 KiB by default), so what it holds stays bounded, other
 * clients are served meanwhile, and everything is answered, in order, once the client reads. */
static void test_pipelined_flood_never_read(void)
{
    enum { N = 5000 };
    static const char one[] = "GET /kb HTTP/1.1\r\nHost: t\r\n\r\n";
    static char reqs[N * (sizeof one - 1)];
    for (int i = 0; i < N; i++)
        memcpy(reqs + (size_t)i * (sizeof one - 1), one, sizeof one - 1);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    size_t sent = 0;
    double start = now_ms();
    while (sent < sizeof reqs && now_ms() - start < 2000) {
        struct pollfd pfd = {fd, POLLOUT, 0};
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        ssize_t k = send(fd, reqs + sent, sizeof reqs - sent, MSG_DONTWAIT);
        if (k > 0)
            sent += (size_t)k;
    }
    usleep(300000); /* the server works through what it read */
    int other = connect_to(port);
    send_all(other, "GET /stats HTTP/1.1\r\nHost: t\r\n\r\n", 32);
    char out[512];
    bool closed;
    read_until(other, out, sizeof out, 100000, &closed);
    const char *mp = strstr(out, "max_pending=");
    CHECK(mp != NULL);
    size_t max_pending = mp != NULL ? strtoul(mp + 12, NULL, 10) : 0;
    fprintf(stderr, "  flood: %zu of %zu bytes sent, max queued output %zu bytes\n", sent,
            sizeof reqs, max_pending);
    CHECK(max_pending < 512 * 1024);
    close(other);
    /* reading again: every request is answered */
    static char in[1 << 16];
    size_t answered = 0, tail = 0;
    start = now_ms();
    while (answered < N && now_ms() - start < 10000) {
        if (sent < sizeof reqs) {
            ssize_t k = send(fd, reqs + sent, sizeof reqs - sent, MSG_DONTWAIT);
            if (k > 0)
                sent += (size_t)k;
        }
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        ssize_t k = read(fd, in + tail, sizeof in - 1 - tail);
        if (k <= 0)
            break;
        size_t n = tail + (size_t)k;
        in[n] = '\0';
        const char *q = in;
        const char *hit;
        while ((hit = strstr(q, "HTTP/1.1 200")) != NULL) { /* the answers hold no NUL */
            answered++;
            q = hit + 12;
        }
        tail = n - (size_t)(q - in) < 11 ? n - (size_t)(q - in) : 11;
        memmove(in, in + n - tail, tail);
    }
    CHECK(answered == N);
    close(fd);
}

/* Output that would pass the hard limit closes the connection instead of being queued. */
static void test_output_hard_limit(void)
{
    int fd = connect_to(port);
    send_all(fd, "GET /spew HTTP/1.1\r\nHost: t\r\n\r\n", 31);
    static char out[1 << 20];
    size_t total = 0;
    bool closed = false;
    double start = now_ms();
    while (!closed && now_ms() - start < 5000)
        total += read_until(fd, out, sizeof out, sizeof out - 1, &closed);
    CHECK(closed);
    CHECK(total < (4u << 20) + 4096);
    close(fd);
}

/* ---- the close protocol (http_server.h "How a connection ends"), in this process over a
 * socketpair adopted by a server ---- */

struct close_probe {
    struct http_server *srv;
    struct http_conn *conn;
    int on_close;          /* how many times the owner's on_close ran */
    int inside;            /* ... of them inside an http_conn_close call or another callback */
    bool in_call;          /* the test is inside http_conn_close or a callback of the conn */
    char reason[64];       /* its reason */
    bool close_in_request; /* on_request closes (twice) after taking the connection */
    bool close_in_data;    /* on_data closes */
};

static void probe_close_cb(void *ctx, struct http_conn *conn, const char *reason)
{
    struct close_probe *pr = ctx;
    CHECK(conn == pr->conn);
    pr->on_close++;
    pr->inside += pr->in_call;
    snprintf(pr->reason, sizeof pr->reason, "%s", reason);
    /* the connection is still valid here: a late write or close is a no-op */
    http_conn_write(conn, "late", 4);
    http_conn_close(conn, false);
}

static size_t probe_data_cb(void *ctx, struct http_conn *conn, const uint8_t *p, size_t len)
{
    (void)p;
    struct close_probe *pr = ctx;
    pr->in_call = true;
    if (pr->close_in_data) {
        http_conn_close(conn, true);
        http_conn_write(conn, "x", 1); /* dropped, and no crash: the conn lives until on_close */
    }
    pr->in_call = false;
    return len;
}

static void probe_request(void *ctx, struct http_conn *conn, struct http_server_request *req)
{
    struct close_probe *pr = ctx;
    pr->in_call = true;
    pr->conn = conn;
    struct http_conn_owner owner = {probe_data_cb, NULL, probe_close_cb, pr};
    if (req->upgrade) {
        http_conn_write(conn, "HTTP/1.1 101 Switching Protocols\r\n\r\n", 36);
        http_conn_upgrade(conn, &owner);
    } else {
        http_conn_set_owner(conn, &owner);
    }
    if (pr->close_in_request) {
        http_conn_close(conn, false);
        http_conn_close(conn, true); /* idempotent */
    }
    pr->in_call = false;
}

static bool probe_closed(const struct close_probe *pr)
{
    return pr->on_close > 0;
}

/* Runs `base` until the probe's on_close ran, or 2 s passed, then a little longer (a second
 * call would come by then). */
static void probe_run(struct event_base *base, struct close_probe *pr)
{
    double start = now_ms();
    while (!probe_closed(pr) && now_ms() - start < 2000)
        event_base_loop(base, EVLOOP_NONBLOCK);
    for (int i = 0; i < 20; i++)
        event_base_loop(base, EVLOOP_NONBLOCK);
}

/* A server in this process and one adopted connection whose client end is returned. */
static struct event_base *probe_start(struct close_probe *pr, int *client)
{
    struct event_base *base = event_base_new();
    struct http_server_config cfg = {0};
    cfg.listen = "127.0.0.1:0";
    cfg.on_request = probe_request;
    cfg.ctx = pr;
    char err[128];
    pr->srv = http_server_new(base, &cfg, err, sizeof err);
    *client = adopt_test_client(pr->srv);
    CHECK(*client >= 0);
    return base;
}

static void probe_stop(struct event_base *base, struct close_probe *pr, int client)
{
    close(client);
    http_server_free(pr->srv);
    event_base_free(base);
}

static void test_close_own_runs_on_close_later_once(void)
{
    struct close_probe pr = {.close_in_request = true};
    int client;
    struct event_base *base = probe_start(&pr, &client);
    const char *req = "GET /own HTTP/1.1\r\nHost: t\r\n\r\n";
    send_all(client, req, strlen(req));
    probe_run(base, &pr);
    CHECK(pr.conn != NULL);
    CHECK(pr.on_close == 1);
    CHECK(pr.inside == 0);
    CHECK(strcmp(pr.reason, "local close") == 0);
    CHECK(http_server_connection_count(pr.srv) == 0);
    probe_stop(base, &pr, client);
}

static void test_close_by_peer_runs_on_close_once(void)
{
    struct close_probe pr = {0};
    int client;
    struct event_base *base = probe_start(&pr, &client);
    const char *req = "GET /held HTTP/1.1\r\nHost: t\r\n\r\n";
    send_all(client, req, strlen(req));
    for (int i = 0; i < 20 && pr.conn == NULL; i++)
        event_base_loop(base, EVLOOP_NONBLOCK);
    CHECK(pr.conn != NULL);
    shutdown(client, SHUT_RDWR);
    probe_run(base, &pr);
    CHECK(pr.on_close == 1);
    CHECK(pr.inside == 0);
    CHECK(strcmp(pr.reason, "transport close") == 0);
    probe_stop(base, &pr, client);
}

static void test_close_inside_on_data_then_peer_close(void)
{
    struct close_probe pr = {.close_in_data = true};
    int client;
    struct event_base *base = probe_start(&pr, &client);
    const char *req = "GET /u HTTP/1.1\r\nHost: t\r\nConnection: upgrade\r\nUpgrade: websocket\r\n"
                      "\r\nraw bytes";
    send_all(client, req, strlen(req));
    for (int i = 0; i < 20 && pr.conn == NULL; i++)
        event_base_loop(base, EVLOOP_NONBLOCK);
    shutdown(client, SHUT_RDWR); /* the peer goes too: still one on_close, the first cause */
    probe_run(base, &pr);
    CHECK(pr.on_close == 1);
    CHECK(pr.inside == 0);
    CHECK(strcmp(pr.reason, "local close") == 0);
    probe_stop(base, &pr, client);
}

static void test_server_free_runs_pending_on_close(void)
{
    struct close_probe pr = {0};
    int client;
    struct event_base *base = probe_start(&pr, &client);
    const char *req = "GET /held HTTP/1.1\r\nHost: t\r\n\r\n";
    send_all(client, req, strlen(req));
    for (int i = 0; i < 20 && pr.conn == NULL; i++)
        event_base_loop(base, EVLOOP_NONBLOCK);
    CHECK(pr.conn != NULL);
    http_server_close_all(pr.srv);
    CHECK(pr.on_close == 0); /* from the loop, not inside close_all */
    close(client);
    http_server_free(pr.srv); /* the loop will not run again: free runs it */
    CHECK(pr.on_close == 1);
    CHECK(strcmp(pr.reason, "server shutdown") == 0);
    event_base_free(base);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    pid_t pid = start_server(&port);
    if (port == 0) {
        fprintf(stderr, "server did not start\n");
        return 1;
    }
    RUN(test_simple_and_keep_alive);
    RUN(test_pipelined_and_chunked);
    RUN(test_errors_answered_by_server);
    RUN(test_error_during_upload_is_read);
    RUN(test_slow_head_times_out);
    RUN(test_held_request);
    RUN(test_upgrade_to_raw);
    RUN(test_pause_reading);
    RUN(test_pipeline_behind_held_request);
    RUN(test_pipelined_flood_never_read);
    RUN(test_output_hard_limit);
    RUN(test_close_own_runs_on_close_later_once);
    RUN(test_close_by_peer_runs_on_close_once);
    RUN(test_close_inside_on_data_then_peer_close);
    RUN(test_server_free_runs_pending_on_close);
    kill(pid, SIGTERM);
    int status;
    waitpid(pid, &status, 0);
    return test_summary("test_http_server");
}
