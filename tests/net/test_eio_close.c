/* test_eio_close.c: the close protocol of eio_server.h ("How a session ends") for each way a
 * session ends: the owner's eio_session_close inside on_message (WebSocket) and outside any
 * callback (polling: the linger and its "6\x1e1"), the client's close packet, a held GET whose
 * client goes away, the ping timeout, and eio_server_free. Each time on_close runs exactly once,
 * later, from the loop (never inside eio_session_close nor inside another callback of the
 * session) with the cause as its reason. An HTTP server and an Engine.IO server run in this
 * process; each client is one end of a socketpair the HTTP server adopted. */
#include <event2/event.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/net/http_server.h"
#include "common/ws.h"
#include "gateway/eio_server.h"
#include "tests/net/adopt_test.h"
#include "tests/unit/test.h"

struct probe {
    struct event_base *base;
    struct http_server *http;
    struct eio_server *eio;
    struct eio_session *session;
    int opened;
    int on_close; /* times on_close ran */
    int inside;   /* ... while the test was inside a call or callback of the session */
    bool in_call;
    char reason[64];
    bool close_on_message; /* on_message closes the session (twice) */
};

static struct probe pr;

static void *open_cb(void *ctx, struct eio_session *s, const struct http_server_request *req,
                     const char *peer)
{
    (void)ctx;
    (void)req;
    (void)peer;
    pr.session = s;
    pr.opened++;
    return &pr;
}

static void message_cb(void *ctx, struct eio_session *s, void *user, const uint8_t *p, size_t len,
                       bool binary)
{
    (void)ctx;
    (void)user;
    (void)p;
    (void)len;
    (void)binary;
    pr.in_call = true;
    if (pr.close_on_message) {
        eio_session_close(s, "owner close");
        eio_session_close(s, "second close"); /* idempotent: the first reason stays */
    }
    pr.in_call = false;
}

static void close_cb(void *ctx, struct eio_session *s, void *user, const char *reason)
{
    (void)ctx;
    CHECK(s == pr.session);
    CHECK(user == &pr);
    pr.on_close++;
    pr.inside += pr.in_call;
    snprintf(pr.reason, sizeof pr.reason, "%s", reason);
    eio_session_close(s, "late"); /* a no-op now */
}

