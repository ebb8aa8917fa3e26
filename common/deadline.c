/* deadline.c: FIFO deadline lists (see deadline.h) on common/list.h. */
#include "common/deadline.h"

#include "common/clock.h"

#include <stddef.h>
#include <time.h>

void deadline_list_init(struct deadline_list *l, uint64_t timeout_ms)
{
    list_init(&l->nodes);
    l->timeout_ms = timeout_ms;
}

void deadline_remove(struct deadline_node *n)
{
    list_remove(&n->link);
    n->list = NULL;
}

uint64_t deadline_push(struct deadline_list *l, struct deadline_node *n, uint64_t now_ms)
{
    deadline_remove(n);
    n->at_ms = now_ms + l->timeout_ms;
    n->list = l;
    list_push_tail(&l->nodes, &n->link);
    return n->at_ms;
}

struct deadline_node *deadline_first(const struct deadline_list *l)
{
    return list_entry(list_first(&l->nodes), struct deadline_node, link);
}

struct deadline_node *deadline_pop_expired(struct deadline_list *l, uint64_t now_ms)
{
    struct deadline_node *n = deadline_first(l);
    if (n == NULL || n->at_ms > now_ms)
        return NULL;
    deadline_remove(n);
    return n;
}

uint64_t deadline_next(const struct deadline_list *l)
{
    const struct deadline_node *n = deadline_first(l);
    return n != NULL ? n->at_ms : UINT64_MAX;
}

size_t deadline_count(const struct deadline_list *l)
{
    size_t n = 0;
    for (const struct list_node *p = l->nodes.next; p != &l->nodes; p = p->next)
        n++;
    return n;
}

uint64_t deadline_clock_ms(void)
{
    return clock_mono_ms();
}
