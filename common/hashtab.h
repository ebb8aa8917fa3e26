/* hashtab.h: the core of sioc's intrusive chained hash tables (idmap.h for fixed-length ids,
 * namemap.h for byte-string names). It knows nodes only by their hash: the wrappers hash their
 * keys with hashtab_hash, walk a chain (hashtab_chain) comparing keys, and own no entry memory.
 * The table doubles when it holds more entries than buckets; a failed growth only makes chains
 * longer. Keys are hashed with a caller-given seed, since clients choose them. */
#ifndef SIOC_HASHTAB_H
#define SIOC_HASHTAB_H

#include <stddef.h>
#include <stdint.h>

struct hashtab_link {
    struct hashtab_link *next;
    uint64_t hash;
};

struct hashtab {
    struct hashtab_link **buckets;
    size_t bucket_count; /* a power of two */
    size_t count;
    uint64_t seed;
};

/* bucket_count: the initial number of buckets, a power of two. Returns SIOC_OK or SIOC_ENOMEM. */
int hashtab_init(struct hashtab *t, size_t bucket_count, uint64_t seed);
/* Frees the buckets (not the entries). */
void hashtab_deinit(struct hashtab *t);
/* The seeded hash of p[0..len) (FNV-1a with a final mix). */
uint64_t hashtab_hash(const struct hashtab *t, const void *p, size_t len);
/* Links `link`, whose hash the caller has set, into its chain. */
void hashtab_insert(struct hashtab *t, struct hashtab_link *link);
/* The first link of the chain where entries with this hash live (walk it with ->next). */
struct hashtab_link *hashtab_chain(const struct hashtab *t, uint64_t hash);
/* Unlinks a link that is in the table. */
void hashtab_remove(struct hashtab *t, struct hashtab_link *link);

#endif
