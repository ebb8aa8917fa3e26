/* ossl_mem.h: the bytes OpenSSL holds in this process, counted through CRYPTO_set_mem_functions
 * (header-only; used by tests/net/test_tls.c and tests/bench/tls_mem.c). Each block carries its
 * size in a 16-byte header (16 keeps OpenSSL's alignment), so free and realloc can count too.
 * ossl_mem_count_start must run before anything else calls OpenSSL. One counter a process (the
 * hooks get no context); a forked child inherits it. */
#ifndef SIOC_TESTS_OSSL_MEM_H
#define SIOC_TESTS_OSSL_MEM_H

#include <openssl/crypto.h>
#include <stdlib.h>

#define OSSL_MEM_HEADER 16

static long long ossl_mem_live; /* OpenSSL's live bytes (headers not counted) */

static inline void *ossl_mem_malloc(size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    size_t *p = malloc(n + OSSL_MEM_HEADER);
    if (p == NULL)
        return NULL;
    p[0] = n;
    ossl_mem_live += (long long)n;
    return (char *)p + OSSL_MEM_HEADER;
}

static inline void ossl_mem_free(void *q, const char *file, int line)
{
    (void)file;
    (void)line;
    if (q == NULL)
        return;
    size_t *p = (size_t *)(void *)((char *)q - OSSL_MEM_HEADER);
    ossl_mem_live -= (long long)p[0];
    free(p);
}

static inline void *ossl_mem_realloc(void *q, size_t n, const char *file, int line)
{
    if (q == NULL)
        return ossl_mem_malloc(n, file, line);
    size_t *p = (size_t *)(void *)((char *)q - OSSL_MEM_HEADER);
    long long old = (long long)p[0];
    size_t *r = realloc(p, n + OSSL_MEM_HEADER);
    if (r == NULL)
        return NULL;
    r[0] = n;
    ossl_mem_live += (long long)n - old;
    return (char *)r + OSSL_MEM_HEADER;
}

/* Installs the counting hooks; returns CRYPTO_set_mem_functions's answer (0: too late, OpenSSL
 * has allocated already). */
static inline int ossl_mem_count_start(void)
{
    return CRYPTO_set_mem_functions(ossl_mem_malloc, ossl_mem_realloc, ossl_mem_free);
}

#endif
