/* test_json.c: JSON <-> MessagePack against JavaScript: parse vectors (each also ending at a
 * guard page), JSONTestSuite (every y_/n_/i_ file), JSON.stringify outputs recorded from Node
 * (tests/unit/data/json/), all of js-number-format/doubles.tsv, limits, depth and rollback. */
#include <dirent.h>
#include <math.h>

#include "common/error.h"
#include "common/json.h"
#include "common/mp.h"
#include "tests/unit/test.h"

/* Parses p[0..n) from a guard-page copy (an over-read crashes). */
static int parse_guarded(const void *p, size_t n, struct buf *out)
{
    size_t map_len;
    uint8_t *g = test_guard_copy(p, n, &map_len);
    int rc = json_to_msgpack(g, n, out);
    test_guard_free(g, n, map_len);
    return rc;
}

/* JSON text -> expected MessagePack hex; the text must also come back unchanged when
 * `roundtrip` (it is already in JSON.stringify form). */
static void check_parse(const char *text, const char *hex, bool roundtrip)
{
    uint8_t want[4096];
    size_t wn = test_unhex(hex, want);
    struct buf b, t;
    buf_init(&b, 0);
    buf_init(&t, 0);
    CHECK(parse_guarded(text, strlen(text), &b) == SIOC_OK);
    CHECK_MEM(b.data, b.len, want, wn);
    if (roundtrip) {
        struct mp_reader r;
        mp_reader_init(&r, b.data, b.len);
        CHECK(json_from_msgpack(&r, NULL, &t) == SIOC_OK);
        CHECK_STR(t.data, t.len, text);
        CHECK(r.pos == b.len);
    }
    buf_deinit(&b);
    buf_deinit(&t);
}

static void check_parse_error(const char *text, size_t n, int want)
{
    struct buf b;
    buf_init(&b, 0);
    int rc = parse_guarded(text, n, &b);
    if (rc != want)
        fprintf(stderr, "  input \"%.*s\": got %d, want %d\n", (int)(n > 60 ? 60 : n), text, rc,
                want);
    CHECK(rc == want);
    CHECK(b.len == 0 && b.err == SIOC_OK);
    buf_deinit(&b);
}

#define REJECT(text) check_parse_error((text), sizeof(text) - 1, SIOC_EPROTO)

/* text -> parse -> write must give `want` (JSON.stringify(JSON.parse(text))). */
static void check_transcode(const char *text, const char *want)
{
    struct buf b, t;
    buf_init(&b, 0);
    buf_init(&t, 0);
    CHECK(parse_guarded(text, strlen(text), &b) == SIOC_OK);
    struct mp_reader r;
    mp_reader_init(&r, b.data, b.len);
    CHECK(json_from_msgpack(&r, NULL, &t) == SIOC_OK);
    CHECK_STR(t.data, t.len, want);
    buf_deinit(&b);
    buf_deinit(&t);
}

/* PROTOCOL.md 2.2 echo examples, byte-exact both ways. */
static void test_protocol_examples(void)
{
    check_parse("{\"3\":[true]}", "81 a133 91 c3", true);
    check_parse("[1,\"2\",{\"3\":[false]}]", "93 01 a132 81 a133 91 c2", true);
    check_parse("[\"foo\"]", "91 a3666f6f", true);
    check_parse(" \t\r\n[ \"baz\" , {\"_placeholder\" :true,\"num\":0} ]\n",
                "92 a362617a 82 ac5f706c616365686f6c646572 c3 a36e756d 00", false);
}

