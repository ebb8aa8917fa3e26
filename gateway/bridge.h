/* bridge.h: the gateway's worker bridge (DESIGN.md §3.2-3.3): writes connect / event /
 * disconnect entries of local sockets to the upstream (Redis Streams P:up:<nsp>:<shard>, or pub/sub
 * P:up:<nsp>, or nothing), and applies the directed replies workers publish on P:node:<node>
 * (join, leave, ack, emit, disconnect; backend auth answers), which the gateway's subscriber
 * connection (subscriber.h) hands to bridge_apply_reply. Socket.IO itself is sio_server's;
 * flag parsing, JWT and the drain timer are the gateway's (main_gateway.c).
 * Threading: everything runs on the event_base's thread. */
#ifndef SIOC_GATEWAY_BRIDGE_H
#define SIOC_GATEWAY_BRIDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "gateway/sio_server.h"

struct event_base;
struct log;
struct metrics;
struct subscriber;
struct bridge;

enum bridge_upstream {
    BRIDGE_UPSTREAM_STREAM, /* XADD P:up:<nsp>:<shard> MAXLEN ~ maxlen * fields... (at-least-once)
                             */
    BRIDGE_UPSTREAM_PUBSUB, /* PUBLISH P:up:<nsp> <MessagePack map> (at-most-once) */
    BRIDGE_UPSTREAM_OFF,    /* nothing is written; replies are still applied */
};

/* The Socket.IO calls the bridge makes, one pointer per sio_server.h function of the same name
 * and signature. bridge_sio_ops_default() returns the real ones; a test may pass its own table
 * to observe the calls without a Socket.IO server (the bridge itself is what is under test). */
struct bridge_sio_ops {
    struct sio_socket *(*server_find)(struct sio_server *srv, const char *nsp, size_t nsp_len,
                                      const char *sid, size_t sid_len);
    void (*socket_accept)(struct sio_socket *sock, const char *uid, const char *user_room);
    void (*socket_reject)(struct sio_socket *sock, const char *message, const uint8_t *data,
                          size_t data_len);
    bool (*socket_accepted)(const struct sio_socket *sock);
    int (*socket_join)(struct sio_socket *sock, const void *room, size_t len);
    bool (*socket_leave)(struct sio_socket *sock, const void *room, size_t len);
    int (*socket_emit)(struct sio_socket *sock, struct slice data);
    int64_t (*socket_emit_with_ack)(struct sio_socket *sock, struct slice data);
    int (*socket_ack)(struct sio_socket *sock, uint64_t ack_id, struct slice args);
    void (*socket_disconnect)(struct sio_socket *sock, bool close_transport);
    const char *(*socket_id)(const struct sio_socket *sock);
    const char *(*socket_nsp)(const struct sio_socket *sock);
    const char *(*socket_uid)(const struct sio_socket *sock);
    const struct sio_handshake *(*socket_handshake)(const struct sio_socket *sock);
    void *(*socket_get_data)(const struct sio_socket *sock);
    void (*socket_set_data)(struct sio_socket *sock, void *data);
};

/* The table of the real sio_server.h functions (static storage, never NULL). */
const struct bridge_sio_ops *bridge_sio_ops_default(void);

#define BRIDGE_DEFAULT_AUTH_TIMEOUT_MS 5000u
#define BRIDGE_DEFAULT_OVERFLOW_LIMIT ((size_t)1 << 20)
#define BRIDGE_DEFAULT_REJECT_MESSAGE "Not authorized" /* ok:false without error.message */
#define BRIDGE_AUTH_TIMEOUT_MESSAGE "auth timeout"     /* DESIGN.md §3.3 */
/* Errors a worker's call is answered with (docs/contracts.md "Calls"). */
#define BRIDGE_CALL_DISCONNECTED "disconnected"       /* the socket left before acknowledging */
#define BRIDGE_CALL_TOO_MANY "too many pending calls" /* CALLS_MAX_PER_SOCKET reached */
#define BRIDGE_CALL_UNAVAILABLE "call failed"         /* could not emit (logged) */
#define BRIDGE_AUTH_UNAVAILABLE_MESSAGE                                                            \
    "auth unavailable"    /* the connect entry could not be queued */
