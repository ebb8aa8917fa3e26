/* test_mp.c: MessagePack writer byte-exactness against notepack captures (PROTOCOL.md 3.4),
 * reader bounds (truncation at every offset, lying counts), and a differential check of the
 * reader against msgpack-c's own unpacker. */
#include <math.h>
#include <msgpack.h>

#include "common/error.h"
#include "common/mp.h"
#include "tests/unit/test.h"

#define CHECK_HEX(b, hex)                                                                          \
    do {                                                                                           \
        uint8_t want_[4096];                                                                       \
        size_t wn_ = test_unhex(hex, want_);                                                       \
        CHECK_MEM((b)->data, (b)->len, want_, wn_);                                                \
    } while (0)

/* io.emit("hello","world") by the Node adapter with uid lP9NJJ, byte for byte. */
static void test_write_broadcast_capture(void)
{
    struct buf b;
    buf_init(&b, 0);
    mp_write_array(&b, 3);
    mp_write_cstr(&b, "lP9NJJ");
    mp_write_map(&b, 3);
    mp_write_cstr(&b, "type");
    mp_write_uint(&b, 2);
    mp_write_cstr(&b, "data");
    mp_write_array(&b, 2);
    mp_write_cstr(&b, "hello");
    mp_write_cstr(&b, "world");
    mp_write_cstr(&b, "nsp");
    mp_write_cstr(&b, "/");
    mp_write_map(&b, 3);
    mp_write_cstr(&b, "rooms");
    mp_write_array(&b, 0);
    mp_write_cstr(&b, "except");
    mp_write_array(&b, 0);
    mp_write_cstr(&b, "flags");
    mp_write_map(&b, 0);
    CHECK(b.err == SIOC_OK);
    CHECK_HEX(&b, "93 a6 6c50394e4a4a 83 a4 74797065 02 a4 64617461 92 a5 68656c6c6f a5 776f726c64 "
                  "a3 6e7370 a1 2f 83 a5 726f6f6d73 90 a6 657863657074 90 a5 666c616773 80");
    buf_deinit(&b);
}

/* io.volatile.compress(false).emit("vol",1.5,-3,300,70000): numbers as notepack writes them. */
static void test_write_numbers(void)
{
    struct buf b;
    buf_init(&b, 0);
    mp_write_number(&b, 1.5);
    mp_write_number(&b, -3);
    mp_write_number(&b, 300);
    mp_write_number(&b, 70000);
    CHECK_HEX(&b, "cb 3ff8000000000000 fd cd 012c ce 00011170");
    buf_reset(&b);
    mp_write_number(&b, -0.0);
    mp_write_number(&b, -33);
    mp_write_number(&b, -129);
    mp_write_number(&b, -32769);
    mp_write_number(&b, -2147483649.0);
    mp_write_number(&b, 4294967296.0);
    mp_write_number(&b, NAN);
    CHECK_HEX(&b,
              "00 d0df d1ff7f d2ffff7fff d3ffffffff7fffffff cf0000000100000000 cb7ff8000000000000");
    buf_reset(&b);
    mp_write_number(&b, 1e300); /* integral but beyond 2^64: float64, not a truncated cf */
    CHECK(b.len == 9 && b.data[0] == 0xcb);
    buf_deinit(&b);
}

static void test_write_lengths(void)
{
    static uint8_t big[70000];
    struct buf b;
    buf_init(&b, 0);
    mp_write_str(&b, big, 31);
    CHECK(b.data[0] == 0xbf);
    buf_reset(&b);
    mp_write_str(&b, big, 32);
    CHECK(b.data[0] == 0xd9 && b.data[1] == 32);
    buf_reset(&b);
    mp_write_str(&b, big, 256);
    CHECK(b.data[0] == 0xda);
    buf_reset(&b);
    mp_write_str(&b, big, 70000);
    CHECK(b.data[0] == 0xdb && b.len == 70005);
    buf_reset(&b);
    mp_write_bin(&b, big, 3);
    CHECK(b.data[0] == 0xc4 && b.data[1] == 3);
    buf_reset(&b);
    mp_write_bin(&b, big, 300);
    CHECK(b.data[0] == 0xc5);
    buf_reset(&b);
    mp_write_array(&b, 16);
    mp_write_map(&b, 16);
    mp_write_array(&b, 70000);
    mp_write_map(&b, 70000);
    CHECK_HEX(&b, "dc0010 de0010 dd00011170 df00011170");
    buf_deinit(&b);
}

