/* fuzz_sio.c: the Socket.IO codec (common/sio.c). Input: a text packet up to the first '\n',
 * then attachment bodies, each one length byte followed by that many bytes. Each input is
 * decoded as v5 and as v4; a binary packet is reassembled from the bodies. Every success is
 * re-encoded, decoded (and reassembled) again, and must give the same type, namespace, ack id
 * and JSON; a second re-encoding must be byte-identical to the first. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/json.h"
#include "common/mp.h"
#include "common/sio.h"

#define MAX_INPUT 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct bodies {
    const uint8_t *p;
    size_t len;
};

/* Decodes text and, for a binary packet, reassembles it from the next bodies (or from the
 * given bins when bins != NULL). Returns SIOC_OK with *pkt and its data in out, or an error. */
static int decode_full(enum sio_version v, const uint8_t *text, size_t len, struct bodies *b,
                       const struct slice *bins, size_t nbins, struct sio_assembler *a,
                       struct sio_packet *pkt, struct buf *scratch, struct buf *out)
{
    buf_reset(scratch);
    buf_reset(out);
    int rc = sio_packet_decode(v, text, len, pkt, scratch);
    if (rc != SIOC_OK) {
        if (pkt->reason == SIO_REASON_NONE)
            abort();
        return rc;
    }
    if (pkt->type != SIO_BINARY_EVENT && pkt->type != SIO_BINARY_ACK) {
        if (pkt->has_data)
            buf_append(out, pkt->data.p, pkt->data.len);
        if (out->err != SIOC_OK)
            return out->err;
        pkt->data.p = out->data;
        return SIOC_OK;
    }
    if (pkt->attachments < 1 || pkt->attachments > SIO_MAX_ATTACHMENTS)
        abort();
    if (sio_assembler_start(a, pkt) != SIOC_OK)
        abort();
    for (unsigned k = 0; k < pkt->attachments; k++) {
        const uint8_t *p;
        size_t n;
        if (bins != NULL) {
            if (k >= nbins)
                abort();
            p = bins[k].p;
            n = bins[k].len;
        } else {
            if (b->len == 0) {
                sio_assembler_reset(a);
                return SIOC_EAGAIN;
            }
            n = b->p[0] < b->len - 1 ? b->p[0] : b->len - 1;
            p = b->p + 1;
            b->p += 1 + n;
            b->len -= 1 + n;
        }
        int left = sio_assembler_add(a, p, n);
        if (left != (int)(pkt->attachments - k - 1))
            abort();
    }
    if (sio_assembler_add(a, (const uint8_t *)"x", 1) != SIOC_EPROTO)
        abort();
    rc = sio_assembler_finish(a, pkt, out);
    if (sio_assembler_pending(a))
        abort();
    if (rc == SIOC_OK && pkt->type != SIO_EVENT && pkt->type != SIO_ACK)
        abort();
    return rc;
}

/* True when an EVENT payload starts with a non-finite number, which JSON.stringify writes as
 * null: then the re-encoded packet is rightly refused ("42[null]"), in Node as here. */
static bool starts_non_finite(const struct sio_packet *pkt)
{
    struct mp_reader r;
    struct mp_item it;
    mp_reader_init(&r, pkt->data.p, pkt->data.len);
    return mp_read(&r, &it) == SIOC_OK && it.kind == MP_ARRAY && it.len > 0 &&
           mp_read(&r, &it) == SIOC_OK && it.kind == MP_FLOAT && !isfinite(it.f);
}

