/* redis_cluster.h: the Redis Cluster implementation behind redis_link (redis_link.h says what
 * owners see; docs/contracts.md "Redis Cluster" the keys and the at-least-once rules). A cluster
 * link keeps the slot map (CLUSTER SLOTS, from any node it can reach: the seeds, then every node it
 * has learned), one redis_node per master it needs (common/net/redis_node.h; COMMAND: its
 * commands; SUBSCRIBER: the shard channels that master owns), and:
 * - routes each command by its first key's slot (common/redis_slots.h), queueing it at the
 *   cluster level, in order per master, while that master is unknown or unreachable (the same
 *   bounded queue, ETOOBIG and on_room_cb as a single link);
 * - follows MOVED (updates the map, refreshes it, re-sends) and ASK (ASKING + the command, once,
 *   on the named node);
 * - refreshes the map when a master's connection drops, after a MOVED, and every
 *   REDIS_CLUSTER_REFRESH_MS while something waits for an owner (a failover: the replica is
 *   promoted after cluster-node-timeout), so queued and REDIS_LINK_RETRY commands then go to
 *   the new owner;
 * - subscriber: classic subscriptions on one connection to the pub/sub home (master of slot 0),
 *   shard channels per owning master, re-subscribed after a `sunsubscribe` push, a MOVED
 *   answer or a failover.
 * Only redis_link.c (the facade) calls these; each mirrors the redis_link_* function of the
 * same name. Implemented in redis_cluster.c (map, routing, queue, the node table),
 * redis_cluster_sub.c (subscriptions and their node connections) and redis_cluster_state.c (what
 * both share), over redis_node.c; they share redis_cluster_internal.h and call one way only:
 * redis_cluster.c -> redis_cluster_sub.c -> redis_cluster_state.c -> redis_node.c. */
#ifndef SIOC_NET_REDIS_CLUSTER_H
#define SIOC_NET_REDIS_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>

#include "common/net/redis_link.h"
#include "common/redis_proto.h"

#define REDIS_CLUSTER_REFRESH_MS 250u /* map refresh period while waiting for an owner */
#define REDIS_CLUSTER_MAX_REDIRECTS 5 /* MOVED/ASK per command before its error is returned */
#define REDIS_CLUSTER_MAX_TRYAGAIN 40 /* TRYAGAIN/CLUSTERDOWN/LOADING retries per command */

struct redis_cluster;

/* `url` is a cluster URL (url->cluster); cfg as for redis_link_new (callbacks get cfg->ctx).
 * Returns NULL when out of memory or when a rediss URL comes without cfg->tls. */
struct redis_cluster *redis_cluster_new(struct event_base *base,
                                        const struct redis_link_config *cfg,
                                        const struct redis_url *url);
void redis_cluster_free(struct redis_cluster *c);
bool redis_cluster_connected(const struct redis_cluster *c);
void redis_cluster_disconnect_now(struct redis_cluster *c);
void redis_cluster_get_stats(const struct redis_cluster *c, struct redis_link_stats *out);
int redis_cluster_command_argv(struct redis_cluster *c, int argc, const char *const *argv,
                               const size_t *argvlen, unsigned flags, redis_link_reply_cb *reply_cb,
                               void *ctx);
size_t redis_cluster_cancel(struct redis_cluster *c, const void *ctx);
void redis_cluster_hold(struct redis_cluster *c, bool hold);
size_t redis_cluster_queue_room(const struct redis_cluster *c);

enum redis_cluster_sub { REDIS_CLUSTER_CHANNEL, REDIS_CLUSTER_PATTERN, REDIS_CLUSTER_SHARD };
/* Adds (add) or removes a name of the given kind to/from the desired set. */
int redis_cluster_sub_change(struct redis_cluster *c, enum redis_cluster_sub kind, const char *name,
                             bool add);
void redis_cluster_touch(struct redis_cluster *c);
size_t redis_cluster_subscription_count(const struct redis_cluster *c);

/* Number of masters in the current slot map and the index of the master that owns `slot`
 * (-1: unknown), "host:port" of master `i` in out: for tests and /metrics. */
unsigned redis_cluster_masters(const struct redis_cluster *c);
int redis_cluster_slot_master(const struct redis_cluster *c, unsigned slot, char *out, size_t n);

#endif
