/* test_buf.c: the shared buffer vocabulary (buf.h) and the error names (error.h): appends,
 * the size limit and its sticky error, rollback by truncation, detaching, and decimal
 * formatting at the integer extremes. */
#include <stdint.h>
#include <stdlib.h>

#include "common/buf.h"
#include "common/error.h"
#include "tests/unit/test.h"

static void test_append_and_reset(void)
{
    struct buf b;
    buf_init(&b, 0);
    CHECK(b.data == NULL && b.len == 0 && b.err == SIOC_OK); /* nothing allocated yet */
    buf_append(&b, "ab", 2);
    buf_append_byte(&b, 'c');
    buf_append_cstr(&b, "de");
    buf_append(&b, NULL, 0); /* empty append: no-op, even with a NULL pointer */
    CHECK_STR(b.data, b.len, "abcde");
    uint8_t *keep = b.data;
    buf_reset(&b);
    CHECK(b.len == 0 && b.err == SIOC_OK && b.data == keep); /* allocation kept for reuse */
    buf_deinit(&b);
    CHECK(b.data == NULL && b.len == 0 && b.cap == 0);
    buf_deinit(&b); /* deinit twice is harmless */
}

static void test_integers(void)
{
    struct buf b;
    buf_init(&b, 0);
    buf_append_u64(&b, 0);
    buf_append_byte(&b, ' ');
    buf_append_u64(&b, UINT64_MAX);
    buf_append_byte(&b, ' ');
    buf_append_i64(&b, INT64_MIN); /* negated in unsigned arithmetic: no overflow */
    buf_append_byte(&b, ' ');
    buf_append_i64(&b, INT64_MAX);
    buf_append_byte(&b, ' ');
    buf_append_i64(&b, -1);
    CHECK_STR(b.data, b.len, "0 18446744073709551615 -9223372036854775808 9223372036854775807 -1");
    buf_deinit(&b);
}

/* The limit is exact: len may reach it but never pass it, and the first failure sticks. */
static void test_limit_is_sticky(void)
{
    struct buf b;
    buf_init(&b, 4);
    buf_append(&b, "abcd", 4);
    CHECK(b.err == SIOC_OK && b.len == 4 && b.cap <= 4);
    buf_append_byte(&b, 'e');
    CHECK(b.err == SIOC_ETOOBIG && b.len == 4);
    buf_truncate(&b, 1); /* a rollback does not clear the error */
    buf_append_byte(&b, 'x');
    CHECK(b.err == SIOC_ETOOBIG && b.len == 1);
    CHECK(!buf_reserve(&b, 1));
    buf_reset(&b); /* only reset does */
    CHECK(b.err == SIOC_OK);
    buf_append(&b, "wxyz", 4);
    CHECK_STR(b.data, b.len, "wxyz");
    buf_deinit(&b);
    CHECK(b.limit == 4); /* deinit keeps the limit */
}

/* A reservation whose size would wrap size_t fails instead of allocating a tiny block. */
static void test_reserve_overflow(void)
{
    struct buf b;
    buf_init(&b, 0);
    buf_append(&b, "abc", 3);
    CHECK(!buf_reserve(&b, SIZE_MAX - 1));
    CHECK(b.err == SIOC_ETOOBIG && b.len == 3);
    buf_deinit(&b);
}

static void test_truncate_and_detach(void)
{
    struct buf b;
    buf_init(&b, 0);
    size_t n = 99;
    CHECK(buf_detach(&b, &n) == NULL && n == 0); /* nothing ever written */
    buf_append_cstr(&b, "hello world");
    buf_truncate(&b, 5);
    buf_truncate(&b, 50); /* growing is not truncating: ignored */
    CHECK_STR(b.data, b.len, "hello");
    uint8_t *p = buf_detach(&b, &n);
    CHECK_STR(p, n, "hello");
    CHECK(b.data == NULL && b.len == 0 && b.cap == 0 && b.err == SIOC_OK);
    buf_append_byte(&b, '!'); /* the buffer is usable again */
    CHECK_STR(b.data, b.len, "!");
    free(p);
    buf_deinit(&b);
}

/* Growth past the inline doubling keeps every byte. */
static void test_growth(void)
{
    struct buf b;
    buf_init(&b, 0);
    for (unsigned i = 0; i < 10000; i++)
        buf_append_byte(&b, (uint8_t)i);
    CHECK(b.err == SIOC_OK && b.len == 10000 && b.cap >= 10000);
    bool same = true;
    for (unsigned i = 0; i < 10000; i++)
        same = same && b.data[i] == (uint8_t)i;
    CHECK(same);
    buf_deinit(&b);
}

static void test_strerror(void)
{
    const int codes[] = {SIOC_OK,     SIOC_EAGAIN, SIOC_EPROTO, SIOC_ETOOBIG, SIOC_ENOMEM,
                         SIOC_EDEPTH, SIOC_EUTF8,  SIOC_EINVAL, SIOC_ENOTSUP};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        const char *s = sioc_strerror(codes[i]);
        CHECK(s != NULL && strcmp(s, "unknown error") != 0);
        for (size_t j = 0; j < i; j++) /* every code has its own name */
            CHECK(strcmp(s, sioc_strerror(codes[j])) != 0);
    }
    CHECK(strcmp(sioc_strerror(-100), "unknown error") == 0);
    CHECK(strcmp(sioc_strerror(5), "unknown error") == 0);
}

static void test_slice_strdup(void)
{
    char *p = slice_strdup((struct slice){(const uint8_t *)"abcdef", 3});
    CHECK(p != NULL && strcmp(p, "abc") == 0);
    free(p);
    p = slice_strdup((struct slice){NULL, 0}); /* empty: "" */
    CHECK(p != NULL && p[0] == '\0');
    free(p);
    /* an embedded NUL cannot be carried by a C string: refused */
    CHECK(slice_strdup((struct slice){(const uint8_t *)"a\0b", 3}) == NULL);
}

int main(void)
{
    RUN(test_append_and_reset);
    RUN(test_integers);
    RUN(test_limit_is_sticky);
    RUN(test_reserve_overflow);
    RUN(test_truncate_and_detach);
    RUN(test_growth);
    RUN(test_strerror);
    RUN(test_slice_strdup);
    return test_summary("test_buf");
}
