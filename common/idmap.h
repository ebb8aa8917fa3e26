/* idmap.h: an intrusive hash table from 20-character ids (Engine.IO session ids and Socket.IO
 * socket ids, PROTOCOL.md 1.3 / 2.6) to the structs that embed a struct idmap_node, on the
 * hashtab.h core. No allocation per entry; the table doubles as it fills. Ids are hashed with a
 * caller-given seed, since clients choose which ids they send. */
#ifndef SIOC_IDMAP_H
#define SIOC_IDMAP_H

#include <stddef.h>
#include <stdint.h>

#include "common/hashtab.h"

#define IDMAP_ID_LEN 20

struct idmap_node {
    struct hashtab_link link;
    char id[IDMAP_ID_LEN + 1]; /* NUL-terminated, so owners print it instead of keeping a copy */
};

struct idmap {
    struct hashtab table;
};

/* Returns SIOC_OK or SIOC_ENOMEM. */
int idmap_init(struct idmap *m, uint64_t seed);
/* Frees the table (not the entries). */
void idmap_deinit(struct idmap *m);
/* Inserts `node` under id[0..IDMAP_ID_LEN) (copied into the node, NUL-terminated). The id
 * must not be present (asserted). Never fails: when growing the table fails, chains just get
 * longer. */
void idmap_insert(struct idmap *m, struct idmap_node *node, const char *id);
/* The node with this id, or NULL. `len` other than IDMAP_ID_LEN never matches. */
struct idmap_node *idmap_find(const struct idmap *m, const char *id, size_t len);
/* Removes a node that is in the table. */
void idmap_remove(struct idmap *m, struct idmap_node *node);

#endif
