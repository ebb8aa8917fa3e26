/* test_ws_link.c: the close protocol of ws_link.h ("How a link ends") over a real upgraded
 * connection: a server in this process adopts one end of a socketpair, the test writes the
 * client's bytes on the other. Whoever ends the link (the owner inside on_message, the peer's
 * close frame, a protocol error, the peer going away), on_close runs exactly once, later, from
 * the loop (never inside ws_link_close nor inside another callback of the link), with the cause
 * as its reason; the link is freed after it (ASan checks the rest). */
#include <event2/event.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"
#include "common/net/http_server.h"
#include "common/ws.h"
#include "gateway/ws_link.h"
#include "tests/net/adopt_test.h"
#include "tests/unit/test.h"

struct probe {
    struct http_server *srv;
    struct ws_link *link;
    int on_close; /* times on_close ran */
    int inside;   /* ... while the test was inside a call or callback of the link */
    bool in_call;
    int err;         /* on_close's err */
    char reason[64]; /* and reason */
    int messages;
    bool close_in_message; /* on_message closes the link (twice) */
};

static int released; /* bytes given to the link after its close: dropped at once */

static void release_cb(const void *p, size_t len, void *arg)
{
    (void)p;
    (void)len;
    (void)arg;
    released++;
}

static void message_cb(void *ctx, struct ws_link *link, const uint8_t *p, size_t len, bool binary)
{
    (void)p;
    (void)len;
    (void)binary;
    struct probe *pr = ctx;
    pr->in_call = true;
    pr->messages++;
    if (pr->close_in_message) {
        ws_link_close(link, WS_CLOSE_NORMAL);
        ws_link_close(link, WS_CLOSE_NORMAL); /* idempotent */
        ws_link_write_ref(link, (const uint8_t *)"x", 1, release_cb, NULL);
    }
    pr->in_call = false;
}

static void close_cb(void *ctx, struct ws_link *link, int err, const char *reason)
{
    struct probe *pr = ctx;
    CHECK(link == pr->link);
    pr->on_close++;
    pr->inside += pr->in_call;
    pr->err = err;
    snprintf(pr->reason, sizeof pr->reason, "%s", reason);
    ws_link_close(link, WS_CLOSE_NORMAL); /* a no-op now */
}

static const struct ws_link_handler handler = {message_cb, close_cb, NULL};

static void on_request(void *ctx, struct http_conn *conn, struct http_server_request *req)
{
    struct probe *pr = ctx;
    CHECK(ws_link_request_valid(req));
    pr->in_call = true;
    pr->link = ws_link_accept(conn, req, 1000, NULL, 0, &handler, pr);
    pr->in_call = false;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

/* Turns the loop until on_close ran (or 2 s), then a little more (a second call would come). */
static void run(struct event_base *base, struct probe *pr)
{
    double start = now_ms();
    while (pr->on_close == 0 && now_ms() - start < 2000)
        event_base_loop(base, EVLOOP_NONBLOCK);
    for (int i = 0; i < 20; i++)
        event_base_loop(base, EVLOOP_NONBLOCK);
}

static struct event_base *start(struct probe *pr, int *client)
{
    struct event_base *base = event_base_new();
    struct http_server_config cfg = {0};
    cfg.listen = "127.0.0.1:0";
    cfg.on_request = on_request;
    cfg.ctx = pr;
    char err[128];
    pr->srv = http_server_new(base, &cfg, err, sizeof err);
    *client = adopt_test_client(pr->srv);
    CHECK(*client >= 0);
    static const char upgrade[] = "GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\n"
                                  "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    CHECK(write(*client, upgrade, sizeof upgrade - 1) == (ssize_t)(sizeof upgrade - 1));
    for (int i = 0; i < 50 && pr->link == NULL; i++)
        event_base_loop(base, EVLOOP_NONBLOCK);
    CHECK(pr->link != NULL);
    return base;
}

static void stop(struct event_base *base, struct probe *pr, int client)
{
    close(client);
    http_server_free(pr->srv);
    event_base_free(base);
}

/* A masked client frame (RFC 6455 5.3; mask key 0 keeps the payload as is). */
static void send_frame(int fd, uint8_t first, const char *payload, size_t len)
{
    uint8_t frame[140] = {first, (uint8_t)(0x80 | len), 0, 0, 0, 0};
    memcpy(frame + 6, payload, len);
    CHECK(write(fd, frame, 6 + len) == (ssize_t)(6 + len));
}

/* Everything the server wrote (after the 101), within 1 s. */
static size_t read_all(int fd, uint8_t *out, size_t cap)
{
    size_t n = 0;
    double start = now_ms();
    while (n < cap && now_ms() - start < 1000) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0)
            continue;
        ssize_t k = read(fd, out + n, cap - n);
        if (k <= 0)
            break;
        n += (size_t)k;
    }
    return n;
}

