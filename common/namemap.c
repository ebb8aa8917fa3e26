/* namemap.c: byte-string names on the hashtab core (see namemap.h). */
#include "common/namemap.h"

#include <assert.h>
#include <string.h>

int namemap_init(struct namemap *m, uint64_t seed)
{
    return hashtab_init(&m->table, 16, seed);
}

void namemap_deinit(struct namemap *m)
{
    hashtab_deinit(&m->table);
}

void namemap_insert(struct namemap *m, struct namemap_node *node, const void *name, size_t len)
{
    assert(namemap_find(m, name, len) == NULL);
    node->name = name;
    node->len = len;
    node->link.hash = hashtab_hash(&m->table, name, len);
    hashtab_insert(&m->table, &node->link);
}

struct namemap_node *namemap_find(const struct namemap *m, const void *name, size_t len)
{
    uint64_t h = hashtab_hash(&m->table, name, len);
    for (struct hashtab_link *l = hashtab_chain(&m->table, h); l != NULL; l = l->next) {
        struct namemap_node *n = (struct namemap_node *)l; /* link is the first member */
        if (l->hash == h && n->len == len && (len == 0 || memcmp(n->name, name, len) == 0))
            return n;
    }
    return NULL;
}

void namemap_remove(struct namemap *m, struct namemap_node *node)
{
    hashtab_remove(&m->table, &node->link);
}