static void test_numbers(void)
{
    check_parse("1", "01", true);
    check_parse("1.0", "01", false);
    check_parse("1e0", "01", false);
    check_parse("10E-1", "01", false);
    check_parse("-0", "00", false);
    check_parse("-0.0", "00", false);
    check_parse("-1e-400", "00", false); /* underflows to -0 */
    check_parse("1.5", "cb 3ff8000000000000", true);
    check_parse("-3", "fd", true);
    check_parse("300", "cd 012c", true);
    check_parse("1e21", "cb 444b1ae4d6e2ef50", false);
    check_parse("1e+21", "cb 444b1ae4d6e2ef50", true);
    check_parse("100000000000000000000", "cb 4415af1d78b58c40", true);
    check_parse("999999999999999", "cf 00038d7ea4c67fff", true);
    check_parse("-999999999999999", "d3 fffc72815b398001", true);
    check_parse("9007199254740993", "cf 0020000000000000", false); /* rounds to 2^53 */
    check_parse("9223372036854775807", "cf 8000000000000000", false);
    check_parse("-9223372036854775808", "d3 8000000000000000", false);
    check_parse("18446744073709551615", "cb 43f0000000000000", false); /* 2^64: float64 */
    check_parse("1e400", "cb 7ff0000000000000", false);
    check_parse("-1e400", "cb fff0000000000000", false);
    check_parse("0.1", "cb 3fb999999999999a", true);
    check_parse("1e-7", "cb 3e7ad7f29abcaf48", true);
    check_parse("0.000001", "cb 3eb0c6f7a0b5ed8d", true);
    check_parse("5e-324", "cb 0000000000000001", true);
    /* longer than the parser's stack copy */
    check_parse("0.1000000000000000000000000000000000000000000000000000000000000000000000000000001",
                "cb 3fb999999999999a", false);
    check_transcode("[1E2,1e-2,-0,0.0,123456789012345678901234567890]",
                    "[100,0.01,0,0,1.2345678901234568e+29]");
    REJECT("01");
    REJECT("-");
    REJECT("1.");
    REJECT(".1");
    REJECT("1e");
    REJECT("1e+");
    REJECT("+1");
    REJECT("0x10");
    REJECT("Infinity");
    REJECT("NaN");
    REJECT("-01");
    REJECT("1.e5");
}

/* The parser's number fast paths against strtod + mp_write_number on generated decimals. */
static void test_numbers_against_strtod(void)
{
    uint64_t seed = 88172645463325252ull;
    int bad = 0;
    struct buf got, want;
    buf_init(&got, 0);
    buf_init(&want, 0);
    for (int k = 0; k < 200000; k++) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        char text[64];
        int digits = 1 + (int)(seed % 19), point = (int)((seed >> 8) % 21) - 1;
        int exp = (int)((seed >> 16) % 70) - 35;
        int n = 0;
        if (seed >> 63)
            text[n++] = '-';
        uint64_t r = seed >> 20;
        for (int d = 0; d < digits; d++) {
            if (d == point && d > 0)
                text[n++] = '.';
            text[n++] = (char)('0' + (d == 0 && digits > 1 && point != 1 ? 1 + r % 9 : r % 10));
            r = r / 10 + (uint64_t)d * 7919;
        }
        if ((seed >> 30) & 1)
            n += snprintf(text + n, sizeof text - (size_t)n, "e%d", exp);
        text[n] = 0;
        buf_reset(&got);
        buf_reset(&want);
        if (json_to_msgpack((const uint8_t *)text, (size_t)n, &got) != SIOC_OK) {
            if (bad++ < 5)
                fprintf(stderr, "  rejected %s\n", text);
            continue;
        }
        mp_write_number(&want, strtod(text, NULL));
        if (got.len != want.len || memcmp(got.data, want.data, got.len) != 0) {
            if (bad++ < 5)
                fprintf(stderr, "  %s differs from strtod\n", text);
        }
    }
    CHECK(bad == 0);
    buf_deinit(&got);
    buf_deinit(&want);
}

