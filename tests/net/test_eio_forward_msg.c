/* test_eio_forward_msg.c: the gateway-to-gateway forwarding messages (gateway/eio_forward_msg.h,
 * docs/contracts.md "Polling without sticky sessions"): every type round-trips, every
 * truncation is refused, unknown types are ENOTSUP and unknown keys ignored, and fields of the
 * wrong kind, a missing field, a long `from`, a bad status or too many headers are EPROTO. */
#include <string.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/mp.h"
#include "gateway/eio_forward_msg.h"
#include "tests/unit/test.h"

static const uint8_t *u(const char *s)
{
    return (const uint8_t *)s;
}

static void test_round_trip(void)
{
    struct fwd_msg in[7] = {
        {.type = FWD_REQ,
         .id = 1,
         .from = u("AbC_"),
         .from_len = 4,
         .sid = u("AbC_0123456789abcdef"),
         .sid_len = 20,
         .ws = true,
         .data = u("GET / HTTP/1.1\r\n\r\n"),
         .data_len = 18},
        {.type = FWD_UP,
         .id = 2,
         .from = u("AbC_"),
         .from_len = 4,
         .data = u("\x81\x00"),
         .data_len = 2},
        {.type = FWD_CANCEL, .id = UINT64_MAX, .from = u("zz-9"), .from_len = 4},
        {.type = FWD_RES,
         .id = 4,
         .status = 200,
         .header_count = 2,
         .data = u("ok"),
         .data_len = 2},
        {.type = FWD_MISS, .id = 5},
        {.type = FWD_DOWN, .id = 6, .data = u(""), .data_len = 0},
        {.type = FWD_END, .id = 7},
    };
    in[3].headers[0].name = u("Content-Type"), in[3].headers[0].name_len = 12;
    in[3].headers[0].value = u("text/html"), in[3].headers[0].value_len = 9;
    in[3].headers[1].name = u("cache-control"), in[3].headers[1].name_len = 13;
    in[3].headers[1].value = u("no-store"), in[3].headers[1].value_len = 8;
    for (size_t i = 0; i < 7; i++) {
        struct buf b;
        buf_init(&b, 0);
        CHECK(fwd_msg_encode(&b, &in[i]) == SIOC_OK);
        struct fwd_msg out;
        CHECK(fwd_msg_decode(b.data, b.len, &out) == SIOC_OK);
        CHECK(out.type == in[i].type && out.id == in[i].id);
        CHECK(out.from_len == in[i].from_len &&
              (out.from_len == 0 || memcmp(out.from, in[i].from, out.from_len) == 0));
        CHECK(out.sid_len == in[i].sid_len && out.ws == in[i].ws && out.status == in[i].status);
        CHECK(out.data_len == in[i].data_len &&
              (out.data_len == 0 || memcmp(out.data, in[i].data, out.data_len) == 0));
        CHECK(out.header_count == in[i].header_count);
        for (size_t h = 0; h < out.header_count; h++)
            CHECK(out.headers[h].value_len == in[i].headers[h].value_len &&
                  memcmp(out.headers[h].value, in[i].headers[h].value, out.headers[h].value_len) ==
                      0);
        for (size_t cut = 0; cut < b.len; cut++) /* every truncation */
            CHECK(fwd_msg_decode(b.data, cut, &out) == SIOC_EPROTO);
        buf_deinit(&b);
    }
}

/* A map built by hand: `pairs` alternate key and value writers. */
static int decode_map(void (*build)(struct buf *))
{
    struct buf b;
    buf_init(&b, 0);
    build(&b);
    struct fwd_msg m;
    int rc = fwd_msg_decode(b.data, b.len, &m);
    buf_deinit(&b);
    return rc;
}

static void unknown_type(struct buf *b)
{
    mp_write_map(b, 2);
    mp_write_cstr(b, "t"), mp_write_cstr(b, "eio-something-new");
    mp_write_cstr(b, "id"), mp_write_uint(b, 1);
}

static void unknown_key(struct buf *b)
{
    mp_write_map(b, 3);
    mp_write_cstr(b, "t"), mp_write_cstr(b, "eio-miss");
    mp_write_cstr(b, "later"), mp_write_map(b, 1), mp_write_cstr(b, "x"), mp_write_array(b, 1),
        mp_write_nil(b);
    mp_write_cstr(b, "id"), mp_write_uint(b, 9);
}

static void missing_field(struct buf *b)
{
    mp_write_map(b, 3);
    mp_write_cstr(b, "t"), mp_write_cstr(b, "eio-up");
    mp_write_cstr(b, "id"), mp_write_uint(b, 1);
    mp_write_cstr(b, "data"), mp_write_bin(b, "x", 1); /* no from */
}

static void long_from(struct buf *b)
{
    mp_write_map(b, 3);
    mp_write_cstr(b, "t"), mp_write_cstr(b, "eio-cancel");
    mp_write_cstr(b, "id"), mp_write_uint(b, 1);
    mp_write_cstr(b, "from"), mp_write_cstr(b, "0123456789abcdefX");
}

static void bad_status(struct buf *b)
{
    mp_write_map(b, 5);
    mp_write_cstr(b, "t"), mp_write_cstr(b, "eio-res");
    mp_write_cstr(b, "id"), mp_write_uint(b, 1);
    mp_write_cstr(b, "status"), mp_write_uint(b, 600);
    mp_write_cstr(b, "headers"), mp_write_array(b, 0);
    mp_write_cstr(b, "body"), mp_write_bin(b, "", 0);
}

static void too_many_headers(struct buf *b)
{
    mp_write_map(b, 5);
    mp_write_cstr(b, "t"), mp_write_cstr(b, "eio-res");
    mp_write_cstr(b, "id"), mp_write_uint(b, 1);
    mp_write_cstr(b, "status"), mp_write_uint(b, 200);
    mp_write_cstr(b, "headers"), mp_write_array(b, 2 * (FWD_MAX_HEADERS + 1));
    for (int i = 0; i < 2 * (FWD_MAX_HEADERS + 1); i++)
        mp_write_cstr(b, "a");
    mp_write_cstr(b, "body"), mp_write_bin(b, "", 0);
}

static void wrong_kind(struct buf *b)
{
    mp_write_map(b, 2);
    mp_write_cstr(b, "t"), mp_write_cstr(b, "eio-end");
    mp_write_cstr(b, "id"), mp_write_cstr(b, "7"); /* a string id */
}

static void trailing(struct buf *b)
{
    mp_write_map(b, 2);
    mp_write_cstr(b, "t"), mp_write_cstr(b, "eio-end");
    mp_write_cstr(b, "id"), mp_write_uint(b, 7);
    mp_write_nil(b); /* a second value */
}

static void test_refusals(void)
{
    CHECK(decode_map(unknown_type) == SIOC_ENOTSUP);
    CHECK(decode_map(unknown_key) == SIOC_OK);
    CHECK(decode_map(missing_field) == SIOC_EPROTO);
    CHECK(decode_map(long_from) == SIOC_EPROTO);
    CHECK(decode_map(bad_status) == SIOC_EPROTO);
    CHECK(decode_map(too_many_headers) == SIOC_EPROTO);
    CHECK(decode_map(wrong_kind) == SIOC_EPROTO);
    CHECK(decode_map(trailing) == SIOC_EPROTO);
    struct fwd_msg m;
    CHECK(fwd_msg_decode(u("\x90"), 1, &m) == SIOC_EPROTO); /* an array */
}

int main(void)
{
    RUN(test_round_trip);
    RUN(test_refusals);
    return test_summary("test_eio_forward_msg");
}
