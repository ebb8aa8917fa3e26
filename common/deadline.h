/* deadline.h: intrusive FIFO lists of deadlines, one fixed timeout per list, so that thousands
 * of connections share one event-loop timer instead of holding one each (DESIGN.md §4: idle
 * connections stay small). Pushing "now + the list's timeout" at the tail keeps a list sorted,
 * so push, remove and "earliest" are O(1). The owner keeps one timer armed for the earliest
 * deadline of its lists and pops what expired when it fires. Pure: times are passed in. */
#ifndef SIOC_DEADLINE_H
#define SIOC_DEADLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/list.h"

struct deadline_list;

/* Embedded in the struct that waits (container_of gets back to it); zero-initialised means
 * "in no list". */
struct deadline_node {
    struct list_node link;      /* in `list`, or in none */
    struct deadline_list *list; /* the list it waits in (which timeout); NULL when in none */
    uint64_t at_ms;
};

/* Must be deadline_list_init'ed before use and not copied or moved after that (its head points
 * at itself: common/list.h). */
struct deadline_list {
    struct list_node nodes; /* earliest deadline first */
    uint64_t timeout_ms;
};

void deadline_list_init(struct deadline_list *l, uint64_t timeout_ms);
/* Links `n` at the tail of `l` with deadline now_ms + l->timeout_ms, first unlinking it from
 * whatever list it was in. Returns the deadline. */
uint64_t deadline_push(struct deadline_list *l, struct deadline_node *n, uint64_t now_ms);
/* Unlinks `n` from its list; a no-op when it is in none. */
void deadline_remove(struct deadline_node *n);
static inline bool deadline_linked(const struct deadline_node *n)
{
    return n->list != NULL;
}
/* The head of `l`, unlinked, if its deadline is <= now_ms; else NULL. */
struct deadline_node *deadline_pop_expired(struct deadline_list *l, uint64_t now_ms);
/* The earliest deadline in `l`, or UINT64_MAX when it is empty. */
uint64_t deadline_next(const struct deadline_list *l);
/* The head of `l` (the earliest deadline), still linked, or NULL when `l` is empty. */
struct deadline_node *deadline_first(const struct deadline_list *l);
/* How many nodes are linked in `l` (walks it: O(n)). */
size_t deadline_count(const struct deadline_list *l);
/* The monotonic clock in milliseconds (CLOCK_MONOTONIC). */
uint64_t deadline_clock_ms(void);

#endif
