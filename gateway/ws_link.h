/* ws_link.h: a server-side WebSocket connection on an upgraded HTTP connection: the connection
 * rules of RFC 6455 above common/ws's frame codec (as wslay's event layer sits on its frame
 * layer): the opening handshake's checks and 101 answer, whole messages reassembled, pings
 * answered with pongs (5.5.2), the close handshake echoed with the peer's code (5.5.1), a
 * protocol error closed with its status code (7.4.1), message buffers released between messages
 * (DESIGN.md §4). What the messages mean is the owner's business (Engine.IO, eio_server.c). */
#ifndef SIOC_GATEWAY_WS_LINK_H
#define SIOC_GATEWAY_WS_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/net/http_server.h"
#include "common/ws.h"

struct ws_link_handler;

/* One link. Fields are private (visible so that the per-frame write below inlines on the
 * broadcast path). */
struct ws_link {
    struct http_conn *conn; /* the link's until the connection's on_close, which ends the link */
    struct ws_parser parser;
    struct buf message; /* both empty between messages (DESIGN.md §4) */
    struct buf control;
    const struct ws_link_handler *handler; /* NULL: nobody is told anything (ws_link_disown) */
    void *ctx;
    int8_t err;  /* the SIOC_ code of a protocol error that closed the link, else SIOC_OK */
    uint8_t end; /* why it is closing (ws_link.c), 0 while open */
};

struct ws_link_handler {
    /* One whole message: text (valid UTF-8) or binary; `p` is valid only during the call. The
     * owner may send, or ws_link_close the link, inside. */
    void (*on_message)(void *ctx, struct ws_link *link, const uint8_t *p, size_t len, bool binary);
    /* The link ended (see "How a link ends" below), the first cause in `reason`: the owner's
     * ws_link_close (err SIOC_OK, "local close"), the peer's close frame (err SIOC_OK,
     * "transport close"; already answered with the same code), a protocol error (err is its
     * SIOC_ code, "parse error": the close frame with the matching status already went out), or
     * the connection went away (err SIOC_OK, the connection's reason, http_server.h). The link
     * is freed right after it returns. */
    void (*on_close)(void *ctx, struct ws_link *link, int err, const char *reason);
    /* A pong frame arrived (RFC 6455 5.5.3; an answer to our ping, or unsolicited). May be
     * NULL. The owner may close the link inside. */
    void (*on_pong)(void *ctx, struct ws_link *link);
};

/* True when the request carries a valid Sec-WebSocket-Key and a supported
 * Sec-WebSocket-Version (the owner answers other upgrade requests with its own error). */
bool ws_link_request_valid(const struct http_server_request *req);

/* Answers 101 (with `extra` header lines, e.g. CORS, written as given: "Name: value\r\n"...) and
 * takes over the connection; messages above max_message bytes close it with 1009. `handler` may
 * be NULL for a link that is closed at once. Returns the link, or NULL when out of memory (the
 * connection is closed). The request must be ws_link_request_valid. */
struct ws_link *ws_link_accept(struct http_conn *conn, const struct http_server_request *req,
                               size_t max_message, const uint8_t *extra, size_t extra_len,
                               const struct ws_link_handler *handler, void *ctx);

/* Queues the bytes of complete frames for the peer, by reference: release(p, len, arg) runs once
 * they are written or dropped (http_conn_write_ref; dropped once the link is closing). */
static inline void ws_link_write_ref(struct ws_link *link, const uint8_t *p, size_t len,
                                     void (*release)(const void *p, size_t len, void *arg),
                                     void *arg)
{
    http_conn_write_ref(link->conn, p, len, release, arg);
}

/* Bytes queued for the peer and not yet written. */
static inline size_t ws_link_output_pending(const struct ws_link *link)
{
    return http_conn_output_pending(link->conn);
}

/* How a link ends (the one close protocol of sioc, as libuv's uv_close; http_server.h,
 * eio_server.h, sio_server.h and plain_ws.h say the same): ws_link_close may be called at any
 * time, more than once (later calls do nothing), inside any callback. The owner's on_close then
 * ALWAYS runs, exactly once, LATER, from the event loop: never inside the ws_link_close call nor
 * inside another callback of the link, whether the owner asked for the close or the peer, a
 * timeout or an error caused it (the reason says which). Memory is freed only right after
 * on_close returns, never in the middle of a callback: until then the pointer stays valid, no
 * message is delivered and every write is dropped. (The link ends with its connection: its
 * on_close is the connection's, http_server.h.) */

/* Ends the link: a close frame with `code` (WS_CLOSE_NO_STATUS: an empty payload), then the
 * connection closes once flushed; on_close ("local close") follows from the loop. */
void ws_link_close(struct ws_link *link, unsigned code);
/* The same with a reason in the close frame (UTF-8, cut to WS_CLOSE_REASON_MAX bytes at a
 * character boundary; ignored with WS_CLOSE_NO_STATUS). */
void ws_link_close_reason(struct ws_link *link, unsigned code, const char *reason);
/* Teardown only (the owner's server is freed before the loop runs again): the owner is told
 * nothing more, on_close included (http_conn_clear_owner's rule); the link still ends and frees
 * itself with its connection. */
void ws_link_disown(struct ws_link *link);

#endif
