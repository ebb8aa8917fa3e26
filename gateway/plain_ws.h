/* plain_ws.h: plain WebSocket connections (the gateway's `ws-routes`, DESIGN.md §2;
 * docs/contracts.md "Plain WebSocket routes"): a ws_link (RFC 6455 framing, masking, UTF-8,
 * fragmentation, close codes 1002/1007/1009) with the server's heartbeat (a WebSocket ping every
 * ping_interval; no pong and no message within ping_timeout closes it with 1001 "ping
 * timeout"), the back-pressure hold of eio_server.h, an output limit, and one close protocol:
 * whoever closes, the owner hears of it once, from the loop. No Engine.IO state: what the
 * messages mean is the owner's (sio_server.c makes each connection one socket). */
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
    /* The connection is gone (called once, from the loop, never inside another callback of
     * this connection); `reason` is static text ("transport close", "ping timeout", "parse
     * error", "message too big", "slow consumer", "backpressure timeout", or the reason given
     * to plain_ws_conn_close). The connection is freed afterwards. */
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
/* Server-initiated close: queued messages, then a close frame with `code` and `reason` as its
 * text; on_close follows from the loop with `reason` (static text). Safe inside callbacks;
 * nothing once closing. */
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
