/* cluster.h: the gateway as a full member of a @socket.io/redis-adapter 8.x cluster (DESIGN.md
 * §3.1, PROTOCOL.md 3.2-3.8, issue 4). Per served namespace it has a uid2 uid and reads, on the
 * gateway's subscriber connection (one connection per gateway, so Node's PUBSUB NUMSUB
 * counts it once): the broadcast pattern `<key>#<nsp>#*`, the request channel and both response
 * channels. Broadcasts from Node servers, redis-emitters and workers go to the local sockets they
 * select (decoded once, encoded once); requests are answered in Node's shapes (SOCKETS, ALL_ROOMS,
 * REMOTE_JOIN/LEAVE/DISCONNECT in opts and legacy sid forms, REMOTE_FETCH, SERVER_SIDE_EMIT,
 * BROADCAST with acks). Answers go out on the cluster's own COMMAND connection, one connection for
 * every namespace (ordering, 3.7). The gateway never originates requests or broadcasts here, so
 * responses addressed to others are read (Node subscribes them too) and ignored. Reconnecting
 * and the liveness probe of the subscriber connection are subscriber.h's. */
#ifndef SIOC_GATEWAY_CLUSTER_H
#define SIOC_GATEWAY_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/cluster_msg.h"
#include "gateway/sio_server.h"

struct log;
struct metrics;
struct cluster;

/* Most namespaces the cluster follows (a `namespaces` list, or distinct ones seen under "*"). */
#define CLUSTER_MAX_NAMESPACES 256
/* Broadcasts with acks (request type 7) awaiting client acks at once; beyond it a request is
 * still delivered and answered, but with clientCount 0 and no ack ids. */
#define CLUSTER_MAX_PENDING_ACKS 4096
/* Longest a pending ack broadcast is kept: opts.flags.timeout, capped at this (ms); the default
 * when a request carries no timeout. */
#define CLUSTER_MAX_ACK_TIMEOUT_MS 600000u
#define CLUSTER_DEFAULT_ACK_TIMEOUT_MS 10000u

struct cluster_config {
    const char *redis_url;       /* for the cluster's own publishing connection */
    struct redis_tls *redis_tls; /* rediss:// URLs: borrowed, outlives the cluster */
    const char *adapter_key;     /* NULL = "socket.io" */
    const char *namespaces;      /* as the gateway's `namespaces` option: a comma list, or "*" */
    uint64_t seed;               /* random bits (uids); 0 = from getrandom */
    /* publishOnSpecificResponseChannel (PROTOCOL.md 3.8): answers go to
     * `<key>-response#<nsp>#<requesterUid>#` instead of the shared channel. Default false. */
    bool specific_response_channel;
    /* Under `namespaces *` the channels of a namespace are only known once it comes to exist
     * (cluster_nsp_open): they are then added to the shared subscriber connection through this
     * hook (wire it to subscriber_add with SUBSCRIBER_CHANNEL), and removed with
     * unsubscribe_cb when it goes (cluster_nsp_close). Return SIOC_OK or an error (logged).
     * NULL: such namespaces receive broadcasts (the "*" pattern) but answer no requests. Not
     * used with a namespace list. */
    int (*subscribe_cb)(void *ctx, const char *channel);
    int (*unsubscribe_cb)(void *ctx, const char *channel);
    void *subscribe_ctx;
    /* `adapter sharded` (DESIGN.md §2; gateway/cluster_sharded.c): the createShardedAdapter
     * format over Redis 7 sharded pub/sub instead of the classic channels: no patterns or
     * classic channels then; per namespace `<key>#<nsp>#`, and in the dynamic modes one
     * `<key>#<nsp>#<room>#` per room with local members (cluster_on_room_change), go through
     * shard_cb (wire it to subscriber_add/_remove; ctx subscribe_ctx; required when sharded). */
    bool sharded;
    enum cluster_sub_mode sub_mode;
    int (*shard_cb)(void *ctx, const char *channel, bool subscribe);
};

/* Creates the cluster: one uid per listed namespace, its channel names, its metrics
 * (sioc_broadcasts_*, sioc_adapter_*) and a COMMAND link to cfg->redis_url (nothing connects
 * before the loop runs). `srv`, `log` (may be NULL), `metrics` and `base` are borrowed and must
 * outlive the cluster. NULL when out of memory, on a bad URL or namespaces list, or when the
 * metrics cannot be registered. */
struct cluster *cluster_new(struct event_base *base, const struct cluster_config *cfg,
                            struct sio_server *srv, struct log *log, struct metrics *metrics);
/* Frees everything, pending ack broadcasts included (their late client acks are then lost: free
 * the sio_server first). Must not be called from inside a redis_link callback. NULL is a no-op. */
void cluster_free(struct cluster *c);
/* The PSUBSCRIBE patterns to read (valid while c lives): one per namespace, or one for all. */
size_t cluster_patterns(const struct cluster *c, const char *const **patterns);
/* The plain channels to SUBSCRIBE on the same connection: per listed namespace the request
 * channel, the shared response channel and this node's specific response channel (valid while
 * c lives). None under "*" (see subscribe_cb). */
size_t cluster_channels(const struct cluster *c, const char *const **channels);
/* A message on one of the patterns or channels (ctx is the cluster; pattern.len == 0 for a
 * plain channel). Slices valid during the call. Malformed input is counted and logged. */
void cluster_on_message(void *ctx, struct slice pattern, struct slice channel,
                        struct slice payload);
/* Under "*" (the sio_server on_namespace hook): namespace name[0..len) is about to exist. It
 * gets a uid and its request/response channels are subscribed (subscribe_cb). Returns SIOC_OK
 * (also when it is followed already, or without "*"), SIOC_ETOOBIG beyond
 * CLUSTER_MAX_NAMESPACES, or another error: then the namespace must not be served, since Node
 * peers would skip this gateway in its requests. */
int cluster_nsp_open(struct cluster *c, const char *name, size_t len);
/* Under "*": the namespace is gone; its channels are unsubscribed (unsubscribe_cb), its pending
 * ack broadcasts dropped and its entry freed. No-op for a namespace not followed. */
void cluster_nsp_close(struct cluster *c, const char *name, size_t len);
/* Sharded: SSUBSCRIBEs the channel of every listed namespace (call once, after the subscriber
 * that shard_cb feeds exists). Returns SIOC_OK or the first shard_cb error. No-op otherwise. */
int cluster_start(struct cluster *c);
/* The sio_server on_room_change hook (ctx: the cluster; NULL is a no-op): with adapter sharded
 * in a dynamic mode, a room that came to exist locally gets its channel SSUBSCRIBEd, and a room
 * that went away SUNSUBSCRIBEd (cluster_msg_room_subscribed says which rooms). */
void cluster_on_room_change(void *ctx, const char *nsp, size_t nsp_len, const uint8_t *room,
                            size_t len, bool created, bool is_socket_id);
/* The uid of namespace `nsp` (6 chars, NUL-terminated, valid while c lives), or NULL when the
 * cluster does not follow it (yet). For tests and logs. */
const char *cluster_uid(const struct cluster *c, const char *nsp);

#endif
