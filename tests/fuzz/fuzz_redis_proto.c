/* fuzz_redis_proto.c: libFuzzer target for common/redis_proto. The input, NUL-terminated, is
 * parsed as a redis://, rediss:// or redis[s]-cluster:// URL: a success must give a non-empty host,
 * a port in 1..65535, a db in 0..1000000, strings inside the struct's storage and free of NULs, and
 * re-parsing the same text must give the same result. The input split on 0x00 bytes is also encoded
 * as a RESP command, whose size must stay within redis_command_bound and whose framing must read
 * back to the same arguments. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/redis_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_redis_proto: %s:%d: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void check_string(const struct redis_url *u, const char *s)
{
    if (s == NULL)
        return;
    REQUIRE(s >= u->storage && s < u->storage + sizeof u->storage);
    REQUIRE(memchr(s, '\0', (size_t)(u->storage + sizeof u->storage - s)) != NULL);
}

static void fuzz_url(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    REQUIRE(text != NULL);
    memcpy(text, data, size);
    text[size] = '\0';
    struct redis_url a, b;
    int rc = redis_url_parse(text, &a);
    REQUIRE(rc == SIOC_OK || rc == SIOC_EINVAL);
    REQUIRE(redis_url_parse(text, &b) == rc);
    if (rc == SIOC_OK) {
        REQUIRE(a.host != NULL && a.host[0] != '\0');
        REQUIRE(a.port >= 1 && a.port <= 65535 && a.db >= 0 && a.db <= 1000000);
        check_string(&a, a.host);
        check_string(&a, a.user);
        check_string(&a, a.password);
        REQUIRE(strcmp(a.host, b.host) == 0 && a.port == b.port && a.db == b.db);
        /* TLS exactly for the rediss:// schemes, seeds exactly for the cluster ones */
        bool cluster = strncmp(text, "redis-cluster://", 16) == 0 ||
                       strncmp(text, "rediss-cluster://", 17) == 0;
        REQUIRE(a.tls == b.tls && a.tls == (strncmp(text, "rediss://", 9) == 0 ||
                                            strncmp(text, "rediss-cluster://", 17) == 0));
        REQUIRE(a.cluster == cluster && a.nseeds >= 1 && a.nseeds <= REDIS_URL_MAX_SEEDS);
        REQUIRE(cluster || a.nseeds == 1);
        REQUIRE(a.host == a.seeds[0].host && a.port == a.seeds[0].port && (!cluster || a.db == 0));
        for (int i = 0; i < a.nseeds; i++) {
            check_string(&a, a.seeds[i].host);
            REQUIRE(a.seeds[i].host[0] != '\0' && a.seeds[i].port >= 1 && a.seeds[i].port <= 65535);
        }
    }
    free(text);
}

/* Reads "<kind><digits>\r\n" at p[*off]; returns the number or -1. */
static long read_header(const char *p, size_t len, size_t *off, char kind)
{
    if (*off >= len || p[*off] != kind)
        return -1;
    long n = 0;
    size_t i = *off + 1;
    while (i < len && p[i] >= '0' && p[i] <= '9')
        n = n * 10 + (p[i++] - '0');
    if (i + 1 >= len || p[i] != '\r' || p[i + 1] != '\n')
        return -1;
    *off = i + 2;
    return n;
}

static void fuzz_command(const uint8_t *data, size_t size)
{
    const char *argv[64];
    size_t lens[64];
    int argc = 0;
    size_t start = 0;
    for (size_t i = 0; i <= size && argc < 64; i++) {
        if (i == size || data[i] == 0) {
            argv[argc] = (const char *)data + start;
            lens[argc++] = i - start;
            start = i + 1;
        }
    }
    size_t bound = redis_command_bound(argc, lens);
    REQUIRE(bound > 0);
    char *out = malloc(bound);
    REQUIRE(out != NULL);
    size_t n = redis_command_encode(out, argc, argv, lens);
    REQUIRE(n <= bound);
    size_t off = 0;
    REQUIRE(read_header(out, n, &off, '*') == argc);
    for (int i = 0; i < argc; i++) {
        REQUIRE(read_header(out, n, &off, '$') == (long)lens[i]);
        REQUIRE(off + lens[i] + 2 <= n && memcmp(out + off, argv[i], lens[i]) == 0);
        off += lens[i];
        REQUIRE(out[off] == '\r' && out[off + 1] == '\n');
        off += 2;
    }
    REQUIRE(off == n);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_url(data, size);
    fuzz_command(data, size);
    return 0;
}