static void test_buf_limit(void)
{
    struct buf b;
    buf_init(&b, 4);
    buf_append(&b, "abcd", 4);
    CHECK(b.err == SIOC_OK && b.len == 4);
    buf_append_byte(&b, 'e');
    CHECK(b.err == SIOC_ETOOBIG && b.len == 4);
    buf_append(&b, "x", 1); /* sticky: ignored */
    CHECK(b.len == 4);
    buf_reset(&b);
    buf_append_i64(&b, INT64_MIN);
    CHECK(b.err == SIOC_ETOOBIG); /* 20 characters do not fit in 4 */
    buf_deinit(&b);
    buf_init(&b, 0);
    buf_append_i64(&b, INT64_MIN);
    buf_append_byte(&b, ' ');
    buf_append_u64(&b, UINT64_MAX);
    CHECK_STR(b.data, b.len, "-9223372036854775808 18446744073709551615");
    buf_deinit(&b);
}

static void test_read_all_kinds(void)
{
    uint8_t in[256];
    size_t n =
        test_unhex("93 c0 c3 ff d0df cf0000000100000000 cb3ff8000000000000 ca3fc00000 a3616263 "
                   "c40201ff 81 a178 d6ff00000001 c70201aabb",
                   in);
    struct mp_reader r;
    struct mp_item it;
    mp_reader_init(&r, in, n);
    CHECK(mp_read(&r, &it) == SIOC_OK && it.kind == MP_ARRAY && it.len == 3);
    CHECK(mp_read(&r, &it) == SIOC_OK && it.kind == MP_NIL);
    CHECK(mp_read(&r, &it) == SIOC_OK && it.kind == MP_BOOL && it.boolean);
    CHECK(mp_read(&r, &it) == SIOC_OK && it.kind == MP_INT && it.i == -1);
    CHECK(mp_read(&r, &it) == SIOC_OK && it.kind == MP_INT && it.i == -33);
    CHECK(mp_read(&r, &it) == SIOC_OK && it.kind == MP_UINT && it.u == 4294967296u);
    CHECK(mp_read(&r, &it) == SIOC_OK && it.kind == MP_FLOAT && it.f == 1.5);
    CHECK(mp_read(&r, &it) == SIOC_OK && it.kind == MP_FLOAT && it.f == 1.5);
    CHECK(mp_read(&r, &it) == SIOC_OK && mp_item_is_str(&it, "abc"));
    CHECK(mp_read(&r, &it) == SIOC_OK && it.kind == MP_BIN && it.len == 2 && it.data[1] == 0xff);
    CHECK(mp_read(&r, &it) == SIOC_OK && it.kind == MP_MAP && it.len == 1);
    CHECK(mp_read(&r, &it) == SIOC_OK && mp_item_is_str(&it, "x"));
    CHECK(mp_read(&r, &it) == SIOC_OK && it.kind == MP_EXT && it.ext_type == -1 && it.len == 4);
    CHECK(mp_read(&r, &it) == SIOC_OK && it.kind == MP_EXT && it.ext_type == 1 && it.len == 2 &&
          it.data[0] == 0xaa);
    CHECK(r.pos == n);
    CHECK(mp_read(&r, &it) == SIOC_EAGAIN);
}

/* Every proper prefix of a valid value is "incomplete", never a crash or a false success;
 * checked at a guard page so any over-read faults. */
