/* test_eio.c: Engine.IO codec against the vectors of PROTOCOL.md 1 and the reference transcripts:
 * every payload decoded whole, from a guard page and truncated at every offset; encoders
 * byte-exact; the request validation order of 1.2; every polling body and WebSocket text frame
 * the Node server exchanged re-encodes to the same bytes. */
#include "common/base64.h"
#include "common/eio.h"
#include "common/error.h"
#include "tests/unit/test.h"

#define MAX_PACKETS 64

/* Packets copied out of the iterator (binary data lives in `bin` only until the next call). */
struct decoded {
    int rc; /* 0 = clean end, else the error */
    size_t count;
    size_t consumed;
    struct eio_packet pk[MAX_PACKETS];
    uint8_t store[1 << 16];
    size_t used;
};

static void decode_into(enum eio_payload_format f, const uint8_t *p, size_t len, struct decoded *d)
{
    struct eio_payload_iter it;
    struct buf bin;
    buf_init(&bin, 0);
    eio_payload_iter_init(&it, f, p, len);
    d->count = 0;
    d->used = 0;
    for (;;) {
        struct eio_packet pkt;
        int rc = eio_payload_next(&it, &bin, &pkt);
        if (rc <= 0) {
            d->rc = rc;
            CHECK(eio_payload_next(&it, &bin, &pkt) == rc); /* errors and the end are sticky */
            break;
        }
        CHECK(rc == 1);
        if (d->count == MAX_PACKETS || d->used + pkt.data.len > sizeof d->store) {
            d->rc = 99;
            break;
        }
        if (pkt.data.len > 0)
            memcpy(d->store + d->used, pkt.data.p, pkt.data.len);
        pkt.data.p = d->store + d->used;
        d->used += pkt.data.len;
        d->pk[d->count++] = pkt;
    }
    d->consumed = it.pos;
    CHECK(it.pos <= len);
    buf_deinit(&bin);
}

static void decode_guarded(enum eio_payload_format f, const void *p, size_t len, struct decoded *d)
{
    size_t map_len;
    uint8_t *g = test_guard_copy(p, len, &map_len);
    decode_into(f, g, len, d);
    test_guard_free(g, len, map_len);
}

struct want {
    int type;
    bool binary;
    const char *data;
    size_t len;
};

#define T(type, s)                                                                                 \
    {                                                                                              \
        type, false, s, sizeof(s) - 1                                                              \
    }
#define B(type, s)                                                                                 \
    {                                                                                              \
        type, true, s, sizeof(s) - 1                                                               \
    }

static bool same_packet(const struct eio_packet *a, const struct want *w)
{
    return (int)a->type == w->type && a->binary == w->binary && a->data.len == w->len &&
           (w->len == 0 || memcmp(a->data.p, w->data, w->len) == 0);
}

/* Decodes `in` whole and from a guard page, expecting `want[0..n)` then `final_rc`; then every
 * truncation: no crash, consumed <= length, and for the length-prefixed v3 formats every packet
 * produced is exactly the expected one (v4 truncation may shorten the last packet's data). */
static void check_payload(enum eio_payload_format f, const void *in, size_t len,
                          const struct want *want, size_t n, int final_rc)
{
    static struct decoded d;
    decode_into(f, in, len, &d);
    decode_guarded(f, in, len, &d);
    CHECK(d.rc == final_rc);
    CHECK(d.count == n);
    for (size_t i = 0; i < n && i < d.count; i++) {
        CHECK(same_packet(&d.pk[i], &want[i]));
        if (!same_packet(&d.pk[i], &want[i]))
            CHECK_MEM(d.pk[i].data.p, d.pk[i].data.len, want[i].data, want[i].len);
    }
    for (size_t cut = 0; cut < len; cut++) {
        decode_guarded(f, in, cut, &d);
        CHECK(d.consumed <= cut);
        size_t exact = f == EIO_PAYLOAD_V4 ? (d.count > 0 ? d.count - 1 : 0) : d.count;
        for (size_t i = 0; i < exact && i < n; i++)
            CHECK(same_packet(&d.pk[i], &want[i]));
        CHECK(d.count <= n);
    }
}

#define CHECK_PAYLOAD(f, lit, rc, ...)                                                             \
    do {                                                                                           \
        const struct want w_[] = {__VA_ARGS__};                                                    \
        check_payload(f, lit, sizeof(lit) - 1, w_, sizeof w_ / sizeof w_[0], rc);                  \
    } while (0)
#define CHECK_PAYLOAD_EMPTY(f, lit, rc) check_payload(f, lit, sizeof(lit) - 1, NULL, 0, rc)

/* ---- v4 ---- */

static void test_v4_payload_vectors(void)
{
    /* PROTOCOL.md 1.5.1 */
    CHECK_PAYLOAD(EIO_PAYLOAD_V4,
                  "4hello\x1e"
                  "2\x1e"
                  "4world",
                  0, T(4, "hello"), T(2, ""), T(4, "world"));
    CHECK_PAYLOAD(EIO_PAYLOAD_V4,
                  "4hello\x1e"
                  "bAQIDBA==",
                  0, T(4, "hello"), B(4, "\x01\x02\x03\x04"));
    /* transcripts: a-polling POST, d2/e noop+close, a-polling binary attachment */
    CHECK_PAYLOAD(EIO_PAYLOAD_V4,
                  "40{\"token\":\"abc\"}\x1e"
                  "40/chat,{\"token\":\"xyz\"}",
                  0, T(4, "0{\"token\":\"abc\"}"), T(4, "0/chat,{\"token\":\"xyz\"}"));
    CHECK_PAYLOAD(EIO_PAYLOAD_V4,
                  "6\x1e"
                  "1",
                  0, T(6, ""), T(1, ""));
    CHECK_PAYLOAD(EIO_PAYLOAD_V4,
                  "451-2[\"bin\",{\"_placeholder\":true,\"num\":0}]\x1e"
                  "bAQIDBA==",
                  0, T(4, "51-2[\"bin\",{\"_placeholder\":true,\"num\":0}]"),
                  B(4, "\x01\x02\x03\x04"));
    CHECK_PAYLOAD(EIO_PAYLOAD_V4, "bYmluYXJ5LWFjaw==", 0, B(4, "binary-ack"));
    CHECK_PAYLOAD(EIO_PAYLOAD_V4, "42[\"echo\",\"h\xc3\xa9llo \xf0\x9f\x98\x80\"]", 0,
                  T(4, "2[\"echo\",\"h\xc3\xa9llo \xf0\x9f\x98\x80\"]"));
    CHECK_PAYLOAD(EIO_PAYLOAD_V4,
                  "0\x1e"
                  "3\x1e"
                  "5\x1e"
                  "6",
                  0, T(0, ""), T(3, ""), T(5, ""), T(6, ""));
    CHECK_PAYLOAD(EIO_PAYLOAD_V4, "b", 0, B(4, ""));
}

