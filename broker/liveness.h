/* liveness.h: node liveness and the node-lost disconnects (DESIGN.md §3.4). Every
 * check-interval it runs the liveness script: a node whose P:hb:<node> expired, or that
 * heartbeats with a new epoch, loses its sockets from the mirror, each queued on P:bk:lost in
 * the same atomic step; the queue is then appended to the upstream streams as `disconnect`
 * entries with reason `node lost` and trimmed only afterwards (at-least-once, crash-safe). It
 * also asks a node for a snapshot when its own socket count keeps disagreeing with the mirror. */
#ifndef SIOC_BROKER_LIVENESS_H
#define SIOC_BROKER_LIVENESS_H

#include <stdbool.h>

struct broker;
struct bk_liveness;

/* Registers the metrics and starts the periodic check. Returns NULL when out of memory. */
struct bk_liveness *bk_liveness_new(struct broker *b);
/* NULL is a no-op. */
void bk_liveness_free(struct bk_liveness *l);
/* Appends what P:bk:lost holds to the upstream streams (again later if already running). */
void bk_liveness_drain(struct bk_liveness *l);
/* The broker's command link went down (false) or came up (true) (its on_state_cb). After a
 * drop Redis was away for the broker, so the first check after the reconnection gives every
 * node a fresh node-timeout (docs/contracts.md, Node liveness). NULL is a no-op. */
void bk_liveness_redis_state(struct bk_liveness *l, bool connected);
/* The lease (lease.h) was taken (true) or lost (false). Only the active broker checks and drains;
 * a broker that takes over from another gives every node a fresh node-timeout first, as after
 * an outage (a takeover must not reap live nodes). NULL is a no-op. */
void bk_liveness_set_active(struct bk_liveness *l, bool active);

#endif
