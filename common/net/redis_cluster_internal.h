/* redis_cluster_internal.h: the state shared by redis_cluster.c (slot map, routing, the
 * command queue, node connections) and redis_cluster_sub.c (subscriptions: the pub/sub home and
 * the shard channels per master). Nothing outside these two files includes it. */
#ifndef SIOC_NET_REDIS_CLUSTER_INTERNAL_H
#define SIOC_NET_REDIS_CLUSTER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/counted_list.h"
#include "common/net/redis_cluster.h"
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
    struct redis_link *cmd, *sub;
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
    struct redis_link *home;
    struct cnode *home_node;
    bool home_up;
    struct name_list channels, patterns;
    struct shard *shards;
    size_t nshards, shards_cap;

    struct redis_link_stats stats; /* cluster-level counters; node links' are added in */
};

/* ---- redis_cluster.c ---- */

/* Owner callbacks (never while the cluster is being freed). */
void rc_emit_event(struct redis_cluster *c, enum redis_link_event ev, const char *detail);
void rc_node_event(struct cnode *n, enum redis_link_event ev,
                   const char *detail); /* "host:port: " */
void rc_update_state(
    struct redis_cluster *c);               /* on_state_cb on a change of "every connection up" */
void rc_kick_soon(struct redis_cluster *c); /* the deferred pass: links made/freed, subs moved */
void rc_refresh_soon(struct redis_cluster *c); /* a CLUSTER SLOTS reload, rate-limited */
struct cnode *rc_slot_node(const struct redis_cluster *c, unsigned slot); /* master or NULL */
struct cnode *rc_node_find(struct redis_cluster *c, const char *host, int port);
/* A plain link to node n: COMMAND (the cluster's commands, CLUSTER SLOTS) or SUBSCRIBER (its
 * shard channels), the owner's settings and the cluster's callbacks. */
struct redis_link *rc_node_link_new(struct cnode *n, enum redis_link_mode mode);

/* ---- redis_cluster_sub.c ---- */

void rc_node_sub_message_cb(void *ctx, struct slice pattern, struct slice channel,
                            struct slice payload);
void rc_node_sub_state_cb(void *ctx, bool up);
void rc_node_shard_lost_cb(void *ctx, struct slice channel, const char *error);
void rc_home_sync(struct redis_cluster *c);     /* the home connection on the master of slot 0 */
void rc_shards_sync(struct redis_cluster *c);   /* each shard channel on its slot's master */
bool rc_subs_up(const struct redis_cluster *c); /* home and every shard channel confirmed */
void rc_subs_free(struct redis_cluster *c);     /* the desired sets (links are freed by the core) */

#endif