static void test_v4_payload_errors(void)
{
    /* 1.5.3: an empty body is one invalid packet */
    CHECK_PAYLOAD_EMPTY(EIO_PAYLOAD_V4, "", SIOC_EPROTO);
    CHECK_PAYLOAD_EMPTY(EIO_PAYLOAD_V4, "abc", SIOC_EPROTO);
    CHECK_PAYLOAD_EMPTY(EIO_PAYLOAD_V4, "9", SIOC_EPROTO);
    CHECK_PAYLOAD_EMPTY(EIO_PAYLOAD_V4, "7x", SIOC_EPROTO);
    CHECK_PAYLOAD_EMPTY(EIO_PAYLOAD_V4, "\xc3\xa9", SIOC_EPROTO);
    CHECK_PAYLOAD_EMPTY(EIO_PAYLOAD_V4, "\x1e", SIOC_EPROTO);
    /* valid packets before the invalid one are produced, then the error (d2 transcript) */
    CHECK_PAYLOAD(EIO_PAYLOAD_V4, "4hello\x1e", SIOC_EPROTO, T(4, "hello"));
    CHECK_PAYLOAD(EIO_PAYLOAD_V4,
                  "4a\x1e\x1e"
                  "4b",
                  SIOC_EPROTO, T(4, "a"));
    CHECK_PAYLOAD(EIO_PAYLOAD_V4,
                  "42[\"echo\",1]\x1e"
                  "9\x1e"
                  "4b",
                  SIOC_EPROTO, T(4, "2[\"echo\",1]"));
    /* error position is reported */
    struct eio_payload_iter it;
    struct buf bin;
    struct eio_packet pkt;
    buf_init(&bin, 0);
    eio_payload_iter_init(&it, EIO_PAYLOAD_V4, (const uint8_t *)"4a\x1ex", 4);
    CHECK(eio_payload_next(&it, &bin, &pkt) == 1);
    CHECK(eio_payload_next(&it, &bin, &pkt) == SIOC_EPROTO);
    CHECK(it.pos == 3);
    buf_deinit(&bin);
}

static void test_v4_base64_lenient(void)
{
    /* 1.4: Node's Buffer.from(s, "base64"): junk skipped, URL alphabet, stops at '=' */
    CHECK_PAYLOAD(EIO_PAYLOAD_V4, "bAQ ID\nBA==", 0, B(4, "\x01\x02\x03\x04"));
    CHECK_PAYLOAD(EIO_PAYLOAD_V4, "bAQIDBA==QUJD", 0, B(4, "\x01\x02\x03\x04"));
    CHECK_PAYLOAD(EIO_PAYLOAD_V4, "bAQIDBA", 0, B(4, "\x01\x02\x03\x04"));
    CHECK_PAYLOAD(EIO_PAYLOAD_V4, "b-_8", 0, B(4, "\xfb\xff"));
    CHECK_PAYLOAD(EIO_PAYLOAD_V4, "b+/8", 0, B(4, "\xfb\xff"));
    CHECK_PAYLOAD(EIO_PAYLOAD_V4, "bA", 0, B(4, ""));
    CHECK_PAYLOAD(EIO_PAYLOAD_V4, "b!!!", 0, B(4, ""));

    /* bin's limit bounds the decoded size exactly (maxHttpBufferSize) */
    struct buf bin;
    struct eio_packet pkt;
    buf_init(&bin, 4);
    CHECK(eio_packet_decode(EIO_V4, (const uint8_t *)"bAQIDBA==", 9, &bin, &pkt) == SIOC_OK);
    CHECK_MEM(pkt.data.p, pkt.data.len, "\x01\x02\x03\x04", 4);
    CHECK(eio_packet_decode(EIO_V4, (const uint8_t *)"bAQIDBAU=", 9, &bin, &pkt) == SIOC_ETOOBIG);
    /* the buffer is reusable after the error */
    CHECK(eio_packet_decode(EIO_V4, (const uint8_t *)"bAQID", 5, &bin, &pkt) == SIOC_OK);
    CHECK(pkt.data.len == 3);
    buf_deinit(&bin);
}

static void test_packet_decode(void)
{
    struct buf bin;
    struct eio_packet pkt;
    buf_init(&bin, 0);
    CHECK(eio_packet_decode(EIO_V4, (const uint8_t *)"2probe", 6, &bin, &pkt) == SIOC_OK);
    CHECK(pkt.type == EIO_PACKET_PING && !pkt.binary);
    CHECK_STR(pkt.data.p, pkt.data.len, "probe");
    CHECK(eio_packet_decode(EIO_V4, (const uint8_t *)"", 0, &bin, &pkt) == SIOC_EPROTO);
    CHECK(eio_packet_decode(EIO_V4, (const uint8_t *)"abc", 3, &bin, &pkt) == SIOC_EPROTO);
    /* d5: a text frame `bAQID` is a binary message over WebSocket too */
    CHECK(eio_packet_decode(EIO_V4, (const uint8_t *)"bAQID", 5, &bin, &pkt) == SIOC_OK);
    CHECK(pkt.type == EIO_PACKET_MESSAGE && pkt.binary);
    CHECK_MEM(pkt.data.p, pkt.data.len, "\x01\x02\x03", 3);
    /* v3 text: `b<digit><base64>` */
    CHECK(eio_packet_decode(EIO_V3, (const uint8_t *)"b4AQIDBA==", 10, &bin, &pkt) == SIOC_OK);
    CHECK(pkt.type == EIO_PACKET_MESSAGE && pkt.binary);
    CHECK_MEM(pkt.data.p, pkt.data.len, "\x01\x02\x03\x04", 4);
    CHECK(eio_packet_decode(EIO_V3, (const uint8_t *)"b", 1, &bin, &pkt) == SIOC_EPROTO);
    CHECK(eio_packet_decode(EIO_V3, (const uint8_t *)"b9AQ", 4, &bin, &pkt) == SIOC_EPROTO);
    CHECK(eio_packet_decode(EIO_V3, (const uint8_t *)"bx", 2, &bin, &pkt) == SIOC_EPROTO);
    /* every type digit; nothing else */
    for (int c = 0; c < 256; c++) {
        uint8_t s[2] = {(uint8_t)c, 'x'};
        int rc = eio_packet_decode(EIO_V4, s, 2, &bin, &pkt);
        if (c >= '0' && c <= '6')
            CHECK(rc == SIOC_OK && (int)pkt.type == c - '0' && pkt.data.len == 1);
        else if (c == 'b')
            CHECK(rc == SIOC_OK && pkt.binary);
        else
            CHECK(rc == SIOC_EPROTO);
    }
    /* guard page: single-byte packets */
    size_t map_len;
    uint8_t *g = test_guard_copy("6", 1, &map_len);
    CHECK(eio_packet_decode(EIO_V4, g, 1, &bin, &pkt) == SIOC_OK && pkt.type == EIO_PACKET_NOOP);
    CHECK(pkt.data.len == 0);
    test_guard_free(g, 1, map_len);
    g = test_guard_copy("b", 1, &map_len);
    CHECK(eio_packet_decode(EIO_V3, g, 1, &bin, &pkt) == SIOC_EPROTO);
    test_guard_free(g, 1, map_len);
    buf_deinit(&bin);
}

