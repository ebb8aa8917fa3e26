/* http_server.h: the HTTP/1.1 front door of a sioc process, on libevent: a listener, one
 * struct http_conn per TCP connection that parses requests with common/http.h, hands each
 * complete request (head + body) to the owner's callback, and lets the owner answer at once,
 * later (Engine.IO long-polling holds GETs), or take the connection over after an Upgrade
 * (WebSocket). Writes are queued on the connection (shared frames by reference) and sent at the
 * end of the loop iteration, all of a connection's pending output in one sendmsg. An idle
 * connection holds one small struct and one socket event: no buffers, no timer of its own
 * (DESIGN.md §4). With a TLS context (common/net/tls.h) every connection speaks TLS and all of
 * the above holds unchanged over it. Connection functions use the http_conn_ prefix. */
#ifndef SIOC_NET_HTTP_SERVER_H
#define SIOC_NET_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/http.h"

struct event_base;
struct http_server;
struct http_conn;

/* A complete request. Valid from the on_request call until the request is answered
 * (http_conn_respond / http_conn_respond_end), the connection is upgraded, or it closes. */
struct http_server_request {
    const struct http_request *head; /* slices point into connection-owned storage */
    struct slice path;               /* target before '?' */
    struct slice query;              /* after '?', without it; empty if none */
    struct slice body;               /* complete, de-chunked body */
    bool keep_alive;                 /* what the client asked for (RFC 9112 9.3) */
    bool upgrade;                    /* Connection: upgrade + Upgrade: websocket */
    bool over_limit; /* the connection is one of the reserve above max_connections: answer
                      * health checks, refuse the rest (503); it closes after the answer */
    bool secure;     /* it came over TLS */
};

struct http_server_config {
    const char *listen;       /* "host:port", e.g. "127.0.0.1:0" for a random free port */
    size_t max_head;          /* 0 = HTTP_MAX_HEAD_DEFAULT */
    size_t max_body;          /* bodies above get 413 before they are read; 0 = 1 MiB */
    unsigned head_timeout_ms; /* a started head must complete within this (slowloris), and a
                               * closing connection must flush within it; 0 = 10 s */
    unsigned idle_timeout_ms; /* a keep-alive connection without a request; 0 = 60 s */
    /* Connections above max_connections (0 = unlimited) go to a reserve of
     * reserve_connections: one request each, marked over_limit, so that the owner can still
     * answer health checks at the limit and refuse the rest. When the reserve is full its
     * oldest connection is closed to make room; with no reserve, accepts above the limit are
     * closed at once. */
    size_t max_connections;
    size_t reserve_connections;
    /* Per-connection output limits, counting everything queued on the connection (responses,
     * pipelined or not, and raw-mode writes such as pongs and close frames). Above the soft
     * limit the connection's input is neither read nor parsed until its peer has read enough
     * (so a pipelined flood that is never read costs at most about the soft limit plus one
     * answer); a write that would take it above the hard limit closes it instead ("output
     * limit", reported to on_error, the owner's on_close runs from the loop). */
    size_t output_soft_limit; /* 0 = 256 KiB */
    size_t output_hard_limit; /* 0 = 16 MiB; raised to the soft limit if below it */
    /* TLS (common/net/tls.h): when set, every connection must start with a TLS handshake
     * (complete within handshake_timeout_ms, 0 = 10 s) and everything above is unchanged.
     * Borrowed: it must outlive the server; the owner reloads it (new connections use the new
     * certificate, established ones keep theirs). A connection whose first byte is not a TLS
     * handshake record (0x16) is plain: with `plain_paths` (a NULL-terminated list, e.g. the
     * health checks) its requests for those paths are served and any other is refused (400);
     * without, it gets a plain 400 and is closed. TLS failures (handshake, timeout,
     * renegotiation, plain bytes) are reported to on_error. */
    struct tls_context *tls;
    unsigned handshake_timeout_ms;
    const char *const *plain_paths;
    /* A complete request arrived. The owner answers it now or later; until then no further
     * request is read from this connection (pipelined bytes wait). Must not free the conn. */
    void (*on_request)(void *ctx, struct http_conn *conn, struct http_server_request *req);
    /* A peer error the server answered itself (400/413/431/505, timeouts, TLS failures), for
     * logging. */
    void (*on_error)(void *ctx, const char *what, const char *peer);
    /* The listener's episodes, once each (never per connection): `trouble` true when one
     * starts ("connection limit reached (N)", "accept failed: Too many open files; accepts
     * paused", the listener then retries after 100 ms, doubling up to 1 s), false when it ends
     * ("accepting again after N failures in M ms"). May be NULL. */
    void (*on_listener)(void *ctx, bool trouble, const char *what);
    void *ctx;
};

