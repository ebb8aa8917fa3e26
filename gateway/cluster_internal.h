/* cluster_internal.h: what cluster.c (namespaces, routing, broadcasts, publishing) and
 * cluster_requests.c (PROTOCOL.md 3.5-3.6 request handling) share. Not a public interface:
 * only the cluster*.c files include it. */
#ifndef SIOC_GATEWAY_CLUSTER_INTERNAL_H
#define SIOC_GATEWAY_CLUSTER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/adapter.h"
#include "common/cluster_msg.h"
#include "common/buf.h"
#include "common/namemap.h"
#include "common/net/deadline_timer.h"
#include "common/timer_heap.h"
#include "gateway/cluster.h"

/* Longest namespace name followed (bytes). */
#define CLUSTER_MAX_NSP 255
/* Request types 0..7 have a counter each (sioc_adapter_requests_total{type}). */
#define CLUSTER_REQUEST_TYPES 8

struct event;
struct event_base;
struct redis_link;

/* One namespace of the cluster: its adapter uid and channels (PROTOCOL.md 3.2). */
struct cluster_nsp;
/* One of a namespace's three channels, in cluster.channel_map. */
struct cluster_channel {
    struct namemap_node node; /* in the channel map (container_of finds the channel) */
    struct cluster_nsp *nsp;
    bool request; /* the request channel (else a response channel) */
};

struct cluster_nsp {
    struct namemap_node by_name; /* first: in cluster.nsp_map */
    struct cluster_channel channels[3];
    char *name;
    size_t len;
    char uid[ADAPTER_UID_LEN + 1];
    char *request_channel;  /* <key>-request#<nsp># */
    char *response_channel; /* <key>-response#<nsp># */
    char *specific_channel; /* <key>-response#<nsp>#<uid># */
    char *shard_channel;    /* adapter sharded: <key>#<nsp># (SSUBSCRIBE) */
};

/* A BROADCAST (7) request delivered here with ack id `ack_id`, awaiting client acks. */
struct cluster_ack {
    struct cluster_ack *next;
    struct cluster_nsp *nsp;
    uint64_t ack_id;
    bool sharded;        /* answered in the sharded format (cluster_sharded.c) */
    size_t remaining;    /* clients that have not acked yet */
    char *request_id;    /* NUL-terminated copy */
    char *requester_uid; /* for the specific response channel; "" when absent */
    /* in cluster.ack_deadlines, due when opts.flags.timeout passed */
    struct timer_heap_node deadline;
};

struct cluster {
    struct event_base *base;
    struct sio_server *srv;
    struct log *log;
    struct redis_link *pub; /* COMMAND: every response and ack of every namespace */
    char *key;              /* adapter key prefix, "socket.io" by default */
    bool any_namespace;     /* namespaces "*" */
    bool specific;          /* publishOnSpecificResponseChannel */
    bool sharded;           /* adapter sharded: cluster_sharded.c reads and answers */
    enum cluster_sub_mode sub_mode;
    int (*shard_cb)(void *ctx, const char *channel, bool subscribe);
    int (*subscribe_cb)(void *ctx, const char *channel);
    int (*unsubscribe_cb)(void *ctx, const char *channel);
    void *subscribe_ctx;
    uint64_t rng;
    struct cluster_nsp *nsps[CLUSTER_MAX_NAMESPACES];
    size_t nsp_count;
    struct namemap nsp_map;     /* nsps by name */
    struct namemap channel_map; /* nsps by their three channel names */
    char *patterns[CLUSTER_MAX_NAMESPACES];
    size_t pattern_count;
    const char *channels[3 * CLUSTER_MAX_NAMESPACES]; /* borrowed from nsps */
    size_t channel_count;
    struct cluster_ack *acks;
    size_t ack_count;
    /* each request has its own timeout: a timer heap with one timer (created with the first
     * ack broadcast, freed by cluster_acks_free); deadlines are clock_mono_ms() times */
    struct timer_heap ack_deadlines;
    struct deadline_timer ack_timer;
    /* decode targets and scratch, reused (the room lists are ~12 KB) */
    struct adapter_broadcast msg;
    struct adapter_request req;
    struct cluster_msg smsg;  /* a decoded sharded message */
    struct cluster_msg reply; /* a sharded answer being encoded */
    struct buf shard_scratch; /* its MessagePack form (cluster_msg_encode) */
    struct buf scratch;       /* JSON requests transcoded to MessagePack */
    struct buf out;           /* an encoded response */
    struct buf channel;       /* a response channel name */
    struct buf ids;           /* socket ids selected by a request, SIO_SOCKET_ID_LEN bytes each */
    struct buf list;          /* MessagePack of a response's sockets or rooms array */
    /* metrics */
    uint64_t *received, *delivered, *dropped;
    uint64_t *requests[CLUSTER_REQUEST_TYPES];
    uint64_t *requests_invalid, *responses, *responses_ignored, *publish_failed, *acks_expired;
    int64_t *acks_pending;
    int64_t *room_channels; /* sharded: dynamic room channels subscribed */
};

