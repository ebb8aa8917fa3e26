/* fuzz_envelope.c: libFuzzer target for the envelope decoders (DESIGN.md 3.2-3.4). The input is
 * decoded whole as a reply map, a call result, an upstream pubsub map and node info, and, split
 * on the byte 0xc1 (never valid MessagePack, so values may hold any MessagePack), as upstream and
 * registry stream fields. Every success must re-encode, decode again to an equal struct, and
 * consume <= len. */
#include <stdlib.h>
#include <string.h>

#include "common/envelope.h"
#include "tests/unit/envelope_equal.h"
#include "common/error.h"

#define MAX_SLICES 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(bool ok)
{
    if (!ok)
        abort();
}

/* Walks a decoded list: the iterator must yield exactly `count` elements. */
static void check_list(const struct envelope_list *l)
{
    struct envelope_iter it;
    struct slice s;
    uint32_t n = 0;
    envelope_iter_init(&it, l);
    while (envelope_iter_next(&it, &s)) {
        require(s.p >= l->raw.p && s.p + s.len <= l->raw.p + l->raw.len);
        n++;
    }
    require(n == l->count);
}

static void fuzz_reply(const uint8_t *data, size_t size)
{
    struct envelope_reply a, b;
    long n = envelope_reply_decode(data, size, &a);
    if (n < 0)
        return;
    require((size_t)n <= size);
    check_list(&a.emit);
    check_list(&a.join);
    check_list(&a.leave);
    check_list(&a.rooms);
    struct buf out;
    buf_init(&out, 0);
    require(envelope_reply_encode(&a, &out) == SIOC_OK);
    require(envelope_reply_decode(out.data, out.len, &b) == (long)out.len);
    require(reply_equal(&a, &b));
    buf_deinit(&out);
}

static void fuzz_call_result(const uint8_t *data, size_t size)
{
    struct envelope_call_result a, b;
    long n = envelope_call_result_decode(data, size, &a);
    if (n < 0)
        return;
    require((size_t)n <= size);
    struct buf out;
    buf_init(&out, 0);
    require(envelope_call_result_encode(&a, &out) == SIOC_OK);
    require(envelope_call_result_decode(out.data, out.len, &b) == (long)out.len);
    require(slice_eq(a.id, b.id) && slice_eq(a.nsp, b.nsp) && slice_eq(a.sid, b.sid) &&
            a.has_args == b.has_args && slice_eq(a.args, b.args) && slice_eq(a.error, b.error));
    buf_deinit(&out);
}

static void fuzz_up_map(const uint8_t *data, size_t size)
{
    struct envelope_up a, b;
    long n = envelope_up_decode_map(data, size, &a);
    if (n < 0)
        return;
    require((size_t)n <= size);
    struct buf out;
    buf_init(&out, 0);
    require(envelope_up_encode_map(&a, &out) == SIOC_OK);
    require(envelope_up_decode_map(out.data, out.len, &b) == (long)out.len);
    require(up_equal(&a, &b));
    /* the stream form of the same entry decodes to the same struct */
    struct envelope_fields f;
    require(envelope_up_to_fields(&a, &f) == SIOC_OK);
    require(envelope_up_from_fields(f.kv, f.n, &b) == SIOC_OK);
    require(up_equal(&a, &b));
    buf_deinit(&out);
}

static void fuzz_node_info(const uint8_t *data, size_t size)
{
    struct envelope_node_info a, b;
    long n = envelope_node_info_decode(data, size, &a);
    if (n < 0)
        return;
    require((size_t)n <= size);
    struct buf out;
    buf_init(&out, 0);
    require(envelope_node_info_encode(&a, &out) == SIOC_OK);
    require(envelope_node_info_decode(out.data, out.len, &b) == (long)out.len);
    require(slice_eq(a.epoch, b.epoch) && slice_eq(a.address, b.address) &&
            a.started == b.started && a.sockets == b.sockets);
    buf_deinit(&out);
}

static void fuzz_fields(const struct slice *kv, size_t n)
{
    struct envelope_up up, up2;
    struct envelope_reg reg, reg2;
    struct envelope_fields f;
    if (envelope_up_from_fields(kv, n, &up) == SIOC_OK) {
        require(envelope_up_to_fields(&up, &f) == SIOC_OK);
        require(f.n % 2 == 0 && f.n <= 2 * ENVELOPE_MAX_FIELDS);
        require(envelope_up_from_fields(f.kv, f.n, &up2) == SIOC_OK);
        require(up_equal(&up, &up2));
        struct buf out;
        buf_init(&out, 0);
        require(envelope_up_encode_map(&up, &out) == SIOC_OK);
        require(envelope_up_decode_map(out.data, out.len, &up2) == (long)out.len);
        require(up_equal(&up, &up2));
        buf_deinit(&out);
    }
    if (envelope_reg_from_fields(kv, n, &reg) == SIOC_OK) {
        check_list(&reg.rooms);
        require(envelope_reg_to_fields(&reg, &f) == SIOC_OK);
        require(envelope_reg_from_fields(f.kv, f.n, &reg2) == SIOC_OK);
        require(reg_equal(&reg, &reg2));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_reply(data, size);
    fuzz_call_result(data, size);
    fuzz_up_map(data, size);
    fuzz_node_info(data, size);

    /* Each slice gets its own exact-size heap copy so ASan catches a read past any value. */
    struct slice kv[MAX_SLICES];
    uint8_t *copies[MAX_SLICES];
    size_t n = 0, start = 0;
    while (n < MAX_SLICES) {
        size_t end = start;
        if (n == MAX_SLICES - 1)
            end = size; /* the last slice takes the rest */
        else
            while (end < size && data[end] != 0xc1)
                end++;
        copies[n] = malloc(end > start ? end - start : 1);
        if (copies[n] == NULL)
            break;
        if (end > start)
            memcpy(copies[n], data + start, end - start);
        kv[n] = (struct slice){copies[n], end - start};
        n++;
        if (end >= size)
            break;
        start = end + 1;
    }
    fuzz_fields(kv, n);
    if (n % 2 == 1)
        fuzz_fields(kv, n - 1); /* a trailing separator should not hide the entry */
    for (size_t i = 0; i < n; i++)
        free(copies[i]);
    return 0;
}