/* Binds and listens. Returns NULL (and fills err) on failure (bad address, bind error). */
struct http_server *http_server_new(struct event_base *base, const struct http_server_config *cfg,
                                    char *err, size_t errlen);
/* Stops listening; open connections stay (see http_server_close_all). */
void http_server_stop_listening(struct http_server *srv);
/* Stops (true) or resumes (false) reading on every connection, present and future: the
 * back-pressure of DESIGN.md §3.2 when upstream cannot take more. Connections paused one by one
 * (http_conn_pause_reading) stay paused on resume. Accepting continues. */
void http_server_pause_reading(struct http_server *srv, bool paused);
/* Closes every connection at once ("server shutdown"; their on_close callbacks run from the
 * loop). */
void http_server_close_all(struct http_server *srv);
/* Closes everything and frees. The on_close callbacks still due run inside this call (the loop
 * will not run them), each connection freed after its own. NULL is a no-op. */
void http_server_free(struct http_server *srv);
/* Serves a connected stream socket the process made itself (e.g. one end of a socketpair
 * through which the gateway replays a request forwarded by another node) as if it had been
 * accepted: plain HTTP even on a TLS server, outside max_connections. Takes `fd` (non-blocking;
 * closed on failure). */
void http_server_adopt(struct http_server *srv, int fd);
/* The bound port (useful with port 0). */
uint16_t http_server_port(const struct http_server *srv);
size_t http_server_connection_count(const struct http_server *srv);

/* ---- answering a request ---- */

/* Writes a whole response: status line, the given header fields, Content-Length, the body.
 * Adds "Connection: close" and closes after the write when the request did not ask for
 * keep-alive or `close_after` is set. Then the next pipelined request (if any) is processed. */
void http_conn_respond(struct http_conn *conn, int status, const struct http_field *fields,
                       size_t nfields, const void *body, size_t len, bool close_after);
/* A response whose body the caller appends in pieces (http_conn_write*), with a known total
 * length. http_conn_respond_end finishes it. */
void http_conn_respond_begin(struct http_conn *conn, int status, const struct http_field *fields,
                             size_t nfields, size_t content_length, bool close_after);
void http_conn_respond_end(struct http_conn *conn);

/* ---- raw bytes (response bodies, or everything after an upgrade) ---- */
void http_conn_write(struct http_conn *conn, const void *p, size_t len);
/* Appends bytes owned by someone else without copying: `release` is called once they are no
 * longer needed (sent, or the connection closed; at once if it is closing). This is how one
 * encoded broadcast frame is shared by every recipient (DESIGN.md §4). */
void http_conn_write_ref(struct http_conn *conn, const void *p, size_t len,
                         void (*release)(const void *p, size_t len, void *arg), void *arg);
/* Appends `len` bytes the caller fills in at once through the returned pointer (valid until the
 * next call on this connection): a body built in place, one piece of output instead of many.
 * NULL when the connection is closing, out of memory or `len` would pass the output hard limit
 * (it is then lost). The write functions above drop their bytes in those cases alike. */
