/* idmap.c: 20-character ids on the hashtab core (see idmap.h). */
#include "common/idmap.h"

#include <assert.h>
#include <string.h>

int idmap_init(struct idmap *m, uint64_t seed)
{
    return hashtab_init(&m->table, 64, seed);
}

void idmap_deinit(struct idmap *m)
{
    hashtab_deinit(&m->table);
}

void idmap_insert(struct idmap *m, struct idmap_node *node, const char *id)
{
    assert(idmap_find(m, id, IDMAP_ID_LEN) == NULL);
    memcpy(node->id, id, IDMAP_ID_LEN);
    node->id[IDMAP_ID_LEN] = '\0';
    node->link.hash = hashtab_hash(&m->table, id, IDMAP_ID_LEN);
    hashtab_insert(&m->table, &node->link);
}

struct idmap_node *idmap_find(const struct idmap *m, const char *id, size_t len)
{
    if (len != IDMAP_ID_LEN)
        return NULL;
    uint64_t h = hashtab_hash(&m->table, id, IDMAP_ID_LEN);
    for (struct hashtab_link *l = hashtab_chain(&m->table, h); l != NULL; l = l->next) {
        struct idmap_node *n = (struct idmap_node *)l; /* link is the first member */
        if (l->hash == h && memcmp(n->id, id, IDMAP_ID_LEN) == 0)
            return n;
    }
    return NULL;
}

void idmap_remove(struct idmap *m, struct idmap_node *node)
{
    hashtab_remove(&m->table, &node->link);
}
