/* test_ws.c: the WebSocket codec against RFC 6455: handshake vectors (1.3 and reference
 * transcripts), the framing examples of 5.7, every framing rule as a rejection with its close
 * code, and each stream fed whole, split at every offset and one byte at a time with identical
 * results. Client frames are built by hand here, independently of the writer under test. */
#include "common/ws.h"

#include "common/error.h"
#include "tests/unit/test.h"

static const uint8_t key_rfc[4] = {0x37, 0xfa, 0x21, 0x3d}; /* the masking key of RFC 6455 5.7 */

/* ---- helpers ---- */

/* Appends a hand-built frame: first byte b0, minimal length encoding, masked with `key` unless
 * it is NULL. */
static void add_frame(struct buf *s, uint8_t b0, const void *payload, size_t n, const uint8_t *key)
{
    const uint8_t *p = payload;
    uint8_t mbit = key != NULL ? 0x80 : 0;
    buf_append_byte(s, b0);
    if (n < 126) {
        buf_append_byte(s, (uint8_t)(mbit | n));
    } else if (n < 65536) {
        buf_append_byte(s, (uint8_t)(mbit | 126));
        buf_append_byte(s, (uint8_t)(n >> 8));
        buf_append_byte(s, (uint8_t)n);
    } else {
        buf_append_byte(s, (uint8_t)(mbit | 127));
        for (int i = 7; i >= 0; i--)
            buf_append_byte(s, (uint8_t)((uint64_t)n >> (8 * i)));
    }
    if (key != NULL)
        buf_append(s, key, 4);
    for (size_t i = 0; i < n; i++)
        buf_append_byte(s, key != NULL ? (uint8_t)(p[i] ^ key[i % 4]) : p[i]);
}

static void add_masked(struct buf *s, uint8_t b0, const char *text)
{
    add_frame(s, b0, text, strlen(text), key_rfc);
}

static const char *const event_names[] = {"none", "text", "binary", "ping", "pong", "close"};

static void log_event(struct buf *log, enum ws_event_type type, unsigned code, const void *data,
                      size_t len)
{
    buf_append_cstr(log, event_names[type]);
    if (type == WS_EVENT_CLOSE) {
        buf_append_byte(log, ' ');
        buf_append_u64(log, code);
    }
    buf_append_byte(log, '(');
    buf_append_u64(log, len);
    buf_append_byte(log, ')');
    buf_append(log, data, len);
    buf_append_byte(log, ';');
}

static void log_end(struct buf *log, int rc)
{
    buf_append_cstr(log, "end=");
    buf_append_cstr(log, sioc_strerror(rc));
}

static uint8_t *piece_copy(const uint8_t *p, size_t n, bool guard, size_t *map_len)
{
    if (guard)
        return test_guard_copy(p, n, map_len);
    uint8_t *c = malloc(n > 0 ? n : 1);
    if (n > 0)
        memcpy(c, p, n);
    return c;
}

/* Parses in[0..len) fed in pieces: [0,cut) and [cut,len) when step is 0, else pieces of `step`
 * bytes. Every piece is a separate copy (ending at a guard page for short inputs). Logs each
 * event and the final result; returns the final result. */
static int feed(const uint8_t *in, size_t len, size_t cut, size_t step, unsigned flags, size_t max,
                struct buf *log)
{
    struct buf message, control;
    struct ws_parser p;
    buf_init(&message, 0);
    buf_init(&control, 0);
    ws_parser_init(&p, &message, &control, max, flags);
    bool guard = len <= 2048;
    int rc = SIOC_EAGAIN;
    size_t off = 0;
    while (off < len || off == 0) {
        size_t n = step > 0 ? step : off < cut ? cut : len - off;
        if (n > len - off)
            n = len - off;
        size_t map_len = 0;
        uint8_t *piece = piece_copy(in + off, n, guard, &map_len);
        size_t pos = 0;
        for (;;) {
            size_t used = 0;
            struct ws_event ev;
            rc = ws_parser_feed(&p, piece + pos, n - pos, &used, &ev);
            CHECK(used <= n - pos);
            pos += used;
            if (rc != SIOC_OK)
                break;
            CHECK(ev.data != NULL);
            log_event(log, ev.type, ev.close_code, ev.data, ev.len);
        }
        if (guard)
            test_guard_free(piece, n, map_len);
        else
            free(piece);
        if (rc == SIOC_EAGAIN)
            CHECK(pos == n);
        off += n;
        if (rc != SIOC_EAGAIN || len == 0)
            break;
    }
    if (rc != SIOC_EAGAIN) {
        /* Errors are sticky. */
        size_t used = 1;
        struct ws_event ev;
        CHECK(ws_parser_feed(&p, in, len, &used, &ev) == rc);
        CHECK(used == 0);
    }
    log_end(log, rc);
    buf_deinit(&message);
    buf_deinit(&control);
    return rc;
}

/* Feeds `s` whole, split at every offset (a sample of them for long inputs) and one byte at a
 * time; each run must log exactly `want`. */
static void check_stream_flags(const struct buf *s, unsigned flags, size_t max,
                               const struct buf *want)
{
    struct buf log;
    buf_init(&log, 0);
    feed(s->data, s->len, s->len, 0, flags, max, &log);
    CHECK_MEM(log.data, log.len, want->data, want->len);
    size_t stride = s->len <= 2048 ? 1 : s->len / 512;
    for (size_t cut = 0; cut <= s->len; cut += (cut < 40 || cut + 40 > s->len) ? 1 : stride) {
        buf_reset(&log);
        feed(s->data, s->len, cut, 0, flags, max, &log);
        CHECK_MEM(log.data, log.len, want->data, want->len);
    }
    for (size_t step = 1; step <= 3; step++) {
        buf_reset(&log);
        feed(s->data, s->len, 0, step, flags, max, &log);
        CHECK_MEM(log.data, log.len, want->data, want->len);
    }
    buf_deinit(&log);
}

