/* counted_list.h: a list (common/list.h) that also keeps how many entries it holds and how
 * many bytes they stand for: the command queues of common/net/redis_link.c and
 * redis_cluster.c, whose byte count is the outage-queue limit and whose counts are reported as
 * stats. Pure, header only.
 *
 * An entry embeds a `struct counted_node` with its size in `bytes`; container_of on the
 * counted_node (or on its `link` while walking `head`) gets back to the entry. `bytes` must not
 * change while the node is linked. A list must be counted_list_init'ed before use and not copied or
 * moved after that. */
#ifndef SIOC_COUNTED_LIST_H
#define SIOC_COUNTED_LIST_H

#include <stddef.h>

#include "common/list.h"

struct counted_node {
    struct list_node link; /* in one counted_list, or in none */
    size_t bytes;          /* what the entry counts for while it is linked */
};

struct counted_list {
    struct list_node head;
    size_t count, bytes; /* of the linked nodes */
};

static inline void counted_list_init(struct counted_list *l)
{
    list_init(&l->head);
    l->count = l->bytes = 0;
}

static inline void counted_list_push_tail(struct counted_list *l, struct counted_node *n)
{
    list_push_tail(&l->head, &n->link);
    l->count++;
    l->bytes += n->bytes;
}

static inline void counted_list_push_head(struct counted_list *l, struct counted_node *n)
{
    list_push_head(&l->head, &n->link);
    l->count++;
    l->bytes += n->bytes;
}

/* Unlinks `n`, which must be linked in `l`. */
static inline void counted_list_remove(struct counted_list *l, struct counted_node *n)
{
    list_remove(&n->link);
    l->count--;
    l->bytes -= n->bytes;
}

/* The first node (still linked), or NULL when `l` is empty. */
static inline struct counted_node *counted_list_first(const struct counted_list *l)
{
    return list_entry(list_first(&l->head), struct counted_node, link);
}

/* The first node, unlinked, or NULL when `l` is empty. */
static inline struct counted_node *counted_list_pop_head(struct counted_list *l)
{
    struct counted_node *n = counted_list_first(l);
    if (n != NULL)
        counted_list_remove(l, n);
    return n;
}

/* Moves every node of `src` in front of those of `dst`, both orders kept; `src` is left
 * empty. */
static inline void counted_list_splice_head(struct counted_list *dst, struct counted_list *src)
{
    list_splice_tail(&src->head, &dst->head); /* src then dst, on src's head */
    list_splice_tail(&dst->head, &src->head); /* all of it back on dst's */
    dst->count += src->count;
    dst->bytes += src->bytes;
    src->count = src->bytes = 0;
}

#endif
