/* timer_heap.h: an intrusive binary min-heap of deadlines, for timeouts whose duration varies
 * per item (a JWT's `exp`, a broadcast's `timeout` flag, an API call's timeout), so that all the
 * items of one owner share one event-loop timer. sioc's rule for timeouts: one fixed duration
 * per kind goes in a FIFO deadline list (common/deadline.h, O(1)); a duration chosen per item
 * goes in a timer heap (O(log n)); either way one timer per owner (common/net/deadline_timer.h),
 * never one per item. Pure: times are passed in, in whatever clock the owner picks (one per heap).
 *
 * The item embeds a `struct timer_heap_node`; the heap holds pointers to nodes, so the item must
 * not move while linked, and it leaves the heap by timer_heap_remove (when it ends early) or
 * timer_heap_pop_expired (when its deadline passed). The heap never holds an item that ended:
 * its size is the number of items waiting, which the owner bounds. Ties expire in push order. */
#ifndef SIOC_TIMER_HEAP_H
#define SIOC_TIMER_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Embedded in the struct that waits; zero-initialised means "in no heap". */
struct timer_heap_node {
    uint64_t at_ms;
    uint64_t seq;    /* push order, breaks ties */
    size_t position; /* index in the heap + 1; 0 when not linked */
};

/* Zero-initialised (or timer_heap_init'ed) is an empty heap. */
struct timer_heap {
    struct timer_heap_node **nodes;
    size_t len, cap;
    uint64_t pushes;
};

void timer_heap_init(struct timer_heap *h);
/* Frees the heap's array; the nodes are the owner's and are left as they are. */
void timer_heap_deinit(struct timer_heap *h);
/* Links `n` with deadline `at_ms` (first unlinking it when it is in `h`: a reschedule, which
 * allocates nothing). Returns SIOC_OK, or SIOC_ENOMEM with `n` then in no heap. O(log n). */
int timer_heap_push(struct timer_heap *h, struct timer_heap_node *n, uint64_t at_ms);
/* Unlinks `n` from `h` (it must be in `h` or in no heap); a no-op when in none. O(log n). */
void timer_heap_remove(struct timer_heap *h, struct timer_heap_node *n);
static inline bool timer_heap_linked(const struct timer_heap_node *n)
{
    return n->position != 0;
}
/* The node with the earliest deadline, unlinked, if that deadline is <= now_ms; else NULL. */
struct timer_heap_node *timer_heap_pop_expired(struct timer_heap *h, uint64_t now_ms);
/* The earliest deadline in `h`, or UINT64_MAX when it is empty. O(1). */
uint64_t timer_heap_next(const struct timer_heap *h);
static inline size_t timer_heap_len(const struct timer_heap *h)
{
    return h->len;
}

#endif
