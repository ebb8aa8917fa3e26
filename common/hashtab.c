/* hashtab.c: the chained intrusive hash table core (see hashtab.h). */
#include "common/hashtab.h"

#include <assert.h>
#include <stdlib.h>

#include "common/error.h"

int hashtab_init(struct hashtab *t, size_t bucket_count, uint64_t seed)
{
    assert(bucket_count > 0 && (bucket_count & (bucket_count - 1)) == 0);
    t->bucket_count = bucket_count;
    t->count = 0;
    t->seed = seed;
    t->buckets = calloc(bucket_count, sizeof *t->buckets);
    return t->buckets != NULL ? SIOC_OK : SIOC_ENOMEM;
}

void hashtab_deinit(struct hashtab *t)
{
    free(t->buckets);
    t->buckets = NULL;
    t->bucket_count = t->count = 0;
}

uint64_t hashtab_hash(const struct hashtab *t, const void *p, size_t len)
{
    const uint8_t *b = p;
    uint64_t h = 14695981039346656037ull ^ t->seed;
    for (size_t i = 0; i < len; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    h ^= len;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    return h ^ (h >> 33);
}

static void grow(struct hashtab *t)
{
    size_t count = t->bucket_count * 2;
    struct hashtab_link **buckets = calloc(count, sizeof *buckets);
    if (buckets == NULL)
        return;
    for (size_t i = 0; i < t->bucket_count; i++) {
        struct hashtab_link *n = t->buckets[i];
        while (n != NULL) {
            struct hashtab_link *next = n->next;
            n->next = buckets[n->hash & (count - 1)];
            buckets[n->hash & (count - 1)] = n;
            n = next;
        }
    }
    free(t->buckets);
    t->buckets = buckets;
    t->bucket_count = count;
}

void hashtab_insert(struct hashtab *t, struct hashtab_link *link)
{
    struct hashtab_link **b = &t->buckets[link->hash & (t->bucket_count - 1)];
    link->next = *b;
    *b = link;
    if (++t->count > t->bucket_count)
        grow(t);
}

struct hashtab_link *hashtab_chain(const struct hashtab *t, uint64_t hash)
{
    return t->buckets[hash & (t->bucket_count - 1)];
}

void hashtab_remove(struct hashtab *t, struct hashtab_link *link)
{
    struct hashtab_link **pp = &t->buckets[link->hash & (t->bucket_count - 1)];
    while (*pp != NULL && *pp != link)
        pp = &(*pp)->next;
    assert(*pp == link);
    if (*pp == link) {
        *pp = link->next;
        t->count--;
    }
    link->next = NULL;
}
