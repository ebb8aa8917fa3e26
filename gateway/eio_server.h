/* eio_server.h: Engine.IO v4 server sessions over HTTP long-polling and WebSocket, with the
 * upgrade from polling (PROTOCOL.md §1): handshake, the §1.2 request checks and error answers,
 * held GETs and POSTed payloads, the probe/upgrade/noop dance, the server heartbeat, CORS, and
 * the closing rules of §1.9. The layer above (Socket.IO) sees sessions that open, carry whole
 * messages (text or binary) and close once. Engine.IO v3 (PROTOCOL.md 1.12: client pings,
 * `<len>:` and XHR2 payloads, type byte on binary frames) when allow_eio3 is set, else EIO=3 gets
 * code 5; JSONP polling (`j`, 1.5.7) for both revisions. */
#ifndef SIOC_GATEWAY_EIO_SERVER_H
#define SIOC_GATEWAY_EIO_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/eio.h"
#include "common/net/http_server.h"
#include "gateway/frame.h"

struct event_base;
struct eio_server;
struct eio_session;

struct eio_server_config {
    const char *path;            /* prefix matched on the raw target, e.g. "/socket.io/" */
    unsigned ping_interval_ms;   /* default 25000 */
    unsigned ping_timeout_ms;    /* default 20000 */
    unsigned upgrade_timeout_ms; /* default 10000 */
    unsigned poll_linger_ms;     /* sid kept for a closed session's GET; default 30000 */
    size_t max_payload;          /* maxHttpBufferSize: POST bodies and WebSocket messages */
    bool polling;                /* enabled transports */
    bool websocket;
    const char *cors_origin;        /* NULL/"": no CORS headers; "*"; or "a,b" (reflected) */
    bool allow_eio3;                /* accept Engine.IO v3 clients (allowEIO3) */
    size_t out_hard_limit;          /* bytes queued for one client before it is closed; 0 = 4 MiB */
    unsigned heartbeat_hold_max_ms; /* longest hold of eio_server_hold_heartbeats; 0 = 60 s */
    /* Counters for /metrics (each may be NULL): Engine.IO packets and their payload bytes from
     * and to clients (a broadcast counts once per recipient). */
    uint64_t *packets_in, *packets_out, *bytes_in, *bytes_out;
    /* A session opened (before its open packet is sent). Returns the owner's pointer for it, or
     * NULL to refuse (the request gets 403 {"code":4,"message":"Forbidden"}). `req` is valid
     * only during the call. */
    void *(*on_open)(void *ctx, struct eio_session *s, const struct http_server_request *req,
                     const char *peer);
    /* One whole message from the client: text (UTF-8 for WebSocket, as sent for polling) or
     * binary. Data is valid only during the call. The owner may send or close inside. */
    void (*on_message)(void *ctx, struct eio_session *s, void *user, const uint8_t *p, size_t len,
                       bool binary);
    /* The session is gone (see "How a session ends" below), `reason` the first cause: the one
     * given to eio_session_close, or "transport close", "ping timeout", "parse error",
     * "message too big", "slow consumer", "backpressure timeout", "transport error", "invalid
     * heartbeat direction", "out of memory", "server shutdown". The owner drops every pointer
     * to it; the session is freed afterwards. */
    void (*on_close)(void *ctx, struct eio_session *s, void *user, const char *reason);
    /* Something a peer did wrong, for a log line: event name and detail. */
    void (*on_log)(void *ctx, const char *event, const char *detail);
    /* Sessions without sticky load balancing (docs/contracts.md "Polling without sticky
     * sessions"): with `sid_tag` (EIO_SID_TAG_LEN base64url characters, copied) every session
     * id starts with it, followed by 16 characters of 12 random bytes; NULL keeps Node's form
     * (12 random bytes and a counter). A request whose `sid` has EIO_SID_LEN characters, is not
     * a session here and starts with another tag is offered to on_foreign_sid (when set, with
     * foreign_ctx), before
     * any other check: true means it took the request (answered now or later, e.g. with
     * eio_server_refuse); false lets this server answer it (Session ID unknown). `req` and
     * `sid` are valid as on_request's. */
    const char *sid_tag;
    bool (*on_foreign_sid)(void *ctx, struct http_conn *conn, struct http_server_request *req,
                           const char *sid);
    void *foreign_ctx; /* on_foreign_sid's ctx (the others get `ctx`) */
    void *ctx;
};

