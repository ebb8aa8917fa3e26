/* random_pool.h: unpredictable bytes for session and socket ids (PROTOCOL.md 1.3, 2.6) without a
 * system call or a DRBG round per id: OpenSSL's DRBG (RAND_bytes) fills a small buffer, and ids
 * are taken from it. Each byte is handed out once. One pool per owner, no globals. */
#ifndef SIOC_GATEWAY_RANDOM_POOL_H
#define SIOC_GATEWAY_RANDOM_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RANDOM_POOL_BYTES 1024

struct random_pool {
    size_t used; /* bytes of buf already handed out; RANDOM_POOL_BYTES when empty */
    uint8_t buf[RANDOM_POOL_BYTES];
};

/* An empty pool (the first take fills it). */
void random_pool_init(struct random_pool *p);
/* Copies n (<= RANDOM_POOL_BYTES) fresh random bytes to out. False when the DRBG fails. */
bool random_pool_take(struct random_pool *p, void *out, size_t n);
/* Forgets what is buffered (e.g. before the owner is freed). */
void random_pool_wipe(struct random_pool *p);

#endif
