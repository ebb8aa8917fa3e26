/* redis_link.h: one self-healing Redis connection on libevent (DESIGN.md §3), plain TCP or TLS
 * (rediss://, redis_tls.h) through common/net/redis_conn: reconnect with jittered backoff,
 * AUTH/SELECT from the URL, a bounded in-order queue for commands issued
 * while Redis is unreachable, and for subscriber links resubscription and a liveness timeout.
 * What to send, and what a lost reply means, stays with the owner (gateway, broker).
 * Redis Cluster: a redis-cluster:// or rediss-cluster:// URL makes the same API run on a
 * cluster (common/net/redis_cluster.h: slot map, one connection per master, MOVED/ASK, map
 * refresh after a failover); everything below holds per link, with the differences noted.
 * Layers (as hiredis splits its own): this header is the public facade (redis_link.c picks the
 * implementation at redis_link_new and forwards each call: one branch); a single Redis is a
 * redis_node (common/net/redis_node.h, redis_node.c), a cluster a redis_cluster
 * (redis_cluster.h) built on one redis_node per master. Calls go down only: redis_link ->
 * redis_cluster -> redis_node. The types below are shared by all three.
 * Threading: everything runs on the event_base's thread; no function here is thread-safe. */
#ifndef SIOC_REDIS_LINK_H
#define SIOC_REDIS_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/redis_proto.h"

struct event_base;
struct redisReply;
struct redis_link;
struct redis_tls;

enum redis_link_mode {
    REDIS_LINK_COMMAND,    /* request/reply: redis_link_command_argv */
    REDIS_LINK_SUBSCRIBER, /* pub/sub only: redis_link_(p|s)subscribe */
};

/* Why a reply callback got no reply. */
enum redis_link_result {
    REDIS_LINK_REPLY = 0, /* `reply` is set (it may be an error reply: check reply->type) */
    REDIS_LINK_LOST = 1,  /* sent, but the connection dropped first: it may or may not have run */
};

/* What on_event_cb reports; the owner decides what to log. */
enum redis_link_event {
    REDIS_LINK_EV_CONNECTED,        /* handshake done; detail "host:port" */
    REDIS_LINK_EV_DISCONNECTED,     /* a ready connection was lost; detail: the reason */
    REDIS_LINK_EV_CONNECT_FAILED,   /* connect(2), TLS or the handshake failed; detail: reason
                                     * ("TLS handshake failed: certificate verify failed: ...") */
    REDIS_LINK_EV_CONNECT_TIMEOUT,  /* not ready within connect_timeout_ms */
    REDIS_LINK_EV_HANDSHAKE_ERROR,  /* AUTH or SELECT answered an error; detail: the error */
    REDIS_LINK_EV_LIVENESS_TIMEOUT, /* subscriber: nothing received for liveness_timeout_ms */
    REDIS_LINK_EV_QUEUE_FULL,       /* a command was refused (SIOC_ETOOBIG); once per outage */
    /* cluster links only (detail says what happened, e.g. "3 masters, 16384 slots" or
     * "MOVED 3999 127.0.0.1:7002"): */
    REDIS_LINK_EV_SLOT_MAP,   /* a new slot map was loaded (CLUSTER SLOTS) */
    REDIS_LINK_EV_REDIRECT,   /* a MOVED redirection (slot moved / failover) was followed */
    REDIS_LINK_EV_SHARD_LOST, /* subscriber: Redis dropped or refused a shard channel (its
                               * slot moved, "MOVED ..."): it is being re-subscribed at the
                               * slot's owner; detail: the channel or the error */
};

/* Reply callback. `reply` (NULL unless result == REDIS_LINK_REPLY) is valid only during the call.
 */
typedef void redis_link_reply_cb(void *ctx, const struct redisReply *reply,
                                 enum redis_link_result result);

#define REDIS_LINK_DEFAULT_CONNECT_TIMEOUT_MS 2000u
#define REDIS_LINK_DEFAULT_BACKOFF_MIN_MS 100u
#define REDIS_LINK_DEFAULT_BACKOFF_MAX_MS 5000u
#define REDIS_LINK_DEFAULT_QUEUE_LIMIT ((size_t)8 << 20)

