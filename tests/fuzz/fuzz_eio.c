/* fuzz_eio.c: feeds one input to every Engine.IO decoder (v4 payload, v3 text payload, v3 XHR2
 * payload, single text packets, v3 binary frames). Checks that decoding never reads past the
 * input or claims more than it consumed, and that whatever decoded re-encodes and decodes again
 * to the same packets (round trip). Also runs the JSONP encoder over the input. */
#include <stdlib.h>
#include <string.h>

#include "common/eio.h"
#include "common/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct packets {
    struct eio_packet *pk;
    size_t count;
    uint8_t *store; /* copies of packet data: binary data in `bin` does not outlive a call */
    size_t used;
    int rc;
};

/* Every packet consumes at least one byte, and the decoded data of all packets together is never
 * longer than the input, so `size + 1` entries and bytes are always enough. */
static void decode(enum eio_payload_format f, const uint8_t *p, size_t len, struct packets *out)
{
    struct eio_payload_iter it;
    struct buf bin;
    struct eio_packet pkt;
    buf_init(&bin, 0);
    eio_payload_iter_init(&it, f, p, len);
    out->count = 0;
    out->used = 0;
    while ((out->rc = eio_payload_next(&it, &bin, &pkt)) == 1) {
        if (out->count > len || out->used + pkt.data.len > len + 1)
            abort();
        if (pkt.data.len > 0)
            memcpy(out->store + out->used, pkt.data.p, pkt.data.len);
        pkt.data.p = out->store + out->used;
        out->used += pkt.data.len;
        out->pk[out->count++] = pkt;
    }
    if (it.pos > len || eio_payload_next(&it, &bin, &pkt) != out->rc)
        abort();
    buf_deinit(&bin);
}

static bool same(const struct eio_packet *a, const struct eio_packet *b)
{
    return a->type == b->type && a->binary == b->binary && a->data.len == b->data.len &&
           (a->data.len == 0 || memcmp(a->data.p, b->data.p, a->data.len) == 0);
}

static void roundtrip(enum eio_payload_format f, const uint8_t *data, size_t size)
{
    struct packets first, second;
    first.pk = malloc((size + 1) * sizeof *first.pk);
    first.store = malloc(size + 1);
    decode(f, data, size, &first);
    struct buf enc;
    buf_init(&enc, 0);
    int rc = f == EIO_PAYLOAD_V4        ? eio_payload_encode(&enc, first.pk, first.count)
             : f == EIO_PAYLOAD_V3_TEXT ? eio_v3_payload_encode(&enc, first.pk, first.count)
                                        : eio_v3_binary_payload_encode(&enc, first.pk, first.count);
    if (rc != SIOC_OK)
        abort();
    /* an empty v4 payload is one invalid packet, so zero packets cannot round-trip in v4 */
    if (f != EIO_PAYLOAD_V4 || first.count > 0) {
        second.pk = malloc((enc.len + 1) * sizeof *second.pk);
        second.store = malloc(enc.len + 1);
        decode(f, enc.data, enc.len, &second);
        if (second.rc != 0 || second.count != first.count)
            abort();
        for (size_t i = 0; i < first.count; i++) {
            if (!same(&first.pk[i], &second.pk[i]))
                abort();
        }
        free(second.pk);
        free(second.store);
    }
    buf_deinit(&enc);
    free(first.pk);
    free(first.store);
}

static void packet_roundtrip(enum eio_version v, const uint8_t *data, size_t size)
{
    struct buf bin, bin2, enc;
    struct eio_packet pkt, again;
    buf_init(&bin, 0);
    buf_init(&bin2, 0);
    buf_init(&enc, 0);
    if (eio_packet_decode(v, data, size, &bin, &pkt) == SIOC_OK) {
        if (eio_packet_encode(&enc, v, &pkt) != SIOC_OK ||
            eio_packet_decode(v, enc.data, enc.len, &bin2, &again) != SIOC_OK ||
            !same(&pkt, &again))
            abort();
    }
    buf_reset(&enc);
    if (v == EIO_V3 && eio_binary_frame_decode(EIO_V3, data, size, &pkt) == SIOC_OK) {
        if (eio_v3_binary_frame_encode(&enc, &pkt) != SIOC_OK || enc.len != size ||
            memcmp(enc.data, data, size) != 0)
            abort();
    }
    buf_deinit(&bin);
    buf_deinit(&bin2);
    buf_deinit(&enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    roundtrip(EIO_PAYLOAD_V4, data, size);
    roundtrip(EIO_PAYLOAD_V3_TEXT, data, size);
    roundtrip(EIO_PAYLOAD_V3_BINARY, data, size);
    packet_roundtrip(EIO_V4, data, size);
    packet_roundtrip(EIO_V3, data, size);

    struct buf out;
    buf_init(&out, 0);
    struct slice j = {data, size < 4 ? size : 4};
    if (eio_jsonp_encode(&out, j, data, size) != SIOC_OK || out.len < size + 13)
        abort();
    buf_deinit(&out);
    return 0;
}