#define BRIDGE_RID_LEN 20 /* rid: 8 hex boot nonce + 12 hex counter */

/* Strings are copied by bridge_new; the struct may be discarded afterwards. Zero numbers take
 * the defaults named. */
struct bridge_config {
    const char *redis_url;       /* required */
    struct redis_tls *redis_tls; /* rediss:// URLs: borrowed, outlives the bridge (redis_tls.h) */
    const char *key_prefix;      /* NULL = "sioc" */
    const char *node_id;         /* required, non-empty */
    enum bridge_upstream upstream;
    uint32_t shards;          /* upstream-shards; 0 = 1 */
    uint64_t maxlen;          /* upstream-maxlen; 0 = no MAXLEN (stream grows unbounded) */
    bool auth_backend;        /* auth backend: connect entries carry rid (needs upstream != off) */
    unsigned auth_timeout_ms; /* 0 = BRIDGE_DEFAULT_AUTH_TIMEOUT_MS */
    const char *user_room;    /* pattern with one "%s" for the uid (e.g. "user:%s"); NULL = none */
    /* Upstream bound, in two stages: the Redis link queues up to queue_limit_bytes (RESP bytes;
     * 0 = REDIS_LINK_DEFAULT_QUEUE_LIMIT) while Redis is down; what it refuses waits, in order,
     * in the bridge's overflow list of up to overflow_limit_bytes (0 =
     * BRIDGE_DEFAULT_OVERFLOW_LIMIT) while on_pause(true) stops client reads. An entry beyond both
     * is dropped, counted in sioc_upstream_dropped_total and logged at warn ("upstream.drop");
     * never silently. */
    size_t queue_limit_bytes;
    size_t overflow_limit_bytes;
    /* The gateway's subscriber connection (required; borrowed, must outlive the bridge): the
     * bridge lends it its command link for the liveness probe (subscriber_attach), holds
     * upstream until its subscriptions are confirmed, and counts it in bridge_ready. Whoever
     * subscribes P:node:<node> there passes its messages to bridge_apply_reply. */
    struct subscriber *subscriber;
    uint64_t seed; /* hashes of pending rids; 0 = random */
    /* Called when reading from clients must stop (true: an entry overflowed into the bridge's
     * list) or may resume (false: the list was written out). Only on a change; may be called
     * from inside bridge_on_* calls and from the loop. NULL = not called. */
    void (*on_pause)(void *ctx, bool paused);
    void *ctx;
    const struct bridge_sio_ops *ops; /* NULL = bridge_sio_ops_default(); borrowed, must outlive */
};

/* Creates the bridge: a COMMAND link for the upstream and the subscriber's probes, and its metrics
 * in `metrics` (sioc_upstream_*, sioc_replies_total{result}, sioc_bridge_redis_connected{link};
 * `metrics` may be NULL). Nothing connects before the loop runs. `srv` is what ops->server_find
 * gets; `log` (may be NULL), `metrics`, `base` and `srv` are borrowed and must outlive the bridge.
 * Returns NULL on a bad config (no URL or node, an invalid URL, no subscriber, auth_backend with
 * upstream off, a user_room without exactly one "%s"), on a metric registration failure, or out of
 * memory. */
struct bridge *bridge_new(struct event_base *base, const struct bridge_config *cfg,
                          struct sio_server *srv, struct log *log, struct metrics *metrics);
/* Frees everything; queued entries not yet written are lost (call after draining). No callback
 * runs from here. Free the sio_server first (its on_disconnect calls into the bridge), and do not
 * render `metrics` afterwards (its computed gauges read the bridge). Must not be called from
 * inside a redis_link callback; bridge_drain's callback is a safe place. Free it before the
 * subscriber (it takes its command link back from it). NULL is a no-op. */
void bridge_free(struct bridge *b);

