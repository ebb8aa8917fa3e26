/* lg_hist.c: the load generator's log-linear latency histogram (see lg_hist.h). */
#include "tests/bench/lg_hist.h"

#include <string.h>

static unsigned bucket_of(uint64_t v)
{
    if (v < 2 * LG_HIST_SUB)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - LG_HIST_SUB_BITS;
    /* v >> shift lies in [SUB, 2*SUB): the linear position inside this power of two. */
    return 2 * LG_HIST_SUB + (shift - 1) * LG_HIST_SUB + (unsigned)((v >> shift) - LG_HIST_SUB);
}

static uint64_t bucket_mid(unsigned b)
{
    if (b < 2 * LG_HIST_SUB)
        return b;
    unsigned shift = (b - 2 * LG_HIST_SUB) / LG_HIST_SUB + 1;
    uint64_t sub = (b - 2 * LG_HIST_SUB) % LG_HIST_SUB + LG_HIST_SUB;
    return (sub << shift) + (((uint64_t)1 << shift) >> 1);
}

void lg_hist_reset(struct lg_hist *h)
{
    memset(h, 0, sizeof *h);
}

void lg_hist_record(struct lg_hist *h, uint64_t v)
{
    h->buckets[bucket_of(v)]++;
    h->count++;
    h->sum += v;
    if (v > h->max)
        h->max = v;
}

void lg_hist_merge(struct lg_hist *dst, const struct lg_hist *src)
{
    for (unsigned i = 0; i < LG_HIST_BUCKETS; i++)
        dst->buckets[i] += src->buckets[i];
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->max > dst->max)
        dst->max = src->max;
}

uint64_t lg_hist_quantile(const struct lg_hist *h, double q)
{
    if (h->count == 0)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)h->count);
    if (rank >= h->count)
        rank = h->count - 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < LG_HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen > rank) {
            uint64_t mid = bucket_mid(i);
            return mid > h->max ? h->max : mid;
        }
    }
    return h->max;
}