static void test_binary_frames(void)
{
    struct eio_packet pkt;
    struct buf out;
    buf_init(&out, 0);
    /* 1.4: v4 binary frames are the raw message, no type byte */
    CHECK(eio_binary_frame_decode(EIO_V4, (const uint8_t *)"\x04\x01", 2, &pkt) == SIOC_OK);
    CHECK(pkt.type == EIO_PACKET_MESSAGE && pkt.binary);
    CHECK_MEM(pkt.data.p, pkt.data.len, "\x04\x01", 2);
    CHECK(eio_binary_frame_decode(EIO_V4, (const uint8_t *)"", 0, &pkt) == SIOC_OK);
    CHECK(pkt.data.len == 0);
    /* 1.12: observed v3 `BIN:04010203` */
    size_t map_len;
    uint8_t *g = test_guard_copy("\x04\x01\x02\x03", 4, &map_len);
    CHECK(eio_binary_frame_decode(EIO_V3, g, 4, &pkt) == SIOC_OK);
    CHECK(pkt.type == EIO_PACKET_MESSAGE && pkt.binary);
    CHECK_MEM(pkt.data.p, pkt.data.len, "\x01\x02\x03", 3);
    CHECK(eio_v3_binary_frame_encode(&out, &pkt) == SIOC_OK);
    CHECK_MEM(out.data, out.len, "\x04\x01\x02\x03", 4);
    CHECK(eio_binary_frame_decode(EIO_V3, g + 3, 1, &pkt) == SIOC_OK); /* type 3, no data */
    CHECK(pkt.type == EIO_PACKET_PONG && pkt.data.len == 0);
    test_guard_free(g, 4, map_len);
    CHECK(eio_binary_frame_decode(EIO_V3, (const uint8_t *)"", 0, &pkt) == SIOC_EPROTO);
    CHECK(eio_binary_frame_decode(EIO_V3, (const uint8_t *)"\x07", 1, &pkt) == SIOC_EPROTO);
    CHECK(eio_binary_frame_decode(EIO_V3, (const uint8_t *)"4", 1, &pkt) == SIOC_EPROTO);
    buf_deinit(&out);
}

static void check_encode_v4(const struct eio_packet *pk, size_t n, const char *want, size_t wlen)
{
    struct buf out;
    buf_init(&out, 0);
    buf_append_cstr(&out, "prefix");
    CHECK(eio_payload_encode(&out, pk, n) == SIOC_OK);
    CHECK_MEM(out.data + 6, out.len - 6, want, wlen);
    buf_deinit(&out);
}

#define PK(t, s)                                                                                   \
    {                                                                                              \
        (enum eio_packet_type)(t), false,                                                          \
        {                                                                                          \
            (const uint8_t *)(s), sizeof(s) - 1                                                    \
        }                                                                                          \
    }
#define PB(t, s)                                                                                   \
    {                                                                                              \
        (enum eio_packet_type)(t), true,                                                           \
        {                                                                                          \
            (const uint8_t *)(s), sizeof(s) - 1                                                    \
        }                                                                                          \
    }

static void test_v4_encode(void)
{
    const struct eio_packet a[] = {PK(4, "hello"), PK(2, ""), PK(4, "world")};
    check_encode_v4(a, 3,
                    "4hello\x1e"
                    "2\x1e"
                    "4world",
                    15);
    const struct eio_packet b[] = {PK(4, "hello"), PB(4, "\x01\x02\x03\x04")};
    check_encode_v4(b, 2,
                    "4hello\x1e"
                    "bAQIDBA==",
                    16);
    const struct eio_packet c[] = {PK(6, ""), PK(1, "")};
    check_encode_v4(c, 2,
                    "6\x1e"
                    "1",
                    3);
    const struct eio_packet d[] = {PB(4, "binary-ack"), PB(4, "")};
    check_encode_v4(d, 2,
                    "bYmluYXJ5LWFjaw==\x1e"
                    "b",
                    19);
    check_encode_v4(NULL, 0, "", 0);

    /* a v4 binary ping does not exist: rejected, buffer rolled back */
    struct buf out;
    buf_init(&out, 0);
    buf_append_cstr(&out, "x");
    const struct eio_packet bad[] = {PK(4, "ok"), PB(2, "\x01")};
    CHECK(eio_payload_encode(&out, bad, 2) == SIOC_EINVAL);
    CHECK_STR(out.data, out.len, "x");
    const struct eio_packet badtype[] = {PK(7, "")};
    CHECK(eio_payload_encode(&out, badtype, 1) == SIOC_EINVAL);
    CHECK_STR(out.data, out.len, "x");
    /* a limit hit mid-payload: rolled back, error sticky in the buffer */
    buf_deinit(&out);
    buf_init(&out, 8);
    buf_append_cstr(&out, "x");
    CHECK(eio_payload_encode(&out, a, 3) == SIOC_ETOOBIG);
    CHECK_STR(out.data, out.len, "x");
    buf_deinit(&out);
    /* single packets, v3 binary-in-text */
    buf_init(&out, 0);
    const struct eio_packet probe = PK(3, "probe");
    CHECK(eio_packet_encode(&out, EIO_V4, &probe) == SIOC_OK);
    CHECK_STR(out.data, out.len, "3probe");
    buf_reset(&out);
    const struct eio_packet bin = PB(4, "\x01\x02\x03\x04");
    CHECK(eio_packet_encode(&out, EIO_V3, &bin) == SIOC_OK);
    CHECK_STR(out.data, out.len, "b4AQIDBA==");
    buf_deinit(&out);
}

/* ---- v3 ---- */

static void test_v3_text_vectors(void)
{
    /* PROTOCOL.md 1.12 */
    CHECK_PAYLOAD(EIO_PAYLOAD_V3_TEXT, "6:4hello2:4\xe2\x82\xac", 0, T(4, "hello"),
                  T(4, "\xe2\x82\xac"));
    CHECK_PAYLOAD(EIO_PAYLOAD_V3_TEXT,
                  "20:42[\"message\",\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"]1:2", 0,
                  T(4, "2[\"message\",\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"]"), T(2, ""));
    CHECK_PAYLOAD_EMPTY(EIO_PAYLOAD_V3_TEXT, "0:", 0);
    CHECK_PAYLOAD(EIO_PAYLOAD_V3_TEXT, "1:6", 0, T(6, ""));
    CHECK_PAYLOAD(EIO_PAYLOAD_V3_TEXT, "1:1", 0, T(1, ""));
    CHECK_PAYLOAD(EIO_PAYLOAD_V3_TEXT, "10:b4AQIDBA==", 0, B(4, "\x01\x02\x03\x04"));
    CHECK_PAYLOAD(EIO_PAYLOAD_V3_TEXT, "6:2probe", 0, T(2, "probe"));
    /* Node skips empty entries and accepts leading zeros */
    CHECK_PAYLOAD(EIO_PAYLOAD_V3_TEXT, "0:0:1:6", 0, T(6, ""));
    CHECK_PAYLOAD(EIO_PAYLOAD_V3_TEXT, "00001:6", 0, T(6, ""));
    CHECK_PAYLOAD(EIO_PAYLOAD_V3_TEXT, "3:4\xf0\x9f\x98\x80", 0, T(4, "\xf0\x9f\x98\x80"));
}

