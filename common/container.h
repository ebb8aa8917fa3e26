/* container.h: the one way sioc gets from an embedded member (a deadline node, a hash-table
 * link, an id-table node) back to the struct that embeds it. Pure. */
#ifndef SIOC_CONTAINER_H
#define SIOC_CONTAINER_H

#include <stddef.h>

/* The struct of type `type` that embeds `*ptr` as its member `member`. ptr must not be NULL
 * (use container_of_or_null for a lookup that may miss). */
#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))
/* The same, NULL for NULL. */
#define container_of_or_null(ptr, type, member)                                                    \
    ((ptr) != NULL ? container_of(ptr, type, member) : (type *)NULL)

#endif