/* Every field may be zero: zero timeouts and limits take the defaults above; NULL callbacks are
 * not called. Strings are copied by redis_link_new; the struct itself may then be discarded. */
struct redis_link_config {
    /* redis[s]://[[user]:password@]host[:port][/db], or redis[s]-cluster://[[user]:password@]
     * host:port[,host:port...] (seed nodes of a Redis Cluster); required */
    const char *url;
    /* Required for a rediss:// URL (redis_link_new fails without it), ignored for redis://.
     * Borrowed: it must outlive the link. One context serves every link of a process. */
    struct redis_tls *tls;
    enum redis_link_mode mode;
    unsigned connect_timeout_ms; /* TCP connect + TLS + AUTH/SELECT/PING must finish within it */
    unsigned backoff_min_ms;     /* first retry delay; doubles per failure up to backoff_max_ms */
    unsigned backoff_max_ms;
    uint64_t jitter_seed;     /* seeds the link's PRNG; each delay is drawn from [d/2, d] */
    size_t queue_limit_bytes; /* bytes (RESP-encoded) queued while not connected */
    /* Subscriber only: 0 = off. When nothing at all (message or subscribe confirmation) has
     * arrived for this long, the connection is presumed silently dead and is replaced. The owner
     * must make traffic flow: PUBLISH to probe_channel through a COMMAND link every
     * liveness_timeout_ms / 3 or so (issue 4: "a message the node publishes to itself"). */
    unsigned liveness_timeout_ms;
    const char *probe_channel; /* subscriber: subscribed automatically, never delivered; or NULL */

    void *ctx; /* passed to every callback below */
    /* The link became usable (true: handshake done, queue flushed unless held; subscriber:
     * Redis has confirmed every subscription of the desired set) or stopped being usable
     * (false). Called only on a change. */
    void (*on_state_cb)(void *ctx, bool connected);
    /* Subscriber: a `message` (pattern.len == 0) or `pmessage` push. The slices are valid only
     * during the call; they are binary-safe and not NUL-terminated. */
    void (*on_message_cb)(void *ctx, struct slice pattern, struct slice channel,
                          struct slice payload);
    /* detail is valid only during the call. */
    void (*on_event_cb)(void *ctx, enum redis_link_event ev, const char *detail);
    /* Command: after a refusal (SIOC_ETOOBIG), called once when the queue has been flushed, so a
     * paused producer can resume. */
    void (*on_room_cb)(void *ctx);
    /* Subscriber, optional: a shard channel of the desired set was dropped by Redis (an
     * unsolicited `sunsubscribe` push: its slot left this node) or an SSUBSCRIBE was refused
     * (channel.len == 0 and `error` is the error text, e.g. "MOVED 12 10.0.0.2:6379"). The link
     * has removed a dropped channel from its set. A cluster link uses this to subscribe it again
     * on the owner (its owners never see it: they get REDIS_LINK_EV_SHARD_LOST); on a single
     * Redis it only happens if the server's role changes. */
    void (*on_shard_lost_cb)(void *ctx, struct slice channel, const char *error);
};

/* Counters for /metrics; monotonically increasing except queue_bytes/queue_commands. */
struct redis_link_stats {
    uint64_t connects;          /* handshakes completed */
    uint64_t disconnects;       /* ready connections lost (any cause) */
    uint64_t connect_failures;  /* attempts that never became ready (incl. timeouts) */
    uint64_t commands_sent;     /* handed to the socket (a retried command counts again) */
    uint64_t commands_queued;   /* accepted while not connected */
    uint64_t commands_refused;  /* refused with SIOC_ETOOBIG (queue over its limit) */
    uint64_t commands_lost;     /* reply_cb got REDIS_LINK_LOST */
    uint64_t commands_retried;  /* REDIS_LINK_RETRY commands re-queued after a drop */
    uint64_t messages_received; /* message/pmessage pushes, the probe included */
    uint64_t liveness_timeouts;
    uint64_t redirects;      /* cluster: MOVED and ASK followed */
    uint64_t slot_map_loads; /* cluster: slot maps loaded */
    size_t queue_bytes;      /* currently queued */
    size_t queue_commands;
};