static void test_v3_text_errors(void)
{
    /* the same packet prefixed with its byte length (25) is rejected */
    CHECK_PAYLOAD_EMPTY(EIO_PAYLOAD_V3_TEXT,
                        "25:42[\"message\",\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"]1:2",
                        SIOC_EPROTO);
    CHECK_PAYLOAD_EMPTY(EIO_PAYLOAD_V3_TEXT, "", SIOC_EPROTO);
    CHECK_PAYLOAD_EMPTY(EIO_PAYLOAD_V3_TEXT, "1:", SIOC_EPROTO);
    CHECK_PAYLOAD_EMPTY(EIO_PAYLOAD_V3_TEXT, "2:4", SIOC_EPROTO);
    CHECK_PAYLOAD_EMPTY(EIO_PAYLOAD_V3_TEXT, "a:4", SIOC_EPROTO);
    CHECK_PAYLOAD_EMPTY(EIO_PAYLOAD_V3_TEXT, ":4", SIOC_EPROTO);
    CHECK_PAYLOAD_EMPTY(EIO_PAYLOAD_V3_TEXT, " 1:4", SIOC_EPROTO);
    CHECK_PAYLOAD_EMPTY(EIO_PAYLOAD_V3_TEXT, "0x1:4", SIOC_EPROTO);
    CHECK_PAYLOAD_EMPTY(EIO_PAYLOAD_V3_TEXT, "1.0:4", SIOC_EPROTO);
    CHECK_PAYLOAD_EMPTY(EIO_PAYLOAD_V3_TEXT, "1", SIOC_EPROTO);
    CHECK_PAYLOAD_EMPTY(EIO_PAYLOAD_V3_TEXT, "1:9", SIOC_EPROTO);
    CHECK_PAYLOAD_EMPTY(EIO_PAYLOAD_V3_TEXT, "1:b", SIOC_EPROTO);
    CHECK_PAYLOAD_EMPTY(EIO_PAYLOAD_V3_TEXT, "2:b9", SIOC_EPROTO);
    CHECK_PAYLOAD(EIO_PAYLOAD_V3_TEXT, "1:4x", SIOC_EPROTO, T(4, ""));
    CHECK_PAYLOAD(EIO_PAYLOAD_V3_TEXT, "1:60:", 0, T(6, ""));
    CHECK_PAYLOAD(EIO_PAYLOAD_V3_TEXT, "1:61", SIOC_EPROTO, T(6, ""));
    /* a length that splits a surrogate pair */
    CHECK_PAYLOAD_EMPTY(EIO_PAYLOAD_V3_TEXT, "2:4\xf0\x9f\x98\x80", SIOC_EPROTO);
    /* invalid UTF-8 has no defined length */
    CHECK_PAYLOAD_EMPTY(EIO_PAYLOAD_V3_TEXT, "2:4\xc3\x28", SIOC_EUTF8);
    CHECK_PAYLOAD_EMPTY(EIO_PAYLOAD_V3_TEXT, "2:4\xed\xa0\x80", SIOC_EUTF8);
    /* overlong digit strings and huge declared lengths: bounded, no overflow */
    CHECK_PAYLOAD_EMPTY(EIO_PAYLOAD_V3_TEXT, "18446744073709551617:4", SIOC_EPROTO);
    CHECK_PAYLOAD_EMPTY(EIO_PAYLOAD_V3_TEXT, "99999999999999999999999999999999999999:4",
                        SIOC_EPROTO);
    CHECK_PAYLOAD_EMPTY(EIO_PAYLOAD_V3_TEXT, "4294967297:4", SIOC_EPROTO);
    uint8_t zeros[4096];
    memset(zeros, '0', sizeof zeros);
    zeros[sizeof zeros - 3] = '1';
    zeros[sizeof zeros - 2] = ':';
    zeros[sizeof zeros - 1] = '6';
    const struct want noop = T(6, "");
    check_payload(EIO_PAYLOAD_V3_TEXT, zeros, sizeof zeros, &noop, 1, 0);
}

/* The observed 1.12 server output for a binary event: text entry of 82 bytes, then two binary
 * attachments. (The document elides the text; this one has the same length.) */
static const char ev82[] = "452-[\"bin\",{\"_placeholder\":true,\"num\":0},{\"x\":{\"_"
                           "placeholder\":true,\"num\":1}},\"ab\"]";

static void test_v3_binary_vectors(void)
{
    static const uint8_t suite[] = {0, 6, 255, 52, 104, 101, 108, 108, 111,
                                    1, 5, 255, 4,  1,   2,   3,   4};
    const struct want w[] = {T(4, "hello"), B(4, "\x01\x02\x03\x04")};
    check_payload(EIO_PAYLOAD_V3_BINARY, suite, sizeof suite, w, 2, 0);

    CHECK(sizeof ev82 - 1 == 82);
    uint8_t obs[128];
    size_t n = 0;
    memcpy(obs + n, "\x00\x08\x02\xff", 4);
    n += 4;
    memcpy(obs + n, ev82, 82);
    n += 82;
    memcpy(obs + n, "\x01\x04\xff\x04\x01\x02\x03\x01\x02\xff\x04\x04", 12);
    n += 12;
    const struct want w2[] = {{4, false, ev82 + 1, 81}, B(4, "\x01\x02\x03"), B(4, "\x04")};
    check_payload(EIO_PAYLOAD_V3_BINARY, obs, n, w2, 3, 0);

    struct buf out;
    buf_init(&out, 0);
    const struct eio_packet pk[] = {PK(4, "hello"), PB(4, "\x01\x02\x03\x04")};
    CHECK(eio_v3_binary_payload_encode(&out, pk, 2) == SIOC_OK);
    CHECK_MEM(out.data, out.len, suite, sizeof suite);
    buf_reset(&out);
    const struct eio_packet pk2[] = {{EIO_PACKET_MESSAGE, false, {(const uint8_t *)ev82 + 1, 81}},
                                     PB(4, "\x01\x02\x03"),
                                     PB(4, "\x04")};
    CHECK(eio_v3_binary_payload_encode(&out, pk2, 3) == SIOC_OK);
    CHECK_MEM(out.data, out.len, obs, n);
    buf_reset(&out);
    CHECK(eio_v3_binary_payload_encode(&out, NULL, 0) == SIOC_OK && out.len == 0);
    buf_deinit(&out);

    CHECK_PAYLOAD_EMPTY(EIO_PAYLOAD_V3_BINARY, "", 0);
    /* a text entry may itself be base64 binary */
    CHECK_PAYLOAD(EIO_PAYLOAD_V3_BINARY,
                  "\x00\x01\x00\xff"
                  "b4AQIDBA==",
                  0, B(4, "\x01\x02\x03\x04"));
    CHECK_PAYLOAD(EIO_PAYLOAD_V3_BINARY,
                  "\x00\x00\x01\xff"
                  "6",
                  0, T(6, ""));
}

