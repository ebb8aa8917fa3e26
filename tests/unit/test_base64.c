/* test_base64.c: RFC 4648 section 10 vectors, Node's lenient decoding of polling binary
 * (PROTOCOL.md 1.4), and the strict base64url decoding JWT segments need. */
#include "common/base64.h"
#include "tests/unit/test.h"

static const char *const rfc_plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
static const char *const rfc_std[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                      "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
static const char *const rfc_url[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};

static void test_rfc4648_vectors(void)
{
    for (size_t i = 0; i < sizeof rfc_plain / sizeof rfc_plain[0]; i++) {
        const uint8_t *in = (const uint8_t *)rfc_plain[i];
        size_t n = strlen(rfc_plain[i]);
        char out[16];
        CHECK(base64_encoded_len(n) == strlen(rfc_std[i]));
        CHECK_STR(out, base64_encode(in, n, out), rfc_std[i]);
        CHECK(base64url_encoded_len(n) == strlen(rfc_url[i]));
        CHECK_STR(out, base64url_encode(in, n, out), rfc_url[i]);
        uint8_t dec[16];
        size_t map_len;
        uint8_t *g = test_guard_copy(rfc_std[i], strlen(rfc_std[i]), &map_len);
        CHECK_MEM(dec, base64_decode_lenient((const char *)g, strlen(rfc_std[i]), dec), in, n);
        test_guard_free(g, strlen(rfc_std[i]), map_len);
        size_t dn = 0;
        CHECK(base64url_decode_strict(rfc_url[i], strlen(rfc_url[i]), dec, &dn));
        CHECK_MEM(dec, dn, in, n);
    }
}

/* PROTOCOL.md 1.4: "bAQIDBA==" is the polling form of 01 02 03 04. */
static void test_polling_binary(void)
{
    const uint8_t want[] = {1, 2, 3, 4};
    uint8_t dec[8];
    char enc[8];
    CHECK_STR(enc, base64_encode(want, 4, enc), "AQIDBA==");
    CHECK_MEM(dec, base64_decode_lenient("AQIDBA==", 8, dec), want, 4);
}

/* Buffer.from(s, "base64") skips characters outside the alphabets, takes the URL alphabet
 * too, and stops at the first '='. */
static void test_lenient_like_node(void)
{
    uint8_t dec[32];
    CHECK_MEM(dec, base64_decode_lenient("AQ ID\nBA", 8, dec), "\x01\x02\x03\x04", 4);
    CHECK_MEM(dec, base64_decode_lenient("-_-_", 4, dec), "\xfb\xff\xbf", 3);
    CHECK_MEM(dec, base64_decode_lenient("+/+/", 4, dec), "\xfb\xff\xbf", 3);
    CHECK_MEM(dec, base64_decode_lenient("Zg==Zm8=", 8, dec), "f", 1);
    CHECK(base64_decode_lenient("!!!", 3, dec) == 0);
    CHECK(base64_decode_lenient("Z", 1, dec) == 0);
}

static void test_strict_url_rejects(void)
{
    uint8_t dec[32];
    size_t n;
    CHECK(!base64url_decode_strict("Zg==", 4, dec, &n)); /* padding */
    CHECK(!base64url_decode_strict("Zm+v", 4, dec, &n)); /* standard alphabet */
    CHECK(!base64url_decode_strict("Z", 1, dec, &n));    /* impossible length */
    CHECK(!base64url_decode_strict("Zh", 2, dec, &n));   /* leftover bits set */
    CHECK(base64url_decode_strict("Zg", 2, dec, &n) && n == 1 && dec[0] == 'f');
}

/* Every byte value survives a round trip in both alphabets. */
static void test_round_trip_all_bytes(void)
{
    uint8_t in[256], dec[260];
    char enc[400];
    for (int i = 0; i < 256; i++)
        in[i] = (uint8_t)i;
    for (size_t n = 0; n <= 256; n += 37) {
        size_t e = base64_encode(in, n, enc);
        CHECK_MEM(dec, base64_decode_lenient(enc, e, dec), in, n);
        e = base64url_encode(in, n, enc);
        size_t dn = 0;
        CHECK(base64url_decode_strict(enc, e, dec, &dn));
        CHECK_MEM(dec, dn, in, n);
    }
}

int main(void)
{
    RUN(test_rfc4648_vectors);
    RUN(test_polling_binary);
    RUN(test_lenient_like_node);
    RUN(test_strict_url_rejects);
    RUN(test_round_trip_all_bytes);
    return test_summary("test_base64");
}
