/* test_sio.c: the Socket.IO codec against PROTOCOL.md 2.2-2.5 and 2.7 (every example), the
 * accept/reject cases of 2.3/2.4, a replay of every client packet of the reference transcript
 * d5-invalid-packets-ws.jsonl through the decoder + assembler with the observed close/no-close
 * outcome, binary reassembly and placeholder numbering. Every decoder input is read from a
 * guard page, and every prefix of it too, so an over-read crashes. */
#include "common/base64.h"
#include "common/error.h"
#include "common/json.h"
#include "common/mp.h"
#include "common/sio.h"
#include "tests/unit/test.h"

#define NO_ID (-1LL)

/* ---------------------------------------------------------------- helpers ---- */

static int hex_bin_cb(void *ctx, const uint8_t *p, size_t n, struct buf *out)
{
    (void)ctx;
    static const char digits[] = "0123456789abcdef";
    buf_append_cstr(out, "\"<bin:");
    for (size_t k = 0; k < n; k++) {
        buf_append_byte(out, (uint8_t)digits[p[k] >> 4]);
        buf_append_byte(out, (uint8_t)digits[p[k] & 15]);
    }
    buf_append_cstr(out, ">\"");
    return SIOC_OK;
}

/* Renders a msgpack value as JSON, bins as "<bin:hex>", into out (reset first). */
static int render(const struct slice *data, struct buf *out)
{
    buf_reset(out);
    struct mp_reader r;
    mp_reader_init(&r, data->p, data->len);
    struct json_write_opts opts = {hex_bin_cb, NULL};
    int err = json_from_msgpack(&r, &opts, out);
    if (err == SIOC_OK && r.pos != r.len)
        err = SIOC_EPROTO;
    return err;
}

static bool slice_is(struct slice s, const char *want)
{
    return s.len == strlen(want) && (s.len == 0 || memcmp(s.p, want, s.len) == 0);
}

/* ------------------------------------------------------------- decoding ---- */

struct dcase {
    const char *in;
    int rc;
    enum sio_reason reason;
    int type;
    const char *nsp;
    long long id; /* NO_ID: none */
    unsigned attachments;
    const char *json;  /* rendered payload, NULL: no payload */
    const char *reenc; /* expected sio_packet_encode of the result, NULL: not checked */
};

#define OK_(in, type, nsp, id, att, json, reenc)                                                   \
    {                                                                                              \
        in, SIOC_OK, SIO_REASON_NONE, type, nsp, id, att, json, reenc                              \
    }
#define BAD(in, rc, reason)                                                                        \
    {                                                                                              \
        in, rc, reason, 0, NULL, NO_ID, 0, NULL, NULL                                              \
    }

