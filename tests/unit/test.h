/* test.h: the unit-test harness (header-only, one test program per module).
 * A test program defines `static void test_x(void)` functions, runs each with RUN(test_x) from
 * main, and returns test_summary(). A case fails if any CHECK in it fails; the last line printed
 * is "<program>: N passed, M failed", which tests/run.sh adds up.
 * test_guard_copy() places input so that its last byte touches an unreadable page: a parser that
 * reads one byte too far crashes instead of passing by luck (the picohttpparser trick). */
#ifndef SIOC_TEST_H
#define SIOC_TEST_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct test_state {
    const char *current;
    int case_failures;
    int passed;
    int failed;
};

static struct test_state test_state;

static inline void test_fail(const char *file, int line, const char *what)
{
    if (test_state.case_failures < 10)
        fprintf(stderr, "%s:%d: %s: check failed: %s\n", file, line, test_state.current, what);
    test_state.case_failures++;
}

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            test_fail(__FILE__, __LINE__, #cond);                                                  \
    } while (0)

/* Compares two byte ranges, printing both (escaped) on mismatch. */
#define CHECK_MEM(a, alen, b, blen) test_check_mem(__FILE__, __LINE__, (a), (alen), (b), (blen))
#define CHECK_STR(a, alen, s) test_check_mem(__FILE__, __LINE__, (a), (alen), (s), strlen(s))

static inline void test_print_escaped(const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n && i < 400; i++) {
        if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\\')
            fputc(s[i], stderr);
        else
            fprintf(stderr, "\\x%02x", s[i]);
    }
    if (n > 400)
        fprintf(stderr, "...(%zu bytes)", n);
}

static inline void test_check_mem(const char *file, int line, const void *a, size_t alen,
                                  const void *b, size_t blen)
{
    if (alen == blen && (alen == 0 || memcmp(a, b, alen) == 0))
        return;
    if (test_state.case_failures < 10) {
        fprintf(stderr, "%s:%d: %s: bytes differ\n  got:  \"", file, line, test_state.current);
        test_print_escaped(a, alen);
        fprintf(stderr, "\"\n  want: \"");
        test_print_escaped(b, blen);
        fprintf(stderr, "\"\n");
    }
    test_state.case_failures++;
}

#define RUN(fn) test_run(#fn, fn)

static inline void test_run(const char *name, void (*fn)(void))
{
    test_state.current = name;
    test_state.case_failures = 0;
    fn();
    if (test_state.case_failures == 0) {
        test_state.passed++;
    } else {
        test_state.failed++;
        fprintf(stderr, "FAIL %s (%d failed checks)\n", name, test_state.case_failures);
    }
}

static inline int test_summary(const char *program)
{
    printf("%s: %d passed, %d failed\n", program, test_state.passed, test_state.failed);
    return test_state.failed == 0 ? 0 : 1;
}

/* Copies p[0..n) so that it ends exactly at an unreadable page. Free with test_guard_free. */
static inline uint8_t *test_guard_copy(const void *p, size_t n, size_t *map_len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t data_pages = (n + page - 1) / page;
    if (data_pages == 0)
        data_pages = 1;
    *map_len = (data_pages + 1) * page;
    uint8_t *base =
        mmap(NULL, *map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) {
        perror("mmap");
        exit(2);
    }
    mprotect(base + data_pages * page, page, PROT_NONE);
    uint8_t *start = base + data_pages * page - n;
    if (n > 0)
        memcpy(start, p, n);
    return start;
}

static inline void test_guard_free(uint8_t *start, size_t n, size_t map_len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uint8_t *end = start + n;
    uint8_t *base = (uint8_t *)(((uintptr_t)end + page - 1) / page * page) - (map_len - page);
    if (n == 0)
        base = start - (map_len - page);
    munmap(base, map_len);
}

/* Decodes hex text ("93 a6 6c50" style: spaces between bytes allowed) into out; returns the
 * byte count. For vectors written as hex in tests. */
static inline size_t test_unhex(const char *hex, uint8_t *out)
{
    size_t n = 0;
    for (const char *s = hex; s[0] && s[1];) {
        if (s[0] == ' ') {
            s++;
            continue;
        }
        unsigned v;
        if (sscanf(s, "%2x", &v) != 1)
            break;
        out[n++] = (uint8_t)v;
        s += 2;
    }
    return n;
}

/* Reads a whole file (for data-driven tests); returns NULL if it cannot. Caller frees. */
static inline uint8_t *test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 4096, n = 0;
    uint8_t *data = malloc(cap);
    size_t got;
    while (data != NULL && (got = fread(data + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            cap *= 2;
            uint8_t *grown = realloc(data, cap);
            if (grown == NULL)
                free(data);
            data = grown;
        }
    }
    fclose(f);
    *len = n;
    return data;
}

/* Directory of the shared data (../shared/data beside the checkout), overridable with
 * SIOC_SHARED_DATA. */
static inline const char *test_shared_data(void)
{
    const char *env = getenv("SIOC_SHARED_DATA");
    return env != NULL ? env : "../shared/data";
}

#endif
