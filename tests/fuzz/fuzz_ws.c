/* fuzz_ws.c: libFuzzer target for the WebSocket frame parser (common/ws.c). Input: byte 0 picks
 * the mode (bit 0: client), bytes 1-3 seed the chunk sizes, the rest is the stream. The stream
 * fed whole and fed in chunks must give identical events and result; every event must respect
 * its invariants; and the events re-encoded by the writer (masked for the server parser) must
 * parse back to the same events. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/utf8.h"
#include "common/ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_MESSAGE 4096

struct fuzz_event {
    enum ws_event_type type;
    uint16_t code;
    size_t len;
    size_t off; /* into the run's data buffer */
};

struct fuzz_run {
    struct buf events; /* struct fuzz_event records */
    struct buf bytes;  /* their data */
    int rc;
};

static size_t event_count(const struct fuzz_run *r)
{
    return r->events.len / sizeof(struct fuzz_event);
}

static struct fuzz_event event_at(const struct fuzz_run *r, size_t i)
{
    struct fuzz_event e;
    memcpy(&e, r->events.data + i * sizeof e, sizeof e);
    return e;
}

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_ws: invariant failed: %s\n", what);
        abort();
    }
}

static void record(struct fuzz_run *r, const struct ws_event *ev)
{
    check(ev->data != NULL, "event data is never NULL");
    switch (ev->type) {
    case WS_EVENT_TEXT:
        check(utf8_valid(ev->data, ev->len), "text is UTF-8");
        /* fallthrough */
    case WS_EVENT_BINARY: check(ev->len <= FUZZ_MAX_MESSAGE, "message within the limit"); break;
    case WS_EVENT_PING:
    case WS_EVENT_PONG: check(ev->len <= WS_CONTROL_PAYLOAD_MAX, "control payload <= 125"); break;
    case WS_EVENT_CLOSE:
        check(ev->close_code == WS_CLOSE_NO_STATUS ? ev->len == 0
                                                   : ws_close_code_valid(ev->close_code),
              "close code valid");
        check(ev->len <= WS_CLOSE_REASON_MAX && utf8_valid(ev->data, ev->len), "close reason");
        break;
    default: check(0, "event type");
    }
    struct fuzz_event e = {ev->type, ev->close_code, ev->len, r->bytes.len};
    buf_append(&r->events, &e, sizeof e);
    buf_append(&r->bytes, ev->data, ev->len);
}

/* Feeds in[0..len) in chunks whose sizes cycle through seeds[0..3) (NULL: whole). */
static void run(struct fuzz_run *r, const uint8_t *in, size_t len, unsigned flags,
                const uint8_t *seeds)
{
    struct buf message, control;
    struct ws_parser p;
    buf_init(&message, 0);
    buf_init(&control, 0);
    buf_init(&r->events, 0);
    buf_init(&r->bytes, 0);
    ws_parser_init(&p, &message, &control, FUZZ_MAX_MESSAGE, flags);
    size_t off = 0, k = 0;
    int rc;
    do {
        size_t n = len - off;
        if (seeds != NULL) {
            uint8_t s = seeds[k++ % 3];
            size_t want = (s & 0x80) ? (size_t)(s & 0x7f) * 64 + 1 : (size_t)(s % 16) + 1;
            n = want < n ? want : n;
        }
        size_t pos = 0;
        for (;;) {
            size_t used = (size_t)-1;
            struct ws_event ev;
            rc = ws_parser_feed(&p, in + off + pos, n - pos, &used, &ev);
            check(used <= n - pos, "consumed <= len");
            pos += used;
            if (rc != SIOC_OK)
                break;
            check(ev.type != WS_EVENT_NONE, "SIOC_OK carries an event");
            record(r, &ev);
        }
        if (rc == SIOC_EAGAIN)
            check(pos == n, "SIOC_EAGAIN consumes everything");
        off += n;
    } while (rc == SIOC_EAGAIN && off < len);
    r->rc = rc;
    buf_deinit(&message);
    buf_deinit(&control);
}

static int same_event(const struct fuzz_run *a, const struct fuzz_event *x,
                      const struct fuzz_run *b, const struct fuzz_event *y)
{
    return x->type == y->type && x->code == y->code && x->len == y->len &&
           (x->len == 0 || memcmp(a->bytes.data + x->off, b->bytes.data + y->off, x->len) == 0);
}

