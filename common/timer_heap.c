/* timer_heap.c: an intrusive binary min-heap of deadlines (see timer_heap.h). The array holds
 * node pointers; each node keeps its index so removal from the middle is O(log n). The array
 * doubles when full and halves when a quarter full, so it stays within 4x of what is waiting. */
#include "common/timer_heap.h"

#include <stdlib.h>

#include "common/error.h"

#define TIMER_HEAP_MIN_CAP 16

void timer_heap_init(struct timer_heap *h)
{
    h->nodes = NULL;
    h->len = h->cap = 0;
    h->pushes = 0;
}

void timer_heap_deinit(struct timer_heap *h)
{
    free(h->nodes);
    timer_heap_init(h);
}

static bool earlier(const struct timer_heap_node *a, const struct timer_heap_node *b)
{
    return a->at_ms < b->at_ms || (a->at_ms == b->at_ms && a->seq < b->seq);
}

static void place(struct timer_heap *h, size_t i, struct timer_heap_node *n)
{
    h->nodes[i] = n;
    n->position = i + 1;
}

/* Moves the node at i up to where its parent is earlier; returns its final index. */
static size_t sift_up(struct timer_heap *h, size_t i)
{
    struct timer_heap_node *n = h->nodes[i];
    while (i > 0 && earlier(n, h->nodes[(i - 1) / 2])) {
        place(h, i, h->nodes[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    place(h, i, n);
    return i;
}

static void sift_down(struct timer_heap *h, size_t i)
{
    struct timer_heap_node *n = h->nodes[i];
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = l;
        if (l >= h->len)
            break;
        if (r < h->len && earlier(h->nodes[r], h->nodes[l]))
            m = r;
        if (!earlier(h->nodes[m], n))
            break;
        place(h, i, h->nodes[m]);
        i = m;
    }
    place(h, i, n);
}

/* Halves the array when it is a quarter full (a failed realloc keeps the larger one). */
static void shrink(struct timer_heap *h)
{
    if (h->cap <= TIMER_HEAP_MIN_CAP || h->len > h->cap / 4)
        return;
    struct timer_heap_node **nodes = realloc(h->nodes, h->cap / 2 * sizeof *nodes);
    if (nodes != NULL) {
        h->nodes = nodes;
        h->cap /= 2;
    }
}

void timer_heap_remove(struct timer_heap *h, struct timer_heap_node *n)
{
    if (n->position == 0)
        return;
    size_t i = n->position - 1;
    n->position = 0;
    struct timer_heap_node *last = h->nodes[--h->len];
    if (i < h->len) {
        /* the last node fills the hole, then moves up or down to its place */
        place(h, i, last);
        if (sift_up(h, i) == i)
            sift_down(h, i);
    }
    shrink(h);
}

int timer_heap_push(struct timer_heap *h, struct timer_heap_node *n, uint64_t at_ms)
{
    if (n->position != 0) {
        /* a reschedule: out and back in, so it allocates nothing */
        size_t i = n->position - 1;
        n->at_ms = at_ms;
        n->seq = ++h->pushes;
        if (sift_up(h, i) == i)
            sift_down(h, i);
        return SIOC_OK;
    }
    if (h->len == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : TIMER_HEAP_MIN_CAP;
        struct timer_heap_node **nodes = realloc(h->nodes, cap * sizeof *nodes);
        if (nodes == NULL)
            return SIOC_ENOMEM;
        h->nodes = nodes;
        h->cap = cap;
    }
    n->at_ms = at_ms;
    n->seq = ++h->pushes;
    place(h, h->len++, n);
    sift_up(h, h->len - 1);
    return SIOC_OK;
}

struct timer_heap_node *timer_heap_pop_expired(struct timer_heap *h, uint64_t now_ms)
{
    if (h->len == 0 || h->nodes[0]->at_ms > now_ms)
        return NULL;
    struct timer_heap_node *n = h->nodes[0];
    timer_heap_remove(h, n);
    return n;
}

uint64_t timer_heap_next(const struct timer_heap *h)
{
    return h->len > 0 ? h->nodes[0]->at_ms : UINT64_MAX;
}