/* Creates a link and schedules its first connection attempt on `base` (nothing happens before
 * the loop runs; no callback is called from here). Returns NULL for an invalid URL, a rediss://
 * URL without cfg->tls, or out of memory. `base` must outlive the link. */
struct redis_link *redis_link_new(struct event_base *base, const struct redis_link_config *cfg);

/* True for a redis[s]-cluster:// link. */
bool redis_link_is_cluster(const struct redis_link *link);

/* Closes the connection, cancels the timers, and frees every queued or in-flight command WITHOUT
 * calling its reply_cb (the owner is shutting down: it must not rely on them). No callback of any
 * kind is called from here. Must not be called from inside one of this link's callbacks (asserted);
 * defer it to a later loop iteration. NULL is a no-op. */
void redis_link_free(struct redis_link *link);

/* True while a connection is ready (handshake done). */
bool redis_link_connected(const struct redis_link *link);

/* Drops the current connection (or attempt) now; reconnection then follows the backoff as after
 * any failure. In-flight commands are treated as lost (see REDIS_LINK_RETRY): their reply_cb,
 * on_event_cb and on_state_cb(false) may run before this returns. No-op between attempts. */
void redis_link_disconnect_now(struct redis_link *link);

/* Copies the counters into *out. */
void redis_link_get_stats(const struct redis_link *link, struct redis_link_stats *out);

/* --- COMMAND mode --- */

/* Flag for redis_link_command_argv: if the connection drops after the command was sent but
 * before its reply arrived, do not report REDIS_LINK_LOST; re-queue it in front of everything
 * not yet sent, in the original order, and send it again on reconnect. At-least-once: Redis may
 * have executed it before the drop, so it can run twice (XADD with `*` then appends twice;
 * stream consumers dedupe on content, or use idempotent commands). On a cluster the command is
 * sent again to the slot's owner after the slot map has been refreshed (a failover: the
 * promoted replica), docs/contracts.md "Redis Cluster" lists what may then run twice. */
#define REDIS_LINK_RETRY 0x1u

#define REDIS_LINK_MAX_ARGS 64 /* arguments of a command given as NUL-terminated strings */

/* Sends argv[0..argc) (argvlen[i] bytes each; argvlen NULL means NUL-terminated strings, at most
 * REDIS_LINK_MAX_ARGS of them). All
 * bytes are copied before returning. While connected it is written at once; otherwise it is
 * queued behind earlier commands and written, in order, before any later one on reconnect.
 * reply_cb (may be NULL) is then called exactly once with the reply or REDIS_LINK_LOST, never
 * from inside this function, unless cancelled or the link is freed first.
 * Cluster: routed by the slot of its first key (redis_command_route in common/redis_slots.h:
 * XADD, XREADGROUP, EVAL/EVALSHA with numkeys > 0, SET, HSET, SADD, SPUBLISH, PUBSUB
 * SHARDNUMSUB ... by their key or shard channel; PUBLISH and the other PUBSUB subcommands to the
 * "pub/sub home", the master of slot 0, where the classic subscriptions are; other keyless
 * commands to any master). MOVED and ASK are followed (at most 5 times) and never reach
 * reply_cb (TRYAGAIN, CLUSTERDOWN and LOADING are retried after a map refresh, a few times).
 * A multi-key command or script must keep its keys in one slot ({hash tags}); EVAL with
 * numkeys 0 goes to any master, so a script must name a key of the slot it works on.
 * Returns SIOC_OK; SIOC_ETOOBIG when not connected and queueing would pass queue_limit_bytes
 * (nothing is queued: pause the producer and retry after on_room_cb or when
 * redis_link_queue_room has room); SIOC_EINVAL for a SUBSCRIBER link, argc < 1, or a command that
 * would switch the connection's protocol ((P|S)SUBSCRIBE, MONITOR, RESET); SIOC_ENOMEM. */
