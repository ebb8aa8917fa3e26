/* redis_cluster_sub.c: the subscriptions of a SUBSCRIBER cluster link (redis_cluster.h):
 * classic channels, patterns and the probe on one connection to the pub/sub home (the master of
 * slot 0), moved when the map names another home; shard channels on the master of each
 * channel's slot, one subscriber connection per such master, moved when Redis drops one
 * (`sunsubscribe` push), refuses one (MOVED) or the map changes. This file makes those
 * subscriber redis_nodes and owns their callbacks; redis_cluster.c frees them with their cnode.
 * Moves happen in the core's deferred pass (rc_home_sync, rc_shards_sync), never inside a node's
 * callback. Calls only redis_cluster_state.c and redis_node.c, never redis_cluster.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/net/redis_cluster_internal.h"
#include "common/redis_slots.h"

static int names_add(struct name_list *l, const char *name)
{
    for (size_t i = 0; i < l->count; i++)
        if (strcmp(l->names[i], name) == 0)
            return SIOC_OK;
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        char **grown = realloc(l->names, cap * sizeof(*grown));
        if (grown == NULL)
            return SIOC_ENOMEM;
        l->names = grown;
        l->cap = cap;
    }
    if ((l->names[l->count] = strdup(name)) == NULL)
        return SIOC_ENOMEM;
    l->count++;
    return SIOC_OK;
}

static void names_remove(struct name_list *l, const char *name)
{
    for (size_t i = 0; i < l->count; i++) {
        if (strcmp(l->names[i], name) == 0) {
            free(l->names[i]);
            l->names[i] = l->names[--l->count];
            return;
        }
    }
}

static void names_free(struct name_list *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->names[i]);
    free(l->names);
    memset(l, 0, sizeof(*l));
}

static void sub_message_cb(void *ctx, struct slice pattern, struct slice channel,
                           struct slice payload)
{
    struct redis_cluster *c = ctx;
    if (c->cfg.on_message_cb != NULL && !c->freeing)
        c->cfg.on_message_cb(c->cfg.ctx, pattern, channel, payload);
}

static void node_sub_message_cb(void *ctx, struct slice pattern, struct slice channel,
                                struct slice payload)
{
    sub_message_cb(((struct cnode *)ctx)->c, pattern, channel, payload);
}

static void home_state_cb(void *ctx, bool up)
{
    struct redis_cluster *c = ctx;
    c->home_up = up;
    if (!up)
        rc_refresh_soon(c);
    rc_update_state(c);
}

static void home_event_cb(void *ctx, enum redis_link_event ev, const char *detail)
{
    struct redis_cluster *c = ctx;
    if (c->home_node != NULL)
        rc_node_event(c->home_node, ev, detail);
}

static void node_sub_state_cb(void *ctx, bool up)
{
    struct cnode *n = ctx;
    n->sub_up = up;
    if (!up)
        rc_refresh_soon(n->c);
    rc_update_state(n->c);
}

static void node_shard_lost_cb(void *ctx, struct slice channel, const char *error)
{
    struct cnode *n = ctx;
    struct redis_cluster *c = n->c;
    char detail[600];
    if (channel.len > 0) {
        for (size_t i = 0; i < c->nshards; i++) {
            struct shard *s = &c->shards[i];
            if (s->node == n && strlen(s->name) == channel.len &&
                memcmp(s->name, channel.p, channel.len) == 0) {
                s->node = NULL; /* the link has dropped it from its set */
                n->shards--;
            }
        }
        snprintf(detail, sizeof(detail), "%.*s", (int)(channel.len < 400 ? channel.len : 400),
                 (const char *)channel.p);
    } else {
        struct redis_redirect rd;
        if (error != NULL &&
            redis_redirect_parse(error, strlen(error), &rd) == REDIS_REDIRECT_MOVED &&
            rd.host[0] != '\0') {
            int idx = redis_slot_map_assign(&c->map, rd.slot, rd.slot, rd.host, rd.port);
            if (idx >= 0)
                c->by_index[idx] = rc_node_find(c, rd.host, rd.port); /* made in kick if NULL */
        }
        snprintf(detail, sizeof(detail), "%s", error != NULL ? error : "");
    }
    rc_emit_event(c, REDIS_LINK_EV_SHARD_LOST, detail);
    rc_refresh_soon(c);
    rc_kick_soon(c);
    rc_update_state(c);
}