static void on_request(void *ctx, struct http_conn *conn, struct http_server_request *req)
{
    (void)ctx;
    pr.in_call = true;
    if (!eio_server_handle(pr.eio, conn, req))
        http_conn_respond(conn, 404, NULL, 0, NULL, 0, false);
    pr.in_call = false;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static bool closed(void)
{
    return pr.on_close > 0;
}

/* Turns the loop until `done` (or `ms`), then a little more (a second call would come). */
static void run_until(bool (*done)(void), int ms)
{
    double start = now_ms();
    while ((done == NULL || !done()) && now_ms() - start < ms)
        event_base_loop(pr.base, EVLOOP_NONBLOCK);
    for (int i = 0; i < 20; i++)
        event_base_loop(pr.base, EVLOOP_NONBLOCK);
}

static void start(unsigned ping_interval_ms, unsigned ping_timeout_ms)
{
    memset(&pr, 0, sizeof pr);
    pr.base = event_base_new();
    struct http_server_config hcfg = {0};
    hcfg.listen = "127.0.0.1:0";
    hcfg.on_request = on_request;
    char err[128];
    pr.http = http_server_new(pr.base, &hcfg, err, sizeof err);
    struct eio_server_config ecfg = {0};
    ecfg.path = "/engine.io/";
    ecfg.polling = ecfg.websocket = true;
    ecfg.ping_interval_ms = ping_interval_ms;
    ecfg.ping_timeout_ms = ping_timeout_ms;
    ecfg.on_open = open_cb;
    ecfg.on_message = message_cb;
    ecfg.on_close = close_cb;
    pr.eio = eio_server_new(pr.base, &ecfg);
    CHECK(pr.http != NULL && pr.eio != NULL);
}

static void stop(void)
{
    eio_server_free(pr.eio);
    http_server_free(pr.http);
    event_base_free(pr.base);
}

/* A new client connection: the test's end of an adopted socketpair. */
static int client_new(void)
{
    int fd = adopt_test_client(pr.http);
    CHECK(fd >= 0);
    return fd;
}

static void send_str(int fd, const char *s)
{
    CHECK(write(fd, s, strlen(s)) == (ssize_t)strlen(s));
}

/* What the server wrote to `fd` while the loop turned for `ms`. */
static size_t drain(int fd, char *out, size_t cap, int ms)
{
    size_t n = 0;
    double start = now_ms();
    while (now_ms() - start < ms) {
        event_base_loop(pr.base, EVLOOP_NONBLOCK);
        ssize_t k = read(fd, out + n, cap - 1 - n);
        if (k > 0)
            n += (size_t)k;
    }
    out[n] = '\0';
    return n;
}

/* A masked client text frame (RFC 6455 5.3; mask key 0). */
static void send_text(int fd, const char *payload)
{
    size_t len = strlen(payload);
    uint8_t frame[130] = {0x80 | WS_OP_TEXT, (uint8_t)(0x80 | len), 0, 0, 0, 0};
    memcpy(frame + 6, payload, len);
    CHECK(write(fd, frame, 6 + len) == (ssize_t)(6 + len));
}

static int websocket_session(void)
{
    int fd = client_new();
    send_str(fd, "GET /engine.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: t\r\n"
                 "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
    char out[2048];
    drain(fd, out, sizeof out, 100);
    CHECK(strstr(out, "101 Switching Protocols") != NULL);
    CHECK(pr.opened == 1);
    return fd;
}

/* A polling handshake; returns the sid in `sid` (21 bytes). */
static void polling_session(char *sid)
{
    int fd = client_new();
    send_str(fd, "GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: t\r\n\r\n");
    char out[2048];
    drain(fd, out, sizeof out, 100);
    const char *p = strstr(out, "\"sid\":\"");
    CHECK(p != NULL);
    if (p != NULL)
        snprintf(sid, 21, "%s", p + 7);
    close(fd);
}

static void test_owner_close_inside_on_message(void)
{
    start(0, 0);
    pr.close_on_message = true;
    int fd = websocket_session();
    send_text(fd, "4hello");
    char out[2048];
    size_t n = drain(fd, out, sizeof out, 300);
    CHECK(pr.on_close == 1);
    CHECK(pr.inside == 0);
    CHECK(strcmp(pr.reason, "owner close") == 0);
    /* PROTOCOL.md 1.6: the server's close frame has no status code */
    CHECK(n >= 2 && (uint8_t)out[n - 2] == (0x80 | WS_OP_CLOSE) && out[n - 1] == 0);
    close(fd);
    stop();
}

static void test_client_close_packet(void)
{
    start(0, 0);
    int fd = websocket_session();
    send_text(fd, "1");
    run_until(closed, 2000);
    CHECK(pr.on_close == 1);
    CHECK(pr.inside == 0);
    CHECK(strcmp(pr.reason, "transport close") == 0);
    close(fd);
    stop();
}

static void test_polling_close_outside_callbacks_lingers(void)
{
    start(0, 0);
    char sid[21] = "";
    polling_session(sid);
    eio_session_close(pr.session, "owner close");
    CHECK(pr.on_close == 0); /* later, never inside the call */
    run_until(closed, 2000);
    CHECK(pr.on_close == 1);
    CHECK(strcmp(pr.reason, "owner close") == 0);
    /* PROTOCOL.md 1.5.5: the sid lingers; the next GET gets noop and close */
    int fd = client_new();
    char req[256], out[2048];
    snprintf(req, sizeof req,
             "GET /engine.io/?EIO=4&transport=polling&sid=%s HTTP/1.1\r\nHost: t\r\n\r\n", sid);
    send_str(fd, req);
    size_t n = drain(fd, out, sizeof out, 200);
    CHECK(n > 4 && memcmp(out + n - 3,
                          "6\x1e"
                          "1",
                          3) == 0);
    CHECK(pr.on_close == 1);
    close(fd);
    stop();
}

static void test_held_get_client_goes_away(void)
{
    start(0, 0);
    char sid[21] = "";
    polling_session(sid);
    int fd = client_new();
    char req[256], out[256];
    snprintf(req, sizeof req,
             "GET /engine.io/?EIO=4&transport=polling&sid=%s HTTP/1.1\r\nHost: t\r\n\r\n", sid);
    send_str(fd, req);
    drain(fd, out, sizeof out, 100); /* held */
    CHECK(pr.on_close == 0);
    close(fd); /* PROTOCOL.md 1.5.2: the session closes */
    run_until(closed, 2000);
    CHECK(pr.on_close == 1);
    CHECK(pr.inside == 0);
    CHECK(strcmp(pr.reason, "transport close") == 0);
    stop();
}

static void test_ping_timeout(void)
{
    start(50, 50);
    int fd = websocket_session();
    run_until(closed, 3000);
    CHECK(pr.on_close == 1);
    CHECK(pr.inside == 0);
    CHECK(strcmp(pr.reason, "ping timeout") == 0);
    close(fd);
    stop();
}

static void test_server_free(void)
{
    start(0, 0);
    int fd = websocket_session();
    eio_server_free(pr.eio); /* the loop will not run again: free runs it */
    CHECK(pr.on_close == 1);
    CHECK(strcmp(pr.reason, "server shutdown") == 0);
    close(fd);
    http_server_free(pr.http);
    event_base_free(pr.base);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    RUN(test_owner_close_inside_on_message);
    RUN(test_client_close_packet);
    RUN(test_polling_close_outside_callbacks_lingers);
    RUN(test_held_get_client_goes_away);
    RUN(test_ping_timeout);
    RUN(test_server_free);
    return test_summary("test_eio_close");
}
