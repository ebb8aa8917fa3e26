/* mirror.h: the registry consumer (DESIGN.md §3.4): reads P:registry with consumer group
 * `broker`, applies each entry to the mirror with one atomic script (scripts.h) and acknowledges
 * it afterwards, so a broker killed at any point re-reads its unacknowledged entries on restart
 * and re-applies them harmlessly (per-node epoch and seq make applying idempotent). */
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
/* Called by the owner when the reader link (re)connects: (re)creates the group and re-reads the
 * entries delivered but not acknowledged. */
void bk_mirror_on_connected(struct bk_mirror *m);

#endif