#define EIO_SID_TAG_LEN 4 /* base64url characters: 3 bytes, 24 bits */

/* Creates the server. Returns NULL when out of memory. The config's strings must outlive it. */
struct eio_server *eio_server_new(struct event_base *base, const struct eio_server_config *cfg);
/* Closes every session and frees: the on_close callbacks still due run inside this call (the
 * loop will not run them). NULL is a no-op. */
void eio_server_free(struct eio_server *srv);

/* Handles a request if its target starts with the configured path: returns true when it did
 * (it answers, holds or upgrades the connection), false otherwise (route it elsewhere). */
bool eio_server_handle(struct eio_server *srv, struct http_conn *conn,
                       struct http_server_request *req);

/* Closes every session with `reason` (drain): WebSocket clients get a close frame, polling
 * clients their close packet. */
void eio_server_close_all(struct eio_server *srv, const char *reason);
/* Stops (true) or resumes (false) enforcing the heartbeat, for the owner's back-pressure: while
 * it has paused reading from clients (upstream overflow), their pongs cannot be read, and a
 * client must not be closed by the server's own pause. Pings still go out every ping_interval
 * (a ping overdue when the hold starts goes out when its pong would be due), so that the
 * client's own ping timeout never fires. A pong overdue during the hold waits, up to
 * heartbeat_hold_max_ms from the start of the hold; after that the session closes with reason
 * "backpressure timeout". On resume every session awaiting a pong gets a ping and a full
 * ping_timeout from then (its pong is likely read at once). */
void eio_server_hold_heartbeats(struct eio_server *srv, bool hold);
size_t eio_server_session_count(const struct eio_server *srv);
/* Sessions by current transport, for metrics. */
size_t eio_server_count_transport(const struct eio_server *srv, bool websocket);

/* Queues a message for the client (takes its own reference to `f`). Polling: waits for the
 * next GET; WebSocket: written at once (batched by the loop). Ignored once the session is
 * closing. A client whose queued bytes pass out_hard_limit is closed ("slow consumer"). */
void eio_session_send(struct eio_session *s, struct gw_frame *f);
/* True when a message sent now would go out without waiting (an open WebSocket with little
 * queued, or a held GET): volatile packets are dropped otherwise (PROTOCOL.md 3.3). */
bool eio_session_writable(const struct eio_session *s);
/* How a session ends (the one close protocol of sioc, as libuv's uv_close; http_server.h,
 * ws_link.h, sio_server.h and plain_ws.h say the same): eio_session_close may be called at any
 * time, more than once (later calls do nothing), inside any callback. The owner's on_close then
 * ALWAYS runs, exactly once, LATER, from the event loop: never inside the eio_session_close call
 * nor inside another callback of the session, whether the owner asked for the close or the
 * peer, a timeout or an error caused it (the reason says which). Memory is freed only right
 * after on_close returns, never in the middle of a callback: until then the pointer stays valid
 * and every send on a closed session is dropped. (A polling session closed by the server keeps
 * its sid a while for the last GET, PROTOCOL.md 1.5.5; its owner is told at once all the same.) */

/* Server-initiated close (PROTOCOL.md 1.9): queued packets are flushed first, then the close
 * packet (polling; "6\x1e1" for the next GET when none is held) or a close frame with no status
 * code (WebSocket). on_close (with `reason`) follows from the loop. */
void eio_session_close(struct eio_session *s, const char *reason);
/* The 20-character session id (NUL-terminated). */
const char *eio_session_id(const struct eio_session *s);
bool eio_session_is_websocket(const struct eio_session *s);
/* EIO_V3 or EIO_V4, fixed at the handshake (already set when on_open runs). */
enum eio_version eio_session_version(const struct eio_session *s);
/* True while a session with this id is in the table (open, or lingering for its last GET). */
bool eio_server_has_session(const struct eio_server *srv, const char *sid, size_t len);
/* Answers `req` with the PROTOCOL.md 1.2 error `code` as a local request would get it (JSON
 * with CORS fields, or the raw upgrade answer), and logs it: for a request taken by
 * on_foreign_sid that cannot be forwarded. */
void eio_server_refuse(struct eio_server *srv, struct http_conn *conn,
                       const struct http_server_request *req, enum eio_error_code code);
/* The owner's pointer (on_open's result) of the open session with this id, or NULL. */
void *eio_server_find_user(struct eio_server *srv, const char *sid, size_t len);

#endif