static const struct dcase decode_cases[] = {
    /* PROTOCOL.md 2.2 examples */
    OK_("0", SIO_CONNECT, "/", NO_ID, 0, NULL, "0"),
    OK_("0/admin,{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}", SIO_CONNECT, "/admin", NO_ID, 0,
        "{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}", "0/admin,{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}"),
    OK_("4{\"message\":\"Not authorized\"}", SIO_CONNECT_ERROR, "/", NO_ID, 0,
        "{\"message\":\"Not authorized\"}", "4{\"message\":\"Not authorized\"}"),
    OK_("2[\"foo\"]", SIO_EVENT, "/", NO_ID, 0, "[\"foo\"]", "2[\"foo\"]"),
    OK_("2/admin,[\"bar\"]", SIO_EVENT, "/admin", NO_ID, 0, "[\"bar\"]", "2/admin,[\"bar\"]"),
    OK_("212[\"foo\"]", SIO_EVENT, "/", 12, 0, "[\"foo\"]", "212[\"foo\"]"),
    OK_("3/admin,13[\"bar\"]", SIO_ACK, "/admin", 13, 0, "[\"bar\"]", "3/admin,13[\"bar\"]"),
    OK_("1/admin,", SIO_DISCONNECT, "/admin", NO_ID, 0, NULL, "1/admin,"),
    OK_("51-[\"baz\",{\"_placeholder\":true,\"num\":0}]", SIO_BINARY_EVENT, "/", NO_ID, 1,
        "[\"baz\",{\"_placeholder\":true,\"num\":0}]", NULL),
    OK_("52-/admin,[\"baz\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]",
        SIO_BINARY_EVENT, "/admin", NO_ID, 2,
        "[\"baz\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]", NULL),
    OK_("61-15[\"bar\",{\"_placeholder\":true,\"num\":0}]", SIO_BINARY_ACK, "/", 15, 1,
        "[\"bar\",{\"_placeholder\":true,\"num\":0}]", NULL),
    OK_("52-[\"bin-back\",{\"_placeholder\":true,\"num\":0},{\"x\":{\"_placeholder\":true,\"num\":1}}]",
        SIO_BINARY_EVENT, "/", NO_ID, 2,
        "[\"bin-back\",{\"_placeholder\":true,\"num\":0},{\"x\":{\"_placeholder\":true,\"num\":1}}]",
        NULL),
    /* 2.5 connecting */
    OK_("0{\"token\":\"123\"}", SIO_CONNECT, "/", NO_ID, 0, "{\"token\":\"123\"}",
        "0{\"token\":\"123\"}"),
    OK_("0/custom,", SIO_CONNECT, "/custom", NO_ID, 0, NULL, "0/custom,"),
    OK_("0/custom,{\"token\":\"abc\"}", SIO_CONNECT, "/custom", NO_ID, 0, "{\"token\":\"abc\"}",
        "0/custom,{\"token\":\"abc\"}"),
    OK_("0/secure,{\"token\":\"wrong\"}", SIO_CONNECT, "/secure", NO_ID, 0, "{\"token\":\"wrong\"}",
        NULL),
    OK_("4/secure,{\"message\":\"not authorized\",\"data\":{\"content\":\"Please retry later\"}}",
        SIO_CONNECT_ERROR, "/secure", NO_ID, 0,
        "{\"message\":\"not authorized\",\"data\":{\"content\":\"Please retry later\"}}", NULL),
    OK_("4/random,{\"message\":\"Invalid namespace\"}", SIO_CONNECT_ERROR, "/random", NO_ID, 0,
        "{\"message\":\"Invalid namespace\"}", "4/random,{\"message\":\"Invalid namespace\"}"),
    OK_("4\"just a string\"", SIO_CONNECT_ERROR, "/", NO_ID, 0, "\"just a string\"", NULL),
    OK_("0{}", SIO_CONNECT, "/", NO_ID, 0, "{}", "0{}"),
    /* 2.3 step 1: type */
    BAD("", SIOC_EPROTO, SIO_REASON_EMPTY),
    BAD("7", SIOC_EPROTO, SIO_REASON_UNKNOWN_TYPE),
    BAD("9", SIOC_EPROTO, SIO_REASON_UNKNOWN_TYPE),
    BAD("abc", SIOC_EPROTO, SIO_REASON_UNKNOWN_TYPE),
    BAD(" {}", SIOC_EPROTO, SIO_REASON_UNKNOWN_TYPE), /* deviation: Node's Number(" ") is 0 */
    /* step 2: attachments */
    BAD("50-[\"a\",{\"_placeholder\":true,\"num\":0}]", SIOC_EPROTO,
        SIO_REASON_ILLEGAL_ATTACHMENTS),
    BAD("511-[\"bin\",{\"_placeholder\":true,\"num\":0}]", SIOC_ETOOBIG,
        SIO_REASON_TOO_MANY_ATTACHMENTS),
    BAD("5999999999999999999999999999-[\"a\"]", SIOC_ETOOBIG, SIO_REASON_TOO_MANY_ATTACHMENTS),
    OK_("510-[\"a\"]", SIO_BINARY_EVENT, "/", NO_ID, 10, "[\"a\"]", NULL),
    OK_("5001-[\"a\"]", SIO_BINARY_EVENT, "/", NO_ID, 1, "[\"a\"]", NULL),
    OK_("51-", SIO_BINARY_EVENT, "/", NO_ID, 1, NULL, NULL),
    OK_("61-[]", SIO_BINARY_ACK, "/", NO_ID, 1, "[]", NULL),
    BAD("5-[\"a\"]", SIOC_EPROTO, SIO_REASON_ILLEGAL_ATTACHMENTS),
    BAD("5", SIOC_EPROTO, SIO_REASON_ILLEGAL_ATTACHMENTS),
    BAD("51", SIOC_EPROTO, SIO_REASON_ILLEGAL_ATTACHMENTS),
    BAD("51[\"a-b\"]", SIOC_EPROTO, SIO_REASON_ILLEGAL_ATTACHMENTS),
    BAD("5 1-[\"a\"]", SIOC_EPROTO, SIO_REASON_ILLEGAL_ATTACHMENTS), /* deviation: Node trims */
    BAD("51x-[\"a\"]", SIOC_EPROTO, SIO_REASON_ILLEGAL_ATTACHMENTS),
    BAD("6-1[]", SIOC_EPROTO, SIO_REASON_ILLEGAL_ATTACHMENTS),
    /* step 3: namespace */
    OK_("0/custom", SIO_CONNECT, "/custom", NO_ID, 0, NULL, "0/custom,"),
    OK_("2/,[\"a\"]", SIO_EVENT, "/", NO_ID, 0, "[\"a\"]", "2[\"a\"]"),
    OK_("0/custom?foo=bar,", SIO_CONNECT, "/custom?foo=bar", NO_ID, 0, NULL, "0/custom?foo=bar,"),
    OK_("0/random", SIO_CONNECT, "/random", NO_ID, 0, NULL, NULL),
    OK_("2/chat[\"x\"]", SIO_EVENT, "/chat[\"x\"]", NO_ID, 0, NULL, NULL), /* no ',' : all nsp */
    OK_("2/", SIO_EVENT, "/", NO_ID, 0, NULL, NULL),
    OK_("1", SIO_DISCONNECT, "/", NO_ID, 0, NULL, "1"),
    OK_("1/custom,", SIO_DISCONNECT, "/custom", NO_ID, 0, NULL, "1/custom,"),
    /* step 4: ack id */
    OK_("2007[\"a\"]", SIO_EVENT, "/", 7, 0, "[\"a\"]", "27[\"a\"]"),
    OK_("399[]", SIO_ACK, "/", 99, 0, "[]", "399[]"),
    OK_("29007199254740991[\"a\"]", SIO_EVENT, "/", 9007199254740991LL, 0, "[\"a\"]", NULL),
    BAD("29007199254740992[\"a\"]", SIOC_EPROTO, SIO_REASON_INVALID_ACK_ID),
    BAD("2123456789012345678901234567890[\"a\"]", SIOC_EPROTO, SIO_REASON_INVALID_ACK_ID),
    OK_("2000000000000000000000000000001[\"a\"]", SIO_EVENT, "/", 1, 0, "[\"a\"]", NULL),
    /* deviation: a space is not an id digit; it is JSON whitespace before the payload */
    OK_("2 [\"message\"]", SIO_EVENT, "/", NO_ID, 0, "[\"message\"]", "2[\"message\"]"),
    OK_("21 [\"message\"]", SIO_EVENT, "/", 1, 0, "[\"message\"]", NULL),
    OK_("2/chat,17[\"x\"]", SIO_EVENT, "/chat", 17, 0, "[\"x\"]", "2/chat,17[\"x\"]"),
    OK_("51-2[\"bin\",{\"_placeholder\":true,\"num\":0}]", SIO_BINARY_EVENT, "/", 2, 1,
        "[\"bin\",{\"_placeholder\":true,\"num\":0}]", NULL),
    /* step 5: payload per type */
    BAD("0[\"x\"]", SIOC_EPROTO, SIO_REASON_INVALID_PAYLOAD),
    BAD("0\"x\"", SIOC_EPROTO, SIO_REASON_INVALID_PAYLOAD),
    BAD("0\"str\"", SIOC_EPROTO, SIO_REASON_INVALID_PAYLOAD),
    BAD("0null", SIOC_EPROTO, SIO_REASON_INVALID_PAYLOAD),
    BAD("0[]", SIOC_EPROTO, SIO_REASON_INVALID_PAYLOAD),
    OK_("01", SIO_CONNECT, "/", 1, 0, NULL, "01"), /* an id on CONNECT: Node keeps it */
    BAD("1{}", SIOC_EPROTO, SIO_REASON_INVALID_PAYLOAD),
    BAD("1 ", SIOC_EPROTO, SIO_REASON_INVALID_PAYLOAD),
    BAD("1/custom,{}", SIOC_EPROTO, SIO_REASON_INVALID_PAYLOAD),
    BAD("4[1]", SIOC_EPROTO, SIO_REASON_INVALID_PAYLOAD),
    OK_("41", SIO_CONNECT_ERROR, "/", 1, 0, NULL, "41"),
    OK_("4", SIO_CONNECT_ERROR, "/", NO_ID, 0, NULL, NULL),
    BAD("2[]", SIOC_EPROTO, SIO_REASON_INVALID_PAYLOAD),
    BAD("2{}", SIOC_EPROTO, SIO_REASON_INVALID_PAYLOAD),
    BAD("2{\"a\":1}", SIOC_EPROTO, SIO_REASON_INVALID_PAYLOAD),
    BAD("2[{\"a\":1}]", SIOC_EPROTO, SIO_REASON_INVALID_PAYLOAD),
    BAD("2[null]", SIOC_EPROTO, SIO_REASON_INVALID_PAYLOAD),
    BAD("2[true,1]", SIOC_EPROTO, SIO_REASON_INVALID_PAYLOAD),
    BAD("2[[\"a\"]]", SIOC_EPROTO, SIO_REASON_INVALID_PAYLOAD),
    BAD("2\"a\"", SIOC_EPROTO, SIO_REASON_INVALID_PAYLOAD),
    BAD("2[\"connect\"]", SIOC_EPROTO, SIO_REASON_INVALID_PAYLOAD),
    BAD("2[\"connect_error\"]", SIOC_EPROTO, SIO_REASON_INVALID_PAYLOAD),
    BAD("2[\"disconnect\"]", SIOC_EPROTO, SIO_REASON_INVALID_PAYLOAD),
    BAD("2[\"disconnecting\",1]", SIOC_EPROTO, SIO_REASON_INVALID_PAYLOAD),
    BAD("2[\"newListener\"]", SIOC_EPROTO, SIO_REASON_INVALID_PAYLOAD),
    BAD("2[\"removeListener\"]", SIOC_EPROTO, SIO_REASON_INVALID_PAYLOAD),
    BAD("2[\"\\u0064isconnect\"]", SIOC_EPROTO, SIO_REASON_INVALID_PAYLOAD), /* after unescaping */
    BAD("51-[\"disconnect\",{\"_placeholder\":true,\"num\":0}]", SIOC_EPROTO,
        SIO_REASON_INVALID_PAYLOAD),
    BAD("51-{}", SIOC_EPROTO, SIO_REASON_INVALID_PAYLOAD),
    BAD("61-{}", SIOC_EPROTO, SIO_REASON_INVALID_PAYLOAD),
    OK_("2[\"Connect\"]", SIO_EVENT, "/", NO_ID, 0, "[\"Connect\"]", "2[\"Connect\"]"),
    OK_("2[\"disconnect \"]", SIO_EVENT, "/", NO_ID, 0, "[\"disconnect \"]", NULL),
    OK_("2[1,2]", SIO_EVENT, "/", NO_ID, 0, "[1,2]", "2[1,2]"),
    OK_("2[1,\"x\"]", SIO_EVENT, "/", NO_ID, 0, "[1,\"x\"]", "2[1,\"x\"]"),
    OK_("2[-1.5]", SIO_EVENT, "/", NO_ID, 0, "[-1.5]", "2[-1.5]"),
    OK_("2[1e400]", SIO_EVENT, "/", NO_ID, 0, "[null]", "2[null]"), /* Infinity is a number */
    OK_("2[\"\"]", SIO_EVENT, "/", NO_ID, 0, "[\"\"]", "2[\"\"]"),
    BAD("2abc[\"a\"]", SIOC_EPROTO, SIO_REASON_INVALID_PAYLOAD),
    BAD("2notjson", SIOC_EPROTO, SIO_REASON_INVALID_PAYLOAD),
    BAD("2[\"a\",]", SIOC_EPROTO, SIO_REASON_INVALID_PAYLOAD),
    BAD("2[\"a\"]x", SIOC_EPROTO, SIO_REASON_INVALID_PAYLOAD),
    BAD("2[\"a\"", SIOC_EPROTO, SIO_REASON_INVALID_PAYLOAD),
    BAD("2[\"\xff\"]", SIOC_EPROTO, SIO_REASON_INVALID_PAYLOAD),
    OK_("2[\"a\"] \n", SIO_EVENT, "/", NO_ID, 0, "[\"a\"]", "2[\"a\"]"),
    OK_("2", SIO_EVENT, "/", NO_ID, 0, NULL, "2"), /* Node lenient: no payload, no check */
    OK_("3", SIO_ACK, "/", NO_ID, 0, NULL, "3"),
    OK_("3[]", SIO_ACK, "/", NO_ID, 0, "[]", "3[]"),
    OK_("31[]", SIO_ACK, "/", 1, 0, "[]", "31[]"),
    BAD("31{}", SIOC_EPROTO, SIO_REASON_INVALID_PAYLOAD),
    BAD("3\"a\"", SIOC_EPROTO, SIO_REASON_INVALID_PAYLOAD),
    /* echo payloads, byte for byte (2.2) */
    OK_("2[\"echo\",{\"3\":[true]}]", SIO_EVENT, "/", NO_ID, 0, "[\"echo\",{\"3\":[true]}]",
        "2[\"echo\",{\"3\":[true]}]"),
    OK_("2[\"echo\",1,\"2\",{\"3\":[false]}]", SIO_EVENT, "/", NO_ID, 0,
        "[\"echo\",1,\"2\",{\"3\":[false]}]", "2[\"echo\",1,\"2\",{\"3\":[false]}]"),
    OK_("31[1,\"2\",{\"3\":[false]}]", SIO_ACK, "/", 1, 0, "[1,\"2\",{\"3\":[false]}]",
        "31[1,\"2\",{\"3\":[false]}]"),
    OK_("3/chat,17[{\"3\":[true]}]", SIO_ACK, "/chat", 17, 0, "[{\"3\":[true]}]",
        "3/chat,17[{\"3\":[true]}]"),
    OK_("2[\"e\",{\"b\":1,\"2\":2,\"10\":3}]", SIO_EVENT, "/", NO_ID, 0,
        "[\"e\",{\"2\":2,\"10\":3,\"b\":1}]", "2[\"e\",{\"2\":2,\"10\":3,\"b\":1}]"),
};

