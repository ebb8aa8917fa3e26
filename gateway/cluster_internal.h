/* cluster_internal.h: what cluster.c (namespaces, routing, broadcasts, publishing) and
 * cluster_requests.c (PROTOCOL.md 3.5-3.6 request handling) share. Not a public interface:
 * only the cluster*.c files include it. */
#ifndef SIOC_GATEWAY_CLUSTER_INTERNAL_H
#define SIOC_GATEWAY_CLUSTER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/adapter.h"
#include "common/buf.h"
#include "common/namemap.h"
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
    struct namemap_node node; /* first: the map hands back this node */
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
};

/* A BROADCAST (7) request delivered here with ack id `ack_id`, awaiting client acks. */
struct cluster_ack {
    struct cluster_ack *next;
    struct cluster *c;
    struct cluster_nsp *nsp;
    uint64_t ack_id;
    size_t remaining;    /* clients that have not acked yet */
    char *request_id;    /* NUL-terminated copy */
    char *requester_uid; /* for the specific response channel; "" when absent */
    struct event *timer; /* expiry: opts.flags.timeout */
};

struct cluster {
    struct event_base *base;
    struct sio_server *srv;
    struct log *log;
    struct redis_link *pub; /* COMMAND: every response and ack of every namespace */
    char *key;              /* adapter key prefix, "socket.io" by default */
    bool any_namespace;     /* namespaces "*" */
    bool specific;          /* publishOnSpecificResponseChannel */
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
    /* decode targets and scratch, reused (the room lists are ~12 KB) */
    struct adapter_broadcast msg;
    struct adapter_request req;
    struct buf scratch; /* JSON requests transcoded to MessagePack */
    struct buf out;     /* an encoded response */
    struct buf channel; /* a response channel name */
    struct buf ids;     /* socket ids selected by a request, SIO_SOCKET_ID_LEN bytes each */
    struct buf list;    /* MessagePack of a response's sockets or rooms array */
    /* metrics */
    uint64_t *received, *delivered, *dropped;
    uint64_t *requests[CLUSTER_REQUEST_TYPES];
    uint64_t *requests_invalid, *responses, *responses_ignored, *publish_failed, *acks_expired;
    int64_t *acks_pending;
};

/* The namespace named name[0..len) that the cluster follows, or NULL. */
static inline struct cluster_nsp *cluster_nsp_find(const struct cluster *c, const char *name,
                                                   size_t len)
{
    struct namemap_node *node = namemap_find(&c->nsp_map, name, len);
    return node != NULL ? (struct cluster_nsp *)(void *)node : NULL; /* by_name is first */
}

/* cluster_requests.c (cluster.c calls it; it never calls cluster.c) */
/* A message on n's request channel. */
void cluster_on_request(struct cluster *c, struct cluster_nsp *n, struct slice payload);
/* Frees every pending ack broadcast (cluster_free). */
void cluster_acks_free(struct cluster *c);
/* Frees the pending ack broadcasts of namespace n (it is going away); their late acks are lost. */
void cluster_acks_forget(struct cluster *c, const struct cluster_nsp *n);

#endif
