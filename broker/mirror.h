/* mirror.h: the registry consumer (DESIGN.md §3.4): reads P:registry with consumer group
 * `broker` (consumer = the lease token) while this broker is the active one, applies each entry to
 * the mirror with one atomic script (scripts.h) and acknowledges it afterwards, so a broker killed
 * at any point re-reads its unacknowledged entries on restart and re-applies them harmlessly
 * (per-node epoch and seq make applying idempotent). */
#ifndef SIOC_BROKER_MIRROR_H
#define SIOC_BROKER_MIRROR_H

#include <stdbool.h>

struct broker;
struct bk_mirror;

/* Registers the metrics and starts consuming as soon as the loop runs (b->reader and b->cmd
 * must exist). Returns NULL when out of memory. `b` must outlive the mirror. */
struct bk_mirror *bk_mirror_new(struct broker *b);
/* Stops; pending reply callbacks are cancelled. NULL is a no-op. */
void bk_mirror_free(struct bk_mirror *m);
/* Called by the owner when the reader link (re)connects: (re)creates the group, claims the
 * entries delivered but not acknowledged and re-reads them. Nothing while standing by. */
void bk_mirror_on_connected(struct bk_mirror *m);
/* The lease (lease.h) was taken (true: start consuming, claiming first every consumer's pending
 * entries) or lost (false: the next step finds the lease gone and stops; nothing more is
 * applied or acknowledged). b->lease must be set before the loop runs. */
void bk_mirror_set_active(struct bk_mirror *m, bool active);

#endif