/* Decodes c->in from a guard page and checks every field; then every proper prefix of it,
 * also from a guard page, only for memory safety. */
static void check_decode(const struct dcase *c, enum sio_version version)
{
    size_t n = strlen(c->in), map;
    uint8_t *g = test_guard_copy(c->in, n, &map);
    struct buf out, text;
    buf_init(&out, 0);
    buf_init(&text, 0);
    buf_append(&out, "pre", 3); /* the decoder appends */
    struct sio_packet pkt;
    int rc = sio_packet_decode(version, g, n, &pkt, &out);
    if (rc != c->rc || pkt.reason != c->reason)
        fprintf(stderr, "  case \"%s\" v%d: rc %d reason %s\n", c->in, (int)version, rc,
                sio_reason_string(pkt.reason));
    CHECK(rc == c->rc);
    CHECK(pkt.reason == c->reason);
    if (rc != SIOC_OK) {
        CHECK(out.len == 3);
    } else {
        CHECK((int)pkt.type == c->type);
        CHECK(slice_is(pkt.nsp, c->nsp));
        CHECK(!pkt.has_query);
        CHECK(pkt.has_id == (c->id != NO_ID));
        if (c->id != NO_ID)
            CHECK(pkt.id == (uint64_t)c->id);
        CHECK(pkt.attachments == c->attachments);
        CHECK(pkt.has_data == (c->json != NULL));
        if (c->json != NULL) {
            CHECK(pkt.data.p == out.data + 3 && pkt.data.len == out.len - 3);
            CHECK(render(&pkt.data, &text) == SIOC_OK);
            CHECK_STR(text.data, text.len, c->json);
        } else {
            CHECK(out.len == 3 && pkt.data.len == 0);
        }
        if (c->reenc != NULL) {
            struct slice bins[SIO_MAX_ATTACHMENTS];
            buf_reset(&text);
            CHECK(sio_packet_encode(version, &pkt, &text, bins, SIO_MAX_ATTACHMENTS) == 0);
            CHECK_STR(text.data, text.len, c->reenc);
        }
    }
    test_guard_free(g, n, map);
    for (size_t k = 0; k < n; k++) {
        g = test_guard_copy(c->in, k, &map);
        buf_reset(&out);
        rc = sio_packet_decode(version, g, k, &pkt, &out);
        CHECK(rc == SIOC_OK || rc == SIOC_EPROTO || rc == SIOC_ETOOBIG);
        CHECK(rc == SIOC_OK || out.len == 0);
        test_guard_free(g, k, map);
    }
    buf_deinit(&out);
    buf_deinit(&text);
}

static void test_decode_table_v5(void)
{
    for (size_t k = 0; k < sizeof decode_cases / sizeof decode_cases[0]; k++)
        check_decode(&decode_cases[k], SIO_V5);
}

/* Without '?' or '#' in the namespace, v4 decodes exactly like v5 (2.7: "all other packet
 * formats are the same"; Node uses the same parser for both). */
static void test_decode_table_v4(void)
{
    for (size_t k = 0; k < sizeof decode_cases / sizeof decode_cases[0]; k++)
        if (strchr(decode_cases[k].in, '?') == NULL)
            check_decode(&decode_cases[k], SIO_V4);
}

/* 2.7: in v4 the namespace is a path plus a query (the CONNECT auth), as url.parse splits it. */
static void test_decode_v4_query(void)
{
    static const struct {
        const char *in, *nsp, *query;
        bool has_query;
    } cases[] = {
        {"0/custom?token=abc,", "/custom", "token=abc", true},
        {"0/custom?token=abc", "/custom", "token=abc", true},
        {"0/custom?,", "/custom", "", true},
        {"0/c?a=1&b=%20#frag,", "/c", "a=1&b=%20", true},
        {"0/c#frag?a=1,", "/c", "", false},
        {"2/custom?x=1,[\"a\"]", "/custom", "x=1", true},
        {"0/custom,", "/custom", "", false},
        {"0", "/", "", false},
        {"0/?a,", "/", "a", true},
    };
    struct buf out;
    buf_init(&out, 0);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        size_t n = strlen(cases[k].in), map;
        uint8_t *g = test_guard_copy(cases[k].in, n, &map);
        struct sio_packet pkt;
        CHECK(sio_packet_decode(SIO_V4, g, n, &pkt, &out) == SIOC_OK);
        CHECK(slice_is(pkt.nsp, cases[k].nsp));
        CHECK(slice_is(pkt.query, cases[k].query));
        CHECK(pkt.has_query == cases[k].has_query);
        test_guard_free(g, n, map);
    }
    /* v5: the same bytes are one literal namespace (2.4), which the gateway answers with
     * 44/custom?foo=bar,{"message":"Invalid namespace"} */
    struct sio_packet pkt;
    const char *in = "0/custom?foo=bar,";
    CHECK(sio_packet_decode(SIO_V5, (const uint8_t *)in, strlen(in), &pkt, &out) == SIOC_OK);
    CHECK(slice_is(pkt.nsp, "/custom?foo=bar") && !pkt.has_query);
    buf_deinit(&out);
}