static void test_truncation_every_offset(void)
{
    uint8_t in[256];
    size_t n = test_unhex(
        "93 a6 6c50394e4a4a 83 a4 74797065 02 a4 64617461 92 a5 68656c6c6f c40201ff "
        "a3 6e7370 a1 2f 83 a5 726f6f6d73 90 a6 657863657074 90 a5 666c616773 81 a178 cb3ff8000000000000",
        in);
    size_t consumed = 0;
    CHECK(mp_validate(in, n, &consumed) == SIOC_OK && consumed == n);
    for (size_t cut = 0; cut < n; cut++) {
        size_t map_len;
        uint8_t *g = test_guard_copy(in, cut, &map_len);
        int rc = mp_validate(g, cut, &consumed);
        CHECK(rc == SIOC_EAGAIN || rc == SIOC_EPROTO);
        test_guard_free(g, cut, map_len);
    }
}

/* A 5-byte array32 header that claims 4 billion elements is refused before anyone allocates. */
static void test_lying_counts(void)
{
    uint8_t lie1[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    uint8_t lie2[] = {0xdf, 0x00, 0x00, 0x00, 0x02, 0x01, 0x02, 0x03};
    uint8_t lie3[] = {0xdb, 0xff, 0xff, 0xff, 0xff, 'a'};
    uint8_t c1[] = {0xc1};
    struct mp_reader r;
    struct mp_item it;
    mp_reader_init(&r, lie1, sizeof lie1);
    CHECK(mp_read(&r, &it) == SIOC_EPROTO && r.pos == 0);
    mp_reader_init(&r, lie2, sizeof lie2);
    CHECK(mp_read(&r, &it) == SIOC_EPROTO);
    mp_reader_init(&r, lie3, sizeof lie3);
    CHECK(mp_read(&r, &it) == SIOC_EAGAIN);
    mp_reader_init(&r, c1, sizeof c1);
    CHECK(mp_read(&r, &it) == SIOC_EPROTO);
}

/* Our reader and msgpack-c agree on what is one complete value, for every byte as a first byte
 * followed by fixed filler (covers every tag's header shape). */
static void test_agrees_with_msgpack_c(void)
{
    for (int tag = 0; tag < 256; tag++) {
        for (size_t fill = 0; fill < 12; fill++) {
            uint8_t in[16] = {(uint8_t)tag};
            for (size_t k = 1; k < sizeof in; k++)
                in[k] = k <= fill ? 0x01 : 0xc0;
            size_t ours_len = 0;
            int ours = mp_validate(in, sizeof in, &ours_len);
            if (ours == SIOC_EPROTO && tag != 0xc1)
                continue; /* a count beyond the input: msgpack-c would try to allocate it */
            msgpack_zone zone;
            msgpack_zone_init(&zone, 256);
            msgpack_object obj;
            size_t off = 0;
            int theirs = msgpack_unpack((const char *)in, sizeof in, &off, &zone, &obj);
            msgpack_zone_destroy(&zone);
            if (theirs == MSGPACK_UNPACK_SUCCESS || theirs == MSGPACK_UNPACK_EXTRA_BYTES) {
                CHECK(ours == SIOC_OK);
                CHECK(ours_len == off);
            } else {
                CHECK(ours != SIOC_OK);
            }
        }
    }
}

static void test_item_conversions(void)
{
    struct mp_item it = {.kind = MP_FLOAT, .f = 42.0};
    int64_t v;
    double d;
    CHECK(mp_item_to_i64(&it, &v) && v == 42);
    it.f = 42.5;
    CHECK(!mp_item_to_i64(&it, &v));
    it.kind = MP_UINT;
    it.u = UINT64_MAX;
    CHECK(!mp_item_to_i64(&it, &v));
    CHECK(mp_item_to_double(&it, &d) && d == 18446744073709551615.0);
    it.kind = MP_STR;
    CHECK(!mp_item_to_double(&it, &d));
}

/* The whole-value readers: a value cut short is EPROTO, kinds are checked, nil taken once. */
static void test_whole_readers(void)
{
    static const uint8_t msg[] = {0x82, 0xa1, 'a', 0xc0, 0xa1, 'b', 0x92, 0x01, 0x02};
    struct mp_reader r;
    uint32_t n = 0;
    struct slice s;
    mp_reader_init(&r, msg, sizeof msg);
    CHECK(mp_read_map_len(&r, &n) == SIOC_OK && n == 2);
    CHECK(mp_read_str(&r, &s) == SIOC_OK && s.len == 1 && s.p[0] == 'a');
    CHECK(mp_take_nil(&r) && !mp_take_nil(&r));
    CHECK(mp_read_map_len(&r, &n) == SIOC_EPROTO); /* a string, not a map */
    mp_reader_init(&r, msg + 4, sizeof msg - 4);
    CHECK(mp_read_str(&r, &s) == SIOC_OK);
    CHECK(mp_read_raw(&r, &s) == SIOC_OK && s.len == 3 && s.p == msg + 6);
    CHECK(r.pos == r.len);
    mp_reader_init(&r, msg + 6, 2); /* [1, 2] cut after its first element */
    CHECK(mp_read_raw(&r, &s) == SIOC_EPROTO);
    mp_reader_init(&r, msg + 6, 2);
    CHECK(mp_skip_whole(&r) == SIOC_EPROTO);
    mp_reader_init(&r, msg + 1, 1); /* "a" without its byte */
    CHECK(mp_read_str(&r, &s) == SIOC_EPROTO);
    mp_reader_init(&r, msg + 6, 1);
    CHECK(mp_read_str(&r, &s) == SIOC_EPROTO); /* an array header */
    mp_reader_init(&r, msg + 6, 3);
    CHECK(mp_read_map_len(&r, &n) == SIOC_EPROTO); /* an array, not a map */
    mp_reader_init(&r, msg + 6, 3);
    CHECK(mp_read_array_len(&r, &n) == SIOC_OK && n == 2 && r.pos == 1);
    mp_reader_init(&r, msg, sizeof msg);
    CHECK(mp_read_array_len(&r, &n) == SIOC_EPROTO);         /* a map, not an array */
    static const uint8_t lying[] = {0xdc, 0x00, 0x05, 0x01}; /* array16 of 5 with 1 byte left */
    mp_reader_init(&r, lying, sizeof lying);
    CHECK(mp_read_array_len(&r, &n) == SIOC_EPROTO);
}

/* Peeking classifies by the first byte only and never consumes. */
static void test_peek(void)
{
    static const struct {
        uint8_t byte;
        bool nil, array, map;
    } cases[] = {
        {0xc0, true, false, false},  {0x90, false, true, false},  {0x9f, false, true, false},
        {0xdc, false, true, false},  {0xdd, false, true, false},  {0x80, false, false, true},
        {0x8f, false, false, true},  {0xde, false, false, true},  {0xdf, false, false, true},
        {0xa0, false, false, false}, {0x7f, false, false, false}, {0xc2, false, false, false},
        {0xdb, false, false, false}, {0xe0, false, false, false},
    };
    struct mp_reader r;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mp_reader_init(&r, &cases[i].byte, 1);
        CHECK(mp_next_is_nil(&r) == cases[i].nil);
        CHECK(mp_next_is_array(&r) == cases[i].array);
        CHECK(mp_next_is_map(&r) == cases[i].map);
        CHECK(r.pos == 0);
    }
    mp_reader_init(&r, &cases[0].byte, 0); /* a nil byte just past the end is not read */
    CHECK(!mp_next_is_nil(&r) && !mp_next_is_array(&r) && !mp_next_is_map(&r));
}

int main(void)
{
    RUN(test_whole_readers);
    RUN(test_peek);
    RUN(test_write_broadcast_capture);
    RUN(test_write_numbers);
    RUN(test_write_lengths);
    RUN(test_buf_limit);
    RUN(test_read_all_kinds);
    RUN(test_truncation_every_offset);
    RUN(test_lying_counts);
    RUN(test_agrees_with_msgpack_c);
    RUN(test_item_conversions);
    return test_summary("test_mp");
}
