/* test_utf8.c: strict UTF-8 validation (RFC 3629, the Markus Kuhn stress cases), incremental
 * feeding at every split, and the UTF-16 unit arithmetic of Engine.IO v3 lengths. */
#include "common/error.h"
#include "common/utf8.h"
#include "tests/unit/test.h"

struct vector {
    const char *bytes;
    size_t len;
    int valid;
};

#define V(s, ok)                                                                                   \
    {                                                                                              \
        s, sizeof(s) - 1, ok                                                                       \
    }
static const struct vector vectors[] = {
    V("", 1),
    V("hello", 1),
    V("\xc3\xa9", 1),         /* é */
    V("\xe2\x82\xac", 1),     /* € */
    V("\xf0\x9f\x98\x80", 1), /* 😀 */
    V("\xef\xbf\xbf", 1),     /* U+FFFF */
    V("\xf4\x8f\xbf\xbf", 1), /* U+10FFFF */
    V("\xed\x9f\xbf", 1),     /* U+D7FF */
    V("\xee\x80\x80", 1),     /* U+E000 */
    V("\x80", 0),             /* lone continuation */
    V("\xc0\xaf", 0),         /* overlong '/' */
    V("\xc1\xbf", 0),         /* overlong */
    V("\xe0\x80\xaf", 0),     /* overlong */
    V("\xe0\x9f\xbf", 0),     /* overlong */
    V("\xf0\x80\x80\xaf", 0), /* overlong */
    V("\xf0\x8f\xbf\xbf", 0), /* overlong */
    V("\xed\xa0\x80", 0),     /* surrogate U+D800 */
    V("\xed\xbf\xbf", 0),     /* surrogate U+DFFF */
    V("\xf4\x90\x80\x80", 0), /* U+110000 */
    V("\xf5\x80\x80\x80", 0), /* beyond */
    V("\xff", 0),
    V("\xc3", 0),          /* truncated */
    V("\xe2\x82", 0),      /* truncated */
    V("\xc3\x28", 0),      /* bad continuation */
    V("a\xf0\x9f\x98", 0), /* truncated 4-byte */
};

static void test_whole(void)
{
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        size_t map_len;
        uint8_t *g = test_guard_copy(vectors[i].bytes, vectors[i].len, &map_len);
        CHECK(utf8_valid(g, vectors[i].len) == (vectors[i].valid != 0));
        test_guard_free(g, vectors[i].len, map_len);
    }
}

/* RFC 6455 8.1 needs validation across fragments: every split gives the whole-input answer,
 * and a split inside a character is "incomplete", not "invalid". */
static void test_every_split(void)
{
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        const uint8_t *p = (const uint8_t *)vectors[i].bytes;
        size_t n = vectors[i].len;
        for (size_t cut = 0; cut <= n; cut++) {
            struct utf8_validator v;
            utf8_validator_init(&v);
            int ok = utf8_validator_feed(&v, p, cut) == SIOC_OK &&
                     utf8_validator_feed(&v, p + cut, n - cut) == SIOC_OK &&
                     utf8_validator_complete(&v);
            CHECK(ok == (vectors[i].valid != 0));
        }
        struct utf8_validator v;
        utf8_validator_init(&v);
        int ok = 1;
        for (size_t k = 0; k < n && ok; k++)
            ok = utf8_validator_feed(&v, p + k, 1) == SIOC_OK;
        CHECK((ok && utf8_validator_complete(&v)) == (vectors[i].valid != 0));
    }
    struct utf8_validator v;
    utf8_validator_init(&v);
    CHECK(utf8_validator_feed(&v, (const uint8_t *)"\xf0\x9f", 2) == SIOC_OK);
    CHECK(!utf8_validator_complete(&v));
}

/* PROTOCOL.md 1.12: `20:42["message","é€😀"]` counts 20 UTF-16 units in 25 bytes. */
static void test_utf16_units(void)
{
    const char *s = "42[\"message\",\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"]";
    size_t n = strlen(s);
    CHECK(n == 25);
    CHECK(utf8_utf16_units((const uint8_t *)s, n) == 20);
    CHECK(utf8_prefix_for_utf16_units((const uint8_t *)s, n, 20) == 25);
    CHECK(utf8_prefix_for_utf16_units((const uint8_t *)s, n, 0) == 0);
    /* "é" is one unit and two bytes; stopping inside the emoji's pair is refused */
    CHECK(utf8_prefix_for_utf16_units((const uint8_t *)s, n, 15) == 16);
    CHECK(utf8_prefix_for_utf16_units((const uint8_t *)s, n, 17) == -1);
    CHECK(utf8_prefix_for_utf16_units((const uint8_t *)s, n, 18) == 23);
    CHECK(utf8_prefix_for_utf16_units((const uint8_t *)s, n, 21) == -1);
    CHECK(utf8_prefix_for_utf16_units((const uint8_t *)"\xe2\x82\xac", 3, 1) == 3);
}

int main(void)
{
    RUN(test_whole);
    RUN(test_every_split);
    RUN(test_utf16_units);
    return test_summary("test_utf8");
}