static void test_decode_limits(void)
{
    struct buf out;
    buf_init(&out, 8);
    struct sio_packet pkt;
    const char *big = "2[\"aaaaaaaaaaaaaaaaaaaaaaaa\"]";
    CHECK(sio_packet_decode(SIO_V5, (const uint8_t *)big, strlen(big), &pkt, &out) == SIOC_ETOOBIG);
    CHECK(pkt.reason == SIO_REASON_PAYLOAD_LIMIT && out.len == 0);
    buf_deinit(&out);

    buf_init(&out, 0);
    char deep[2 + 2 * (JSON_MAX_DEPTH + 2) + 8];
    size_t n = 0;
    deep[n++] = '2';
    for (int k = 0; k < JSON_MAX_DEPTH + 2; k++)
        deep[n++] = '[';
    for (int k = 0; k < JSON_MAX_DEPTH + 2; k++)
        deep[n++] = ']';
    CHECK(sio_packet_decode(SIO_V5, (const uint8_t *)deep, n, &pkt, &out) == SIOC_EDEPTH);
    CHECK(pkt.reason == SIO_REASON_PAYLOAD_LIMIT && out.len == 0);
    buf_deinit(&out);
    CHECK(strcmp(sio_reason_string(SIO_REASON_TOO_MANY_ATTACHMENTS), "too many attachments") == 0);
    CHECK(strcmp(sio_reason_string((enum sio_reason)99), "unknown reason") == 0);
}

/* ------------------------------------------------------------- encoding ---- */

/* Encodes (type, nsp, id, payload given as JSON text or NULL) and compares the text. */
static void check_encode(enum sio_version v, enum sio_type type, const char *nsp, long long id,
                         const char *json, int want_rc, const char *want)
{
    struct buf mp, out;
    buf_init(&mp, 0);
    buf_init(&out, 0);
    struct sio_packet pkt = {0};
    pkt.type = type;
    pkt.nsp.p = (const uint8_t *)nsp;
    pkt.nsp.len = strlen(nsp);
    pkt.has_id = id != NO_ID;
    pkt.id = id != NO_ID ? (uint64_t)id : 0;
    if (json != NULL) {
        CHECK(json_to_msgpack((const uint8_t *)json, strlen(json), &mp) == SIOC_OK);
        pkt.has_data = true;
        pkt.data.p = mp.data;
        pkt.data.len = mp.len;
    }
    buf_append(&out, "x", 1);
    struct slice bins[4];
    int rc = sio_packet_encode(v, &pkt, &out, bins, 4);
    CHECK(rc == want_rc);
    if (rc == SIOC_OK)
        CHECK_STR(out.data + 1, out.len - 1, want);
    else
        CHECK(out.len == 1);
    buf_deinit(&mp);
    buf_deinit(&out);
}

static void test_encode_examples(void)
{
    /* PROTOCOL.md 2.2 */
    check_encode(SIO_V5, SIO_CONNECT, "/", NO_ID, NULL, 0, "0");
    check_encode(SIO_V5, SIO_CONNECT, "", NO_ID, NULL, 0, "0");
    check_encode(SIO_V5, SIO_CONNECT, "/admin", NO_ID, "{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}", 0,
                 "0/admin,{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}");
    check_encode(SIO_V5, SIO_CONNECT_ERROR, "/", NO_ID, "{\"message\":\"Not authorized\"}", 0,
                 "4{\"message\":\"Not authorized\"}");
    check_encode(SIO_V5, SIO_EVENT, "/", NO_ID, "[\"foo\"]", 0, "2[\"foo\"]");
    check_encode(SIO_V5, SIO_EVENT, "/admin", NO_ID, "[\"bar\"]", 0, "2/admin,[\"bar\"]");
    check_encode(SIO_V5, SIO_EVENT, "/", 12, "[\"foo\"]", 0, "212[\"foo\"]");
    check_encode(SIO_V5, SIO_ACK, "/admin", 13, "[\"bar\"]", 0, "3/admin,13[\"bar\"]");
    check_encode(SIO_V5, SIO_DISCONNECT, "/admin", NO_ID, NULL, 0, "1/admin,");
    /* 2.2 ack ids, 2.4/2.5 replies */
    check_encode(SIO_V5, SIO_EVENT, "/", 0, "[\"need-ack\",1]", 0, "20[\"need-ack\",1]");
    check_encode(SIO_V5, SIO_ACK, "/", 9, "[]", 0, "39[]");
    check_encode(SIO_V5, SIO_ACK, "/chat", 17, "[\"x\"]", 0, "3/chat,17[\"x\"]");
    check_encode(SIO_V5, SIO_CONNECT, "/", NO_ID, "{\"sid\":\"bby_T3hDbcng0Kr7AAAA\"}", 0,
                 "0{\"sid\":\"bby_T3hDbcng0Kr7AAAA\"}");
    check_encode(SIO_V5, SIO_CONNECT_ERROR, "/random", NO_ID, "{\"message\":\"Invalid namespace\"}",
                 0, "4/random,{\"message\":\"Invalid namespace\"}");
    check_encode(
        SIO_V5, SIO_CONNECT_ERROR, "/secure", NO_ID,
        "{\"message\":\"not authorized\",\"data\":{\"content\":\"Please retry later\"}}", 0,
        "4/secure,{\"message\":\"not authorized\",\"data\":{\"content\":\"Please retry later\"}}");
    check_encode(SIO_V5, SIO_CONNECT_ERROR, "/", NO_ID, "\"boom\"", 0, "4\"boom\"");
    check_encode(SIO_V5, SIO_EVENT, "/", NO_ID, "[\"welcome\",{\"n\":1}]", 0,
                 "2[\"welcome\",{\"n\":1}]");
    check_encode(SIO_V5, SIO_EVENT, "/", NO_ID, "[\"echo\"]", 0, "2[\"echo\"]");
    check_encode(SIO_V5, SIO_EVENT, "/", NO_ID, "[\"joined\",\"room1\"]", 0,
                 "2[\"joined\",\"room1\"]");
    check_encode(SIO_V5, SIO_DISCONNECT, "/", NO_ID, NULL, 0, "1");
    /* BINARY_* without bins is plain EVENT/ACK */
    check_encode(SIO_V5, SIO_BINARY_EVENT, "/", NO_ID, "[\"a\"]", 0, "2[\"a\"]");
    check_encode(SIO_V5, SIO_BINARY_ACK, "/", 4, "[]", 0, "34[]");
    /* 2.7 v4: CONNECT reply without sid, ERROR with any JSON */
    check_encode(SIO_V4, SIO_CONNECT, "/", NO_ID, NULL, 0, "0");
    check_encode(SIO_V4, SIO_CONNECT, "/custom", NO_ID, NULL, 0, "0/custom,");
    check_encode(SIO_V4, SIO_CONNECT_ERROR, "/secure", NO_ID,
                 "{\"content\":\"Please retry later\"}", 0,
                 "4/secure,{\"content\":\"Please retry later\"}");
    check_encode(SIO_V4, SIO_CONNECT_ERROR, "/random", NO_ID, "{\"message\":\"Invalid namespace\"}",
                 0, "4/random,{\"message\":\"Invalid namespace\"}");
    check_encode(SIO_V4, SIO_CONNECT_ERROR, "/", NO_ID, "[1,2]", 0, "4[1,2]");
    check_encode(SIO_V4, SIO_CONNECT_ERROR, "/", NO_ID, "42", 0, "442");
    /* caller errors */
    check_encode(SIO_V5, SIO_CONNECT_ERROR, "/", NO_ID, "[1,2]", SIOC_EINVAL, NULL);
    check_encode(SIO_V5, SIO_CONNECT_ERROR, "/", NO_ID, "null", SIOC_EINVAL, NULL);
    check_encode(SIO_V5, SIO_DISCONNECT, "/", NO_ID, "{}", SIOC_EINVAL, NULL);
    check_encode(SIO_V5, SIO_EVENT, "admin", NO_ID, "[\"a\"]", SIOC_EINVAL, NULL);
    check_encode(SIO_V5, (enum sio_type)7, "/", NO_ID, "[\"a\"]", SIOC_EINVAL, NULL);
}