static void test_v3_binary_errors(void)
{
    CHECK_PAYLOAD_EMPTY(EIO_PAYLOAD_V3_BINARY,
                        "\x02\x01\xff"
                        "6",
                        SIOC_EPROTO);
    CHECK_PAYLOAD_EMPTY(EIO_PAYLOAD_V3_BINARY,
                        "\x00\x0a\xff"
                        "6",
                        SIOC_EPROTO);
    CHECK_PAYLOAD_EMPTY(EIO_PAYLOAD_V3_BINARY,
                        "\x00\xff"
                        "6",
                        SIOC_EPROTO);
    CHECK_PAYLOAD_EMPTY(EIO_PAYLOAD_V3_BINARY, "\x00\x01", SIOC_EPROTO);
    CHECK_PAYLOAD_EMPTY(EIO_PAYLOAD_V3_BINARY,
                        "\x00\x02\xff"
                        "6",
                        SIOC_EPROTO);
    CHECK_PAYLOAD_EMPTY(EIO_PAYLOAD_V3_BINARY, "\x00\x00\xff", SIOC_EPROTO);
    CHECK_PAYLOAD_EMPTY(EIO_PAYLOAD_V3_BINARY, "\x01\x00\xff", SIOC_EPROTO);
    CHECK_PAYLOAD_EMPTY(EIO_PAYLOAD_V3_BINARY, "\x01\x01\xff\x07", SIOC_EPROTO);
    CHECK_PAYLOAD_EMPTY(EIO_PAYLOAD_V3_BINARY,
                        "\x00\x01\xff"
                        "9",
                        SIOC_EPROTO);
    CHECK_PAYLOAD(EIO_PAYLOAD_V3_BINARY,
                  "\x00\x01\xff"
                  "6\x00",
                  SIOC_EPROTO, T(6, ""));
    /* huge declared lengths: bounded by the bytes left, no overflow */
    uint8_t huge[64] = {0};
    for (int i = 1; i < 40; i++)
        huge[i] = 9;
    huge[40] = 0xff;
    huge[41] = '6';
    check_payload(EIO_PAYLOAD_V3_BINARY, huge, 42, NULL, 0, SIOC_EPROTO);
}

static void check_v3_encode(const struct eio_packet *pk, size_t n, const char *want)
{
    struct buf out;
    buf_init(&out, 0);
    CHECK(eio_v3_payload_encode(&out, pk, n) == SIOC_OK);
    CHECK_STR(out.data, out.len, want);
    buf_deinit(&out);
}

static void test_v3_text_encode(void)
{
    const struct eio_packet a[] = {PK(4, "hello"), PK(4, "\xe2\x82\xac")};
    check_v3_encode(a, 2, "6:4hello2:4\xe2\x82\xac");
    const struct eio_packet b[] = {PK(4, "2[\"message\",\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"]"),
                                   PK(2, "")};
    check_v3_encode(b, 2, "20:42[\"message\",\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"]1:2");
    check_v3_encode(NULL, 0, "0:");
    const struct eio_packet noop[] = {PK(6, "")};
    check_v3_encode(noop, 1, "1:6");
    const struct eio_packet close[] = {PK(1, "")};
    check_v3_encode(close, 1, "1:1");
    const struct eio_packet bin[] = {PB(4, "\x01\x02\x03\x04")};
    check_v3_encode(bin, 1, "10:b4AQIDBA==");

    struct buf out;
    buf_init(&out, 0);
    buf_append_cstr(&out, "x");
    const struct eio_packet bad[] = {PK(4, "ok"), PK(4, "\xff")};
    CHECK(eio_v3_payload_encode(&out, bad, 2) == SIOC_EUTF8);
    CHECK_STR(out.data, out.len, "x");
    buf_deinit(&out);
}

/* ---- handshake, sid ---- */

static void test_open_packet(void)
{
    struct buf out;
    buf_init(&out, 0);
    static const char *const ws[] = {"websocket"};
    struct eio_open o = {"yKu4RTveNx0qIRXcAAAA", ws, 1, 2000, 1000, 1000};
    CHECK(eio_open_encode(&out, &o) == SIOC_OK);
    /* a-polling handshake body, byte for byte */
    CHECK_STR(
        out.data, out.len,
        "0{\"sid\":\"yKu4RTveNx0qIRXcAAAA\",\"upgrades\":[\"websocket\"],\"pingInterval\":2000,"
        "\"pingTimeout\":1000,\"maxPayload\":1000}");
    buf_reset(&out);
    struct eio_open o2 = {"xmzl74cBb_6No5IbAAAB", NULL, 0, 10000, 5000, 1000000};
    CHECK(eio_open_encode(&out, &o2) == SIOC_OK);
    CHECK_STR(out.data, out.len,
              "0{\"sid\":\"xmzl74cBb_6No5IbAAAB\",\"upgrades\":[],\"pingInterval\":10000,"
              "\"pingTimeout\":5000,\"maxPayload\":1000000}");
    buf_reset(&out);
    struct eio_open o3 = {"abcdefghijklmnopqrst", ws, 1, 25000, 20000, 1000000};
    CHECK(eio_open_encode(&out, &o3) == SIOC_OK);
    CHECK_STR(
        out.data, out.len,
        "0{\"sid\":\"abcdefghijklmnopqrst\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,"
        "\"pingTimeout\":20000,\"maxPayload\":1000000}");
    buf_deinit(&out);
}

static void check_sid_roundtrip(const char *sid)
{
    uint8_t raw[16];
    size_t n = 0;
    CHECK(base64url_decode_strict(sid, EIO_SID_LEN, raw, &n) && n == 15);
    uint32_t counter = (uint32_t)raw[12] << 16 | (uint32_t)raw[13] << 8 | raw[14];
    char out[EIO_SID_LEN];
    eio_sid_format(raw, counter | 0xff000000u, out); /* only the low 24 bits count */
    CHECK_MEM(out, EIO_SID_LEN, sid, EIO_SID_LEN);
}

