/* redis_link.c: the public facade of redis_link.h. At creation the URL picks the
 * implementation: redis[s]:// makes a redis_node (common/net/redis_node.h: one connection),
 * redis[s]-cluster:// a redis_cluster (common/net/redis_cluster.h: slot map, one redis_node per
 * master). Every other call forwards to the one that was made: one branch, no allocation, no
 * state of its own. Callbacks go straight from the implementation to the owner (cfg->ctx).
 * The layering is one way: redis_link -> redis_cluster -> redis_node, and redis_link ->
 * redis_node; nothing below calls back up except through the owner's callbacks. */
#include "common/net/redis_link.h"

#include <stdlib.h>

#include "common/error.h"
#include "common/net/redis_cluster.h"
#include "common/net/redis_node.h"

struct redis_link {
    struct redis_node *node;       /* redis[s]://, or NULL */
    struct redis_cluster *cluster; /* redis[s]-cluster://, or NULL */
};

struct redis_link *redis_link_new(struct event_base *base, const struct redis_link_config *cfg)
{
    struct redis_url url;
    if (cfg->url == NULL || redis_url_parse(cfg->url, &url) != SIOC_OK)
        return NULL;
    if (url.tls && cfg->tls == NULL)
        return NULL;
    struct redis_link *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    if (url.cluster)
        l->cluster = redis_cluster_new(base, cfg, &url);
    else
        l->node = redis_node_new(base, cfg, &url);
    if (l->cluster == NULL && l->node == NULL) {
        free(l);
        return NULL;
    }
    return l;
}

bool redis_link_is_cluster(const struct redis_link *l)
{
    return l->cluster != NULL;
}

void redis_link_free(struct redis_link *l)
{
    if (l == NULL)
        return;
    if (l->cluster != NULL)
        redis_cluster_free(l->cluster);
    else
        redis_node_free(l->node);
    free(l);
}

bool redis_link_connected(const struct redis_link *l)
{
    return l->cluster != NULL ? redis_cluster_connected(l->cluster) : redis_node_connected(l->node);
}

void redis_link_disconnect_now(struct redis_link *l)
{
    if (l->cluster != NULL)
        redis_cluster_disconnect_now(l->cluster);
    else
        redis_node_disconnect_now(l->node);
}

void redis_link_get_stats(const struct redis_link *l, struct redis_link_stats *out)
{
    if (l->cluster != NULL)
        redis_cluster_get_stats(l->cluster, out);
    else
        redis_node_get_stats(l->node, out);
}

/* ---- COMMAND mode ---- */

int redis_link_command_argv(struct redis_link *l, int argc, const char *const *argv,
                            const size_t *argvlen, unsigned flags, redis_link_reply_cb *reply_cb,
                            void *ctx)
{
    if (l->cluster != NULL)
        return redis_cluster_command_argv(l->cluster, argc, argv, argvlen, flags, reply_cb, ctx);
    return redis_node_command_argv(l->node, argc, argv, argvlen, flags, reply_cb, ctx);
}

size_t redis_link_cancel(struct redis_link *l, const void *ctx)
{
    return l->cluster != NULL ? redis_cluster_cancel(l->cluster, ctx)
                              : redis_node_cancel(l->node, ctx);
}

void redis_link_hold(struct redis_link *l, bool hold)
{
    if (l->cluster != NULL)
        redis_cluster_hold(l->cluster, hold);
    else
        redis_node_hold(l->node, hold);
}

size_t redis_link_queue_room(const struct redis_link *l)
{
    return l->cluster != NULL ? redis_cluster_queue_room(l->cluster)
                              : redis_node_queue_room(l->node);
}

/* ---- SUBSCRIBER mode ---- */

int redis_link_subscribe(struct redis_link *l, const char *channel)
{
    if (l->cluster != NULL)
        return redis_cluster_sub_change(l->cluster, REDIS_CLUSTER_CHANNEL, channel, true);
    return redis_node_subscribe(l->node, channel);
}

int redis_link_unsubscribe(struct redis_link *l, const char *channel)
{
    if (l->cluster != NULL)
        return redis_cluster_sub_change(l->cluster, REDIS_CLUSTER_CHANNEL, channel, false);
    return redis_node_unsubscribe(l->node, channel);
}

int redis_link_psubscribe(struct redis_link *l, const char *pattern)
{
    if (l->cluster != NULL)
        return redis_cluster_sub_change(l->cluster, REDIS_CLUSTER_PATTERN, pattern, true);
    return redis_node_psubscribe(l->node, pattern);
}

int redis_link_punsubscribe(struct redis_link *l, const char *pattern)
{
    if (l->cluster != NULL)
        return redis_cluster_sub_change(l->cluster, REDIS_CLUSTER_PATTERN, pattern, false);
    return redis_node_punsubscribe(l->node, pattern);
}

int redis_link_ssubscribe(struct redis_link *l, const char *channel)
{
    if (l->cluster != NULL)
        return redis_cluster_sub_change(l->cluster, REDIS_CLUSTER_SHARD, channel, true);
    return redis_node_ssubscribe(l->node, channel);
}

int redis_link_sunsubscribe(struct redis_link *l, const char *channel)
{
    if (l->cluster != NULL)
        return redis_cluster_sub_change(l->cluster, REDIS_CLUSTER_SHARD, channel, false);
    return redis_node_sunsubscribe(l->node, channel);
}

void redis_link_touch(struct redis_link *l)
{
    if (l->cluster != NULL)
        redis_cluster_touch(l->cluster);
    else
        redis_node_touch(l->node);
}

size_t redis_link_subscription_count(const struct redis_link *l)
{
    return l->cluster != NULL ? redis_cluster_subscription_count(l->cluster)
                              : redis_node_subscription_count(l->node);
}