static void test_encode_bad_msgpack(void)
{
    struct buf out;
    buf_init(&out, 0);
    struct sio_packet pkt = {0};
    pkt.type = SIO_EVENT;
    pkt.has_data = true;
    static const uint8_t two_values[] = {0x91, 0xa1, 'a', 0x01};
    pkt.data.p = two_values;
    pkt.data.len = sizeof two_values;
    CHECK(sio_packet_encode(SIO_V5, &pkt, &out, NULL, 0) == SIOC_EINVAL);
    CHECK(out.len == 0);
    pkt.data.len = 2; /* truncated inside the string */
    CHECK(sio_packet_encode(SIO_V5, &pkt, &out, NULL, 0) == SIOC_EAGAIN);
    static const uint8_t never_used[] = {0xc1};
    pkt.data.p = never_used;
    pkt.data.len = 1;
    CHECK(sio_packet_encode(SIO_V5, &pkt, &out, NULL, 0) == SIOC_EPROTO);
    CHECK(out.len == 0);
    buf_deinit(&out);
    buf_init(&out, 4); /* out limit */
    pkt.data.p = two_values;
    pkt.data.len = 3;
    CHECK(sio_packet_encode(SIO_V5, &pkt, &out, NULL, 0) == SIOC_ETOOBIG);
    CHECK(out.len == 0);
    buf_deinit(&out);
}

static const uint8_t bin_a[] = {1, 2, 3};
static const uint8_t bin_b[] = {4};

/* ["bin-back", bin A, {"x": bin B}]: the observed 452-[...] with two attachments (2.2). */
static void write_bin_back(struct buf *mp)
{
    mp_write_array(mp, 3);
    mp_write_cstr(mp, "bin-back");
    mp_write_bin(mp, bin_a, sizeof bin_a);
    mp_write_map(mp, 1);
    mp_write_cstr(mp, "x");
    mp_write_bin(mp, bin_b, sizeof bin_b);
}

static bool slice_in(struct slice s, const struct buf *b)
{
    return s.p >= b->data && s.p + s.len <= b->data + b->len;
}

static void test_encode_binary(void)
{
    struct buf mp, out;
    buf_init(&mp, 0);
    buf_init(&out, 0);
    struct slice bins[SIO_MAX_ATTACHMENTS];
    struct sio_packet pkt = {0};
    pkt.type = SIO_EVENT;
    pkt.has_data = true;

    write_bin_back(&mp);
    pkt.data.p = mp.data;
    pkt.data.len = mp.len;
    CHECK(sio_packet_encode(SIO_V5, &pkt, &out, bins, SIO_MAX_ATTACHMENTS) == 2);
    CHECK_STR(
        out.data, out.len,
        "52-[\"bin-back\",{\"_placeholder\":true,\"num\":0},{\"x\":{\"_placeholder\":true,\"num\":1}}]");
    CHECK_MEM(bins[0].p, bins[0].len, bin_a, sizeof bin_a);
    CHECK_MEM(bins[1].p, bins[1].len, bin_b, sizeof bin_b);
    CHECK(slice_in(bins[0], &mp) && slice_in(bins[1], &mp)); /* no copies */

    /* 52-/admin,[...] and 61-15[...] (2.2) */
    buf_reset(&mp);
    buf_reset(&out);
    mp_write_array(&mp, 3);
    mp_write_cstr(&mp, "baz");
    mp_write_bin(&mp, bin_a, 1);
    mp_write_bin(&mp, bin_b, 1);
    pkt.data.p = mp.data;
    pkt.data.len = mp.len;
    pkt.nsp.p = (const uint8_t *)"/admin";
    pkt.nsp.len = 6;
    CHECK(sio_packet_encode(SIO_V5, &pkt, &out, bins, SIO_MAX_ATTACHMENTS) == 2);
    CHECK_STR(
        out.data, out.len,
        "52-/admin,[\"baz\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]");
    buf_reset(&mp);
    buf_reset(&out);
    mp_write_array(&mp, 2);
    mp_write_cstr(&mp, "bar");
    mp_write_bin(&mp, bin_a, 2);
    pkt.type = SIO_ACK;
    pkt.nsp.len = 0;
    pkt.has_id = true;
    pkt.id = 15;
    pkt.data.p = mp.data;
    pkt.data.len = mp.len;
    CHECK(sio_packet_encode(SIO_V5, &pkt, &out, bins, SIO_MAX_ATTACHMENTS) == 1);
    CHECK_STR(out.data, out.len, "61-15[\"bar\",{\"_placeholder\":true,\"num\":0}]");
    CHECK(bins[0].len == 2 && bins[0].p[0] == 1);

    /* numbering follows JSON.stringify order: integer-like keys first */
    buf_reset(&mp);
    buf_reset(&out);
    mp_write_array(&mp, 2);
    mp_write_cstr(&mp, "e");
    mp_write_map(&mp, 2);
    mp_write_cstr(&mp, "b");
    mp_write_bin(&mp, bin_a, 3);
    mp_write_cstr(&mp, "1");
    mp_write_bin(&mp, bin_b, 1);
    pkt.type = SIO_EVENT;
    pkt.has_id = false;
    pkt.data.p = mp.data;
    pkt.data.len = mp.len;
    CHECK(sio_packet_encode(SIO_V5, &pkt, &out, bins, SIO_MAX_ATTACHMENTS) == 2);
    CHECK_STR(
        out.data, out.len,
        "52-[\"e\",{\"1\":{\"_placeholder\":true,\"num\":0},\"b\":{\"_placeholder\":true,\"num\":1}}]");
    CHECK(bins[0].len == 1 && bins[0].p[0] == 4 && bins[1].len == 3);

    /* a bin overwritten by a duplicate key is not in the output: no attachment, plain EVENT */
    buf_reset(&mp);
    buf_reset(&out);
    mp_write_array(&mp, 2);
    mp_write_cstr(&mp, "e");
    mp_write_map(&mp, 2);
    mp_write_cstr(&mp, "a");
    mp_write_bin(&mp, bin_a, 3);
    mp_write_cstr(&mp, "a");
    mp_write_uint(&mp, 1);
    pkt.data.p = mp.data;
    pkt.data.len = mp.len;
    CHECK(sio_packet_encode(SIO_V5, &pkt, &out, bins, SIO_MAX_ATTACHMENTS) == 0);
    CHECK_STR(out.data, out.len, "2[\"e\",{\"a\":1}]");

    /* 12 bins: a two-digit count; more than bins_cap: ETOOBIG, out rolled back */
    struct slice many[16];
    buf_reset(&mp);
    buf_reset(&out);
    mp_write_array(&mp, 13);
    mp_write_cstr(&mp, "e");
    for (int k = 0; k < 12; k++)
        mp_write_bin(&mp, bin_a, (size_t)(k % 3));
    pkt.data.p = mp.data;
    pkt.data.len = mp.len;
    CHECK(sio_packet_encode(SIO_V5, &pkt, &out, many, 16) == 12);
    const char *head =
        "512-[\"e\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1},";
    const char *tail = ",{\"_placeholder\":true,\"num\":10},{\"_placeholder\":true,\"num\":11}]";
    CHECK(out.len > strlen(head) && memcmp(out.data, head, strlen(head)) == 0);
    CHECK(out.len > strlen(tail) &&
          memcmp(out.data + out.len - strlen(tail), tail, strlen(tail)) == 0);
    CHECK(out.len == 9 + 10 * 30 + 2 * 31);
    CHECK(many[11].len == 2);
    buf_reset(&out);
    buf_append(&out, "keep", 4);
    CHECK(sio_packet_encode(SIO_V5, &pkt, &out, many, 11) == SIOC_ETOOBIG);
    CHECK_STR(out.data, out.len, "keep");

    /* other types render bins as Buffer.toJSON (Node only deconstructs EVENT/ACK) */
    buf_reset(&mp);
    buf_reset(&out);
    mp_write_map(&mp, 1);
    mp_write_cstr(&mp, "b");
    mp_write_bin(&mp, bin_a, 2);
    pkt.type = SIO_CONNECT;
    pkt.data.p = mp.data;
    pkt.data.len = mp.len;
    CHECK(sio_packet_encode(SIO_V5, &pkt, &out, bins, SIO_MAX_ATTACHMENTS) == 0);
    CHECK_STR(out.data, out.len, "0{\"b\":{\"type\":\"Buffer\",\"data\":[1,2]}}");
    buf_deinit(&mp);
    buf_deinit(&out);
}