static void run(enum sio_version v, const uint8_t *text, size_t len, struct bodies b)
{
    /* one assembler per decode: a finished packet's nsp points into its assembler */
    struct sio_assembler a1, a2, a3;
    sio_assembler_init(&a1, 1 << 16);
    sio_assembler_init(&a2, 1 << 16);
    sio_assembler_init(&a3, 1 << 16);
    struct buf scratch, out1, out2, out3, enc1, enc2, json1, json2;
    buf_init(&scratch, 1 << 16);
    buf_init(&out1, 1 << 16);
    buf_init(&out2, 1 << 16);
    buf_init(&out3, 1 << 16);
    buf_init(&enc1, 1 << 17);
    buf_init(&enc2, 1 << 17);
    buf_init(&json1, 1 << 17);
    buf_init(&json2, 1 << 17);
    struct sio_packet p1, p2, p3;
    struct slice bins1[SIO_MAX_ATTACHMENTS], bins2[SIO_MAX_ATTACHMENTS];

    if (decode_full(v, text, len, &b, NULL, 0, &a1, &p1, &scratch, &out1) != SIOC_OK)
        goto done;
    int n1 = sio_packet_encode(v, &p1, &enc1, bins1, SIO_MAX_ATTACHMENTS);
    if (n1 == SIOC_ETOOBIG) /* placeholders reusing attachments can exceed 10 bins */
        goto done;
    if (n1 < 0)
        abort();
    int rc =
        decode_full(v, enc1.data, enc1.len, NULL, bins1, (size_t)n1, &a2, &p2, &scratch, &out2);
    if (rc != SIOC_OK) {
        if (rc == SIOC_EPROTO && starts_non_finite(&p1))
            goto done;
        abort();
    }
    if (p2.type != p1.type || p2.has_id != p1.has_id || p2.id != p1.id ||
        p2.nsp.len != p1.nsp.len || memcmp(p2.nsp.p, p1.nsp.p, p1.nsp.len) != 0 ||
        p2.has_data != p1.has_data)
        abort();
    /* same JSON (bins as Buffer.toJSON) and a stable second encoding */
    if (p1.has_data) {
        struct mp_reader r1, r2;
        mp_reader_init(&r1, p1.data.p, p1.data.len);
        mp_reader_init(&r2, p2.data.p, p2.data.len);
        if (json_from_msgpack(&r1, NULL, &json1) != SIOC_OK ||
            json_from_msgpack(&r2, NULL, &json2) != SIOC_OK || json1.len != json2.len ||
            memcmp(json1.data, json2.data, json1.len) != 0)
            abort();
    }
    int n2 = sio_packet_encode(v, &p2, &enc2, bins2, SIO_MAX_ATTACHMENTS);
    if (n2 != n1 || enc2.len != enc1.len || memcmp(enc1.data, enc2.data, enc1.len) != 0)
        abort();
    for (int k = 0; k < n1; k++)
        if (bins1[k].len != bins2[k].len ||
            (bins1[k].len > 0 && memcmp(bins1[k].p, bins2[k].p, bins1[k].len) != 0))
            abort();
    /* and the fixed point: the msgpack of a third decode equals the second */
    if (decode_full(v, enc2.data, enc2.len, NULL, bins2, (size_t)n2, &a3, &p3, &scratch, &out3) !=
            SIOC_OK ||
        p3.data.len != p2.data.len ||
        (p2.data.len > 0 && memcmp(p3.data.p, p2.data.p, p2.data.len) != 0))
        abort();
done:
    sio_assembler_deinit(&a1);
    sio_assembler_deinit(&a2);
    sio_assembler_deinit(&a3);
    buf_deinit(&scratch);
    buf_deinit(&out1);
    buf_deinit(&out2);
    buf_deinit(&out3);
    buf_deinit(&enc1);
    buf_deinit(&enc2);
    buf_deinit(&json1);
    buf_deinit(&json2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX_INPUT)
        return 0;
    size_t text_len = 0;
    while (text_len < size && data[text_len] != '\n')
        text_len++;
    struct bodies b = {data + text_len, 0};
    if (text_len < size) {
        b.p = data + text_len + 1;
        b.len = size - text_len - 1;
    }
    /* exact-size copy of the text so ASan catches a read past its end */
    uint8_t *text = malloc(text_len ? text_len : 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, text_len);
    run(SIO_V5, text, text_len, b);
    run(SIO_V4, text, text_len, b);
    free(text);
    return 0;
}