static void test_sid_format(void)
{
    check_sid_roundtrip("yKu4RTveNx0qIRXcAAAA");
    check_sid_roundtrip("xmzl74cBb_6No5IbAAAB");
    uint8_t r[12];
    memset(r, 0xfb, sizeof r); /* 0xfb 0xff... exercises both replaced characters */
    r[1] = 0xff;
    char out[EIO_SID_LEN + 1] = {0};
    eio_sid_format(r, 1, out);
    CHECK_STR(out, strlen(out), "-__7-_v7-_v7-_v7AAAB");
    eio_sid_format(r, 0x123456, out);
    CHECK_STR(out + 16, 4, "EjRW");
}

/* Every sid the reference server handed out (EIO and Socket.IO ids) round-trips. */
static void test_sid_transcripts(void)
{
    static const char *const files[] = {"a-polling.jsonl", "b-websocket.jsonl", "c-upgrade.jsonl"};
    int seen = 0;
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/reference-transcripts/%s", test_shared_data(), files[f]);
        size_t len;
        uint8_t *data = test_read_file(path, &len);
        CHECK(data != NULL);
        if (data == NULL)
            continue;
        const char *key = "\\\"sid\\\":\\\"";
        size_t klen = strlen(key);
        for (size_t i = 0; i + klen + EIO_SID_LEN < len; i++) {
            if (memcmp(data + i, key, klen) != 0)
                continue;
            const char *sid = (const char *)data + i + klen;
            if (sid[EIO_SID_LEN] != '\\')
                continue;
            check_sid_roundtrip(sid);
            seen++;
        }
        free(data);
    }
    CHECK(seen >= 5);
}

/* ---- errors and request validation ---- */

static void test_error_bodies(void)
{
    static const char *const msgs[] = {
        "Transport unknown", "Session ID unknown", "Bad handshake method",
        "Bad request",       "Forbidden",          "Unsupported protocol version"};
    struct buf out;
    buf_init(&out, 0);
    for (int c = 0; c <= 5; c++) {
        CHECK(strcmp(eio_error_message((enum eio_error_code)c), msgs[c]) == 0);
        CHECK(eio_error_status((enum eio_error_code)c) == (c == 4 ? 403 : 400));
    }
    CHECK(eio_error_message((enum eio_error_code)6) == NULL);
    CHECK(eio_error_message(EIO_ERR_NONE) == NULL);
    CHECK(eio_error_status((enum eio_error_code)6) == 0);
    CHECK(eio_error_body_json(&out, (enum eio_error_code)6, NULL) == SIOC_EINVAL && out.len == 0);
    /* a-polling / c-upgrade transcripts */
    CHECK(eio_error_body_json(&out, EIO_ERR_UNKNOWN_SID, NULL) == SIOC_OK);
    CHECK_STR(out.data, out.len, "{\"code\":1,\"message\":\"Session ID unknown\"}");
    buf_reset(&out);
    CHECK(eio_error_body_json(&out, EIO_ERR_BAD_REQUEST, NULL) == SIOC_OK);
    CHECK_STR(out.data, out.len, "{\"code\":3,\"message\":\"Bad request\"}");
    buf_reset(&out);
    CHECK(eio_error_body_json(&out, EIO_ERR_FORBIDDEN, "no \"way\"\n") == SIOC_OK);
    CHECK_STR(out.data, out.len, "{\"code\":4,\"message\":\"no \\\"way\\\"\\n\"}");
    buf_reset(&out);
    CHECK(eio_error_body_json(&out, EIO_ERR_FORBIDDEN, "") == SIOC_OK);
    CHECK_STR(out.data, out.len, "{\"code\":4,\"message\":\"Forbidden\"}");
    buf_reset(&out);
    /* d1 transcript: raw upgrade refusals */
    CHECK(eio_error_upgrade_response(&out, EIO_ERR_UNKNOWN_SID, NULL) == SIOC_OK);
    CHECK_STR(out.data, out.len,
              "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-type: text/html\r\n"
              "Content-Length: 18\r\n\r\nSession ID unknown");
    buf_reset(&out);
    CHECK(eio_error_upgrade_response(&out, EIO_ERR_UNKNOWN_TRANSPORT, NULL) == SIOC_OK);
    CHECK_STR(out.data, out.len,
              "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-type: text/html\r\n"
              "Content-Length: 17\r\n\r\nTransport unknown");
    buf_reset(&out);
    CHECK(eio_error_upgrade_response(&out, EIO_ERR_UNSUPPORTED_PROTOCOL_VERSION, NULL) == SIOC_OK);
    CHECK_STR(out.data, out.len,
              "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-type: text/html\r\n"
              "Content-Length: 28\r\n\r\nUnsupported protocol version");
    buf_reset(&out);
    CHECK(eio_error_upgrade_response(&out, EIO_ERR_FORBIDDEN, "d\xc3\xa9ni") == SIOC_OK);
    CHECK_STR(out.data, out.len,
              "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-type: text/html\r\n"
              "Content-Length: 5\r\n\r\nd\xc3\xa9ni");
    buf_deinit(&out);
}

#define SL(s) ((struct slice){(const uint8_t *)(s), (s) == NULL ? 0 : strlen(s)})

static struct eio_request base_request(const char *transport, const char *eio)
{
    struct eio_request r;
    memset(&r, 0, sizeof r);
    r.transport = SL(transport);
    r.eio = SL(eio);
    r.is_get = true;
    r.enabled_transports = EIO_TRANSPORT_POLLING | EIO_TRANSPORT_WEBSOCKET;
    return r;
}

static int check_req(const struct eio_request *r)
{
    enum eio_transport t = EIO_TRANSPORT_NONE;
    enum eio_version v = (enum eio_version)0;
    enum eio_error_code c = eio_check_request(r, &t, &v);
    if (c == EIO_ERR_NONE)
        CHECK(t != EIO_TRANSPORT_NONE && (v == EIO_V3 || v == EIO_V4));
    else
        CHECK(t == EIO_TRANSPORT_NONE && v == 0);
    return (int)c;
}