static void test_strings(void)
{
    check_parse("\"\"", "a0", true);
    check_parse("\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"", "ac 6122625c632f6408 0c0a0d09", false);
    check_transcode("\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"", "\"a\\\"b\\\\c/d\\b\\f\\n\\r\\t\"");
    check_parse("\"\\u0000\\u00e9\\u20AC\"", "a6 00 c3a9 e282ac", false);
    check_parse("\"\\uD834\\uDD1E\"", "a4 f09d849e", false); /* surrogate pair */
    check_parse("\"\\uD800\"", "a3 efbfbd", false);          /* lone high */
    check_parse("\"\\uDC00x\"", "a4 efbfbd 78", false);      /* lone low */
    check_parse("\"\\uD800\\uD800\\uDC00\"", "a7 efbfbd f0908080", false);
    check_parse("\"\\uD800\\n\"", "a4 efbfbd 0a", false);
    check_parse("\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"", "a9 c3a9 e282ac f09f9880", true);
    check_parse("\"\x7f\xe2\x80\xa8\"", "a4 7f e280a8", true); /* DEL and U+2028 stay raw */
    REJECT("\"abc");
    REJECT("\"\\\"");
    REJECT("\"\\x\"");
    REJECT("\"\\u12\"");
    REJECT("\"\\u12G4\"");
    REJECT("\"\\");
    REJECT("\"a\nb\"");
    REJECT("\"\x1f\"");
    REJECT("\"\xc3\"");             /* truncated sequence */
    REJECT("\"\xc0\xaf\"");         /* overlong */
    REJECT("\"\xed\xa0\x80\"");     /* UTF-8 surrogate */
    REJECT("\"\xf4\x90\x80\x80\""); /* above U+10FFFF */
    REJECT("\"\xff\"");
    REJECT("'a'");
}

/* Header widths at their boundaries, with and without escapes (the escaped path writes its
 * header itself). */
static void test_string_lengths(void)
{
    static const size_t sizes[] = {31, 32, 255, 256, 65535, 65536};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        for (int esc = 0; esc < 2; esc++) {
            struct buf text, got, want;
            buf_init(&text, 0);
            buf_init(&got, 0);
            buf_init(&want, 0);
            buf_append_byte(&text, '"');
            uint8_t *raw = malloc(n);
            for (size_t j = 0; j < n; j++) {
                raw[j] = (uint8_t)('a' + j % 26);
                if (esc && j % 7 == 0) {
                    raw[j] = '\n';
                    buf_append(&text, "\\n", 2);
                } else {
                    buf_append_byte(&text, raw[j]);
                }
            }
            buf_append_byte(&text, '"');
            mp_write_str(&want, raw, n);
            CHECK(parse_guarded(text.data, text.len, &got) == SIOC_OK);
            CHECK_MEM(got.data, got.len, want.data, want.len);
            free(raw);
            buf_deinit(&text);
            buf_deinit(&got);
            buf_deinit(&want);
        }
    }
}

/* Builds a JSON array/object of n members and the MessagePack mp_write_* gives for it. */
static void check_container(size_t n, bool is_map)
{
    struct buf text, got, want;
    buf_init(&text, 0);
    buf_init(&got, 0);
    buf_init(&want, 0);
    buf_append_byte(&text, is_map ? '{' : '[');
    if (is_map)
        mp_write_map(&want, (uint32_t)n);
    else
        mp_write_array(&want, (uint32_t)n);
    for (size_t j = 0; j < n; j++) {
        char key[32];
        int kl = snprintf(key, sizeof key, "k%zu", j);
        if (j > 0)
            buf_append_byte(&text, ',');
        if (is_map) {
            buf_append_byte(&text, '"');
            buf_append(&text, key, (size_t)kl);
            buf_append(&text, "\":", 2);
            mp_write_str(&want, key, (size_t)kl);
        }
        buf_append(&text, "[1,[]]", 6); /* nested small containers between large ones */
        mp_write_array(&want, 2);
        mp_write_uint(&want, 1);
        mp_write_array(&want, 0);
    }
    buf_append_byte(&text, is_map ? '}' : ']');
    CHECK(parse_guarded(text.data, text.len, &got) == SIOC_OK);
    CHECK_MEM(got.data, got.len, want.data, want.len);
    buf_deinit(&text);
    buf_deinit(&got);
    buf_deinit(&want);
}

static void test_container_headers(void)
{
    static const size_t sizes[] = {0, 1, 15, 16, 17, 65535, 65536};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        check_container(sizes[k], false);
        check_container(sizes[k], true);
    }
    check_parse("[]", "90", true);
    check_parse("{}", "80", true);
    check_parse("[[],{},[{}]]", "93 90 80 91 80", true);
    check_parse("{\"a\":1,\"b\":2,\"a\":3}", "82 a161 03 a162 02",
                false); /* JSON.parse: last wins */
    REJECT("[1,]");
    REJECT("[,1]");
    REJECT("{\"a\":1,}");
    REJECT("{\"a\" 1}");
    REJECT("{a:1}");
    REJECT("{\"a\":1 \"b\":2}");
    REJECT("[1 2]");
    REJECT("[1}");
    REJECT("{\"a\":1]");
    REJECT("[");
    REJECT("]");
    REJECT("");
    REJECT(" ");
    REJECT("[] []");
    REJECT("[]x");
    REJECT("tru");
    REJECT("nul");
    REJECT("falsey");
    REJECT("\xef\xbb\xbf[]"); /* a BOM is not JSON whitespace (JSON.parse rejects it too) */
    REJECT("[\f]");
}

