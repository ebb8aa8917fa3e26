/* idmap.c: chained intrusive hash table of 20-character ids (see idmap.h). */
#include "common/idmap.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

static uint64_t hash_id(uint64_t seed, const char *id)
{
    uint64_t h = 14695981039346656037ull ^ seed;
    for (size_t i = 0; i < IDMAP_ID_LEN; i++) {
        h ^= (uint8_t)id[i];
        h *= 1099511628211ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    return h ^ (h >> 33);
}

int idmap_init(struct idmap *m, uint64_t seed)
{
    m->bucket_count = 64;
    m->count = 0;
    m->seed = seed;
    m->buckets = calloc(m->bucket_count, sizeof *m->buckets);
    return m->buckets != NULL ? SIOC_OK : SIOC_ENOMEM;
}

void idmap_deinit(struct idmap *m)
{
    free(m->buckets);
    m->buckets = NULL;
    m->bucket_count = m->count = 0;
}

static void grow(struct idmap *m)
{
    size_t count = m->bucket_count * 2;
    struct idmap_node **buckets = calloc(count, sizeof *buckets);
    if (buckets == NULL)
        return;
    for (size_t i = 0; i < m->bucket_count; i++) {
        struct idmap_node *n = m->buckets[i];
        while (n != NULL) {
            struct idmap_node *next = n->next;
            n->next = buckets[n->hash & (count - 1)];
            buckets[n->hash & (count - 1)] = n;
            n = next;
        }
    }
    free(m->buckets);
    m->buckets = buckets;
    m->bucket_count = count;
}

void idmap_insert(struct idmap *m, struct idmap_node *node, const char *id)
{
    assert(idmap_find(m, id, IDMAP_ID_LEN) == NULL);
    memcpy(node->id, id, IDMAP_ID_LEN);
    node->id[IDMAP_ID_LEN] = '\0';
    node->hash = hash_id(m->seed, id);
    struct idmap_node **b = &m->buckets[node->hash & (m->bucket_count - 1)];
    node->next = *b;
    *b = node;
    if (++m->count > m->bucket_count)
        grow(m);
}

struct idmap_node *idmap_find(const struct idmap *m, const char *id, size_t len)
{
    if (len != IDMAP_ID_LEN)
        return NULL;
    uint64_t h = hash_id(m->seed, id);
    for (struct idmap_node *n = m->buckets[h & (m->bucket_count - 1)]; n != NULL; n = n->next) {
        if (n->hash == h && memcmp(n->id, id, IDMAP_ID_LEN) == 0)
            return n;
    }
    return NULL;
}

void idmap_remove(struct idmap *m, struct idmap_node *node)
{
    struct idmap_node **pp = &m->buckets[node->hash & (m->bucket_count - 1)];
    while (*pp != node)
        pp = &(*pp)->next;
    *pp = node->next;
    m->count--;
}