/* True when b has the events of a; with `pongs`, b has an empty pong before each data message
 * (what encode() inserts between the fragments). */
static int same_events(const struct fuzz_run *a, const struct fuzz_run *b, int pongs)
{
    static const struct fuzz_event empty_pong = {WS_EVENT_PONG, 0, 0, 0};
    size_t j = 0, nb = event_count(b);
    for (size_t i = 0; i < event_count(a); i++) {
        struct fuzz_event x = event_at(a, i), y;
        if (pongs && (x.type == WS_EVENT_TEXT || x.type == WS_EVENT_BINARY)) {
            if (j == nb)
                return 0;
            y = event_at(b, j++);
            if (!same_event(a, &empty_pong, b, &y))
                return 0;
        }
        if (j == nb)
            return 0;
        y = event_at(b, j++);
        if (!same_event(a, &x, b, &y))
            return 0;
    }
    return j == nb;
}

/* Re-encodes the events of `r` with the writer: masked with `key` for a server parser, plain for
 * a client parser; data messages in two fragments with an empty pong between them. */
static void encode(const struct fuzz_run *r, const uint8_t *key, struct buf *out)
{
    for (size_t i = 0; i < event_count(r); i++) {
        struct fuzz_event ev = event_at(r, i);
        const struct fuzz_event *e = &ev;
        const uint8_t *d = r->bytes.data != NULL ? r->bytes.data + e->off : (const uint8_t *)"";
        int rc = SIOC_OK;
        enum ws_opcode op;
        switch (e->type) {
        case WS_EVENT_TEXT:
        case WS_EVENT_BINARY: {
            op = e->type == WS_EVENT_TEXT ? WS_OP_TEXT : WS_OP_BINARY;
            size_t half = e->len / 2;
            if (key != NULL) {
                rc |= ws_write_frame_masked(out, op, false, d, half, key);
                rc |= ws_write_frame_masked(out, WS_OP_PONG, true, NULL, 0, key);
                rc |= ws_write_frame_masked(out, WS_OP_CONTINUATION, true, d + half, e->len - half,
                                            key);
            } else {
                rc |= ws_write_frame(out, op, false, d, half);
                rc |= ws_write_frame(out, WS_OP_PONG, true, NULL, 0);
                rc |= ws_write_frame(out, WS_OP_CONTINUATION, true, d + half, e->len - half);
            }
            break;
        }
        case WS_EVENT_PING:
        case WS_EVENT_PONG:
            op = e->type == WS_EVENT_PING ? WS_OP_PING : WS_OP_PONG;
            rc = key != NULL ? ws_write_frame_masked(out, op, true, d, e->len, key)
                             : ws_write_frame(out, op, true, d, e->len);
            break;
        default: {
            uint8_t payload[WS_CONTROL_PAYLOAD_MAX];
            int n = ws_close_payload(e->code, d, e->len, payload);
            check(n >= 0, "a parsed close re-encodes");
            rc = key != NULL
                     ? ws_write_frame_masked(out, WS_OP_CLOSE, true, payload, (size_t)n, key)
                     : ws_write_frame(out, WS_OP_CLOSE, true, payload, (size_t)n);
            break;
        }
        }
        check(rc == SIOC_OK, "writer accepts parsed events");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    unsigned flags = (data[0] & 1) ? WS_PARSER_CLIENT : 0;
    const uint8_t *seeds = data + 1;
    const uint8_t *in = data + 4;
    size_t len = size - 4;
    struct fuzz_run whole, chunked, again;

    run(&whole, in, len, flags, NULL);
    run(&chunked, in, len, flags, seeds);
    check(whole.rc == chunked.rc, "same result whole and chunked");
    check(same_events(&whole, &chunked, 0), "same events whole and chunked");

    struct buf out;
    buf_init(&out, 0);
    encode(&whole, flags ? NULL : data, &out); /* any 4 bytes make a masking key */
    check(out.err == SIOC_OK, "encode");
    run(&again, out.data != NULL ? out.data : data, out.len, flags, NULL);
    check(again.rc == SIOC_EAGAIN, "re-encoded stream parses");
    check(same_events(&whole, &again, 1), "round trip gives the same events");
    buf_deinit(&out);
    buf_deinit(&again.events);
    buf_deinit(&again.bytes);
    buf_deinit(&whole.events);
    buf_deinit(&whole.bytes);
    buf_deinit(&chunked.events);
    buf_deinit(&chunked.bytes);
    return 0;
}
