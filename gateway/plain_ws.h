/* plain_ws.h: plain WebSocket connections (the gateway's `ws-routes`, DESIGN.md §2;
 * docs/contracts.md "Plain WebSocket routes"): a ws_link (RFC 6455 framing, masking, UTF-8,
 * fragmentation, close codes 1002/1007/1009) with the server's heartbeat (a WebSocket ping every
 * ping_interval; no pong and no message within ping_timeout closes it with 1001 "ping
 * timeout"), the back-pressure hold of eio_server.h, an output limit, and the one close protocol
 * below. No Engine.IO state: what the messages mean is the owner's (sio_server.c makes each
 * connection one socket). */
#ifndef SIOC_GATEWAY_PLAIN_WS_H
#define SIOC_GATEWAY_PLAIN_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/net/http_server.h"
#include "gateway/frame.h"

struct event_base;
struct plain_ws;
struct plain_ws_conn;

struct plain_ws_config {
    unsigned ping_interval_ms;      /* 0 = 25000 */
    unsigned ping_timeout_ms;       /* 0 = 20000 */
    size_t max_payload;             /* messages above close with 1009; 0 = 1000000 */
    size_t out_hard_limit;          /* bytes queued for one client before 1008; 0 = 4 MiB */
    unsigned heartbeat_hold_max_ms; /* longest plain_ws_hold_heartbeats; 0 = 60 s */
    /* Counters (each may be NULL): messages and their bytes from and to clients. */
    uint64_t *messages_in, *messages_out, *bytes_in, *bytes_out;
    /* One whole message (text: valid UTF-8). Data is valid only during the call; the owner may
     * send or close inside. */
    void (*on_message)(void *ctx, struct plain_ws_conn *c, void *user, const uint8_t *p, size_t len,
                       bool binary);
    /* The connection is gone (see "How a connection ends" below); `reason` is static text
     * ("transport close", "ping timeout", "parse error", "message too big", "slow consumer",
     * "backpressure timeout", or the reason given to plain_ws_conn_close). The connection is freed
     * afterwards. */
    void (*on_close)(void *ctx, struct plain_ws_conn *c, void *user, const char *reason);
    void (*on_log)(void *ctx, const char *event, const char *detail);
    void *ctx;
};

/* NULL when out of memory. */
struct plain_ws *plain_ws_new(struct event_base *base, const struct plain_ws_config *cfg);
/* Closes every connection (1001; their on_close runs before this returns) and frees. NULL is
 * a no-op. */
void plain_ws_free(struct plain_ws *pw);

/* Answers 101 to `req` (the caller checked ws_link_request_valid) and makes `conn` a plain
 * connection for `user` (the owner's pointer, handed to the callbacks). NULL when out of memory
 * (the connection is closed; no callback follows). */
struct plain_ws_conn *plain_ws_accept(struct plain_ws *pw, struct http_conn *conn,
                                      const struct http_server_request *req, void *user);

/* Queues one message: `f` is a plain frame (gw_frame_new_plain_text or gw_frame_new_binary),
 * written from the same shared bytes as for every other recipient (one reference taken).
 * Ignored once closing. Above out_hard_limit queued the connection closes (1008 "slow
 * consumer"). */
void plain_ws_conn_send(struct plain_ws_conn *c, struct gw_frame *f);
/* True when a message sent now would go out without waiting (volatile broadcasts). */
bool plain_ws_conn_writable(const struct plain_ws_conn *c);
/* How a connection ends (the one close protocol of sioc, as libuv's uv_close; http_server.h,
 * ws_link.h, eio_server.h and sio_server.h say the same): plain_ws_conn_close may be called at
 * any time, more than once (later calls do nothing), inside any callback. The owner's on_close
 * then ALWAYS runs, exactly once, LATER, from the event loop: never inside the
 * plain_ws_conn_close call nor inside another callback of the connection, whether the owner
 * asked for the close or the peer, a timeout or an error caused it (the reason says which).
 * Memory is freed only right after on_close returns, never in the middle of a callback: until
 * then the pointer stays valid and every send is dropped. (The connection ends with its
 * ws_link: its on_close comes from the link's.) */

/* Server-initiated close: queued messages, then a close frame with `code` and `reason` as its
 * text; on_close follows from the loop with `reason` (static text). */
void plain_ws_conn_close(struct plain_ws_conn *c, unsigned code, const char *reason);
/* Closes every connection (drain, "node lost") with `code` and `reason`. */
void plain_ws_close_all(struct plain_ws *pw, unsigned code, const char *reason);
/* The back-pressure hold of eio_server_hold_heartbeats, for plain connections: while reading
 * is paused a missing pong is not held against the client (pings go on), up to
 * heartbeat_hold_max_ms (then 1011 "backpressure timeout"); on resume every connection
 * awaiting a pong gets a ping and a full ping_timeout. */
void plain_ws_hold_heartbeats(struct plain_ws *pw, bool hold);
/* Open connections (metrics). */
size_t plain_ws_count(const struct plain_ws *pw);

#endif