/* ------------------------------------------------------------ assembler ---- */

/* Decodes a binary text packet, feeds the given attachments, finishes; returns the finish rc
 * and leaves the rendered payload in *json. */
static int assemble(const char *text, const uint8_t *const *att, const size_t *att_len, size_t n,
                    struct sio_packet *pkt, struct buf *out, struct buf *json,
                    struct sio_assembler *a)
{
    size_t len = strlen(text), map;
    uint8_t *g = test_guard_copy(text, len, &map);
    struct buf scratch;
    buf_init(&scratch, 0);
    struct sio_packet head;
    int rc = sio_packet_decode(SIO_V5, g, len, &head, &scratch);
    CHECK(rc == SIOC_OK);
    CHECK(head.type == SIO_BINARY_EVENT || head.type == SIO_BINARY_ACK);
    CHECK(sio_assembler_start(a, &head) == SIOC_OK);
    test_guard_free(g, len, map); /* the assembler holds its own copy */
    buf_deinit(&scratch);
    CHECK(sio_assembler_pending(a));
    for (size_t k = 0; k < n; k++) {
        uint8_t *ga = test_guard_copy(att[k], att_len[k], &map);
        CHECK(sio_assembler_add(a, ga, att_len[k]) == (int)(n - 1 - k));
        test_guard_free(ga, att_len[k], map);
    }
    buf_reset(out);
    rc = sio_assembler_finish(a, pkt, out);
    CHECK(!sio_assembler_pending(a));
    buf_reset(json);
    if (rc == SIOC_OK && pkt->has_data)
        CHECK(render(&pkt->data, json) == SIOC_OK);
    return rc;
}

static void test_assemble_observed(void)
{
    struct sio_assembler a;
    sio_assembler_init(&a, 1 << 20);
    struct buf out, json, text;
    buf_init(&out, 0);
    buf_init(&json, 0);
    buf_init(&text, 0);
    struct sio_packet pkt;
    const uint8_t *att[] = {bin_a, bin_b};
    size_t att_len[] = {sizeof bin_a, sizeof bin_b};
    const char *in =
        "52-[\"bin-back\",{\"_placeholder\":true,\"num\":0},{\"x\":{\"_placeholder\":true,\"num\":1}}]";
    CHECK(assemble(in, att, att_len, 2, &pkt, &out, &json, &a) == SIOC_OK);
    CHECK(pkt.type == SIO_EVENT && !pkt.has_id && slice_is(pkt.nsp, "/") && pkt.attachments == 2);
    CHECK_STR(json.data, json.len, "[\"bin-back\",\"<bin:010203>\",{\"x\":\"<bin:04>\"}]");
    /* the msgpack is exactly what a Node adapter would publish for this emit */
    struct buf want;
    buf_init(&want, 0);
    write_bin_back(&want);
    CHECK_MEM(pkt.data.p, pkt.data.len, want.data, want.len);
    buf_deinit(&want);
    /* and re-encodes to the same text plus the same two attachments */
    struct slice bins[SIO_MAX_ATTACHMENTS];
    CHECK(sio_packet_encode(SIO_V5, &pkt, &text, bins, SIO_MAX_ATTACHMENTS) == 2);
    CHECK_STR(text.data, text.len, in);
    CHECK_MEM(bins[0].p, bins[0].len, bin_a, sizeof bin_a);
    CHECK_MEM(bins[1].p, bins[1].len, bin_b, sizeof bin_b);

    /* BINARY_ACK with namespace and id, transcript a-polling: 461-/chat,3[...] -> ACK */
    static const uint8_t ack_bin[] = "binary-ack";
    const uint8_t *att2[] = {ack_bin};
    size_t att2_len[] = {10};
    CHECK(assemble("61-/chat,3[{\"_placeholder\":true,\"num\":0}]", att2, att2_len, 1, &pkt, &out,
                   &json, &a) == SIOC_OK);
    CHECK(pkt.type == SIO_ACK && pkt.has_id && pkt.id == 3 && slice_is(pkt.nsp, "/chat"));
    CHECK_STR(json.data, json.len, "[\"<bin:62696e6172792d61636b>\"]");
    buf_reset(&text);
    CHECK(sio_packet_encode(SIO_V5, &pkt, &text, bins, SIO_MAX_ATTACHMENTS) == 1);
    CHECK_STR(text.data, text.len, "61-/chat,3[{\"_placeholder\":true,\"num\":0}]");

    /* no payload at all: reported as EVENT without data */
    CHECK(assemble("51-", att2, att2_len, 1, &pkt, &out, &json, &a) == SIOC_OK);
    CHECK(pkt.type == SIO_EVENT && !pkt.has_data && pkt.data.len == 0);

    sio_assembler_deinit(&a);
    buf_deinit(&out);
    buf_deinit(&json);
    buf_deinit(&text);
}

/* Node's _reconstructPacket: any object whose (last) _placeholder is true is replaced, other
 * keys ignored; num must be a number indexing an attachment. */
static void test_assemble_placeholders(void)
{
    static const struct {
        const char *in;
        int rc;
        const char *json;
    } cases[] = {
        {"52-[\"e\",{\"_placeholder\":true,\"num\":0,\"x\":1}]", SIOC_OK, "[\"e\",\"<bin:aa>\"]"},
        {"52-[\"e\",{\"num\":1,\"_placeholder\":true}]", SIOC_OK, "[\"e\",\"<bin:bbbb>\"]"},
        {"52-[\"e\",{\"_placeholder\":false,\"num\":0}]", SIOC_OK,
         "[\"e\",{\"_placeholder\":false,\"num\":0}]"},
        {"52-[\"e\",{\"_placeholder\":\"true\",\"num\":0}]", SIOC_OK,
         "[\"e\",{\"_placeholder\":\"true\",\"num\":0}]"},
        {"52-[\"e\",{\"_placeholder\":1,\"num\":0}]", SIOC_OK,
         "[\"e\",{\"_placeholder\":1,\"num\":0}]"},
        {"52-[\"e\",{\"_placeholder\":true,\"_placeholder\":false,\"num\":0}]", SIOC_OK,
         "[\"e\",{\"_placeholder\":false,\"num\":0}]"},
        {"52-[\"e\",{\"_placeholder\":false,\"_placeholder\":true,\"num\":0}]", SIOC_OK,
         "[\"e\",\"<bin:aa>\"]"},
        {"52-[\"e\",{\"_placeholder\":true,\"num\":5,\"num\":1}]", SIOC_OK,
         "[\"e\",\"<bin:bbbb>\"]"},
        {"52-[\"e\",{\"_placeholder\":true,\"num\":1,\"num\":5}]", SIOC_EPROTO, NULL},
        {"52-[\"e\",{\"_placeholder\":true,\"num\":0e0}]", SIOC_OK, "[\"e\",\"<bin:aa>\"]"},
        {"52-[\"e\",{\"_placeholder\":true,\"num\":-0}]", SIOC_OK, "[\"e\",\"<bin:aa>\"]"},
        {"52-[\"e\",{\"_placeholder\":true,\"num\":1.0}]", SIOC_OK, "[\"e\",\"<bin:bbbb>\"]"},
        {"52-[\"e\",{\"_placeholder\":true,\"num\":2}]", SIOC_EPROTO, NULL},
        {"52-[\"e\",{\"_placeholder\":true,\"num\":-1}]", SIOC_EPROTO, NULL},
        {"52-[\"e\",{\"_placeholder\":true,\"num\":\"0\"}]", SIOC_EPROTO, NULL},
        {"52-[\"e\",{\"_placeholder\":true,\"num\":null}]", SIOC_EPROTO, NULL},
        {"52-[\"e\",{\"_placeholder\":true,\"num\":0.5}]", SIOC_EPROTO, NULL}, /* Node: undefined */
        {"52-[\"e\",{\"_placeholder\":true,\"num\":1e400}]", SIOC_EPROTO, NULL},
        {"52-[\"e\",{\"_placeholder\":true}]", SIOC_EPROTO, NULL},
        {"52-[\"e\",{\"_placeholder\":true,\"num\":[0]}]", SIOC_EPROTO, NULL},
        /* the same attachment twice, one never used, nesting, containers before the keys */
        {"52-[\"e\",{\"_placeholder\":true,\"num\":0},[{\"a\":{\"_placeholder\":true,\"num\":0}}]]",
         SIOC_OK, "[\"e\",\"<bin:aa>\",[{\"a\":\"<bin:aa>\"}]]"},
        {"52-[\"e\",{\"a\":[{\"b\":[1]}],\"c\":{},\"_placeholder\":true,\"num\":1}]", SIOC_OK,
         "[\"e\",\"<bin:bbbb>\"]"},
        {"52-[\"e\",{\"_placeholder\":{\"_placeholder\":true,\"num\":0},\"num\":0}]", SIOC_OK,
         "[\"e\",{\"_placeholder\":\"<bin:aa>\",\"num\":0}]"},
        {"52-[\"e\",[{\"_placeholder\":true,\"num\":0}],{\"k\":{\"_placeholder\":true,\"num\":1}},3]",
         SIOC_OK, "[\"e\",[\"<bin:aa>\"],{\"k\":\"<bin:bbbb>\"},3]"},
        {"52-[\"e\",\"_placeholder\",true]", SIOC_OK, "[\"e\",\"_placeholder\",true]"},
        {"52-[1]", SIOC_OK, "[1]"},
    };
    static const uint8_t a0[] = {0xaa}, a1[] = {0xbb, 0xbb};
    const uint8_t *att[] = {a0, a1};
    size_t att_len[] = {1, 2};
    struct sio_assembler a;
    sio_assembler_init(&a, 0);
    struct buf out, json;
    buf_init(&out, 0);
    buf_init(&json, 0);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        struct sio_packet pkt;
        int rc = assemble(cases[k].in, att, att_len, 2, &pkt, &out, &json, &a);
        if (rc != cases[k].rc)
            fprintf(stderr, "  case %s: rc %d\n", cases[k].in, rc);
        CHECK(rc == cases[k].rc);
        if (rc == SIOC_OK) {
            CHECK_STR(json.data, json.len, cases[k].json);
            CHECK(pkt.type == SIO_EVENT);
        } else {
            CHECK(a.reason == SIO_REASON_ILLEGAL_PLACEHOLDER && out.len == 0);
        }
    }
    sio_assembler_deinit(&a);
    buf_deinit(&out);
    buf_deinit(&json);
}

