/* redis_cluster_state.c: what both halves of a cluster link use (redis_cluster_internal.h):
 * the owner's event and state callbacks, whether every needed connection is up, the deferred
 * pass and the map refresh (both only scheduled here: their events belong to redis_cluster.c),
 * node lookup by slot or address, and making a node's redis_node. It calls neither
 * redis_cluster.c nor redis_cluster_sub.c, so the two halves do not call each other in a loop. */
#include <stdio.h>
#include <string.h>

#include <event2/event.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/net/redis_cluster_internal.h"

void rc_emit_event(struct redis_cluster *c, enum redis_link_event ev, const char *detail)
{
    if (c->cfg.on_event_cb != NULL && !c->freeing)
        c->cfg.on_event_cb(c->cfg.ctx, ev, detail);
}

void rc_node_event(struct cnode *n, enum redis_link_event ev, const char *detail)
{
    char text[600];
    snprintf(text, sizeof(text), "%s:%d%s%s", n->host, n->port, detail[0] ? ": " : "", detail);
    rc_emit_event(n->c, ev, text);
}

/* Subscriber: the home and every shard channel's connection have confirmed their parts. */
static bool subs_up(const struct redis_cluster *c)
{
    if (!c->home_up)
        return false;
    for (size_t i = 0; i < c->nshards; i++)
        if (c->shards[i].node == NULL || !c->shards[i].node->sub_up)
            return false;
    return true;
}

bool rc_cluster_up(const struct redis_cluster *c)
{
    if (!c->map_loaded)
        return false;
    if (c->cfg.mode == REDIS_LINK_SUBSCRIBER)
        return subs_up(c);
    for (unsigned i = 0; i < c->map.nnodes; i++)
        if (c->by_index[i] == NULL || !c->by_index[i]->cmd_up)
            return false;
    return true;
}

void rc_update_state(struct redis_cluster *c)
{
    bool up = rc_cluster_up(c);
    if (up == c->reported_up || c->freeing)
        return;
    c->reported_up = up;
    if (c->cfg.on_state_cb != NULL)
        c->cfg.on_state_cb(c->cfg.ctx, up);
}

void rc_kick_soon(struct redis_cluster *c)
{
    if (!c->freeing)
        event_active(c->kick, EV_TIMEOUT, 0);
}

/* A map refresh as soon as allowed (at most one per REDIS_CLUSTER_REFRESH_MS / 5). */
void rc_refresh_soon(struct redis_cluster *c)
{
    if (c->freeing)
        return;
    c->refresh_wanted = true;
    if (c->refresh_node != NULL || evtimer_pending(c->refresh_timer, NULL))
        return;
    uint64_t gap = REDIS_CLUSTER_REFRESH_MS / 5, since = clock_mono_ms() - c->last_refresh_ms;
    unsigned wait = since >= gap ? 0 : (unsigned)(gap - since);
    struct timeval tv = {.tv_sec = 0, .tv_usec = (suseconds_t)wait * 1000};
    evtimer_add(c->refresh_timer, &tv);
}

/* The master of `slot`, or NULL. */
struct cnode *rc_slot_node(const struct redis_cluster *c, unsigned slot)
{
    int idx = c->map_loaded ? redis_slot_map_owner(&c->map, slot) : -1;
    return idx >= 0 ? c->by_index[idx] : NULL;
}

struct cnode *rc_node_find(struct redis_cluster *c, const char *host, int port)
{
    for (size_t i = 0; i < c->nnodes; i++)
        if (c->nodes[i]->port == port && strcmp(c->nodes[i]->host, host) == 0)
            return c->nodes[i];
    return NULL;
}

struct redis_node *rc_node_link_new(struct cnode *n, const struct redis_link_config *lc)
{
    struct redis_cluster *c = n->c;
    struct redis_url url;
    if (redis_url_node(&c->url, n->host, n->port, &url) != SIOC_OK)
        return NULL;
    struct redis_link_config nc = *lc;
    nc.ctx = n;
    nc.on_room_cb = NULL;
    nc.liveness_timeout_ms = 0;
    nc.probe_channel = NULL;
    nc.jitter_seed = c->cfg.jitter_seed + (uint64_t)n->port;
    return redis_node_new(c->base, &nc, &url);
}
