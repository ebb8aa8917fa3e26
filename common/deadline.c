/* deadline.c: FIFO deadline lists (see deadline.h). */
#include "common/deadline.h"

#include "common/clock.h"

#include <stddef.h>
#include <time.h>

void deadline_list_init(struct deadline_list *l, uint64_t timeout_ms)
{
    l->head = l->tail = NULL;
    l->timeout_ms = timeout_ms;
}

void deadline_remove(struct deadline_node *n)
{
    struct deadline_list *l = n->list;
    if (l == NULL)
        return;
    if (n->prev != NULL)
        n->prev->next = n->next;
    else
        l->head = n->next;
    if (n->next != NULL)
        n->next->prev = n->prev;
    else
        l->tail = n->prev;
    n->prev = n->next = NULL;
    n->list = NULL;
}

uint64_t deadline_push(struct deadline_list *l, struct deadline_node *n, uint64_t now_ms)
{
    deadline_remove(n);
    n->at_ms = now_ms + l->timeout_ms;
    n->list = l;
    n->next = NULL;
    n->prev = l->tail;
    if (l->tail != NULL)
        l->tail->next = n;
    else
        l->head = n;
    l->tail = n;
    return n->at_ms;
}

struct deadline_node *deadline_pop_expired(struct deadline_list *l, uint64_t now_ms)
{
    struct deadline_node *n = l->head;
    if (n == NULL || n->at_ms > now_ms)
        return NULL;
    deadline_remove(n);
    return n;
}

uint64_t deadline_next(const struct deadline_list *l)
{
    return l->head != NULL ? l->head->at_ms : UINT64_MAX;
}

uint64_t deadline_clock_ms(void)
{
    return clock_mono_ms();
}
