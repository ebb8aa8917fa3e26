/* lg_hist.h: an HDR-style latency histogram for the load generator: log-linear buckets
 * (64 linear sub-buckets per power of two, so every value is kept within ~1.6%), constant-time
 * recording, percentiles read from the bucket midpoints. Values are nanoseconds. */
#ifndef SIOC_LG_HIST_H
#define SIOC_LG_HIST_H

#include <stdint.h>

#define LG_HIST_SUB_BITS 6
#define LG_HIST_SUB (1u << LG_HIST_SUB_BITS)
/* Values below 2*SUB get one bucket each; each higher power of two gets SUB buckets. */
#define LG_HIST_BUCKETS (2 * LG_HIST_SUB + (64 - LG_HIST_SUB_BITS - 1) * LG_HIST_SUB)

struct lg_hist {
    uint64_t count;
    uint64_t max;
    uint64_t sum;
    uint64_t buckets[LG_HIST_BUCKETS];
};

/* Empties the histogram. */
void lg_hist_reset(struct lg_hist *h);
/* Records one value (ns). */
void lg_hist_record(struct lg_hist *h, uint64_t v);
/* Adds every count of `src` to `dst`. */
void lg_hist_merge(struct lg_hist *dst, const struct lg_hist *src);
/* Returns the value (ns) at quantile q in [0, 1]: the midpoint of the bucket holding it, capped
 * at the largest recorded value; 0 when empty. */
uint64_t lg_hist_quantile(const struct lg_hist *h, double q);

#endif
