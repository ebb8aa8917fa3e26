/* subscriber.h: the gateway's one Redis pub/sub connection (DESIGN.md §3.1, §3.3) and the
 * routing of its messages. Each module that reads pub/sub registers its channels here, each with
 * a handler: the worker replies on P:node:<node> (main_gateway.c hands them to the bridge, and
 * the broker's snapshot request to the registry), the Redis adapter's patterns and channels and
 * the sharded adapter's shard channels (cluster.h), the forwarder's P:eio:<tag> (eio_forward.h).
 * One connection for all of them keeps a worker's reply and the broadcasts it published after it
 * in order (Redis orders messages per connection), and makes Node's PUBSUB NUMSUB count the
 * gateway once. Keeping the set across reconnects (everything is subscribed again after each one
 * before the state is up) is redis_link's SUBSCRIBER mode; the liveness probe is this module's:
 * PUBLISH <prefix>:probe:<node> 1 every probe interval through a COMMAND link lent by its owner
 * (subscriber_attach), the connection replaced after 3 intervals of silence unless Redis does not
 * answer the probe either (a stall, kept up to SUBSCRIBER_STALL_MAX_MS).
 * Threading: everything runs on the event_base's thread. */
#ifndef SIOC_GATEWAY_SUBSCRIBER_H
#define SIOC_GATEWAY_SUBSCRIBER_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"

struct event_base;
struct log;
struct redis_link;
struct redis_tls;
struct subscriber;

#define SUBSCRIBER_DEFAULT_PROBE_INTERVAL_MS 1000u
/* A Redis stall (no answer to the probe either) keeps the connection, and its subscriptions, for
 * up to this long; beyond it the connection is replaced as a dead one. */
#define SUBSCRIBER_STALL_MAX_MS 60000u

enum subscriber_kind {
    SUBSCRIBER_CHANNEL, /* SUBSCRIBE / UNSUBSCRIBE */
    SUBSCRIBER_PATTERN, /* PSUBSCRIBE / PUNSUBSCRIBE (glob) */
    SUBSCRIBER_SHARD,   /* SSUBSCRIBE / SUNSUBSCRIBE (Redis 7 sharded pub/sub) */
};

/* One message for a registered name: `pattern` is the matching pattern (PSUBSCRIBE) or empty.
 * The slices are valid only during the call. A handler may add and remove routes. */
typedef void subscriber_message_fn(void *ctx, struct slice pattern, struct slice channel,
                                   struct slice payload);

/* Strings are copied by subscriber_new. */
struct subscriber_config {
    const char *redis_url;       /* required */
    struct redis_tls *redis_tls; /* rediss:// URLs: borrowed, outlives the subscriber */
    const char *key_prefix;      /* NULL = "sioc" (the probe channel's prefix) */
    const char *node_id;         /* required, non-empty: the probe channel is P:probe:<node> */
    const char *name;            /* in log lines, "link=<name>"; NULL = "subscriber" */
    unsigned probe_interval_ms;  /* 0 = SUBSCRIBER_DEFAULT_PROBE_INTERVAL_MS */
    uint64_t seed;               /* reconnect jitter; 0 = random */
};

/* Creates the subscriber (nothing connects before the loop runs). `log` (may be NULL) and `base`
 * are borrowed and must outlive it. NULL on a bad config (no URL or node, an invalid URL, a
 * rediss:// URL without redis_tls) or out of memory. */
struct subscriber *subscriber_new(struct event_base *base, const struct subscriber_config *cfg,
                                  struct log *log);
/* Frees the connection and every route; no callback runs from here. Free the owner of the
 * attached probe link first (it detaches). Not from inside a handler. NULL is a no-op. */
void subscriber_free(struct subscriber *s);

/* Subscribes `name` (copied) and routes its messages to fn(ctx): kept across reconnects until
 * subscriber_remove. Adding a name again with the same fn and ctx is a no-op. Returns SIOC_OK,
 * SIOC_EINVAL (empty, or already routed to another handler) or SIOC_ENOMEM. */
int subscriber_add(struct subscriber *s, enum subscriber_kind kind, const char *name,
                   subscriber_message_fn *fn, void *ctx);
/* Unsubscribes `name` and forgets its route. Returns SIOC_OK (also when it was not there) or
 * SIOC_EINVAL (empty). */
int subscriber_remove(struct subscriber *s, enum subscriber_kind kind, const char *name);

/* The owner of a COMMAND link lends it for the probe (NULL: no probe from now on; detach before
 * freeing the link), and gets on_state(ctx, up) on every change of subscriber_up (NULL: none).
 * One owner at a time; a later call replaces the earlier one. */
void subscriber_attach(struct subscriber *s, struct redis_link *probe_link,
                       void (*on_state)(void *ctx, bool up), void *ctx);
/* True while Redis has confirmed every subscription of the set on a live connection. */
bool subscriber_up(const struct subscriber *s);
/* subscriber_up, and Redis answers: a probe unanswered for 3 probe intervals is a stall. */
bool subscriber_ready(const struct subscriber *s);
/* True while the connection is up (for the sioc_bridge_redis_connected gauge). */
bool subscriber_connected(const struct subscriber *s);
/* Messages that arrived for a name with no route (e.g. just after its removal). */
uint64_t subscriber_unrouted(const struct subscriber *s);

#endif
