/* namemap.c: chained intrusive hash table of byte-string names (see namemap.h). */
#include "common/namemap.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

static uint64_t hash_name(uint64_t seed, const uint8_t *p, size_t len)
{
    uint64_t h = 14695981039346656037ull ^ seed;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    h ^= len;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    return h ^ (h >> 33);
}

int namemap_init(struct namemap *m, uint64_t seed)
{
    m->bucket_count = 16;
    m->count = 0;
    m->seed = seed;
    m->buckets = calloc(m->bucket_count, sizeof *m->buckets);
    return m->buckets != NULL ? SIOC_OK : SIOC_ENOMEM;
}

void namemap_deinit(struct namemap *m)
{
    free(m->buckets);
    m->buckets = NULL;
    m->bucket_count = m->count = 0;
}

static void grow(struct namemap *m)
{
    size_t count = m->bucket_count * 2;
    struct namemap_node **buckets = calloc(count, sizeof *buckets);
    if (buckets == NULL)
        return;
    for (size_t i = 0; i < m->bucket_count; i++) {
        struct namemap_node *n = m->buckets[i];
        while (n != NULL) {
            struct namemap_node *next = n->next;
            n->next = buckets[n->hash & (count - 1)];
            buckets[n->hash & (count - 1)] = n;
            n = next;
        }
    }
    free(m->buckets);
    m->buckets = buckets;
    m->bucket_count = count;
}

void namemap_insert(struct namemap *m, struct namemap_node *node, const void *name, size_t len)
{
    assert(namemap_find(m, name, len) == NULL);
    node->name = name;
    node->len = len;
    node->hash = hash_name(m->seed, name, len);
    struct namemap_node **b = &m->buckets[node->hash & (m->bucket_count - 1)];
    node->next = *b;
    *b = node;
    if (++m->count > m->bucket_count)
        grow(m);
}

struct namemap_node *namemap_find(const struct namemap *m, const void *name, size_t len)
{
    uint64_t h = hash_name(m->seed, name, len);
    for (struct namemap_node *n = m->buckets[h & (m->bucket_count - 1)]; n != NULL; n = n->next) {
        if (n->hash == h && n->len == len && (len == 0 || memcmp(n->name, name, len) == 0))
            return n;
    }
    return NULL;
}

void namemap_remove(struct namemap *m, struct namemap_node *node)
{
    struct namemap_node **pp = &m->buckets[node->hash & (m->bucket_count - 1)];
    while (*pp != NULL && *pp != node)
        pp = &(*pp)->next;
    assert(*pp == node);
    if (*pp == node) {
        *pp = node->next;
        m->count--;
    }
    node->next = NULL;
}
