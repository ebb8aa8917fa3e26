/* namemap.h: an intrusive hash table from byte-string names (Socket.IO namespaces, PROTOCOL.md
 * §2) to the structs that embed a struct namemap_node, on the hashtab.h core. Like idmap.h, but
 * the name has any length and stays in the owner's memory (the node points at it). No
 * allocation per entry; the table doubles as it fills. Names are hashed with a caller-given seed,
 * since clients choose them. */
#ifndef SIOC_NAMEMAP_H
#define SIOC_NAMEMAP_H

#include <stddef.h>
#include <stdint.h>

#include "common/hashtab.h"

struct namemap_node {
    struct hashtab_link link;
    const uint8_t *name; /* the owner's bytes: valid while the node is in a table */
    size_t len;
};

struct namemap {
    struct hashtab table;
};

/* Returns SIOC_OK or SIOC_ENOMEM. */
int namemap_init(struct namemap *m, uint64_t seed);
/* Frees the table (not the entries). */
void namemap_deinit(struct namemap *m);
/* Inserts `node` under name[0..len), which must stay valid and unchanged while the node is in
 * the table and must not be present yet (asserted). Never fails: when growing the table fails,
 * chains just get longer. */
void namemap_insert(struct namemap *m, struct namemap_node *node, const void *name, size_t len);
/* The node with this name, or NULL. */
struct namemap_node *namemap_find(const struct namemap *m, const void *name, size_t len);
/* Removes a node that is in the table. */
void namemap_remove(struct namemap *m, struct namemap_node *node);

#endif