static void test_assembler_states(void)
{
    struct sio_assembler a;
    sio_assembler_init(&a, 64);
    struct buf out, scratch;
    buf_init(&out, 0);
    buf_init(&scratch, 0);
    struct sio_packet pkt, head;
    static const uint8_t one[] = {1};

    /* 2.4: binary message when none is expected */
    CHECK(!sio_assembler_pending(&a));
    CHECK(sio_assembler_add(&a, one, 1) == SIOC_EPROTO);
    CHECK(a.reason == SIO_REASON_UNEXPECTED_BINARY);
    CHECK(sio_assembler_finish(&a, &pkt, &out) == SIOC_EINVAL);

    const char *in = "52-[\"e\",{\"_placeholder\":true,\"num\":1}]";
    CHECK(sio_packet_decode(SIO_V5, (const uint8_t *)in, strlen(in), &head, &scratch) == SIOC_OK);
    CHECK(sio_assembler_start(&a, &head) == SIOC_OK);
    CHECK(sio_assembler_start(&a, &head) == SIOC_EINVAL); /* already pending */
    CHECK(sio_assembler_pending(&a)); /* a text packet now is UNEXPECTED_TEXT: caller's call */
    CHECK(sio_assembler_add(&a, one, 1) == 1);
    CHECK(sio_assembler_finish(&a, &pkt, &out) == SIOC_EINVAL); /* one still missing */
    CHECK(sio_assembler_pending(&a));
    CHECK(sio_assembler_add(&a, NULL, 0) == 0);          /* an empty attachment is a valid one */
    CHECK(sio_assembler_add(&a, one, 1) == SIOC_EPROTO); /* a third: unexpected */
    CHECK(a.reason == SIO_REASON_UNEXPECTED_BINARY);
    CHECK(sio_assembler_finish(&a, &pkt, &out) == SIOC_OK);
    CHECK(out.len == 5 && memcmp(out.data,
                                 "\x92\xa1"
                                 "e\xc4\x00",
                                 5) == 0);
    CHECK(!sio_assembler_pending(&a));
    CHECK(sio_assembler_add(&a, one, 1) == SIOC_EPROTO);

    /* not a binary packet */
    const char *plain = "2[\"e\"]";
    CHECK(sio_packet_decode(SIO_V5, (const uint8_t *)plain, strlen(plain), &head, &scratch) ==
          SIOC_OK);
    CHECK(sio_assembler_start(&a, &head) == SIOC_EINVAL);

    /* the size limit (64 bytes of copies) */
    CHECK(sio_packet_decode(SIO_V5, (const uint8_t *)in, strlen(in), &head, &scratch) == SIOC_OK);
    CHECK(sio_assembler_start(&a, &head) == SIOC_OK);
    static const uint8_t big[100];
    CHECK(sio_assembler_add(&a, big, sizeof big) == SIOC_ETOOBIG);
    CHECK(a.reason == SIO_REASON_PAYLOAD_LIMIT && !sio_assembler_pending(&a));

    /* reset drops a pending packet */
    CHECK(sio_assembler_start(&a, &head) == SIOC_OK);
    sio_assembler_reset(&a);
    CHECK(!sio_assembler_pending(&a));
    CHECK(sio_assembler_add(&a, one, 1) == SIOC_EPROTO);

    /* the output limit */
    struct buf small;
    buf_init(&small, 6);
    CHECK(sio_assembler_start(&a, &head) == SIOC_OK);
    CHECK(sio_assembler_add(&a, big, 10) == 1);
    CHECK(sio_assembler_add(&a, big, 10) == 0);
    CHECK(sio_assembler_finish(&a, &pkt, &small) == SIOC_ETOOBIG);
    CHECK(small.len == 0 && !sio_assembler_pending(&a));
    buf_deinit(&small);

    sio_assembler_deinit(&a);
    sio_assembler_deinit(&a);
    buf_deinit(&out);
    buf_deinit(&scratch);
}

/* ------------------------------------------- reference transcript d5 replay ---- */

/* Finds key in the top-level msgpack map m; returns true and the value item. */
static bool map_get(const struct buf *m, const char *key, struct mp_item *val)
{
    struct mp_reader r;
    struct mp_item it;
    mp_reader_init(&r, m->data, m->len);
    if (mp_read(&r, &it) != SIOC_OK || it.kind != MP_MAP)
        return false;
    for (uint32_t k = 0; k < it.len; k++) {
        struct mp_item kk;
        if (mp_read(&r, &kk) != SIOC_OK)
            return false;
        if (mp_item_is_str(&kk, key)) {
            return mp_read(&r, val) == SIOC_OK;
        }
        if (mp_skip(&r) != SIOC_OK)
            return false;
    }
    return false;
}

static size_t unhex(const uint8_t *s, size_t n, uint8_t *out)
{
    size_t k = 0;
    for (size_t i = 0; i + 1 < n; i += 2) {
        unsigned v;
        char tmp[3] = {(char)s[i], (char)s[i + 1], 0};
        sscanf(tmp, "%2x", &v);
        out[k++] = (uint8_t)v;
    }
    return k;
}

#define MAX_CONNS 64
#define MAX_NSPS 8

/* What a gateway does with each client frame, per 2.4 and the Engine.IO rules the transcript
 * shows; only the Socket.IO part is this module's, the rest is the smallest stand-in. */
struct sim_conn {
    char name[16];
    struct sio_assembler assembler;
    char joined[MAX_NSPS][32];
    int njoined;
    bool sim_closed;    /* our verdict */
    bool server_closed; /* the transcript: a server close frame not answering the client's */
    bool client_closed; /* the client sent its cleanup close first */
    bool ws_level;      /* closed with a status code by the ws library: not ours */
    int sio_packets;
};

