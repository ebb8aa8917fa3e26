/* calls.h: acks from any backend (issue 18; docs/api.md, POST /v1/emit with "ack"). The broker
 * resolves the selected sockets from its registry mirror (one read-only script, bounded), asks
 * each one for an ack with the gateways' "call" reply on P:node:<node> (docs/contracts.md
 * "Calls"), collects the answers on this broker instance's channel P:calls:broker:<instance>
 * (a SUBSCRIBER link main_broker.c creates and routes here) until all arrived or the timeout,
 * and answers the held HTTP request. api.c validates the body; this module holds the request.
 * Sockets of Node socket.io servers are not in the mirror: only sioc gateways' sockets answer. */
#ifndef SIOC_BROKER_CALLS_H
#define SIOC_BROKER_CALLS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"

struct broker;
struct bk_calls;
struct http_conn;

#define BK_CALLS_MAX_SOCKETS 10000            /* sockets one request may select (else 413) */
#define BK_CALLS_MAX_PENDING 1000             /* ack requests held at once (else 429) */
#define BK_CALLS_MAX_PENDING_SOCKETS 100000   /* sockets awaited by all of them (else 429) */
#define BK_CALLS_MAX_ANSWER_BYTES (16u << 20) /* JSON of one answer's acks (later: errors) */
#define BK_CALLS_LIVENESS_MS                                                                       \
    15000 /* the subscriber link's liveness_timeout_ms (probed every 5 s) */

/* One ack emit, as api.c validated it. Everything is borrowed for the call only. */
struct bk_calls_request {
    struct slice nsp;     /* starts with '/' */
    struct slice emit;    /* MessagePack array [event, arg...] */
    struct slice targets; /* MessagePack array of room names (rooms, user rooms, socket ids);
                           * an empty array selects every socket of the namespace */
    struct slice except;  /* MessagePack array of room names (may be empty) */
    uint32_t timeout_ms;  /* counted from when the calls are published */
};

/* How a request ends: `error` (a one-line message for {"error":...}, with a 4xx/5xx `status`)
 * or, with status 200, `json` ({"acks":[{"sid","args"}],"timeouts":[sid],"errors":[{"sid",
 * "error"}]}, each list sorted by sid). Both are valid during the call only. The connection's
 * owner has been cleared before: the callback answers on it. */
typedef void bk_calls_done_cb(void *ctx, struct http_conn *conn, int status, const char *error,
                              const struct buf *json);

/* `instance_bits` (random) names this broker's answer channel. Starts the probe timer (a PUBLISH
 * to bk_calls_probe_channel every BK_CALLS_LIVENESS_MS / 3 on b->cmd). Returns NULL when out of
 * memory. `b` (its base, cmd link, log, metrics, prefix) must outlive it. */
struct bk_calls *bk_calls_new(struct broker *b, uint64_t instance_bits);
/* Drops every held request without answering (their connections' owners are cleared: the
 * caller's http_server_free closes them). NULL is a no-op. */
void bk_calls_free(struct bk_calls *calls);

/* P:calls:broker:<instance>, and P:calls:broker:<instance>:probe; valid until bk_calls_free.
 * main_broker.c subscribes the SUBSCRIBER link to the first and gives it the second as its
 * probe_channel (with liveness_timeout_ms = BK_CALLS_LIVENESS_MS). */
const char *bk_calls_channel(const struct bk_calls *calls);
const char *bk_calls_probe_channel(const struct bk_calls *calls);

/* The SUBSCRIBER link's callbacks, routed by main_broker.c. A message is one call result
 * (envelope_call_result_decode); anything else is logged and skipped. Losing the link fails
 * every socket still awaited ("redis connection lost") and answers those requests. */
void bk_calls_on_message(struct bk_calls *calls, struct slice payload);
void bk_calls_on_state(struct bk_calls *calls, bool connected);

/* Takes the request over: answers now (a refusal: 503 while Redis is unreachable, 429 above
 * BK_CALLS_MAX_PENDING) or holds the connection (its owner) until the answer. `done` runs
 * exactly once, possibly before this returns, unless the connection closes first: then the
 * request is cancelled (calls already published are answered to nobody) and `done` never runs. */
void bk_calls_start(struct bk_calls *calls, struct http_conn *conn,
                    const struct bk_calls_request *rq, bk_calls_done_cb *done, void *ctx);

#endif
