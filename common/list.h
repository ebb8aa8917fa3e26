/* list.h: the one intrusive doubly linked list of sioc (as the Linux kernel's list_head and
 * libuv's queue): a struct that can be on a list embeds a `struct list_node`; the owner keeps
 * a `struct list_node` head; the list is circular through the head, so insert, remove and
 * "first" are O(1) with no special case for the ends. container_of (common/container.h) gets
 * from a node back to its struct. Pure, header only.
 *
 * A head must be list_init'ed before use (it points at itself when empty) and must not be
 * copied or moved while anything is linked. A node that was zero-initialised (calloc) or
 * list_remove'd is "in no list": list_linked is false and list_remove is a no-op on it. */
#ifndef SIOC_LIST_H
#define SIOC_LIST_H

#include <stdbool.h>
#include <stddef.h>

#include "common/container.h"

struct list_node {
    struct list_node *prev, *next; /* NULL, NULL when in no list */
};

static inline void list_init(struct list_node *head)
{
    head->prev = head->next = head;
}

static inline bool list_empty(const struct list_node *head)
{
    return head->next == head;
}

/* True when `n` is on a list (not for heads). */
static inline bool list_linked(const struct list_node *n)
{
    return n->next != NULL;
}

/* Links `n` (in no list) right before `at`: at the tail when `at` is the head. */
static inline void list_insert_before(struct list_node *at, struct list_node *n)
{
    n->prev = at->prev;
    n->next = at;
    at->prev->next = n;
    at->prev = n;
}

static inline void list_push_tail(struct list_node *head, struct list_node *n)
{
    list_insert_before(head, n);
}

static inline void list_push_head(struct list_node *head, struct list_node *n)
{
    list_insert_before(head->next, n);
}

/* Unlinks `n`; a no-op when it is in no list. */
static inline void list_remove(struct list_node *n)
{
    if (n->next == NULL)
        return;
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = NULL;
}

/* The first node, or NULL when the list is empty. */
static inline struct list_node *list_first(const struct list_node *head)
{
    return head->next != head ? head->next : NULL;
}

/* Moves every node of `src` to the tail of `dst` in order; `src` is left empty. */
static inline void list_splice_tail(struct list_node *dst, struct list_node *src)
{
    if (list_empty(src))
        return;
    src->next->prev = dst->prev;
    dst->prev->next = src->next;
    src->prev->next = dst;
    dst->prev = src->prev;
    list_init(src);
}

/* The struct of `type` whose member `member` is the node `n` (NULL for NULL). */
#define list_entry(n, type, member) container_of_or_null(n, type, member)

/* Every node of `head` in order; the body may list_remove (or free) `pos`, not its successor.
 * `tmp` is a struct list_node * the loop uses. */
#define list_for_each_safe(pos, tmp, head)                                                         \
    for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head);                               \
         (pos) = (tmp), (tmp) = (pos)->next)

#endif
