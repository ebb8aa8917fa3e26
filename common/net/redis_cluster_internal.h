/* redis_cluster_internal.h: the state shared by redis_cluster.c (slot map, routing, the
 * command queue, node connections), redis_cluster_sub.c (subscriptions: the pub/sub home and
 * the shard channels per master) and redis_cluster_state.c (what both use: owner callbacks, the
 * "up" state, deferred work, node lookup). Calls go one way: redis_cluster.c ->
 * redis_cluster_sub.c -> redis_cluster_state.c -> redis_node.c (and redis_cluster.c to the last
 * two directly). Nothing outside these three files includes it. */
#ifndef SIOC_NET_REDIS_CLUSTER_INTERNAL_H
#define SIOC_NET_REDIS_CLUSTER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/counted_list.h"
#include "common/net/redis_cluster.h"
#include "common/net/redis_node.h"
#include "common/redis_slots.h"

#define MAX_NODES 256 /* cnodes alive at once (masters, seeds, redirect targets) */
#define MAX_ADDRS 512 /* addresses remembered for CLUSTER SLOTS (seeds, masters, replicas) */

struct cnode;

struct ccmd {
    /* in queue, requeue, later or inflight; node.bytes is about its RESP size, for the queue
     * limit */
    struct counted_node node;
    struct redis_cluster *c;
    redis_link_reply_cb *reply_cb; /* NULL once cancelled */
    void *ctx;
    unsigned flags;
    int argc;
    const char **argv; /* into the same allocation */
    size_t *lens;
    enum redis_route_kind route;
    unsigned slot;
    unsigned redirects, tryagain;
    struct cnode *ask;   /* send ASKING + the command there next */
    struct cnode *qnode; /* while queued: the node it was counted on (or NULL: unrouted) */
    struct cnode *sent;  /* while in flight */
};

struct cnode {
    struct redis_cluster *c;
    char host[REDIS_SLOT_HOST_MAX];
    int port;
    struct redis_node *cmd, *sub;
    bool cmd_up, sub_up;
    size_t pending, queued, shards; /* ccmds in flight / queued on it; shard channels on `sub` */
};

struct shard {
    char *name;
    struct cnode *node; /* subscribed there, or NULL */
};

struct name_list {
    char **names;
    size_t count, cap;
};

struct redis_cluster {
    struct event_base *base;
    struct redis_url url;
    struct redis_link_config cfg; /* copy: callbacks, timeouts; strings point to ours */
    char *probe_channel;

    struct redis_slot_map map, next; /* current, and the one being parsed */
    bool map_loaded;
    struct cnode *by_index[REDIS_SLOT_MAP_MAX_NODES]; /* map node index -> cnode */
    struct cnode *nodes[MAX_NODES];
    size_t nnodes;
    struct {
        char host[REDIS_SLOT_HOST_MAX];
        int port;
    } addrs[MAX_ADDRS];
    size_t naddrs, addr_next;

    struct cnode *refresh_node; /* a CLUSTER SLOTS is out there */
    bool refresh_wanted;
    uint64_t last_refresh_ms;
    struct event *kick, *refresh_timer;

    struct counted_list queue, requeue, later, inflight;
    size_t unrouted;
    bool held, room_wanted, full_reported, reported_up, freeing;

    /* subscriber */
    struct redis_node *home;
    struct cnode *home_node;
    bool home_up;
    struct name_list channels, patterns;
    struct shard *shards;
    size_t nshards, shards_cap;

    struct redis_link_stats stats; /* cluster-level counters; node links' are added in */
};

/* ---- redis_cluster_state.c: what both halves use; it calls neither ---- */

/* Owner callbacks (never while the cluster is being freed). */
void rc_emit_event(struct redis_cluster *c, enum redis_link_event ev, const char *detail);
/* As rc_emit_event, the detail prefixed with "host:port: " of n. */
void rc_node_event(struct cnode *n, enum redis_link_event ev, const char *detail);
/* Every connection the link needs is up: a command link is connected to every master; a
 * subscriber's home and the masters of all its shard channels have confirmed their parts. */
bool rc_cluster_up(const struct redis_cluster *c);
void rc_update_state(struct redis_cluster *c); /* on_state_cb on a change of rc_cluster_up */
/* The deferred pass (redis_cluster.c's kick: links made/freed, subscriptions moved, the queue
 * flushed) on the next loop iteration. */
void rc_kick_soon(struct redis_cluster *c);
void rc_refresh_soon(struct redis_cluster *c); /* a CLUSTER SLOTS reload, rate-limited */
struct cnode *rc_slot_node(const struct redis_cluster *c, unsigned slot); /* master or NULL */
struct cnode *rc_node_find(struct redis_cluster *c, const char *host, int port);
/* A redis_node to node n with the owner's settings (TLS, AUTH, timeouts, backoff) and the mode
 * and callbacks of `lc` (a copy of c->cfg with them set; ctx becomes n); no liveness timeout,
 * probe channel or on_room_cb, and a jitter seed of its own. NULL when out of memory. */
struct redis_node *rc_node_link_new(struct cnode *n, const struct redis_link_config *lc);

/* ---- redis_cluster_sub.c: called by redis_cluster.c; calls only redis_cluster_state.c ---- */

/* Run in the deferred pass once a map is loaded: the home connection (classic channels,
 * patterns, the probe) on the master of slot 0, and each shard channel on its slot's master,
 * making the subscriber redis_nodes they need (the callbacks of those are redis_cluster_sub.c's).
 */
void rc_home_sync(struct redis_cluster *c);
void rc_shards_sync(struct redis_cluster *c);
void rc_subs_free(struct redis_cluster *c); /* the desired sets (links are freed by the core) */

#endif