int redis_link_command_argv(struct redis_link *link, int argc, const char *const *argv,
                            const size_t *argvlen, unsigned flags, redis_link_reply_cb *reply_cb,
                            void *ctx);

/* Makes sure no reply_cb is ever called again with `ctx` (e.g. the client that owned it is being
 * destroyed). The commands themselves still go out. Cost: O(commands pending). Returns how many
 * callbacks were cancelled. Safe inside callbacks. */
size_t redis_link_cancel(struct redis_link *link, const void *ctx);

/* Holds (true) or releases (false) a COMMAND link's writes: while held, commands are queued
 * exactly as while disconnected (same limit, SIOC_ETOOBIG, on_room_cb) and a reconnection
 * does not write the queue; on release the queue is written in order, if connected, and
 * on_room_cb follows as after a flush. For an owner whose commands must wait for something
 * else, e.g. until its subscriber link has subscribed to the channel their answers come on.
 * A no-op for a SUBSCRIBER link. on_room_cb may run before this returns. */
void redis_link_hold(struct redis_link *link, bool hold);

/* Bytes that can still be queued right now (SIZE_MAX while connected and not held: nothing is
 * queued then). */
size_t redis_link_queue_room(const struct redis_link *link);

/* --- SUBSCRIBER mode --- */

/* Cluster: classic channels and patterns (SUBSCRIBE/PSUBSCRIBE) and the probe channel are
 * subscribed on ONE connection to the pub/sub home (the master of slot 0; Redis Cluster
 * forwards every classic PUBLISH to all nodes), moved to the new home after a failover. Shard
 * channels (redis_link_ssubscribe) are subscribed on the master of each channel's slot, one
 * connection per such master. on_state_cb(true) means: every connection needed is up and has
 * confirmed its part of the set. The liveness timeout watches the home connection (the probe
 * comes there); a shard connection is watched by TCP keepalive and by the slot map, which is
 * refreshed whenever any of them drops. */

/* Add/remove a channel (exact name) or a glob pattern to the desired set. The set survives
 * reconnects: after each one, everything in it is subscribed again before on_state_cb(true).
 * Adding what is already there, or removing what is not, is a no-op. Messages already on their
 * way when unsubscribing may still be delivered. Names are copied, NUL-terminated.
 * Returns SIOC_OK, SIOC_EINVAL (COMMAND link or empty name), SIOC_ENOMEM. */
int redis_link_subscribe(struct redis_link *link, const char *channel);
int redis_link_unsubscribe(struct redis_link *link, const char *channel);
int redis_link_psubscribe(struct redis_link *link, const char *pattern);
int redis_link_punsubscribe(struct redis_link *link, const char *pattern);

/* Sharded pub/sub (Redis 7): add/remove a shard channel (exact name) to/from the desired set,
 * as redis_link_subscribe does for classic channels (same return values). Single Redis:
 * SSUBSCRIBE/SUNSUBSCRIBE on this connection. Cluster: sent to the master that owns the
 * channel's slot; when that slot moves (Redis pushes `sunsubscribe`, or answers MOVED) or its
 * master fails over, the channel is subscribed again on the new owner (REDIS_LINK_EV_SHARD_LOST
 * reports it; on_state_cb(false) then true around it). `smessage` pushes are delivered through
 * on_message_cb exactly like `message` (pattern.len == 0). Publish with SPUBLISH through a
 * COMMAND link (routed by the channel's slot on a cluster); count with PUBSUB SHARDNUMSUB
 * (on a cluster: one channel per command, answered by the channel's master). */
int redis_link_ssubscribe(struct redis_link *link, const char *channel);
int redis_link_sunsubscribe(struct redis_link *link, const char *channel);

/* Counts as traffic received now, postponing the liveness timeout: for an owner that knows the
 * silence is Redis's, not this connection's (e.g. its probe through a command link is not
 * answered either: Redis is stalled, and the subscriptions will deliver again when it goes on). */
void redis_link_touch(struct redis_link *link);

/* Number of channels, patterns and shard channels in the desired set (the probe channel not
 * counted). */
size_t redis_link_subscription_count(const struct redis_link *link);

#endif