static void check_stream(const struct buf *s, const struct buf *want)
{
    check_stream_flags(s, 0, WS_MAX_MESSAGE_DEFAULT, want);
}

/* Shorthand: the stream must end in error `err` after the events already in `want`. */
static void check_reject(const struct buf *s, struct buf *want, int err)
{
    log_end(want, err);
    check_stream(s, want);
}

static void reset2(struct buf *s, struct buf *want)
{
    buf_reset(s);
    buf_reset(want);
}

/* ---- handshake ---- */

static void test_accept_key(void)
{
    char out[WS_ACCEPT_LEN];
    const char *rfc = "dGhlIHNhbXBsZSBub25jZQ==";
    size_t map_len;
    uint8_t *g = test_guard_copy(rfc, strlen(rfc), &map_len);
    CHECK(ws_accept_key((const char *)g, strlen(rfc), out) == SIOC_OK);
    test_guard_free(g, strlen(rfc), map_len);
    CHECK_STR(out, sizeof out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="); /* RFC 6455 1.3 */
    /* Reference transcripts b-websocket W1 and d5 V01. */
    CHECK(ws_accept_key("oBD7gbjRrqQri38EOC0k9w==", 24, out) == SIOC_OK);
    CHECK_STR(out, sizeof out, "wCwsVmP1jQPKaiz1+oiTaZHUIWE=");
    CHECK(ws_accept_key("awq0ojlg3/oi6hDOXhgbeA==", 24, out) == SIOC_OK);
    CHECK_STR(out, sizeof out, "7otV/d49GC06OT63CFnOaSo7Y/0=");
}

static void test_client_key_and_version(void)
{
    const char *ok = "dGhlIHNhbXBsZSBub25jZQ==";
    size_t map_len;
    uint8_t *g = test_guard_copy(ok, 24, &map_len);
    CHECK(ws_client_key_valid((const char *)g, 24));
    test_guard_free(g, 24, map_len);
    CHECK(ws_client_key_valid("awq0ojlg3/oi6hDOXhgbeA==", 24));
    CHECK(!ws_client_key_valid("dGhlIHNhbXBsZSBub25jZQ=", 23));
    CHECK(!ws_client_key_valid("dGhlIHNhbXBsZSBub25jZQ===", 25));
    CHECK(!ws_client_key_valid("dGhlIHNhbXBsZSBub25jZQab", 24)); /* 18 bytes, no padding */
    CHECK(!ws_client_key_valid("dGhlIHNhbXBsZSBub25jZ===", 24)); /* 15 bytes */
    CHECK(!ws_client_key_valid("dGhlIHNhbXBsZSBub25j-Q==", 24)); /* URL alphabet */
    CHECK(!ws_client_key_valid("dGhlIHNhbXBsZSBub25j Q==", 24));
    CHECK(!ws_client_key_valid("", 0));
    CHECK(ws_version_valid("13", 2));
    CHECK(!ws_version_valid("8", 1));
    CHECK(!ws_version_valid("130", 3));
    CHECK(!ws_version_valid("1", 1));
    CHECK(!ws_version_valid("", 0));
    CHECK(!ws_version_valid("13", 1));
}

static void test_handshake_response(void)
{
    struct buf b;
    buf_init(&b, 0);
    /* Byte for byte the 101 of reference transcript b-websocket W1, CORS lines included. */
    const char *extra = "Vary: Origin\r\nAccess-Control-Allow-Credentials: true\r\n";
    CHECK(ws_write_handshake_response(&b, "oBD7gbjRrqQri38EOC0k9w==", 24, extra, strlen(extra)) ==
          SIOC_OK);
    CHECK_STR(b.data, b.len,
              "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              "Sec-WebSocket-Accept: wCwsVmP1jQPKaiz1+oiTaZHUIWE=\r\nVary: Origin\r\n"
              "Access-Control-Allow-Credentials: true\r\n\r\n");
    buf_reset(&b);
    CHECK(ws_write_handshake_response(&b, "dGhlIHNhbXBsZSBub25jZQ==", 24, NULL, 0) == SIOC_OK);
    CHECK_STR(b.data, b.len,
              "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n");
    buf_reset(&b);
    CHECK(ws_write_handshake_response(&b, "dGhlIHNhbXBsZSBub25jZQ==", 24, "Vary: Origin", 12) ==
          SIOC_EINVAL);
    CHECK(ws_write_handshake_response(&b, "dGhlIHNhbXBsZSBub25jZQ==", 24, "\n", 1) == SIOC_EINVAL);
    CHECK(b.len == 0);
    struct buf small;
    buf_init(&small, 40);
    CHECK(ws_write_handshake_response(&small, "dGhlIHNhbXBsZSBub25jZQ==", 24, NULL, 0) ==
          SIOC_ETOOBIG);
    buf_deinit(&small);
    buf_deinit(&b);
}

/* ---- close codes ---- */

static void test_close_code_valid(void)
{
    static const unsigned valid[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010,
                                     1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999};
    static const unsigned invalid[] = {0,    1,    999,  1004, 1005, 1006,  1015,        1016,
                                       1999, 2000, 2999, 5000, 9999, 65535, 65536 + 1000};
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++)
        CHECK(ws_close_code_valid(valid[i]));
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
        CHECK(!ws_close_code_valid(invalid[i]));
    CHECK(ws_error_close_code(SIOC_EPROTO) == 1002);
    CHECK(ws_error_close_code(SIOC_EUTF8) == 1007);
    CHECK(ws_error_close_code(SIOC_ETOOBIG) == 1009);
    CHECK(ws_error_close_code(SIOC_ENOMEM) == 1011);
}

