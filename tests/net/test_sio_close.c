/* test_sio_close.c: the close protocol of sio_server.h ("How a socket ends"): a server
 * disconnect (with or without the transport) made inside on_event, the client's "41", and
 * sio_server_free each run on_disconnect exactly once, later, from the loop (never inside
 * sio_socket_disconnect nor inside another callback of the socket), with the cause as its
 * reason; a socket that is leaving gets no more events. An HTTP server and a Socket.IO server
 * run in this process; the client is one end of a socketpair the HTTP server adopted. */
#include <event2/event.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/net/http_server.h"
#include "common/ws.h"
#include "gateway/eio_server.h"
#include "gateway/sio_server.h"
#include "tests/net/adopt_test.h"
#include "tests/unit/test.h"

struct probe {
    struct event_base *base;
    struct http_server *http;
    struct sio_server *sio;
    struct sio_socket *sock;
    int events;
    int on_disconnect; /* times on_disconnect ran */
    int inside;        /* ... while the test was inside a call or callback of the socket */
    bool in_call;
    char reason[64];
};

static struct probe pr;

static bool is(struct slice s, const char *text)
{
    return s.len == strlen(text) && memcmp(s.p, text, s.len) == 0;
}

static void connect_cb(void *ctx, struct sio_socket *sock, const uint8_t *auth, size_t len)
{
    (void)ctx;
    (void)auth;
    (void)len;
    pr.sock = sock;
    sio_socket_accept(sock, NULL, NULL);
}

static void event_cb(void *ctx, struct sio_socket *sock, struct slice event, struct slice args,
                     bool has_ack, uint64_t ack_id)
{
    (void)ctx;
    (void)args;
    (void)has_ack;
    (void)ack_id;
    pr.events++;
    pr.in_call = true;
    if (is(event, "kick") || is(event, "bye")) {
        sio_socket_disconnect(sock, is(event, "bye"));
        sio_socket_disconnect(sock, true); /* idempotent */
        CHECK(pr.on_disconnect == 0);      /* later, never inside the call */
        CHECK(sio_server_find_id(pr.sio, sio_socket_id(sock), SIO_SOCKET_ID_LEN) == NULL);
    }
    pr.in_call = false;
}

static void disconnect_cb(void *ctx, struct sio_socket *sock, const char *reason)
{
    (void)ctx;
    CHECK(sock == pr.sock);
    pr.on_disconnect++;
    pr.inside += pr.in_call;
    snprintf(pr.reason, sizeof pr.reason, "%s", reason);
    sio_socket_disconnect(sock, true); /* a no-op now */
}

static void on_request(void *ctx, struct http_conn *conn, struct http_server_request *req)
{
    (void)ctx;
    if (!sio_server_handle(pr.sio, conn, req))
        http_conn_respond(conn, 404, NULL, 0, NULL, 0, false);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

/* What the server wrote to `fd` while the loop turned for `ms` (appended at out[*n]). */
static void drain(int fd, char *out, size_t cap, size_t *n, int ms)
{
    double start = now_ms();
    while (now_ms() - start < ms) {
        event_base_loop(pr.base, EVLOOP_NONBLOCK);
        ssize_t k = read(fd, out + *n, cap - 1 - *n);
        if (k > 0)
            *n += (size_t)k;
    }
    out[*n] = '\0';
}

/* A masked client text frame (RFC 6455 5.3; mask key 0). */
static void send_text(int fd, const char *payload)
{
    size_t len = strlen(payload);
    uint8_t frame[130] = {0x80 | WS_OP_TEXT, (uint8_t)(0x80 | len), 0, 0, 0, 0};
    memcpy(frame + 6, payload, len);
    CHECK(write(fd, frame, 6 + len) == (ssize_t)(6 + len));
}

/* A server and one WebSocket client connected to "/" (accepted). Returns the client's fd. */
static int start(void)
{
    memset(&pr, 0, sizeof pr);
    pr.base = event_base_new();
    struct sio_server_config scfg = {
        .namespaces = "/",
        .max_payload = 100000,
        .seed = 1,
        .on_connect = connect_cb,
        .on_event = event_cb,
        .on_disconnect = disconnect_cb,
    };
    struct eio_server_config ecfg = {.path = "/socket.io/", .polling = true, .websocket = true};
    pr.sio = sio_server_new(pr.base, &scfg, &ecfg);
    struct http_server_config hcfg = {.listen = "127.0.0.1:0", .on_request = on_request};
    char err[128];
    pr.http = http_server_new(pr.base, &hcfg, err, sizeof err);
    CHECK(pr.sio != NULL && pr.http != NULL);
    int client = adopt_test_client(pr.http);
    CHECK(client >= 0);
    static const char upgrade[] = "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                                  "Host: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                                  "Sec-WebSocket-Version: 13\r\n"
                                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    CHECK(write(client, upgrade, sizeof upgrade - 1) == (ssize_t)(sizeof upgrade - 1));
    char out[2048];
    size_t n = 0;
    drain(client, out, sizeof out, &n, 100);
    send_text(client, "40");
    drain(client, out, sizeof out, &n, 100);
    CHECK(pr.sock != NULL && sio_socket_accepted(pr.sock));
    return client;
}

static void stop(int fd)
{
    close(fd);
    sio_server_free(pr.sio);
    http_server_free(pr.http);
    event_base_free(pr.base);
}

static void test_server_disconnect_inside_on_event(void)
{
    int fd = start();
    send_text(fd, "42[\"kick\"]");
    send_text(fd, "42[\"after\"]"); /* the socket is gone: not delivered */
    char out[2048];
    size_t n = 0;
    drain(fd, out, sizeof out, &n, 300);
    CHECK(pr.events == 1);
    CHECK(pr.on_disconnect == 1);
    CHECK(pr.inside == 0);
    CHECK(strcmp(pr.reason, "server namespace disconnect") == 0);
    CHECK(n >= 4 && memcmp(out + 2, "41", 2) == 0); /* the client's DISCONNECT */
    stop(fd);
}

static void test_server_disconnect_with_transport(void)
{
    int fd = start();
    send_text(fd, "42[\"bye\"]");
    char out[2048];
    size_t n = 0;
    drain(fd, out, sizeof out, &n, 300);
    CHECK(pr.on_disconnect == 1);
    CHECK(pr.inside == 0);
    CHECK(strcmp(pr.reason, "server namespace disconnect") == 0);
    stop(fd);
}

static void test_client_disconnect(void)
{
    int fd = start();
    send_text(fd, "41");
    send_text(fd, "42[\"after\"]"); /* for a namespace no longer joined */
    char out[2048];
    size_t n = 0;
    drain(fd, out, sizeof out, &n, 300);
    CHECK(pr.events == 0);
    CHECK(pr.on_disconnect == 1);
    CHECK(pr.inside == 0);
    CHECK(strcmp(pr.reason, "client namespace disconnect") == 0);
    stop(fd);
}

static void test_server_free(void)
{
    int fd = start();
    sio_server_free(pr.sio); /* the loop will not run again: free runs it */
    CHECK(pr.on_disconnect == 1);
    CHECK(strcmp(pr.reason, "server shutdown") == 0);
    close(fd);
    http_server_free(pr.http);
    event_base_free(pr.base);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    RUN(test_server_disconnect_inside_on_event);
    RUN(test_server_disconnect_with_transport);
    RUN(test_client_disconnect);
    RUN(test_server_free);
    return test_summary("test_sio_close");
}