/* Nested large containers: the widening pass must place every header, in order. */
static void test_nested_large(void)
{
    struct buf text, got, want;
    buf_init(&text, 0);
    buf_init(&got, 0);
    buf_init(&want, 0);
    /* [ [17 x 0], [ [16 x 1] x 16 ], 5, {20 keys} ] */
    buf_append_cstr(&text, "[[0");
    mp_write_array(&want, 4);
    mp_write_array(&want, 17);
    mp_write_uint(&want, 0);
    for (int j = 1; j < 17; j++) {
        buf_append_cstr(&text, ",0");
        mp_write_uint(&want, 0);
    }
    buf_append_cstr(&text, "],[");
    mp_write_array(&want, 16);
    for (int j = 0; j < 16; j++) {
        buf_append_cstr(&text, j ? ",[" : "[");
        mp_write_array(&want, 16);
        for (int m = 0; m < 16; m++) {
            buf_append_cstr(&text, m ? ",1" : "1");
            mp_write_uint(&want, 1);
        }
        buf_append_cstr(&text, "]");
    }
    buf_append_cstr(&text, "],5,{");
    mp_write_uint(&want, 5);
    mp_write_map(&want, 20);
    for (int j = 0; j < 20; j++) {
        char k[8];
        snprintf(k, sizeof k, "%c", 'a' + j);
        buf_append_cstr(&text, j ? ",\"" : "\"");
        buf_append_cstr(&text, k);
        buf_append_cstr(&text, "\":[]");
        mp_write_cstr(&want, k);
        mp_write_array(&want, 0);
    }
    buf_append_cstr(&text, "}]");
    CHECK(parse_guarded(text.data, text.len, &got) == SIOC_OK);
    CHECK_MEM(got.data, got.len, want.data, want.len);
    buf_deinit(&text);
    buf_deinit(&got);
    buf_deinit(&want);
}

static void test_depth(void)
{
    char text[2 * (JSON_MAX_DEPTH + 1) + 1];
    for (int extra = 0; extra < 2; extra++) {
        int d = JSON_MAX_DEPTH + extra;
        for (int k = 0; k < d; k++) {
            text[k] = '[';
            text[2 * d - 1 - k] = ']';
        }
        struct buf b, t;
        buf_init(&b, 0);
        buf_init(&t, 0);
        int rc = parse_guarded(text, (size_t)(2 * d), &b);
        CHECK(rc == (extra ? SIOC_EDEPTH : SIOC_OK));
        if (!extra) {
            struct mp_reader r;
            mp_reader_init(&r, b.data, b.len);
            CHECK(json_from_msgpack(&r, NULL, &t) == SIOC_OK);
            CHECK_MEM(t.data, t.len, text, (size_t)(2 * d));
        } else {
            uint8_t mp[JSON_MAX_DEPTH + 1];
            memset(mp, 0x91, sizeof mp);
            mp[JSON_MAX_DEPTH] = 0x90;
            struct mp_reader r;
            mp_reader_init(&r, mp, sizeof mp);
            CHECK(json_from_msgpack(&r, NULL, &t) == SIOC_EDEPTH);
            CHECK(t.len == 0);
        }
        buf_deinit(&b);
        buf_deinit(&t);
    }
    check_parse_error("{\"a\":{\"a\":[[[", 13, SIOC_EPROTO);
}

/* Issue 10: JSON.parse semantics for repeated keys: the last value at the first key's place
 * (docs/contracts.md), at any depth; a text with no repeated key keeps its order. */
static void test_repeated_keys(void)
{
    check_parse("{\"a\":1,\"a\":2}", "81 a161 02", false);
    check_parse("[\"x\",{\"a\":1,\"a\":2}]", "92 a178 81 a161 02", false);
    check_parse("{\"b\":1,\"a\":2,\"b\":{\"c\":[3]}}", "82 a162 81 a163 91 03 a161 02", false);
    check_parse("{\"\\u0061\":1,\"a\":2}", "81 a161 02", false);
    check_parse("{\"b\":1,\"1\":2}", "82 a162 01 a131 02", false); /* no repeat: input order */
    /* more than 16 keys (the sorted check), the repeat the last of them */
    struct buf text;
    buf_init(&text, 0);
    buf_append_byte(&text, '{');
    for (int j = 0; j < 20; j++) {
        char m[32];
        snprintf(m, sizeof m, "%s\"k%d\":%d", j ? "," : "", j, j);
        buf_append_cstr(&text, m);
    }
    buf_append_cstr(&text, ",\"k3\":99}");
    struct buf b;
    buf_init(&b, 0);
    CHECK(json_to_msgpack(text.data, text.len, &b) == SIOC_OK);
    CHECK(b.len > 0 && b.data[0] == 0xde && b.data[2] == 20); /* 20 members, not 21 */
    struct mp_reader r;
    struct buf back;
    buf_init(&back, 0);
    mp_reader_init(&r, b.data, b.len);
    CHECK(json_from_msgpack(&r, NULL, &back) == SIOC_OK);
    CHECK(back.len > 0 && strstr((const char *)back.data, "\"k3\":99,\"k4\"") != NULL);
    buf_deinit(&text);
    buf_deinit(&b);
    buf_deinit(&back);
}