/* The close frame the server sent last: its status code, or -1. */
static int last_close_code(int fd)
{
    uint8_t buf[4096];
    size_t n = read_all(fd, buf, sizeof buf);
    for (size_t i = 0; i + 4 <= n; i++) {
        if (buf[i] == (0x80 | WS_OP_CLOSE) && buf[i + 1] == 2 && i + 4 == n)
            return buf[i + 2] << 8 | buf[i + 3];
    }
    return -1;
}

static void test_owner_close_inside_on_message(void)
{
    struct probe pr = {.close_in_message = true};
    int client;
    struct event_base *base = start(&pr, &client);
    send_frame(client, 0x80 | WS_OP_TEXT, "hi", 2);
    send_frame(client, 0x80 | WS_OP_TEXT, "dropped", 7); /* after the close: not delivered */
    run(base, &pr);
    CHECK(pr.messages == 1);
    CHECK(released == 1);
    CHECK(pr.on_close == 1);
    CHECK(pr.inside == 0);
    CHECK(pr.err == SIOC_OK);
    CHECK(strcmp(pr.reason, "local close") == 0);
    CHECK(last_close_code(client) == WS_CLOSE_NORMAL);
    stop(base, &pr, client);
}

static void test_peer_close_frame(void)
{
    struct probe pr = {0};
    int client;
    struct event_base *base = start(&pr, &client);
    send_frame(client, 0x80 | WS_OP_CLOSE, "\x03\xe9", 2); /* 1001 */
    run(base, &pr);
    CHECK(pr.on_close == 1);
    CHECK(pr.inside == 0);
    CHECK(strcmp(pr.reason, "transport close") == 0);
    CHECK(last_close_code(client) == 1001); /* RFC 6455 5.5.1: echoed */
    stop(base, &pr, client);
}

static void test_protocol_error(void)
{
    struct probe pr = {0};
    int client;
    struct event_base *base = start(&pr, &client);
    static const uint8_t unmasked[] = {0x80 | WS_OP_TEXT, 2, 'h', 'i'}; /* RFC 6455 5.1 */
    CHECK(write(client, unmasked, sizeof unmasked) == (ssize_t)sizeof unmasked);
    run(base, &pr);
    CHECK(pr.on_close == 1);
    CHECK(pr.inside == 0);
    CHECK(pr.err != SIOC_OK);
    CHECK(strcmp(pr.reason, "parse error") == 0);
    CHECK(last_close_code(client) == WS_CLOSE_PROTOCOL_ERROR);
    stop(base, &pr, client);
}

static void test_peer_goes_away(void)
{
    struct probe pr = {0};
    int client;
    struct event_base *base = start(&pr, &client);
    shutdown(client, SHUT_RDWR);
    run(base, &pr);
    CHECK(pr.on_close == 1);
    CHECK(pr.inside == 0);
    CHECK(strcmp(pr.reason, "transport close") == 0);
    stop(base, &pr, client);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    RUN(test_owner_close_inside_on_message);
    RUN(test_peer_close_frame);
    RUN(test_protocol_error);
    RUN(test_peer_goes_away);
    return test_summary("test_ws_link");
}