/* The home (classic subscriptions and the probe) on the master of slot 0. */
void rc_home_sync(struct redis_cluster *c)
{
    struct cnode *want = rc_slot_node(c, 0);
    if (want == c->home_node && c->home != NULL)
        return;
    redis_node_free(c->home);
    c->home = NULL;
    c->home_node = NULL;
    c->home_up = false;
    if (want == NULL)
        return;
    struct redis_url url;
    if (redis_url_node(&c->url, want->host, want->port, &url) != SIOC_OK)
        return;
    struct redis_link_config lc = c->cfg;
    lc.mode = REDIS_LINK_SUBSCRIBER;
    lc.ctx = c;
    lc.on_state_cb = home_state_cb;
    lc.on_event_cb = home_event_cb;
    lc.on_message_cb = sub_message_cb;
    lc.on_shard_lost_cb = NULL;
    lc.probe_channel = c->probe_channel;
    c->home = redis_node_new(c->base, &lc, &url);
    if (c->home == NULL)
        return;
    c->home_node = want;
    for (size_t i = 0; i < c->channels.count; i++)
        redis_node_subscribe(c->home, c->channels.names[i]);
    for (size_t i = 0; i < c->patterns.count; i++)
        redis_node_psubscribe(c->home, c->patterns.names[i]);
}

static void node_sub_event_cb(void *ctx, enum redis_link_event ev, const char *detail)
{
    rc_node_event(ctx, ev, detail);
}

/* The subscriber connection of node n: the shard channels whose slots it owns. */
static struct redis_node *node_sub_link_new(struct cnode *n)
{
    struct redis_link_config lc = n->c->cfg;
    lc.mode = REDIS_LINK_SUBSCRIBER;
    lc.on_state_cb = node_sub_state_cb;
    lc.on_event_cb = node_sub_event_cb;
    lc.on_message_cb = node_sub_message_cb;
    lc.on_shard_lost_cb = node_shard_lost_cb;
    return rc_node_link_new(n, &lc);
}

/* Every shard channel on its slot's master. */
void rc_shards_sync(struct redis_cluster *c)
{
    for (size_t i = 0; i < c->nshards; i++) {
        struct shard *s = &c->shards[i];
        struct cnode *want = rc_slot_node(c, redis_key_slot(s->name, strlen(s->name)));
        if (want == s->node)
            continue;
        if (s->node != NULL) {
            redis_node_sunsubscribe(s->node->sub, s->name);
            s->node->shards--;
            s->node = NULL;
        }
        if (want == NULL)
            continue;
        if (want->sub == NULL && (want->sub = node_sub_link_new(want)) == NULL)
            continue;
        if (redis_node_ssubscribe(want->sub, s->name) == SIOC_OK) {
            s->node = want;
            want->shards++;
        }
    }
}

static int shard_change(struct redis_cluster *c, const char *name, bool add)
{
    for (size_t i = 0; i < c->nshards; i++) {
        if (strcmp(c->shards[i].name, name) != 0)
            continue;
        if (add)
            return SIOC_OK;
        struct shard s = c->shards[i];
        if (s.node != NULL) {
            redis_node_sunsubscribe(s.node->sub, s.name);
            s.node->shards--;
        }
        free(s.name);
        c->shards[i] = c->shards[--c->nshards];
        rc_update_state(c);
        return SIOC_OK;
    }
    if (!add)
        return SIOC_OK;
    if (c->nshards == c->shards_cap) {
        size_t cap = c->shards_cap ? c->shards_cap * 2 : 16;
        struct shard *grown = realloc(c->shards, cap * sizeof(*grown));
        if (grown == NULL)
            return SIOC_ENOMEM;
        c->shards = grown;
        c->shards_cap = cap;
    }
    char *copy = strdup(name);
    if (copy == NULL)
        return SIOC_ENOMEM;
    c->shards[c->nshards++] = (struct shard){copy, NULL};
    if (c->map_loaded)
        rc_shards_sync(c);
    rc_update_state(c);
    return SIOC_OK;
}

int redis_cluster_sub_change(struct redis_cluster *c, enum redis_cluster_sub kind, const char *name,
                             bool add)
{
    if (c->cfg.mode != REDIS_LINK_SUBSCRIBER || name == NULL || name[0] == '\0')
        return SIOC_EINVAL;
    if (kind == REDIS_CLUSTER_SHARD)
        return shard_change(c, name, add);
    struct name_list *set = kind == REDIS_CLUSTER_CHANNEL ? &c->channels : &c->patterns;
    int rc = SIOC_OK;
    if (add)
        rc = names_add(set, name);
    else
        names_remove(set, name);
    if (rc != SIOC_OK || c->home == NULL)
        return rc;
    if (kind == REDIS_CLUSTER_CHANNEL)
        return add ? redis_node_subscribe(c->home, name) : redis_node_unsubscribe(c->home, name);
    return add ? redis_node_psubscribe(c->home, name) : redis_node_punsubscribe(c->home, name);
}

void redis_cluster_touch(struct redis_cluster *c)
{
    if (c->home != NULL)
        redis_node_touch(c->home);
}

size_t redis_cluster_subscription_count(const struct redis_cluster *c)
{
    return c->channels.count + c->patterns.count + c->nshards;
}

void rc_subs_free(struct redis_cluster *c)
{
    names_free(&c->channels);
    names_free(&c->patterns);
    for (size_t i = 0; i < c->nshards; i++)
        free(c->shards[i].name);
    free(c->shards);
    c->shards = NULL;
    c->nshards = 0;
}