static void test_check_request(void)
{
    struct eio_request r = base_request("polling", "4");
    enum eio_transport t;
    enum eio_version v;
    CHECK(eio_check_request(&r, &t, &v) == EIO_ERR_NONE);
    CHECK(t == EIO_TRANSPORT_POLLING && v == EIO_V4);
    /* d1: transport unknown, missing, webtransport; transport checked before EIO */
    r = base_request("unknown", "4");
    CHECK(check_req(&r) == 0);
    r = base_request(NULL, "4");
    CHECK(check_req(&r) == 0);
    r = base_request("webtransport", "4");
    CHECK(check_req(&r) == 0);
    r = base_request("foo", "3");
    CHECK(check_req(&r) == 0);
    r = base_request("Polling", "4");
    CHECK(check_req(&r) == 0);
    r = base_request("websocket", "4");
    r.enabled_transports = EIO_TRANSPORT_POLLING;
    r.is_upgrade = true;
    CHECK(check_req(&r) == 0);
    /* origin before sid */
    r = base_request("polling", "4");
    r.origin_invalid = true;
    r.has_sid = true;
    CHECK(check_req(&r) == 3);
    /* unknown sid, GET or POST, before method and version */
    r = base_request("polling", "3");
    r.has_sid = true;
    r.is_get = false;
    CHECK(check_req(&r) == 1);
    /* POST/PUT without sid */
    r = base_request("polling", "4");
    r.is_get = false;
    CHECK(check_req(&r) == 2);
    r = base_request("polling", "5");
    r.is_get = false;
    CHECK(check_req(&r) == 2);
    /* websocket handshake without upgrade headers */
    r = base_request("websocket", "4");
    CHECK(check_req(&r) == 3);
    r.is_upgrade = true;
    CHECK(check_req(&r) == EIO_ERR_NONE);
    /* known sid: transport mismatch (also polling after upgrade), protocol mismatch */
    r = base_request("websocket", "4");
    r.has_sid = true;
    r.session_found = true;
    r.session_transport = EIO_TRANSPORT_POLLING;
    r.session_version = EIO_V4;
    CHECK(check_req(&r) == 3);
    r.is_upgrade = true;
    CHECK(eio_check_request(&r, &t, &v) == EIO_ERR_NONE);
    CHECK(t == EIO_TRANSPORT_WEBSOCKET && v == EIO_V4);
    r = base_request("polling", "4");
    r.has_sid = true;
    r.session_found = true;
    r.session_transport = EIO_TRANSPORT_WEBSOCKET;
    r.session_version = EIO_V4;
    CHECK(check_req(&r) == 3);
    r = base_request("polling", "3");
    r.has_sid = true;
    r.session_found = true;
    r.session_transport = EIO_TRANSPORT_POLLING;
    r.session_version = EIO_V4;
    CHECK(check_req(&r) == 3);
    r.allow_eio3 = true;
    CHECK(check_req(&r) == 3);
    r.session_version = EIO_V3;
    CHECK(eio_check_request(&r, &t, &v) == EIO_ERR_NONE && v == EIO_V3);
    /* version: only exactly "4" is v4 */
    static const char *const not4[] = {"3", NULL, "5", "", "04", "4 "};
    for (size_t i = 0; i < sizeof not4 / sizeof not4[0]; i++) {
        r = base_request("polling", not4[i]);
        CHECK(check_req(&r) == 5);
        r.allow_eio3 = true;
        CHECK(eio_check_request(&r, &t, &v) == EIO_ERR_NONE && v == EIO_V3);
    }
    /* allowRequest refusal comes before the version check */
    r = base_request("polling", "3");
    r.forbidden = true;
    CHECK(check_req(&r) == 4);
}

/* ---- JSONP ---- */

static void test_jsonp(void)
{
    struct buf out;
    buf_init(&out, 0);
    const char *open = "0{\"sid\":\"abc\",\"upgrades\":[]}";
    CHECK(eio_jsonp_encode(&out, SL("0"), (const uint8_t *)open, strlen(open)) == SIOC_OK);
    CHECK_STR(out.data, out.len, "___eio[0](\"0{\\\"sid\\\":\\\"abc\\\",\\\"upgrades\\\":[]}\");");
    buf_reset(&out);
    const char *p = "4a\x1e\\\b\f\n\r\t\x01\x7f\xc3\xa9\xe2\x80\xa8\xe2\x80\xa9\xe2\x80\xaa";
    CHECK(eio_jsonp_encode(&out, SL("1x2"), (const uint8_t *)p, strlen(p)) == SIOC_OK);
    CHECK_STR(out.data, out.len,
              "___eio[12](\"4a\\u001e\\\\\\b\\f\\n\\r\\t\\u0001\x7f\xc3\xa9\\u2028\\u2029"
              "\xe2\x80\xaa\");");
    buf_reset(&out);
    CHECK(eio_jsonp_encode(&out, SL(""), NULL, 0) == SIOC_OK);
    CHECK_STR(out.data, out.len, "___eio[](\"\");");
    buf_reset(&out);
    /* a truncated separator at the end is copied, not over-read */
    CHECK(eio_jsonp_encode(&out, SL("3"), (const uint8_t *)"\xe2\x80", 2) == SIOC_OK);
    CHECK_STR(out.data, out.len, "___eio[3](\"\xe2\x80\");");
    buf_deinit(&out);
}

/* PROTOCOL.md 1.5.7: the `d=` body of JSONP POSTs. Expected values from engine.io 6.6's
 * polling-jsonp onData run under Node 20 (qs.parse, then the two newline rewrites). */
static void check_jsonp_body(const char *body, const char *want)
{
    struct buf out;
    buf_init(&out, 0);
    buf_append(&out, "#", 1);
    int rc = eio_jsonp_body_decode((const uint8_t *)body, strlen(body), &out);
    if (want == NULL) {
        CHECK(rc == SIOC_EPROTO);
        CHECK_STR(out.data, out.len, "#");
    } else {
        CHECK(rc == SIOC_OK);
        CHECK(out.len == strlen(want) + 1 && memcmp(out.data + 1, want, out.len - 1) == 0);
    }
    buf_deinit(&out);
}

static void test_jsonp_body(void)
{
    check_jsonp_body("d=3%3A42%5B%22a%22%5D", "3:42[\"a\"]");
    check_jsonp_body("d=a%5Cnb", "a\nb");
    check_jsonp_body("d=a%5C%5Cnb", "a\\nb");
    check_jsonp_body("d=a%5C%5C%5Cnb", "a\\\\nb");
    check_jsonp_body("d=a+b%2Bc", "a b+c");
    check_jsonp_body("d=1&d=2", NULL);
    check_jsonp_body("x=1", NULL);
    check_jsonp_body("", NULL);
    check_jsonp_body("%64=ok", "ok");
    check_jsonp_body("d=%zz%4", "%zz%4");
    check_jsonp_body("d=", "");
    check_jsonp_body("e&d=x&", "x");
    /* only the first 1000 pairs count (querystring maxKeys) */
    struct buf body;
    buf_init(&body, 0);
    for (int i = 0; i < EIO_JSONP_MAX_PAIRS; i++)
        buf_append(&body, "a=1&", 4);
    buf_append(&body, "d=x", 3);
    buf_append_byte(&body, 0);
    check_jsonp_body((const char *)body.data, NULL);
    buf_deinit(&body);
    /* a limit on out is reported and rolled back */
    struct buf small;
    buf_init(&small, 2);
    CHECK(eio_jsonp_body_decode((const uint8_t *)"d=abc", 5, &small) == SIOC_ETOOBIG);
    CHECK(small.len == 0);
    buf_deinit(&small);
}

/* ---- reference transcripts ---- */

