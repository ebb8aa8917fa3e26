/* test_eio_polling.c: the polling formats of gateway/eio_polling.c and the Engine.IO v3 forms of
 * shared frames (gateway/frame.c): v3 `<len>:` payloads with UTF-16 lengths, `b4<base64>` with
 * b64, the XHR2 binary payload (PROTOCOL.md 1.12's suite vector), JSONP around v3 and v4 payloads
 * (1.5.7), the session format read from a handshake query, POST bodies per format, and that a
 * frame's v3 forms are built once and then shared (a broadcast is framed once per revision). */
#include <string.h>

#include "common/error.h"
#include "gateway/eio_polling.h"
#include "gateway/frame.h"
#include "tests/unit/test.h"

static struct gw_frame *text(const char *s)
{
    return gw_frame_new_text(s[0], s + 1, strlen(s) - 1);
}

/* eio_poll_body of frames[0..n) in `fmt`, compared with want[0..want_len) and its type. */
static void check_body(const struct eio_poll_format *fmt, struct gw_frame **frames, size_t n,
                       const void *want, size_t want_len, const char *want_type)
{
    struct buf out;
    buf_init(&out, 0);
    const char *type = NULL;
    CHECK(eio_poll_body(&out, fmt, frames, n, &type) == SIOC_OK);
    CHECK_MEM(out.data, out.len, want, want_len);
    CHECK(type != NULL && strcmp(type, want_type) == 0);
    buf_deinit(&out);
}

#define TEXT_TYPE "text/plain; charset=UTF-8"

static void test_v3_text(void)
{
    struct eio_poll_format v3 = {.version = EIO_V3};
    struct gw_frame *f[3] = {text("4hello"), text("4\xe2\x82\xac"), text("4\xf0\x9f\x98\x80")};
    /* 1.12: `6:4hello2:4€`; an astral character counts 2 */
    const char want[] = "6:4hello2:4\xe2\x82\xac"
                        "3:4\xf0\x9f\x98\x80";
    check_body(&v3, f, 3, want, sizeof want - 1, TEXT_TYPE);
    for (int i = 0; i < 3; i++)
        gw_frame_unref(f[i]);
}

static void test_v3_binary(void)
{
    static const uint8_t data[] = {1, 2, 3, 4};
    struct gw_frame *f[2] = {text("4hello"), gw_frame_new_binary(data, sizeof data)};
    /* b64=1: base64 in the text payload, `b4` counted in the length */
    struct eio_poll_format b64 = {.version = EIO_V3, .b64 = true};
    const char want_b64[] = "6:4hello10:b4AQIDBA==";
    check_body(&b64, f, 2, want_b64, sizeof want_b64 - 1, TEXT_TYPE);
    /* no b64: the XHR2 payload, PROTOCOL.md 1.12's suite vector */
    struct eio_poll_format xhr2 = {.version = EIO_V3};
    static const uint8_t want_xhr2[] = {0, 6, 255, 52, 104, 101, 108, 108, 111,
                                        1, 5, 255, 4,  1,   2,   3,   4};
    check_body(&xhr2, f, 2, want_xhr2, sizeof want_xhr2, "application/octet-stream");
    /* v4 plain and v4 JSONP: `b<base64>` and 0x1e */
    struct eio_poll_format jsonp4 = {.version = EIO_V4, .jsonp = "0"};
    const char want_j4[] = "___eio[0](\"4hello\\u001ebAQIDBA==\");";
    check_body(&jsonp4, f, 2, want_j4, sizeof want_j4 - 1, TEXT_TYPE);
    /* v3 JSONP: the text payload, binary as b4 even without b64 (JSONP carries text only) */
    struct eio_poll_format jsonp3 = {.version = EIO_V3, .jsonp = "12"};
    const char want_j3[] = "___eio[12](\"6:4hello10:b4AQIDBA==\");";
    check_body(&jsonp3, f, 2, want_j3, sizeof want_j3 - 1, TEXT_TYPE);
    gw_frame_unref(f[0]);
    gw_frame_unref(f[1]);
}

