/* fuzz_jsonp.c: the JSONP POST body decoder (PROTOCOL.md 1.5.7, eio_jsonp_body_decode) and what
 * the gateway does with its result: the payload is decoded as a v4 and as a v3 text payload. Checks
 * that the decoder never writes more than its input can produce, rolls back on error, and that a
 * payload re-encoded as `d=<percent-encoded>` decodes to the same bytes when it holds no
 * backslash-n sequence (those are rewritten by design). */
#include <stdlib.h>
#include <string.h>

#include "common/eio.h"
#include "common/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void drain(enum eio_payload_format f, const uint8_t *p, size_t len)
{
    struct eio_payload_iter it;
    struct buf bin;
    struct eio_packet pkt;
    buf_init(&bin, 4096);
    eio_payload_iter_init(&it, f, p, len);
    size_t n = 0;
    while (eio_payload_next(&it, &bin, &pkt) == 1) {
        if (++n > len)
            abort();
    }
    if (it.pos > len)
        abort();
    buf_deinit(&bin);
}

static bool has_backslash_n(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++) {
        if (p[i] == '\\' && p[i + 1] == 'n')
            return true;
    }
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct buf out;
    buf_init(&out, 0);
    buf_append(&out, "x", 1); /* decoding appends: the prefix must survive */
    int rc = eio_jsonp_body_decode(data, size, &out);
    if (out.len < 1 || out.data[0] != 'x' || (rc != SIOC_OK && out.len != 1) || out.len > size + 1)
        abort();
    if (rc == SIOC_OK) {
        drain(EIO_PAYLOAD_V4, out.data + 1, out.len - 1);
        drain(EIO_PAYLOAD_V3_TEXT, out.data + 1, out.len - 1);
    }
    buf_deinit(&out);

    /* round trip: d=<every byte as %XX> decodes to the input itself */
    if (!has_backslash_n(data, size)) {
        struct buf form, back;
        buf_init(&form, 0);
        buf_init(&back, 0);
        buf_append(&form, "e=1&d=", 6);
        static const char hex[] = "0123456789ABCDEF";
        for (size_t i = 0; i < size; i++) {
            uint8_t esc[3] = {'%', (uint8_t)hex[data[i] >> 4], (uint8_t)hex[data[i] & 15]};
            buf_append(&form, esc, 3);
        }
        if (eio_jsonp_body_decode(form.data, form.len, &back) != SIOC_OK || back.len != size ||
            (size > 0 && memcmp(back.data, data, size) != 0))
            abort();
        buf_deinit(&form);
        buf_deinit(&back);
    }
    return 0;
}