uint8_t *http_conn_write_space(struct http_conn *conn, size_t len);
/* Bytes queued but not yet written to the socket (for output limits). At most the server's
 * output_hard_limit. */
size_t http_conn_output_pending(const struct http_conn *conn);

/* ---- ownership, upgrade, close ---- */

/* What the connection tells its current owner (e.g. a held long-poll or a WebSocket). */
struct http_conn_owner {
    /* Raw mode only: bytes arrived. Returns how many it consumed; the rest is offered again,
     * followed by newer bytes, on the next call (so the owner never needs to copy a partial
     * frame). The bytes are valid during the call only. The owner may close the conn inside. */
    size_t (*on_data)(void *ctx, struct http_conn *conn, const uint8_t *p, size_t len);
    /* Everything queued was written (after output had been queued). */
    void (*on_drained)(void *ctx, struct http_conn *conn);
    /* The connection is gone, whoever ended it (see "How a connection ends" below): `reason`
     * is "local close" after http_conn_close, else the cause ("transport close", "transport
     * error", "output limit", "out of memory", "TLS handshake failed", "TLS renegotiation",
     * "server shutdown", "connection limit"). The owner drops its pointer; the conn is freed
     * right after this returns. */
    void (*on_close)(void *ctx, struct http_conn *conn, const char *reason);
    void *ctx;
};

/* How a connection ends (the one close protocol of sioc, as libuv's uv_close; ws_link.h,
 * eio_server.h, sio_server.h and plain_ws.h say the same): http_conn_close may be called at any
 * time, more than once (later calls do nothing), inside any callback. The owner's on_close then
 * ALWAYS runs, exactly once, LATER, from the event loop: never inside the http_conn_close call
 * nor inside another callback of the connection, whether the owner asked for the close or the
 * peer, a timeout or an error caused it (the reason says which). Memory is freed only right after
 * on_close returns, never in the middle of a callback: until then the pointer stays valid and
 * every call on a closing connection is a no-op that drops its bytes. (A flushed close tells
 * the owner from the loop at once and the server alone then writes what was queued and closes
 * the socket, lingering as nginx does: on_close is the last the owner hears, and the pointer is
 * dead to it afterwards.) The owner is whoever is
 * attached when the connection ends; a connection without one just goes. */

/* Attaches an owner to the connection (replacing any), e.g. while a GET is held. */
void http_conn_set_owner(struct http_conn *conn, const struct http_conn_owner *owner);
/* Detaches the owner, which is told nothing more (on_close included): for an owner that hands
 * the connection back once it answered (a held GET, a held broker request) or that is torn
 * down with its server (X_server_free). An owner that closes the connection does not detach:
 * it keeps its context until its on_close. */
void http_conn_clear_owner(struct http_conn *conn);
/* Switches to raw mode after the caller wrote the 101 response: the pending request is done,
 * HTTP parsing stops, input goes to owner->on_data (bytes already buffered included, delivered
 * from the loop, not from inside this call), and no idle timeout applies. */
void http_conn_upgrade(struct http_conn *conn, const struct http_conn_owner *owner);
/* Closes after the queued output is written (flush, within head_timeout_ms) or at once. The
 * owner's on_close ("local close") runs from the loop; see "How a connection ends". */
void http_conn_close(struct http_conn *conn, bool flush);
/* True once the connection is closing or gone (its owner's on_close may still be due): an
 * answer written now is dropped. */
bool http_conn_closing(const struct http_conn *conn);
/* Stops/resumes reading (back-pressure from the owner). */
void http_conn_pause_reading(struct http_conn *conn, bool paused);
/* "ip:port" of the peer, for logs and handshake data (asked from the socket: connections do
 * not keep it). The string is the server's and valid until the next call. */
const char *http_conn_peer(const struct http_conn *conn);
/* True when the connection speaks TLS (its handshake completed). */
bool http_conn_is_tls(const struct http_conn *conn);

#endif