/* ---- writer ---- */

static void test_frame_header_lengths(void)
{
    uint8_t h[WS_FRAME_HEADER_MAX];
    CHECK(ws_frame_header(WS_OP_TEXT, true, 5, NULL, h) == 2);
    CHECK_MEM(h, 2, "\x81\x05", 2);
    CHECK(ws_frame_header(WS_OP_TEXT, true, 125, NULL, h) == 2);
    CHECK_MEM(h, 2, "\x81\x7d", 2);
    CHECK(ws_frame_header(WS_OP_BINARY, true, 126, NULL, h) == 4);
    CHECK_MEM(h, 4, "\x82\x7e\x00\x7e", 4);
    /* RFC 6455 5.7: 256 bytes in one unmasked binary frame; 64 KiB with the 8-byte length. */
    CHECK(ws_frame_header(WS_OP_BINARY, true, 256, NULL, h) == 4);
    CHECK_MEM(h, 4, "\x82\x7e\x01\x00", 4);
    CHECK(ws_frame_header(WS_OP_BINARY, true, 65535, NULL, h) == 4);
    CHECK_MEM(h, 4, "\x82\x7e\xff\xff", 4);
    CHECK(ws_frame_header(WS_OP_BINARY, true, 65536, NULL, h) == 10);
    CHECK_MEM(h, 10, "\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10);
    CHECK(ws_frame_header(WS_OP_BINARY, false, 0x0102030405060708ull, NULL, h) == 10);
    CHECK_MEM(h, 10, "\x02\x7f\x01\x02\x03\x04\x05\x06\x07\x08", 10);
    CHECK(ws_frame_header(WS_OP_CONTINUATION, true, 0, NULL, h) == 2);
    CHECK_MEM(h, 2, "\x80\x00", 2);
    CHECK(ws_frame_header(WS_OP_TEXT, true, 5, key_rfc, h) == 6);
    CHECK_MEM(h, 6, "\x81\x85\x37\xfa\x21\x3d", 6);
    CHECK(ws_frame_header(WS_OP_BINARY, true, 65536, key_rfc, h) == 14);
    CHECK_MEM(h, 14, "\x82\xff\x00\x00\x00\x00\x00\x01\x00\x00\x37\xfa\x21\x3d", 14);
}

static void test_write_rfc_examples(void)
{
    struct buf b;
    buf_init(&b, 0);
    /* RFC 6455 5.7 examples, byte for byte. */
    CHECK(ws_write_frame(&b, WS_OP_TEXT, true, (const uint8_t *)"Hello", 5) == SIOC_OK);
    CHECK_MEM(b.data, b.len, "\x81\x05\x48\x65\x6c\x6c\x6f", 7);
    buf_reset(&b);
    CHECK(ws_write_frame_masked(&b, WS_OP_TEXT, true, (const uint8_t *)"Hello", 5, key_rfc) ==
          SIOC_OK);
    CHECK_MEM(b.data, b.len, "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11);
    buf_reset(&b);
    ws_write_frame(&b, WS_OP_TEXT, false, (const uint8_t *)"Hel", 3);
    ws_write_frame(&b, WS_OP_CONTINUATION, true, (const uint8_t *)"lo", 2);
    CHECK_MEM(b.data, b.len, "\x01\x03\x48\x65\x6c\x80\x02\x6c\x6f", 9);
    buf_reset(&b);
    CHECK(ws_write_frame(&b, WS_OP_PING, true, (const uint8_t *)"Hello", 5) == SIOC_OK);
    CHECK_MEM(b.data, b.len, "\x89\x05\x48\x65\x6c\x6c\x6f", 7);
    buf_reset(&b);
    CHECK(ws_write_frame_masked(&b, WS_OP_PONG, true, (const uint8_t *)"Hello", 5, key_rfc) ==
          SIOC_OK);
    CHECK_MEM(b.data, b.len, "\x8a\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11);
    buf_reset(&b);
    uint8_t *big = calloc(65536, 1);
    CHECK(ws_write_frame(&b, WS_OP_BINARY, true, big, 256) == SIOC_OK);
    CHECK(b.len == 260);
    CHECK_MEM(b.data, 4, "\x82\x7e\x01\x00", 4);
    buf_reset(&b);
    CHECK(ws_write_frame(&b, WS_OP_BINARY, true, big, 65536) == SIOC_OK);
    CHECK(b.len == 65546);
    CHECK_MEM(b.data, 10, "\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10);
    free(big);
    buf_deinit(&b);
}

static void test_write_invalid(void)
{
    struct buf b;
    buf_init(&b, 0);
    uint8_t p[126] = {0};
    CHECK(ws_write_frame(&b, WS_OP_PING, true, p, 126) == SIOC_EINVAL);
    CHECK(ws_write_frame(&b, WS_OP_PONG, false, p, 1) == SIOC_EINVAL);
    CHECK(ws_write_frame(&b, (enum ws_opcode)3, true, p, 1) == SIOC_EINVAL);
    CHECK(ws_write_frame(&b, (enum ws_opcode)0xb, true, p, 1) == SIOC_EINVAL);
    CHECK(b.len == 0);
    CHECK(ws_write_frame(&b, WS_OP_PING, true, p, 125) == SIOC_OK);
    CHECK(b.len == 127);
    buf_deinit(&b);
    struct buf small;
    buf_init(&small, 6);
    CHECK(ws_write_frame(&small, WS_OP_TEXT, true, p, 5) == SIOC_ETOOBIG);
    CHECK(small.len == 0);
    buf_deinit(&small);
}

static void test_write_close(void)
{
    struct buf b;
    buf_init(&b, 0);
    /* PROTOCOL.md 1.6: the server closes sessions with a close frame without status code. */
    CHECK(ws_write_close(&b, WS_CLOSE_NO_STATUS, NULL, 0) == SIOC_OK);
    CHECK_MEM(b.data, b.len, "\x88\x00", 2);
    buf_reset(&b);
    CHECK(ws_write_close(&b, 1009, NULL, 0) == SIOC_OK); /* d5 V23 */
    CHECK_MEM(b.data, b.len, "\x88\x02\x03\xf1", 4);
    buf_reset(&b);
    CHECK(ws_write_close(&b, 1000, (const uint8_t *)"bye", 3) == SIOC_OK);
    CHECK_MEM(b.data, b.len,
              "\x88\x05\x03\xe8"
              "bye",
              7);
    buf_reset(&b);
    uint8_t reason[124];
    memset(reason, 'r', sizeof reason);
    CHECK(ws_write_close(&b, 4000, reason, 123) == SIOC_OK);
    CHECK(b.len == 127 && b.data[1] == 125);
    buf_reset(&b);
    CHECK(ws_write_close(&b, 4000, reason, 124) == SIOC_EINVAL);
    CHECK(ws_write_close(&b, 1005, (const uint8_t *)"x", 1) == SIOC_EINVAL);
    CHECK(ws_write_close(&b, 1006, NULL, 0) == SIOC_EINVAL);
    CHECK(ws_write_close(&b, 999, NULL, 0) == SIOC_EINVAL);
    CHECK(ws_write_close(&b, 1000, (const uint8_t *)"\xc3\x28", 2) == SIOC_EINVAL);
    CHECK(b.len == 0);
    uint8_t payload[WS_CONTROL_PAYLOAD_MAX];
    CHECK(ws_close_payload(1002, NULL, 0, payload) == 2);
    CHECK_MEM(payload, 2, "\x03\xea", 2);
    CHECK(ws_close_payload(WS_CLOSE_NO_STATUS, NULL, 0, payload) == 0);
    buf_deinit(&b);
}

static void test_mask_apply(void)
{
    uint8_t src[64], dst[64], want[64];
    for (size_t i = 0; i < sizeof src; i++)
        src[i] = (uint8_t)(i * 37 + 11);
    for (size_t n = 0; n <= sizeof src; n++) {
        for (uint64_t off = 0; off < 9; off++) {
            for (size_t i = 0; i < n; i++)
                want[i] = src[i] ^ key_rfc[(off + i) % 4];
            ws_mask_apply(dst, src, n, key_rfc, off);
            CHECK_MEM(dst, n, want, n);
            memcpy(dst, src, n);
            ws_mask_apply(dst, dst, n, key_rfc, off);
            CHECK_MEM(dst, n, want, n);
        }
    }
    /* Masking at a frame offset continues the mask of the earlier part (5.3). */
    uint8_t whole[64];
    ws_mask_apply(whole, src, 64, key_rfc, 0);
    ws_mask_apply(dst, src, 13, key_rfc, 0);
    ws_mask_apply(dst + 13, src + 13, 51, key_rfc, 13);
    CHECK_MEM(dst, 64, whole, 64);
}

/* ---- parser: valid streams ---- */

static void test_parse_rfc_examples(void)
{
    struct buf s, want;
    buf_init(&s, 0);
    buf_init(&want, 0);
    /* RFC 6455 5.7: a single-frame masked text message. */
    buf_append(&s, "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11);
    log_event(&want, WS_EVENT_TEXT, 0, "Hello", 5);
    log_end(&want, SIOC_EAGAIN);
    check_stream(&s, &want);

    /* Fragmented "Hel" + "lo", masked. */
    reset2(&s, &want);
    add_masked(&s, 0x01, "Hel");
    add_masked(&s, 0x80, "lo");
    log_event(&want, WS_EVENT_TEXT, 0, "Hello", 5);
    log_end(&want, SIOC_EAGAIN);
    check_stream(&s, &want);

    /* Masked pong "Hello" (5.7), then a masked ping. */
    reset2(&s, &want);
    buf_append(&s, "\x8a\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11);
    add_masked(&s, 0x89, "Hello");
    log_event(&want, WS_EVENT_PONG, 0, "Hello", 5);
    log_event(&want, WS_EVENT_PING, 0, "Hello", 5);
    log_end(&want, SIOC_EAGAIN);
    check_stream(&s, &want);

    /* 256 bytes and 64 KiB of binary: 16-bit and 64-bit lengths. */
    uint8_t *big = malloc(65536);
    for (size_t i = 0; i < 65536; i++)
        big[i] = (uint8_t)(i * 7 + (i >> 8));
    reset2(&s, &want);
    add_frame(&s, 0x82, big, 256, key_rfc);
    CHECK_MEM(s.data, 4, "\x82\xfe\x01\x00", 4);
    add_frame(&s, 0x82, big, 65536, key_rfc);
    CHECK_MEM(s.data + 264, 10, "\x82\xff\x00\x00\x00\x00\x00\x01\x00\x00", 10);
    log_event(&want, WS_EVENT_BINARY, 0, big, 256);
    log_event(&want, WS_EVENT_BINARY, 0, big, 65536);
    log_end(&want, SIOC_EAGAIN);
    check_stream(&s, &want);
    free(big);
    buf_deinit(&s);
    buf_deinit(&want);
}

static void test_parse_transcript_frames(void)
{
    struct buf s, want;
    buf_init(&s, 0);
    buf_init(&want, 0);
    /* b-websocket W1: "40" with header 81 82 3d 59 35 b6, and the /chat CONNECT. */
    static const uint8_t k1[4] = {0x3d, 0x59, 0x35, 0xb6}, k2[4] = {0xab, 0x4f, 0x20, 0xde};
    add_frame(&s, 0x81, "40", 2, k1);
    CHECK_MEM(s.data, 6, "\x81\x82\x3d\x59\x35\xb6", 6);
    const char *chat = "40/chat,{\"token\":\"xyz\"}";
    add_frame(&s, 0x81, chat, strlen(chat), k2);
    /* A client close 1000 as in step 10. */
    static const uint8_t k3[4] = {0xab, 0xda, 0x2c, 0xe2};
    add_frame(&s, 0x88, "\x03\xe8", 2, k3);
    log_event(&want, WS_EVENT_TEXT, 0, "40", 2);
    log_event(&want, WS_EVENT_TEXT, 0, chat, strlen(chat));
    log_event(&want, WS_EVENT_CLOSE, 1000, "", 0);
    log_end(&want, SIOC_EAGAIN);
    check_stream(&s, &want);
    buf_deinit(&s);
    buf_deinit(&want);
}

static void test_parse_interleaved_control(void)
{
    struct buf s, want;
    buf_init(&s, 0);
    buf_init(&want, 0);
    /* RFC 6455 5.4: control frames may be injected in the middle of a fragmented message. */
    add_masked(&s, 0x01, "Hel");
    add_masked(&s, 0x89, "p1");
    add_masked(&s, 0x00, "");
    add_masked(&s, 0x8a, "");
    add_masked(&s, 0x00, "l");
    add_masked(&s, 0x80, "o");
    add_masked(&s, 0x02, "\xff");
    add_masked(&s, 0x89, "");
    add_masked(&s, 0x80, "\xfe");
    log_event(&want, WS_EVENT_PING, 0, "p1", 2);
    log_event(&want, WS_EVENT_PONG, 0, "", 0);
    log_event(&want, WS_EVENT_TEXT, 0, "Hello", 5);
    log_event(&want, WS_EVENT_PING, 0, "", 0);
    log_event(&want, WS_EVENT_BINARY, 0, "\xff\xfe", 2); /* binary need not be UTF-8 */
    log_end(&want, SIOC_EAGAIN);
    check_stream(&s, &want);
    buf_deinit(&s);
    buf_deinit(&want);
}

static void test_parse_empty_and_many(void)
{
    struct buf s, want;
    buf_init(&s, 0);
    buf_init(&want, 0);
    add_masked(&s, 0x81, "");
    add_masked(&s, 0x82, "");
    add_masked(&s, 0x01, "");
    add_masked(&s, 0x80, "");
    add_masked(&s, 0x81, "a");
    add_masked(&s, 0x81, "bc");
    uint8_t ctl[125];
    memset(ctl, 'c', sizeof ctl);
    add_frame(&s, 0x89, ctl, 125, key_rfc); /* the largest control payload */
    log_event(&want, WS_EVENT_TEXT, 0, "", 0);
    log_event(&want, WS_EVENT_BINARY, 0, "", 0);
    log_event(&want, WS_EVENT_TEXT, 0, "", 0);
    log_event(&want, WS_EVENT_TEXT, 0, "a", 1);
    log_event(&want, WS_EVENT_TEXT, 0, "bc", 2);
    log_event(&want, WS_EVENT_PING, 0, ctl, 125);
    log_end(&want, SIOC_EAGAIN);
    check_stream(&s, &want);

    /* An incomplete frame is kept, not reported. */
    reset2(&s, &want);
    add_masked(&s, 0x81, "abc");
    s.len--;
    log_end(&want, SIOC_EAGAIN);
    check_stream(&s, &want);
    buf_deinit(&s);
    buf_deinit(&want);
}

static void test_parse_close(void)
{
    struct buf s, want;
    buf_init(&s, 0);
    buf_init(&want, 0);
    /* An empty close has no status code (RFC 6455 7.1.5: reported as 1005); input after a close
     * is ignored, even garbage. */
    add_masked(&s, 0x88, "");
    buf_append(&s, "\xff\xff\x00", 3);
    log_event(&want, WS_EVENT_CLOSE, 1005, "", 0);
    log_end(&want, SIOC_EAGAIN);
    check_stream(&s, &want);

    static const unsigned ok_codes[] = {1000, 1001, 1003, 1007, 1011, 1012, 1013, 1014, 3000, 4999};
    for (size_t i = 0; i < sizeof ok_codes / sizeof ok_codes[0]; i++) {
        reset2(&s, &want);
        uint8_t body[8] = {
            (uint8_t)(ok_codes[i] >> 8), (uint8_t)ok_codes[i], 'b', 'y', 'e', 0xc3, 0xa9};
        add_frame(&s, 0x88, body, 7, key_rfc);
        log_event(&want, WS_EVENT_CLOSE, ok_codes[i], "bye\xc3\xa9", 5);
        log_end(&want, SIOC_EAGAIN);
        check_stream(&s, &want);
    }
    buf_deinit(&s);
    buf_deinit(&want);
}

static void test_parse_utf8_across_fragments(void)
{
    struct buf s, want;
    buf_init(&s, 0);
    buf_init(&want, 0);
    /* RFC 6455 8.1: only the whole message must be UTF-8; "€" (e2 82 ac) and "😀" (f0 9f 98 80)
     * split inside the code point across fragments are valid. */
    add_masked(&s, 0x01, "a\xe2\x82");
    add_masked(&s, 0x00, "\xac\xf0");
    add_masked(&s, 0x00, "\x9f");
    add_masked(&s, 0x80, "\x98\x80z");
    log_event(&want, WS_EVENT_TEXT, 0, "a\xe2\x82\xac\xf0\x9f\x98\x80z", 9);
    log_end(&want, SIOC_EAGAIN);
    check_stream(&s, &want);

    /* ... but a message that ends inside one is not (1007). */
    reset2(&s, &want);
    add_masked(&s, 0x01, "a\xe2");
    add_masked(&s, 0x80, "\x82");
    check_reject(&s, &want, SIOC_EUTF8);
    reset2(&s, &want);
    add_masked(&s, 0x81, "\xf0\x9f\x98");
    check_reject(&s, &want, SIOC_EUTF8);

    /* Invalid bytes fail as soon as they arrive, before the message ends (fail fast). */
    reset2(&s, &want);
    add_masked(&s, 0x01, "ok\xc0\xaf");
    check_reject(&s, &want, SIOC_EUTF8);
    reset2(&s, &want);
    add_masked(&s, 0x01, "\xed");
    add_masked(&s, 0x00, "\xa0\x80"); /* a surrogate, split */
    check_reject(&s, &want, SIOC_EUTF8);
    /* d5 V25: 42["\xc3(\"] */
    reset2(&s, &want);
    add_frame(&s, 0x81, "\x34\x32\x5b\x22\xc3\x28\x22\x5d", 8, key_rfc);
    check_reject(&s, &want, SIOC_EUTF8);
    buf_deinit(&s);
    buf_deinit(&want);
}

/* ---- parser: rejections ---- */

static void test_reject_masking_rsv_opcode(void)
{
    struct buf s, want;
    buf_init(&s, 0);
    buf_init(&want, 0);
    /* RFC 6455 5.1: unmasked client frame (d5 V26), also after a good frame. */
    buf_append(&s, "\x81\x05Hello", 7);
    check_reject(&s, &want, SIOC_EPROTO);
    reset2(&s, &want);
    add_masked(&s, 0x81, "ok");
    buf_append(&s, "\x81\x00", 2);
    log_event(&want, WS_EVENT_TEXT, 0, "ok", 2);
    check_reject(&s, &want, SIOC_EPROTO);
    /* RSV1 (d5 V27), RSV2, RSV3: no extension negotiated. */
    static const uint8_t rsv_bytes[] = {0xc1, 0xa1, 0x91, 0xf1, 0xc9};
    for (size_t i = 0; i < sizeof rsv_bytes; i++) {
        reset2(&s, &want);
        add_masked(&s, rsv_bytes[i], "x");
        check_reject(&s, &want, SIOC_EPROTO);
    }
    /* Reserved opcodes 3-7 (d5 V28) and 0xB-0xF. */
    static const uint8_t ops[] = {3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf};
    for (size_t i = 0; i < sizeof ops; i++) {
        reset2(&s, &want);
        add_masked(&s, (uint8_t)(0x80 | ops[i]), "x");
        check_reject(&s, &want, SIOC_EPROTO);
    }
    buf_deinit(&s);
    buf_deinit(&want);
}

static void test_reject_control_rules(void)
{
    struct buf s, want;
    buf_init(&s, 0);
    buf_init(&want, 0);
    /* RFC 6455 5.5: control frames are not fragmented (d5 V29) ... */
    static const uint8_t nofin[] = {0x09, 0x0a, 0x08};
    for (size_t i = 0; i < sizeof nofin; i++) {
        reset2(&s, &want);
        add_masked(&s, nofin[i], "x");
        check_reject(&s, &want, SIOC_EPROTO);
    }
    /* ... and carry at most 125 bytes. */
    uint8_t big[126] = {0};
    static const uint8_t ctl[] = {0x89, 0x8a, 0x88};
    for (size_t i = 0; i < sizeof ctl; i++) {
        reset2(&s, &want);
        add_frame(&s, ctl[i], big, 126, key_rfc);
        check_reject(&s, &want, SIOC_EPROTO);
    }
    reset2(&s, &want);
    buf_append(&s, "\x89\xff\x00\x00\x00\x00\x00\x00\x00\x01", 10);
    check_reject(&s, &want, SIOC_EPROTO);
    buf_deinit(&s);
    buf_deinit(&want);
}

static void test_reject_length_encoding(void)
{
    struct buf s, want;
    buf_init(&s, 0);
    buf_init(&want, 0);
    /* RFC 6455 5.2: the minimal number of bytes MUST be used; 64-bit lengths have MSB 0. */
    static const char *const bad[] = {
        "\x82\xfe\x00\x00",                         /* 0 in 16 bits */
        "\x82\xfe\x00\x05",                         /* 5 in 16 bits */
        "\x82\xfe\x00\x7d",                         /* 125 in 16 bits */
        "\x82\xff\x00\x00\x00\x00\x00\x00\x00\x05", /* 5 in 64 bits */
        "\x82\xff\x00\x00\x00\x00\x00\x00\xff\xff", /* 65535 in 64 bits */
        "\x82\xff\x80\x00\x00\x00\x00\x00\x00\x00", /* MSB set */
        "\x82\xff\xff\xff\xff\xff\xff\xff\xff\xff",
    };
    static const size_t bad_len[] = {4, 4, 4, 10, 10, 10, 10};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        reset2(&s, &want);
        buf_append(&s, bad[i], bad_len[i]);
        check_reject(&s, &want, SIOC_EPROTO);
    }
    /* The smallest lengths of each form are accepted. */
    reset2(&s, &want);
    uint8_t *zero = calloc(65536, 1);
    add_frame(&s, 0x82, zero, 126, key_rfc);
    add_frame(&s, 0x82, zero, 65536, key_rfc);
    log_event(&want, WS_EVENT_BINARY, 0, zero, 126);
    log_event(&want, WS_EVENT_BINARY, 0, zero, 65536);
    log_end(&want, SIOC_EAGAIN);
    check_stream(&s, &want);
    free(zero);
    buf_deinit(&s);
    buf_deinit(&want);
}

static void test_reject_fragmentation(void)
{
    struct buf s, want;
    buf_init(&s, 0);
    buf_init(&want, 0);
    /* RFC 6455 5.4: a continuation without a started message. */
    add_masked(&s, 0x80, "x");
    check_reject(&s, &want, SIOC_EPROTO);
    reset2(&s, &want);
    add_masked(&s, 0x00, "x");
    check_reject(&s, &want, SIOC_EPROTO);
    reset2(&s, &want);
    add_masked(&s, 0x81, "a");
    add_masked(&s, 0x80, "b");
    log_event(&want, WS_EVENT_TEXT, 0, "a", 1);
    check_reject(&s, &want, SIOC_EPROTO);
    /* A new data frame while a fragmented message is open. */
    static const uint8_t second[] = {0x81, 0x01, 0x82, 0x02};
    for (size_t i = 0; i < sizeof second; i++) {
        reset2(&s, &want);
        add_masked(&s, 0x01, "a");
        add_masked(&s, 0x89, "p");
        add_masked(&s, second[i], "b");
        log_event(&want, WS_EVENT_PING, 0, "p", 1);
        check_reject(&s, &want, SIOC_EPROTO);
    }
    buf_deinit(&s);
    buf_deinit(&want);
}

static void test_reject_close_payload(void)
{
    struct buf s, want;
    buf_init(&s, 0);
    buf_init(&want, 0);
    /* RFC 6455 5.5.1: a 1-byte body cannot hold a code. */
    add_masked(&s, 0x88, "\x03");
    check_reject(&s, &want, SIOC_EPROTO);
    /* 7.4: codes that may not be sent, d5 V30 (1005) among them. */
    static const unsigned bad[] = {0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        reset2(&s, &want);
        uint8_t body[2] = {(uint8_t)(bad[i] >> 8), (uint8_t)bad[i]};
        add_frame(&s, 0x88, body, 2, key_rfc);
        check_reject(&s, &want, SIOC_EPROTO);
    }
    /* 5.5.1: the reason is UTF-8, else 1007. */
    reset2(&s, &want);
    add_masked(&s, 0x88, "\x03\xe8\xc3\x28");
    check_reject(&s, &want, SIOC_EUTF8);
    reset2(&s, &want);
    add_masked(&s, 0x88, "\x03\xe8ok\xe2\x82");
    check_reject(&s, &want, SIOC_EUTF8);
    buf_deinit(&s);
    buf_deinit(&want);
}

static void test_reject_too_big(void)
{
    struct buf s, want;
    buf_init(&s, 0);
    buf_init(&want, 0);
    uint8_t *data = malloc(2000);
    memset(data, 'x', 2000);
    /* d5 V23/V24 with maxPayload 1000: 1000 bytes pass, 1001 close with 1009. */
    add_frame(&s, 0x81, data, 1000, key_rfc);
    log_event(&want, WS_EVENT_TEXT, 0, data, 1000);
    log_end(&want, SIOC_EAGAIN);
    check_stream_flags(&s, 0, 1000, &want);
    reset2(&s, &want);
    add_frame(&s, 0x81, data, 1001, key_rfc);
    log_end(&want, SIOC_ETOOBIG);
    check_stream_flags(&s, 0, 1000, &want);
    /* The message total counts, across fragments. */
    reset2(&s, &want);
    add_frame(&s, 0x02, data, 600, key_rfc);
    add_frame(&s, 0x80, data, 401, key_rfc);
    log_end(&want, SIOC_ETOOBIG);
    check_stream_flags(&s, 0, 1000, &want);
    free(data);

    /* The declared length is checked before anything is buffered: the header alone fails, and
     * a 2^62-byte declaration allocates nothing. */
    struct buf message, control;
    buf_init(&message, 0);
    buf_init(&control, 0);
    struct ws_parser p;
    struct ws_event ev;
    size_t used;
    ws_parser_init(&p, &message, &control, 1000, 0);
    CHECK(ws_parser_feed(&p, (const uint8_t *)"\x82\xfe\x03\xe9", 4, &used, &ev) == SIOC_ETOOBIG);
    CHECK(message.cap == 0);
    CHECK(ws_error_close_code(SIOC_ETOOBIG) == 1009);
    ws_parser_init(&p, &message, &control, 0, 0); /* 0: only the buffer's limit, here none */
    CHECK(ws_parser_feed(&p, (const uint8_t *)"\x82\xff\x40\x00\x00\x00\x00\x00\x00\x00", 10, &used,
                         &ev) == SIOC_EAGAIN);
    CHECK(message.cap == 0);
    buf_deinit(&message);
    /* The buffer's own limit applies when it is smaller. */
    buf_init(&message, 10);
    ws_parser_init(&p, &message, &control, 1000, 0);
    add_frame(&s, 0x82, "0123456789a", 11, key_rfc);
    CHECK(ws_parser_feed(&p, s.data + s.len - 17, 6, &used, &ev) == SIOC_ETOOBIG);
    buf_deinit(&message);
    buf_deinit(&control);
    buf_deinit(&s);
    buf_deinit(&want);
}

/* ---- parser: client mode, ownership, round trips ---- */

static void test_client_mode(void)
{
    struct buf s, want;
    buf_init(&s, 0);
    buf_init(&want, 0);
    /* RFC 6455 5.7 unmasked examples, as a client receives them. */
    buf_append(&s, "\x81\x05\x48\x65\x6c\x6c\x6f", 7);
    buf_append(&s, "\x01\x03\x48\x65\x6c\x89\x00\x80\x02\x6c\x6f", 11);
    buf_append(&s, "\x88\x02\x03\xe8", 4);
    log_event(&want, WS_EVENT_TEXT, 0, "Hello", 5);
    log_event(&want, WS_EVENT_PING, 0, "", 0);
    log_event(&want, WS_EVENT_TEXT, 0, "Hello", 5);
    log_event(&want, WS_EVENT_CLOSE, 1000, "", 0);
    log_end(&want, SIOC_EAGAIN);
    check_stream_flags(&s, WS_PARSER_CLIENT, 0, &want);
    /* RFC 6455 5.1: a client closes on a masked frame. */
    reset2(&s, &want);
    buf_append(&s, "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11);
    log_end(&want, SIOC_EPROTO);
    check_stream_flags(&s, WS_PARSER_CLIENT, 0, &want);
    buf_deinit(&s);
    buf_deinit(&want);
}

static void test_detach_between_messages(void)
{
    struct buf s, message;
    buf_init(&s, 0);
    buf_init(&message, 0);
    add_masked(&s, 0x81, "first");
    add_masked(&s, 0x82, "second");
    struct ws_parser p;
    struct ws_event ev;
    size_t used, pos = 0;
    struct buf control;
    buf_init(&control, 0);
    ws_parser_init(&p, &message, &control, 100, 0);
    CHECK(ws_parser_feed(&p, s.data, s.len, &used, &ev) == SIOC_OK);
    CHECK(ev.type == WS_EVENT_TEXT && ev.data == message.data);
    pos += used;
    size_t n;
    uint8_t *kept = buf_detach(&message, &n);
    CHECK_MEM(kept, n, "first", 5);
    CHECK(ws_parser_feed(&p, s.data + pos, s.len - pos, &used, &ev) == SIOC_OK);
    CHECK(ev.type == WS_EVENT_BINARY);
    CHECK_MEM(ev.data, ev.len, "second", 6);
    CHECK(pos + used == s.len);
    CHECK(ws_parser_feed(&p, NULL, 0, &used, &ev) == SIOC_EAGAIN && ev.type == WS_EVENT_NONE);
    /* Empty input in the middle of a header or payload is fine too. */
    CHECK(ws_parser_feed(&p, (const uint8_t *)"\x82\xfe\x00", 3, &used, &ev) == SIOC_EAGAIN &&
          used == 3);
    CHECK(ws_parser_feed(&p, NULL, 0, &used, &ev) == SIOC_EAGAIN && used == 0);
    free(kept);
    buf_deinit(&message);
    buf_deinit(&s);
}

static void test_round_trip_writer(void)
{
    static const size_t sizes[] = {0, 1, 7, 8, 9, 125, 126, 127, 65535, 65536, 70001};
    uint8_t *data = malloc(70001);
    for (size_t i = 0; i < 70001; i++)
        data[i] = (uint8_t)(i * 13 + 5);
    struct buf s, message;
    buf_init(&s, 0);
    buf_init(&message, 0);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        for (int client = 0; client < 2; client++) {
            buf_reset(&s);
            size_t half = sizes[i] / 2;
            /* A client writes masked frames for the server parser, and the reverse. */
            if (client)
                ws_write_frame(&s, WS_OP_BINARY, false, data, half);
            else
                ws_write_frame_masked(&s, WS_OP_BINARY, false, data, half, key_rfc);
            if (client)
                ws_write_frame(&s, WS_OP_CONTINUATION, true, data + half, sizes[i] - half);
            else
                ws_write_frame_masked(&s, WS_OP_CONTINUATION, true, data + half, sizes[i] - half,
                                      key_rfc);
            CHECK(s.err == SIOC_OK);
            struct ws_parser p;
            struct ws_event ev;
            size_t used;
            struct buf control;
            buf_init(&control, 0);
            ws_parser_init(&p, &message, &control, 0, client ? WS_PARSER_CLIENT : 0);
            CHECK(ws_parser_feed(&p, s.data, s.len, &used, &ev) == SIOC_OK);
            CHECK(used == s.len && ev.type == WS_EVENT_BINARY);
            CHECK_MEM(ev.data, ev.len, data, sizes[i]);
        }
    }
    free(data);
    buf_deinit(&s);
    buf_deinit(&message);
}

int main(void)
{
    RUN(test_accept_key);
    RUN(test_client_key_and_version);
    RUN(test_handshake_response);
    RUN(test_close_code_valid);
    RUN(test_frame_header_lengths);
    RUN(test_write_rfc_examples);
    RUN(test_write_invalid);
    RUN(test_write_close);
    RUN(test_mask_apply);
    RUN(test_parse_rfc_examples);
    RUN(test_parse_transcript_frames);
    RUN(test_parse_interleaved_control);
    RUN(test_parse_empty_and_many);
    RUN(test_parse_close);
    RUN(test_parse_utf8_across_fragments);
    RUN(test_reject_masking_rsv_opcode);
    RUN(test_reject_control_rules);
    RUN(test_reject_length_encoding);
    RUN(test_reject_fragmentation);
    RUN(test_reject_close_payload);
    RUN(test_reject_too_big);
    RUN(test_client_mode);
    RUN(test_detach_between_messages);
    RUN(test_round_trip_writer);
    return test_summary("test_ws");
}
