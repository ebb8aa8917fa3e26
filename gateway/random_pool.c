/* random_pool.c: see random_pool.h. */
#include "gateway/random_pool.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <string.h>

void random_pool_init(struct random_pool *p)
{
    p->used = RANDOM_POOL_BYTES;
}

bool random_pool_take(struct random_pool *p, void *out, size_t n)
{
    if (n > RANDOM_POOL_BYTES)
        return false;
    if (RANDOM_POOL_BYTES - p->used < n) {
        if (RAND_bytes(p->buf, (int)sizeof p->buf) != 1)
            return false;
        p->used = 0;
    }
    memcpy(out, p->buf + p->used, n);
    OPENSSL_cleanse(p->buf + p->used, n); /* handed out once: nothing left to read back */
    p->used += n;
    return true;
}

void random_pool_wipe(struct random_pool *p)
{
    OPENSSL_cleanse(p->buf, sizeof p->buf);
    p->used = RANDOM_POOL_BYTES;
}