static void test_frame_v3_forms_shared(void)
{
    static const uint8_t data[] = {1, 2, 3};
    struct gw_frame *f = gw_frame_new_binary(data, sizeof data);
    size_t n1 = 0, n2 = 0;
    const uint8_t *p1 = gw_frame_polling_v3(f, &n1);
    const uint8_t *p2 = gw_frame_polling_v3(f, &n2);
    CHECK(p1 != NULL && p1 == p2); /* built once, then the same bytes for every recipient */
    CHECK_STR(p1, n1, "b4AQID");
    const uint8_t *w1 = gw_frame_ws_v3(f, &n1);
    const uint8_t *w2 = gw_frame_ws_v3(f, &n2);
    static const uint8_t want_ws[] = {0x82, 4, 4, 1, 2, 3}; /* FIN|binary, len 4, type 4, data */
    CHECK(w1 != NULL && w1 == w2);
    CHECK_MEM(w1, n1, want_ws, sizeof want_ws);
    /* the v4 forms are unchanged */
    const uint8_t *v4 = gw_frame_polling(f, &n1);
    CHECK_STR(v4, n1, "bAQID");
    gw_frame_ws(f, &n1);
    CHECK(n1 == 2 + sizeof data);
    /* text frames are the same in both revisions */
    struct gw_frame *t = text("42[\"a\"]");
    CHECK(gw_frame_polling_v3(t, &n1) == gw_frame_payload(t));
    CHECK(gw_frame_ws_v3(t, &n1) == gw_frame_ws(t, &n2) && n1 == n2);
    gw_frame_unref(t);
    gw_frame_unref(f);
}

static void test_format_from_query(void)
{
    struct eio_poll_format fmt;
    const char *q = "EIO=3&transport=polling&j=x1y2&b64=1&t=abc";
    CHECK(eio_poll_format_init(&fmt, (struct slice){(const uint8_t *)q, strlen(q)}, EIO_V3));
    CHECK(fmt.version == EIO_V3 && fmt.b64 && fmt.jsonp != NULL && strcmp(fmt.jsonp, "12") == 0);
    CHECK(!eio_poll_format_plain(&fmt));
    eio_poll_format_deinit(&fmt);
    q = "EIO=4&transport=polling&b64=";
    CHECK(eio_poll_format_init(&fmt, (struct slice){(const uint8_t *)q, strlen(q)}, EIO_V4));
    CHECK(!fmt.b64 && fmt.jsonp == NULL && eio_poll_format_plain(&fmt)); /* "" is falsy in JS */
    eio_poll_format_deinit(&fmt);
    q = "EIO=4&j=";
    CHECK(eio_poll_format_init(&fmt, (struct slice){(const uint8_t *)q, strlen(q)}, EIO_V4));
    CHECK(fmt.jsonp != NULL && fmt.jsonp[0] == '\0' && !eio_poll_format_plain(&fmt));
    eio_poll_format_deinit(&fmt);
}

static void test_post_payload(void)
{
    struct buf scratch;
    buf_init(&scratch, 100);
    struct slice payload;
    enum eio_payload_format format;
    struct eio_poll_format v4 = {.version = EIO_V4}, v3 = {.version = EIO_V3};
    struct eio_poll_format j3 = {.version = EIO_V3, .jsonp = "0"};
    const uint8_t body[] = "1:2";
    CHECK(eio_poll_post_payload(&v4, body, 3, true, &scratch, &payload, &format) == SIOC_EINVAL);
    CHECK(eio_poll_post_payload(&v4, body, 3, false, &scratch, &payload, &format) == SIOC_OK);
    CHECK(format == EIO_PAYLOAD_V4 && payload.p == body && payload.len == 3);
    CHECK(eio_poll_post_payload(&v3, body, 3, true, &scratch, &payload, &format) == SIOC_OK);
    CHECK(format == EIO_PAYLOAD_V3_BINARY);
    CHECK(eio_poll_post_payload(&v3, body, 3, false, &scratch, &payload, &format) == SIOC_OK);
    CHECK(format == EIO_PAYLOAD_V3_TEXT);
    const char *form = "d=1%3A2";
    CHECK(eio_poll_post_payload(&j3, (const uint8_t *)form, strlen(form), false, &scratch, &payload,
                                &format) == SIOC_OK);
    CHECK(format == EIO_PAYLOAD_V3_TEXT);
    CHECK_STR(payload.p, payload.len, "1:2");
    buf_reset(&scratch);
    CHECK(eio_poll_post_payload(&j3, (const uint8_t *)"x=1", 3, false, &scratch, &payload,
                                &format) == SIOC_EPROTO);
    buf_deinit(&scratch);
}

int main(void)
{
    RUN(test_v3_text);
    RUN(test_v3_binary);
    RUN(test_frame_v3_forms_shared);
    RUN(test_format_from_query);
    RUN(test_post_payload);
    return test_summary("test_eio_polling");
}