static void test_js_property_order(void)
{
    check_transcode("{\"b\":1,\"2\":2,\"1\":3}", "{\"1\":3,\"2\":2,\"b\":1}");
    check_transcode("{\"a\":1,\"b\":2,\"a\":3}", "{\"a\":3,\"b\":2}");
    check_transcode(
        "{\"x\":1,\"4294967295\":2,\"4294967294\":3,\"01\":4,\"0\":5,\"-1\":6,\"1.5\":7}",
        "{\"0\":5,\"4294967294\":3,\"x\":1,\"4294967295\":2,\"01\":4,\"-1\":6,\"1.5\":7}");
    check_transcode("{\"a\":{\"c\":1,\"1\":2},\"b\":[{\"z\":1,\"z\":{\"y\":2,\"y\":3}}],\"a\":0}",
                    "{\"a\":0,\"b\":[{\"z\":{\"y\":3}}]}");
    check_transcode("{\"\":1,\"\":2}", "{\"\":2}");
    /* keys equal only after escape decoding */
    check_transcode("{\"\\u0061\":1,\"a\":2}", "{\"a\":2}");
    /* more than 16 keys: the sorted duplicate check */
    struct buf text;
    buf_init(&text, 0);
    buf_append_byte(&text, '{');
    for (int j = 0; j < 40; j++) {
        char m[32];
        snprintf(m, sizeof m, "%s\"k%d\":%d", j ? "," : "", j % 30, j);
        buf_append_cstr(&text, m);
    }
    buf_append_byte(&text, '}');
    buf_append_byte(&text, 0);
    struct buf want;
    buf_init(&want, 0);
    buf_append_byte(&want, '{');
    for (int j = 0; j < 30; j++) {
        char m[32];
        snprintf(m, sizeof m, "%s\"k%d\":%d", j ? "," : "", j, j < 10 ? j + 30 : j);
        buf_append_cstr(&want, m);
    }
    buf_append_cstr(&want, "}");
    buf_append_byte(&want, 0);
    check_transcode((const char *)text.data, (const char *)want.data);
    buf_deinit(&text);
    buf_deinit(&want);
}

