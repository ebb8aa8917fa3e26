/* registry.h: the gateway's side of the cluster registry (DESIGN.md §3.4): a boot epoch, a
 * heartbeat every 2 s (`P:hb:<node>` = epoch with PX node-timeout, `P:nodes` node → info), and
 * one `P:registry` stream entry per membership change (connect, join, leave, disconnect) with a
 * per-epoch sequence number, written in order through its own Redis connection (queued while
 * Redis is down). The broker turns these into the mirror other services read. */
#ifndef SIOC_GATEWAY_REGISTRY_H
#define SIOC_GATEWAY_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/sio_server.h"

struct event_base;
struct log;
struct metrics;
struct registry;

struct registry_config {
    const char *redis_url;
    struct redis_tls *redis_tls; /* rediss:// URLs: borrowed, outlives the registry */
    const char *key_prefix;      /* NULL = "sioc" */
    const char *node_id;         /* required */
    const char *address;         /* the listen address, for P:nodes */
    unsigned node_timeout_ms;    /* heartbeat key lifetime; 0 = 6000 */
    unsigned heartbeat_ms;       /* 0 = 2000, or node_timeout_ms / 3 when that is shorter */
    uint64_t seed;               /* random bits: the epoch */
    /* The broker declared this node's epoch lost (it is in P:bk:retired:<node>, checked with
     * every heartbeat) although the node lives, e.g. after a partition between this gateway
     * and Redis: the registry has already moved to a fresh epoch (heartbeat first); the owner
     * must close every session with a reconnect-friendly close, so that what workers were told
     * (`node lost`) is what clients see. `old_epoch` and `new_epoch` are valid during the call.
     * May be NULL. */
    void (*on_epoch_reaped)(void *ctx, const char *old_epoch, const char *new_epoch);
    void *ctx;
};

/* Starts the heartbeat (from the loop). NULL on a bad URL or out of memory. */
struct registry *registry_new(struct event_base *base, const struct registry_config *cfg,
                              struct sio_server *srv, struct log *log, struct metrics *metrics);
/* Stops heartbeating and frees; entries not yet written are dropped (the broker learns about
 * the node's end from its heartbeat expiring). NULL is a no-op. */
void registry_free(struct registry *r);
/* The address for P:nodes from now on ("host:port", copied), e.g. once the listener is bound
 * and a configured port 0 became a real one. Returns SIOC_OK or SIOC_ENOMEM (the old one stays). */
int registry_set_address(struct registry *r, const char *address);
/* The current epoch (16 hex digits, NUL-terminated; valid until the next epoch change). */
const char *registry_epoch(const struct registry *r);

/* The membership changes, called from the gateway's sio_server callbacks. */
void registry_on_accepted(struct registry *r, struct sio_socket *sock);
void registry_on_room(struct registry *r, struct sio_socket *sock, const uint8_t *room, size_t len,
                      bool joined);
/* Must be called while the socket's rooms are still readable (sio_server's on_disconnect). */
void registry_on_disconnect(struct registry *r, struct sio_socket *sock);
/* Appends a full snapshot of this node's sockets (the broker's anti-entropy, broker/README.md):
 * op=snapshot sid="*" uid="begin", one op=snapshot entry per socket with its rooms, then
 * sid="*" uid="end". Also done by itself after every Redis reconnect. */
void registry_snapshot(struct registry *r);
/* Entries not yet confirmed by Redis (for the SIGTERM drain). */
size_t registry_pending(const struct registry *r);

#endif