static void put_utf8(uint8_t *out, size_t *n, uint32_t cp)
{
    if (cp < 0x80) {
        out[(*n)++] = (uint8_t)cp;
    } else if (cp < 0x800) {
        out[(*n)++] = (uint8_t)(0xc0 | cp >> 6);
        out[(*n)++] = (uint8_t)(0x80 | (cp & 63));
    } else if (cp < 0x10000) {
        out[(*n)++] = (uint8_t)(0xe0 | cp >> 12);
        out[(*n)++] = (uint8_t)(0x80 | ((cp >> 6) & 63));
        out[(*n)++] = (uint8_t)(0x80 | (cp & 63));
    } else {
        out[(*n)++] = (uint8_t)(0xf0 | cp >> 18);
        out[(*n)++] = (uint8_t)(0x80 | ((cp >> 12) & 63));
        out[(*n)++] = (uint8_t)(0x80 | ((cp >> 6) & 63));
        out[(*n)++] = (uint8_t)(0x80 | (cp & 63));
    }
}

/* Unescapes the JSON string value of `"<key>":"` in line[0..len) into out; false if absent. */
static bool json_field(const char *line, size_t len, const char *key, uint8_t *out, size_t *n)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *s = NULL;
    size_t plen = strlen(pat);
    for (size_t i = 0; i + plen <= len; i++) {
        if (memcmp(line + i, pat, plen) == 0) {
            s = line + i + plen;
            break;
        }
    }
    if (s == NULL)
        return false;
    const char *end = line + len;
    *n = 0;
    while (s < end && *s != '"') {
        if (*s != '\\') {
            out[(*n)++] = (uint8_t)*s++;
            continue;
        }
        char e = s[1];
        s += 2;
        if (e == 'u') {
            unsigned cp;
            sscanf(s, "%4x", &cp);
            s += 4;
            if (cp >= 0xd800 && cp < 0xdc00 && s[0] == '\\' && s[1] == 'u') {
                unsigned lo;
                sscanf(s + 2, "%4x", &lo);
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                s += 6;
            }
            put_utf8(out, n, cp);
        } else {
            out[(*n)++] = (uint8_t)(e == 'n'   ? '\n'
                                    : e == 'r' ? '\r'
                                    : e == 't' ? '\t'
                                    : e == 'b' ? '\b'
                                    : e == 'f' ? '\f'
                                               : e);
        }
    }
    return true;
}

/* Decodes a v4 payload; if it decodes cleanly, re-encodes it and expects the same bytes. */
static bool roundtrip_v4(const uint8_t *p, size_t len)
{
    static struct decoded d;
    decode_guarded(EIO_PAYLOAD_V4, p, len, &d);
    if (d.rc != 0)
        return false;
    struct buf out;
    buf_init(&out, 0);
    CHECK(eio_payload_encode(&out, d.pk, d.count) == SIOC_OK);
    CHECK_MEM(out.data, out.len, p, len);
    buf_deinit(&out);
    return true;
}

static void test_transcripts(void)
{
    static const char *const files[] = {"a-polling.jsonl",
                                        "b-websocket.jsonl",
                                        "c-upgrade.jsonl",
                                        "d1-engineio-errors.jsonl",
                                        "d2-polling-errors.jsonl",
                                        "d3-cors.jsonl",
                                        "d4-namespace-errors.jsonl",
                                        "d5-invalid-packets-ws.jsonl",
                                        "d6-heartbeat-timeout.jsonl",
                                        "d7-connect-timeout.jsonl",
                                        "e-polling-server-disconnect.jsonl"};
    static uint8_t text[1 << 16];
    int bodies = 0, frames = 0, rejected = 0;
    bool saw_noop_close = false;
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/reference-transcripts/%s", test_shared_data(), files[f]);
        size_t len;
        char *data = (char *)test_read_file(path, &len);
        CHECK(data != NULL);
        if (data == NULL)
            continue;
        for (char *line = data; line < data + len;) {
            char *nl = memchr(line, '\n', (size_t)(data + len - line));
            size_t ll = nl != NULL ? (size_t)(nl - line) : (size_t)(data + len - line);
            line[ll] = '\0';
            size_t n;
            bool is_resp = strstr(line, "\"kind\":\"http-response\"") != NULL &&
                           strstr(line, "\"status\":200") != NULL;
            bool is_post = strstr(line, "\"kind\":\"http-request\",") != NULL &&
                           strstr(line, "\"text\":\"POST ") != NULL;
            if ((is_resp || is_post) && strstr(line, "text_is_head_only") == NULL &&
                json_field(line, ll, "text", text, &n)) {
                uint8_t *body = NULL;
                for (size_t i = 0; i + 4 <= n; i++) {
                    if (memcmp(text + i, "\r\n\r\n", 4) == 0) {
                        body = text + i + 4;
                        break;
                    }
                }
                bool polling_body = body != NULL && strstr(line, "chunked") == NULL &&
                                    strstr(line, "Content-Type: text/plain") != NULL;
                if (polling_body) {
                    size_t blen = (size_t)(text + n - body);
                    if (roundtrip_v4(body, blen))
                        bodies++;
                    else
                        rejected++;
                    if (blen == 3 && memcmp(body,
                                            "6\x1e"
                                            "1",
                                            3) == 0)
                        saw_noop_close = true;
                }
            }
            if (strstr(line, "\"kind\":\"ws-frame\"") != NULL &&
                strstr(line, "\"opcode\":1,") != NULL && json_field(line, ll, "text", text, &n)) {
                struct buf bin, out;
                struct eio_packet pkt;
                buf_init(&bin, 0);
                buf_init(&out, 0);
                if (eio_packet_decode(EIO_V4, text, n, &bin, &pkt) == SIOC_OK) {
                    CHECK(eio_packet_encode(&out, EIO_V4, &pkt) == SIOC_OK);
                    CHECK_MEM(out.data, out.len, text, n);
                    frames++;
                } else {
                    rejected++;
                }
                buf_deinit(&bin);
                buf_deinit(&out);
            }
            line += ll + 1;
        }
        free(data);
    }
    /* these counts come from the transcripts; they fail if parsing silently stops working */
    CHECK(bodies >= 60);
    CHECK(frames >= 200);
    CHECK(saw_noop_close);
    /* d2 `9`, empty POST, d5 `9` and empty text frame at least */
    CHECK(rejected >= 4);
}

int main(void)
{
    RUN(test_v4_payload_vectors);
    RUN(test_v4_payload_errors);
    RUN(test_v4_base64_lenient);
    RUN(test_packet_decode);
    RUN(test_binary_frames);
    RUN(test_v4_encode);
    RUN(test_v3_text_vectors);
    RUN(test_v3_text_errors);
    RUN(test_v3_binary_vectors);
    RUN(test_v3_binary_errors);
    RUN(test_v3_text_encode);
    RUN(test_open_packet);
    RUN(test_sid_format);
    RUN(test_sid_transcripts);
    RUN(test_error_bodies);
    RUN(test_check_request);
    RUN(test_jsonp);
    RUN(test_jsonp_body);
    RUN(test_transcripts);
    return test_summary("test_eio");
}