/* The namespace named name[0..len) that the cluster follows, or NULL. */
static inline struct cluster_nsp *cluster_nsp_find(const struct cluster *c, const char *name,
                                                   size_t len)
{
    struct namemap_node *node = namemap_find(&c->nsp_map, name, len);
    return node != NULL ? (struct cluster_nsp *)(void *)node : NULL; /* by_name is first */
}

/* What a broadcast with acks needs (the classic BROADCAST request, the sharded BROADCAST
 * message with a requestId). */
struct cluster_ack_request {
    struct slice data;               /* MessagePack [event, ...args] */
    const struct adapter_opts *opts; /* NULL: every socket, default timeout */
    struct slice request_id;
    struct slice requester_uid;
    bool sharded; /* answer in the sharded format */
};

/* The adapter key and a namespace's name as slices (for channel names). */
static inline struct slice cluster_key_slice(const struct cluster *c)
{
    return (struct slice){(const uint8_t *)c->key, strlen(c->key)};
}
static inline struct slice cluster_nsp_slice(const struct cluster_nsp *n)
{
    return (struct slice){(const uint8_t *)n->name, n->len};
}

/* cluster_requests.c (cluster.c and cluster_sharded.c call it; it calls neither) */
/* A message on n's request channel. */
void cluster_on_request(struct cluster *c, struct cluster_nsp *n, struct slice payload);
/* Delivers with one ack id, answers the client count at once (even 0) and then each client's
 * ack until all acked or the request's timeout passed. */
void cluster_broadcast_with_ack(struct cluster *c, struct cluster_nsp *n,
                                const struct cluster_ack_request *q);
/* Sockets selected by opts (rooms union minus except) join / leave `rooms` (NULL: none). */
void cluster_apply_rooms(struct cluster *c, const struct cluster_nsp *n,
                         const struct adapter_opts *opts, const struct adapter_rooms *rooms,
                         bool join);
/* Sockets selected by opts are disconnected (close: their whole connection). */
void cluster_apply_disconnect(struct cluster *c, const struct cluster_nsp *n,
                              const struct adapter_opts *opts, bool close);
/* Writes into c->list the MessagePack array of the sockets selected by opts, each as Node's
 * fetchSockets sees it; returns their count. */
long cluster_write_fetch(struct cluster *c, const struct cluster_nsp *n,
                         const struct adapter_opts *opts);
/* Encodes `m` (its uid and nsp are filled in here) and SPUBLISHes it on the requester's
 * channel `<key>#<nsp>#<requester_uid>#` (adapter sharded). */
void cluster_respond_sharded(struct cluster *c, const struct cluster_nsp *n,
                             struct slice requester_uid, struct cluster_msg *m);
/* Frees every pending ack broadcast and their timer (cluster_free). */
void cluster_acks_free(struct cluster *c);
/* Frees the pending ack broadcasts of namespace n (it is going away); their late acks are lost. */
void cluster_acks_forget(struct cluster *c, const struct cluster_nsp *n);

/* cluster_sharded.c */
/* A message on a shard channel (adapter sharded). */
void cluster_sharded_on_message(struct cluster *c, struct slice channel, struct slice payload);
/* SSUBSCRIBEs (follow) or SUNSUBSCRIBEs n's namespace channel through shard_cb; returns its
 * result (logged when not SIOC_OK). */
int cluster_sharded_follow(struct cluster *c, const struct cluster_nsp *n, bool follow);

#endif