/* tests/unit/data/json/msgpack_stringify.tsv: hex -> JSON.stringify(notepack.decode(x)). */
static void test_writer_node_vectors(void)
{
    size_t len;
    uint8_t *file = test_read_file("tests/unit/data/json/msgpack_stringify.tsv", &len);
    CHECK(file != NULL);
    if (file == NULL)
        return;
    int count = 0;
    char *save = NULL;
    file = realloc(file, len + 1);
    file[len] = 0;
    for (char *line = strtok_r((char *)file, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#')
            continue;
        char *tab = strchr(line, '\t');
        *tab = 0;
        uint8_t mp[1024];
        size_t n = test_unhex(line, mp);
        struct buf t;
        buf_init(&t, 0);
        struct mp_reader r;
        mp_reader_init(&r, mp, n);
        int rc = json_from_msgpack(&r, NULL, &t);
        CHECK(rc == SIOC_OK);
        CHECK(r.pos == n);
        CHECK_STR(t.data, t.len, tab + 1);
        /* every truncation is "need more" (or a lying count), never a crash or success */
        for (size_t cut = 0; cut < n; cut++) {
            size_t map_len;
            uint8_t *g = test_guard_copy(mp, cut, &map_len);
            mp_reader_init(&r, g, cut);
            buf_reset(&t);
            rc = json_from_msgpack(&r, NULL, &t);
            CHECK(rc == SIOC_EAGAIN || rc == SIOC_EPROTO);
            CHECK(t.len == 0);
            test_guard_free(g, cut, map_len);
        }
        buf_deinit(&t);
        count++;
    }
    CHECK(count >= 55);
    free(file);
}

static void check_write(const char *hex, const struct json_write_opts *opts, int want_rc,
                        const char *want)
{
    uint8_t mp[256];
    size_t n = test_unhex(hex, mp);
    struct buf t;
    buf_init(&t, 0);
    struct mp_reader r;
    mp_reader_init(&r, mp, n);
    int rc = json_from_msgpack(&r, opts, &t);
    if (rc != want_rc)
        fprintf(stderr, "  %s: got %d, want %d\n", hex, rc, want_rc);
    CHECK(rc == want_rc);
    CHECK_STR(t.data, t.len, want);
    buf_deinit(&t);
}

static void test_writer_other(void)
{
    check_write("c1", NULL, SIOC_EPROTO, "");
    check_write("92 01 a2 61", NULL, SIOC_EAGAIN, "");
    check_write("81 91 01 01", NULL, SIOC_EPROTO, ""); /* array key */
    check_write("81 80 01", NULL, SIOC_EPROTO, "");
    check_write("81 d6ff00000000 01", NULL, SIOC_EPROTO, "");
    check_write("d401 00", NULL, SIOC_OK, "null");   /* ext other than -1 */
    check_write("d5ff 0000", NULL, SIOC_OK, "null"); /* ext -1 of a non-timestamp size */
    check_write("c7 0c 05 000000000000000000000000", NULL, SIOC_OK, "null");
    check_write("91 c3 ff", NULL, SIOC_OK, "[true]"); /* one value; the rest is the caller's */
    check_write("81 c4 02 6162 01", NULL, SIOC_OK, "{\"ab\":1}");
}

/* A Socket.IO-style placeholder callback that numbers the attachments. */
static int placeholder_cb(void *ctx, const uint8_t *p, size_t n, struct buf *out)
{
    int *num = ctx;
    (void)p;
    if (n == 3)
        return SIOC_ENOTSUP;
    char s[64];
    snprintf(s, sizeof s, "{\"_placeholder\":true,\"num\":%d}", (*num)++);
    buf_append_cstr(out, s);
    return SIOC_OK;
}

static void test_bin_cb(void)
{
    int num = 0;
    struct json_write_opts opts = {placeholder_cb, &num};
    check_write(
        "93 a362617a c40101 81 a178 c400", &opts, SIOC_OK,
        "[\"baz\",{\"_placeholder\":true,\"num\":0},{\"x\":{\"_placeholder\":true,\"num\":1}}]");
    CHECK(num == 2);
    check_write("92 c40101 c403010203", &opts, SIOC_ENOTSUP, "");
    struct json_write_opts none = {NULL, NULL};
    check_write("c40201ff", &none, SIOC_OK, "{\"type\":\"Buffer\",\"data\":[1,255]}");
}

static void test_rollback_and_limits(void)
{
    struct buf b;
    buf_init(&b, 0);
    buf_append_cstr(&b, "prefix");
    CHECK(json_to_msgpack((const uint8_t *)"[1,2,{\"a\":", 10, &b) == SIOC_EPROTO);
    CHECK_STR(b.data, b.len, "prefix");
    CHECK(b.err == SIOC_OK);
    CHECK(json_to_msgpack((const uint8_t *)"[1]", 3, &b) == SIOC_OK);
    CHECK_MEM(b.data, b.len, "prefix\x91\x01", 8);
    buf_deinit(&b);

    /* output limit: exactly fitting succeeds, one byte less is ETOOBIG with rollback */
    const char *text = "{\"a\":[1,2,3,\"\\u00e9\\n\"],\"b\":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]}";
    struct buf full;
    buf_init(&full, 0);
    CHECK(json_to_msgpack((const uint8_t *)text, strlen(text), &full) == SIOC_OK);
    for (size_t lim = 1; lim <= full.len + 2; lim++) {
        buf_init(&b, lim + 2);
        buf_append(&b, "xy", 2);
        int rc = json_to_msgpack((const uint8_t *)text, strlen(text), &b);
        CHECK(rc == (lim >= full.len ? SIOC_OK : SIOC_ETOOBIG));
        CHECK(b.len == (rc == SIOC_OK ? full.len + 2 : 2) && b.err == SIOC_OK);
        struct buf t;
        buf_init(&t, lim);
        struct mp_reader r;
        mp_reader_init(&r, full.data, full.len);
        rc = json_from_msgpack(&r, NULL, &t);
        CHECK(
            rc ==
            (lim >= strlen(
                        "{\"a\":[1,2,3,\"\xc3\xa9\\n\"],\"b\":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]}")
                 ? SIOC_OK
                 : SIOC_ETOOBIG));
        CHECK(t.err == SIOC_OK && (rc != SIOC_OK) == (t.len == 0));
        buf_deinit(&t);
        buf_deinit(&b);
    }
    buf_deinit(&full);

    /* a buffer already in error is left alone */
    buf_init(&b, 1);
    buf_append(&b, "ab", 2);
    CHECK(json_to_msgpack((const uint8_t *)"1", 1, &b) == SIOC_ETOOBIG);
    struct mp_reader r;
    mp_reader_init(&r, (const uint8_t *)"\x01", 1);
    CHECK(json_from_msgpack(&r, NULL, &b) == SIOC_ETOOBIG);
    buf_deinit(&b);
}

static void test_write_string(void)
{
    struct buf b;
    buf_init(&b, 0);
    json_write_string(&b, (const uint8_t *)"a\"\\\x01\x1f\x7f\xe2\x80\xa8\xe2\x80\xa9\xc3", 13);
    CHECK_STR(b.data, b.len, "\"a\\\"\\\\\\u0001\\u001f\x7f\xe2\x80\xa8\xe2\x80\xa9\xef\xbf\xbd\"");
    buf_reset(&b);
    json_write_string(&b, (const uint8_t *)"", 0);
    CHECK_STR(b.data, b.len, "\"\"");
    buf_reset(&b);
    json_write_number(&b, NAN);
    json_write_number(&b, -INFINITY);
    json_write_number(&b, -0.0);
    json_write_number(&b, 1e21);
    json_write_number(&b, 123e-20);
    CHECK_STR(b.data, b.len, "nullnull01e+211.23e-18");
    buf_deinit(&b);
}

/* /work/shared/data/js-number-format/doubles.tsv: every line, via json_write_number and via a
 * MessagePack float64 through json_from_msgpack. */
static void test_doubles_tsv(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/js-number-format/doubles.tsv", test_shared_data());
    size_t len;
    uint8_t *file = test_read_file(path, &len);
    CHECK(file != NULL);
    if (file == NULL)
        return;
    file = realloc(file, len + 1);
    file[len] = 0;
    int count = 0, bad = 0;
    char *save = NULL;
    struct buf b;
    buf_init(&b, 0);
    for (char *line = strtok_r((char *)file, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char *tab = strchr(line, '\t');
        if (tab == NULL)
            continue;
        *tab = 0;
        uint8_t mp[9] = {0xcb};
        CHECK(test_unhex(line, mp + 1) == 8);
        uint64_t bits = 0;
        for (int k = 1; k < 9; k++)
            bits = bits << 8 | mp[k];
        double v;
        memcpy(&v, &bits, sizeof v);
        buf_reset(&b);
        json_write_number(&b, v);
        struct mp_reader r;
        mp_reader_init(&r, mp, 9);
        CHECK(json_from_msgpack(&r, NULL, &b) == SIOC_OK);
        size_t wl = strlen(tab + 1);
        if (b.len != 2 * wl || memcmp(b.data, tab + 1, wl) != 0 ||
            memcmp(b.data + wl, tab + 1, wl) != 0) {
            if (bad++ < 5)
                fprintf(stderr, "  %s: got %.*s, want %s\n", line, (int)b.len, b.data, tab + 1);
        }
        count++;
    }
    CHECK(bad == 0);
    CHECK(count >= 17000);
    buf_deinit(&b);
    free(file);
}

/* JSONTestSuite i_ files: what sioc does with the implementation-defined ones.
 *   accepted: the number ones (huge/tiny exponents round to +-Infinity or 0 as in JS, big
 *     integers round to the nearest double); the lone-surrogate escape ones (U+FFFD);
 *     i_structure_500_nested_arrays is REJECTED (SIOC_EDEPTH: 500 > JSON_MAX_DEPTH).
 *   rejected: every raw invalid UTF-8 / UTF-16 / BOM one (RFC 8259 8.1: UTF-8, no BOM). */
static const char *const i_accepted[] = {
    "i_number_double_huge_neg_exp.json",
    "i_number_huge_exp.json",
    "i_number_neg_int_huge_exp.json",
    "i_number_pos_double_huge_exp.json",
    "i_number_real_neg_overflow.json",
    "i_number_real_pos_overflow.json",
    "i_number_real_underflow.json",
    "i_number_too_big_neg_int.json",
    "i_number_too_big_pos_int.json",
    "i_number_very_big_negative_int.json",
    "i_object_key_lone_2nd_surrogate.json",
    "i_string_1st_surrogate_but_2nd_missing.json",
    "i_string_1st_valid_surrogate_2nd_invalid.json",
    "i_string_incomplete_surrogate_and_escape_valid.json",
    "i_string_incomplete_surrogate_pair.json",
    "i_string_incomplete_surrogates_escape_valid.json",
    "i_string_invalid_lonely_surrogate.json",
    "i_string_invalid_surrogate.json",
    "i_string_inverted_surrogates_U+1D11E.json",
    "i_string_lone_second_surrogate.json",
};

static bool is_i_accepted(const char *name)
{
    for (size_t k = 0; k < sizeof i_accepted / sizeof i_accepted[0]; k++)
        if (strcmp(name, i_accepted[k]) == 0)
            return true;
    return false;
}

/* Expected JSON.stringify(JSON.parse(text)) of a y_ file, from the committed TSV. */
static bool y_expected(const char *tsv, const char *name, uint8_t *out, size_t *n)
{
    size_t nl = strlen(name);
    for (const char *l = tsv; l != NULL && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
        if (strncmp(l, name, nl) == 0 && l[nl] == '\t') {
            const char *h = l + nl + 1;
            *n = 0;
            while (h[0] && h[0] != '\n' && h[1]) {
                unsigned v;
                sscanf(h, "%2x", &v);
                out[(*n)++] = (uint8_t)v;
                h += 2;
            }
            return true;
        }
    }
    return false;
}

static void test_json_test_suite(void)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/json-test-suite/test_parsing", test_shared_data());
    size_t tsv_len;
    uint8_t *tsv = test_read_file("tests/unit/data/json/y_stringify.tsv", &tsv_len);
    DIR *d = opendir(dir);
    CHECK(d != NULL && tsv != NULL);
    if (d == NULL || tsv == NULL) {
        free(tsv);
        if (d)
            closedir(d);
        return;
    }
    tsv = realloc(tsv, tsv_len + 1);
    tsv[tsv_len] = 0;
    int y = 0, n = 0, i = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        if (name[0] == '.' || (name[0] != 'y' && name[0] != 'n' && name[0] != 'i'))
            continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        size_t len;
        uint8_t *text = test_read_file(path, &len);
        if (text == NULL) {
            CHECK(!"unreadable suite file");
            continue;
        }
        struct buf b, t;
        buf_init(&b, 0);
        buf_init(&t, 0);
        int rc = parse_guarded(text, len, &b);
        bool ok = rc == SIOC_OK;
        bool want = name[0] == 'y' || (name[0] == 'i' && is_i_accepted(name));
        if (ok != want)
            fprintf(stderr, "  %s: rc %d (%s)\n", name, rc, sioc_strerror(rc));
        CHECK(ok == want);
        if (ok) {
            size_t used;
            CHECK(mp_validate(b.data, b.len, &used) == SIOC_OK && used == b.len);
            struct mp_reader r;
            mp_reader_init(&r, b.data, b.len);
            CHECK(json_from_msgpack(&r, NULL, &t) == SIOC_OK);
        }
        if (name[0] == 'y') {
            static uint8_t exp[1 << 16];
            size_t en = 0;
            CHECK(y_expected((const char *)tsv, name, exp, &en));
            if (t.len != en || memcmp(t.data, exp, en) != 0)
                fprintf(stderr, "  %s: output differs from JSON.stringify\n", name);
            CHECK_MEM(t.data, t.len, exp, en);
            y++;
        }
        n += name[0] == 'n';
        i += name[0] == 'i';
        buf_deinit(&b);
        buf_deinit(&t);
        free(text);
    }
    closedir(d);
    free(tsv);
    CHECK(y == 95 && n == 188 && i == 35);
}

int main(void)
{
    RUN(test_protocol_examples);
    RUN(test_numbers);
    RUN(test_numbers_against_strtod);
    RUN(test_strings);
    RUN(test_string_lengths);
    RUN(test_container_headers);
    RUN(test_nested_large);
    RUN(test_depth);
    RUN(test_js_property_order);
    RUN(test_repeated_keys);
    RUN(test_writer_node_vectors);
    RUN(test_writer_other);
    RUN(test_bin_cb);
    RUN(test_rollback_and_limits);
    RUN(test_write_string);
    RUN(test_doubles_tsv);
    RUN(test_json_test_suite);
    return test_summary("test_json");
}
