/* cluster.h: the gateway's receiving side of the @socket.io/redis-adapter cluster (DESIGN.md
 * §3.1, PROTOCOL.md 3.3): the broadcast channel patterns of the served namespaces, and delivery
 * of every broadcast (from Node servers, redis-emitters and workers) to the local sockets it
 * selects, decoded once and encoded once. It owns no connection: the patterns are read on the
 * worker bridge's subscriber connection, so a worker's reply (join) and the broadcast it sent
 * after it arrive in that order. Publishing, requests and responses (issue 4) are not here
 * yet; in particular no request channel is subscribed, so Node peers' member counts (PUBSUB
 * NUMSUB) do not include this gateway. */
#ifndef SIOC_GATEWAY_CLUSTER_H
#define SIOC_GATEWAY_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "gateway/sio_server.h"

struct log;
struct metrics;
struct cluster;

struct cluster_config {
    const char *redis_url;   /* for the cluster's own publishing connection */
    const char *adapter_key; /* NULL = "socket.io" */
    const char *namespaces;  /* as the gateway's `namespaces` option: a comma list, or "*" */
    uint64_t seed;           /* random bits (uids, request ids) */
};

/* NULL when out of memory or the metrics cannot be registered. */
struct cluster *cluster_new(struct event_base *base, const struct cluster_config *cfg,
                            struct sio_server *srv, struct log *log, struct metrics *metrics);
void cluster_free(struct cluster *c); /* NULL is a no-op */
/* The PSUBSCRIBE patterns to read (valid while c lives): one per namespace, or one for all. */
size_t cluster_patterns(const struct cluster *c, const char *const **patterns);
/* The plain channels to SUBSCRIBE on the same connection (request/response channels; valid
 * while c lives). */
size_t cluster_channels(const struct cluster *c, const char *const **channels);
/* A message on one of the patterns (ctx is the cluster). Slices valid during the call. */
void cluster_on_message(void *ctx, struct slice pattern, struct slice channel, struct slice payload);

#endif
