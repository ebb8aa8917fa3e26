/* api_rec.h: what the broker's /v1/emit needs to publish recoverable broadcasts
 * (docs/contracts.md "Connection state recovery, cluster-wide"): the gateways' recovery-window,
 * read from P:rec:window (set by every gateway with recovery on) when created and then every
 * BK_REC_REFRESH_MS, as the Python SDK reads it. 0 = recovery off: emits are published as
 * before. Runs on the broker's loop; uses the broker's cmd link. */
#ifndef SIOC_BROKER_API_REC_H
#define SIOC_BROKER_API_REC_H

struct broker;
struct bk_rec;

#define BK_REC_REFRESH_MS                                                                          \
    2000 /* P:rec:window is re-read this often (the gateways set it every 2 s) */

/* NULL when out of memory. The first read goes out as soon as Redis is connected (checked
 * every BK_REC_REFRESH_MS). */
struct bk_rec *bk_rec_new(struct broker *b);
/* NULL is a no-op; no callback runs afterwards. */
void bk_rec_free(struct bk_rec *r);
/* The last recovery-window read (ms; 0 = off, also before the first answer). A read that
 * fails (Redis error or lost) keeps the previous value. */
unsigned bk_rec_window(const struct bk_rec *r);

#endif