static int sim_find(struct sim_conn *c, int *n, const char *name)
{
    for (int k = 0; k < *n; k++)
        if (strcmp(c[k].name, name) == 0)
            return k;
    if (*n == MAX_CONNS)
        return -1;
    memset(&c[*n], 0, sizeof c[*n]);
    snprintf(c[*n].name, sizeof c[*n].name, "%s", name);
    sio_assembler_init(&c[*n].assembler, 1 << 20);
    return (*n)++;
}

static int sim_joined(struct sim_conn *c, struct slice nsp)
{
    for (int k = 0; k < c->njoined; k++)
        if (slice_is(nsp, c->joined[k]))
            return k;
    return -1;
}

/* A decoded (and reassembled) packet meets the namespace rules of 2.4. */
static void sim_packet(struct sim_conn *c, const struct sio_packet *pkt)
{
    int j = sim_joined(c, pkt->nsp);
    if (pkt->type == SIO_CONNECT) {
        if (j >= 0) {
            c->sim_closed = true; /* CONNECT twice */
            return;
        }
        bool known = slice_is(pkt->nsp, "/") || slice_is(pkt->nsp, "/chat");
        if (known && c->njoined < MAX_NSPS && pkt->nsp.len < 32) {
            memcpy(c->joined[c->njoined], pkt->nsp.p, pkt->nsp.len);
            c->joined[c->njoined++][pkt->nsp.len] = 0;
        }
        return;
    }
    if (pkt->type == SIO_CONNECT_ERROR || j < 0) {
        c->sim_closed = true;
        return;
    }
    if (pkt->type == SIO_DISCONNECT) {
        memmove(c->joined[j], c->joined[c->njoined - 1], sizeof c->joined[j]);
        c->njoined--;
    }
}

static void sim_binary(struct sim_conn *c, const uint8_t *p, size_t n, struct buf *out)
{
    int left = sio_assembler_add(&c->assembler, p, n);
    if (left < 0) {
        c->sim_closed = true; /* got binary data when not reconstructing a packet */
        return;
    }
    if (left > 0)
        return;
    struct sio_packet pkt;
    buf_reset(out);
    if (sio_assembler_finish(&c->assembler, &pkt, out) != SIOC_OK) {
        c->sim_closed = true;
        return;
    }
    sim_packet(c, &pkt);
}

static void sim_text(struct sim_conn *c, const uint8_t *p, size_t n, struct buf *out)
{
    /* Engine.IO 4 over websocket: 4 = message, b = base64 binary (V07), 1/3/5/6 ignored,
     * 2 (ping from a client), anything else and empty: close */
    if (n == 0 ||
        (p[0] != '4' && p[0] != 'b' && p[0] != '1' && p[0] != '3' && p[0] != '5' && p[0] != '6')) {
        c->sim_closed = true;
        return;
    }
    if (p[0] == 'b') {
        uint8_t raw[1024];
        size_t k = base64_decode_lenient((const char *)p + 1, n - 1 < 1024 ? n - 1 : 1024, raw);
        sim_binary(c, raw, k, out);
        return;
    }
    if (p[0] != '4')
        return;
    c->sio_packets++;
    if (sio_assembler_pending(&c->assembler)) {
        c->sim_closed = true; /* got plaintext data when reconstructing a packet */
        return;
    }
    size_t map;
    uint8_t *g = test_guard_copy(p + 1, n - 1, &map);
    struct sio_packet pkt;
    buf_reset(out);
    int rc = sio_packet_decode(SIO_V5, g, n - 1, &pkt, out);
    if (rc != SIOC_OK)
        c->sim_closed = true;
    else if (pkt.type == SIO_BINARY_EVENT || pkt.type == SIO_BINARY_ACK)
        CHECK(sio_assembler_start(&c->assembler, &pkt) == SIOC_OK);
    else
        sim_packet(c, &pkt);
    test_guard_free(g, n - 1, map);
}

static void test_transcript_d5(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/reference-transcripts/d5-invalid-packets-ws.jsonl",
             test_shared_data());
    size_t len;
    uint8_t *file = test_read_file(path, &len);
    CHECK(file != NULL);
    if (file == NULL)
        return;
    struct sim_conn *conns = calloc(MAX_CONNS, sizeof *conns);
    int nconns = 0;
    struct buf line, out;
    buf_init(&line, 0);
    buf_init(&out, 0);
    uint8_t *bytes = malloc(len + 1);
    size_t lines = 0;
    for (size_t pos = 0; pos < len;) {
        size_t end = pos;
        while (end < len && file[end] != '\n')
            end++;
        buf_reset(&line);
        int rc = json_to_msgpack(file + pos, end - pos, &line);
        pos = end + 1;
        CHECK(rc == SIOC_OK);
        if (rc != SIOC_OK)
            continue;
        lines++;
        struct mp_item dir, kind, conn, v;
        if (!map_get(&line, "dir", &dir) || !map_get(&line, "kind", &kind) ||
            !mp_item_is_str(&kind, "ws-frame") || !map_get(&line, "conn", &conn))
            continue;
        char name[16];
        snprintf(name, sizeof name, "%.*s", (int)(conn.len < 15 ? conn.len : 15), conn.data);
        int ci = sim_find(conns, &nconns, name);
        CHECK(ci >= 0);
        if (ci < 0)
            continue;
        struct sim_conn *c = &conns[ci];
        int64_t opcode = -1;
        if (map_get(&line, "opcode", &v))
            mp_item_to_i64(&v, &opcode);
        /* the payload: hex when present (binary, control, non-ASCII text), else text */
        size_t n = 0;
        if (map_get(&line, "hex", &v))
            n = unhex(v.data, v.len, bytes);
        else if (map_get(&line, "text", &v))
            memcpy(bytes, v.data, n = v.len);
        if (mp_item_is_str(&dir, "s2c")) {
            if (opcode == 8 && !c->client_closed) {
                c->server_closed = true;
                if (n > 0)
                    c->ws_level = true; /* a status code: the ws library's verdict */
            }
            continue;
        }
        if (!mp_item_is_str(&dir, "c2s"))
            continue;
        if (opcode == 8) {
            if (!map_get(&line, "label", &v))
                c->ws_level = true; /* a close of the client's own (status 1005) */
            else if (!c->server_closed)
                c->client_closed = true;
            continue;
        }
        bool bad_frame = map_get(&line, "rsv", &v) ||
                         (map_get(&line, "masked", &v) && v.kind == MP_BOOL && !v.boolean);
        if (bad_frame || (opcode != 1 && opcode != 2))
            c->ws_level = true;
        if (c->sim_closed || c->server_closed || c->client_closed)
            continue;
        if (opcode == 1)
            sim_text(c, bytes, n, &out);
        else if (opcode == 2)
            sim_binary(c, bytes, n, &out);
    }
    CHECK(lines > 400);
    int compared = 0, closed = 0, packets = 0;
    for (int k = 0; k < nconns; k++) {
        struct sim_conn *c = &conns[k];
        packets += c->sio_packets;
        if (!c->ws_level) {
            if (c->sim_closed != c->server_closed)
                fprintf(stderr, "  %s: sioc %s, Node %s\n", c->name,
                        c->sim_closed ? "closes" : "keeps", c->server_closed ? "closed" : "kept");
            CHECK(c->sim_closed == c->server_closed);
            compared++;
            closed += c->server_closed;
        }
        sio_assembler_deinit(&c->assembler);
    }
    /* 30 cases, 7 of them closed by the ws library with a status code */
    CHECK(nconns == 30);
    CHECK(compared == 23);
    CHECK(closed == 16);
    CHECK(packets >= 40);
    free(conns);
    free(bytes);
    free(file);
    buf_deinit(&line);
    buf_deinit(&out);
}

int main(void)
{
    RUN(test_decode_table_v5);
    RUN(test_decode_table_v4);
    RUN(test_decode_v4_query);
    RUN(test_decode_limits);
    RUN(test_encode_examples);
    RUN(test_encode_bad_msgpack);
    RUN(test_encode_binary);
    RUN(test_assemble_observed);
    RUN(test_assemble_placeholders);
    RUN(test_assembler_states);
    RUN(test_transcript_d5);
    return test_summary("test_sio");
}
