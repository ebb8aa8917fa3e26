/* redis_node.h: one self-healing connection to ONE Redis server (redis[s]://), the layer under
 * both halves of the public API (common/net/redis_link.h): redis_link forwards every call to a
 * redis_node for a redis[s]:// URL, and redis_cluster (common/net/redis_cluster.h) keeps one
 * redis_node per master it needs. It calls neither (no loop: redis_link -> redis_cluster ->
 * redis_node); what it reports goes to the callbacks of its config only.
 * The types (config, stats, events, results, reply callback, REDIS_LINK_* flags and defaults)
 * are redis_link.h's, and each redis_node_* function below has exactly the contract written
 * there for the redis_link_* function of the same name on a single Redis (the cluster notes
 * do not apply). Threading: the event_base's thread only. */
#ifndef SIOC_NET_REDIS_NODE_H
#define SIOC_NET_REDIS_NODE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/net/redis_link.h"
#include "common/redis_proto.h"

struct event_base;
struct redis_node;

/* As redis_link_new, with cfg->url already parsed into `url` (cfg->url is ignored; the URL is
 * copied). Returns NULL for a cluster URL (url->cluster: that is redis_cluster's), a rediss://
 * URL without cfg->tls, or out of memory. */
struct redis_node *redis_node_new(struct event_base *base, const struct redis_link_config *cfg,
                                  const struct redis_url *url);
void redis_node_free(struct redis_node *node);
bool redis_node_connected(const struct redis_node *node);
void redis_node_disconnect_now(struct redis_node *node);
void redis_node_get_stats(const struct redis_node *node, struct redis_link_stats *out);

/* COMMAND mode */
int redis_node_command_argv(struct redis_node *node, int argc, const char *const *argv,
                            const size_t *argvlen, unsigned flags, redis_link_reply_cb *reply_cb,
                            void *ctx);
size_t redis_node_cancel(struct redis_node *node, const void *ctx);
void redis_node_hold(struct redis_node *node, bool hold);
size_t redis_node_queue_room(const struct redis_node *node);

/* SUBSCRIBER mode */
int redis_node_subscribe(struct redis_node *node, const char *channel);
int redis_node_unsubscribe(struct redis_node *node, const char *channel);
int redis_node_psubscribe(struct redis_node *node, const char *pattern);
int redis_node_punsubscribe(struct redis_node *node, const char *pattern);
int redis_node_ssubscribe(struct redis_node *node, const char *channel);
int redis_node_sunsubscribe(struct redis_node *node, const char *channel);
void redis_node_touch(struct redis_node *node);
size_t redis_node_subscription_count(const struct redis_node *node);

#endif