/* The sio_server on_connect hook. needs_answer false (auth none, jwt): the gateway accepts the
 * socket first (so the entry carries the uid sio_socket_uid then returns), then calls this to
 * write the connect entry. needs_answer true (auth backend): the connect
 * entry carries a fresh rid, the socket stays pending until the worker's {"t":"connect"} reply
 * (sio_socket_accept with uid and user room, then joins `rooms`; or sio_socket_reject with
 * error.message/data, BRIDGE_DEFAULT_REJECT_MESSAGE when absent) or auth_timeout_ms passes
 * (reject BRIDGE_AUTH_TIMEOUT_MESSAGE, and a disconnect entry with reason "auth timeout" so a
 * worker that accepted late forgets the socket). If the entry cannot be queued the socket is
 * rejected with BRIDGE_AUTH_UNAVAILABLE_MESSAGE at once. `auth` is the CONNECT payload, one
 * MessagePack value (borrowed). Uses the socket's data slot (sio_socket_set_data). */
void bridge_on_connect(struct bridge *b, struct sio_socket *sock, const uint8_t *auth,
                       size_t auth_len, bool needs_answer);
/* Connection state recovery (gateway/recovery.h): the accepted socket continues a session
 * parked elsewhere: writes a connect entry with `recovered` and auth {} (workers run no
 * handler), and follows the socket as bridge_on_connect does. */
void bridge_on_recovered(struct bridge *b, struct sio_socket *sock);
/* The socket goes away parked for recovery: like bridge_on_disconnect (pending calls are
 * answered "disconnected") but writes no disconnect entry; bridge_write_disconnect writes it
 * later if nobody recovers the session. */
void bridge_on_park(struct bridge *b, struct sio_socket *sock);
/* Writes a disconnect entry for a socket that is no longer here (a parked session expired). */
void bridge_write_disconnect(struct bridge *b, const char *nsp, const char *sid, const char *uid,
                             const char *reason);
/* The on_event hook: writes an event entry (`ack` = ack_id when has_ack). Borrowed arguments. */
void bridge_on_event(struct bridge *b, struct sio_socket *sock, struct slice event,
                     struct slice args, bool has_ack, uint64_t ack_id);
/* The on_disconnect hook: cancels a pending backend auth, writes the disconnect entry if this
 * socket's connect entry was written (and it was not refused by the worker), and clears the
 * data slot. */
void bridge_on_disconnect(struct bridge *b, struct sio_socket *sock, const char *reason);

/* The sio_server on_ack hook: the client acknowledged `ack_id`; when that id belongs to a
 * worker's call, publishes {"t":"ack", "id", "nsp", "sid", "args"} on the call's channel.
 * A socket that disconnects first has each of its pending calls answered with
 * "error": BRIDGE_CALL_DISCONNECTED (bridge_on_disconnect). */
void bridge_on_ack(struct bridge *b, struct sio_socket *sock, uint64_t ack_id, struct slice args);

/* True while both Redis connections (the bridge's commands and the shared subscriber) are up,
 * the subscriptions confirmed, and Redis answers (subscriber_ready: a probe unanswered for 3
 * probe intervals is a stall, not ready) (/readyz). */
bool bridge_ready(const struct bridge *b);
/* Upstream entries not yet confirmed by Redis: in the bridge's overflow list, queued in the
 * link, or sent and awaiting the reply. */
size_t bridge_pending(const struct bridge *b);
/* Drain support (SIGTERM): calls cb(ctx) once, from the event loop (never from inside this
 * function), as soon as bridge_pending() is 0. A later call replaces an earlier one; cb NULL
 * cancels. The drain timeout is the caller's. */
void bridge_drain(struct bridge *b, void (*cb)(void *ctx), void *ctx);

/* Applies one P:node:<node> message (a reply or a backend auth answer). Malformed messages are
 * counted and logged, never fatal. Returns false, applying nothing, for the broker's registry
 * snapshot request ({"t":"snapshot"}, its anti-entropy) that comes on the same channel: the
 * caller hands it to the registry (registry_snapshot); true otherwise. */
bool bridge_apply_reply(struct bridge *b, const uint8_t *p, size_t len);

#endif
