/* frame.c: shared, pre-framed Engine.IO packets (see frame.h). */
#include "gateway/frame.h"

#include <stdlib.h>
#include <string.h>

#include "common/base64.h"
#include "common/ws.h"

static struct gw_frame *frame_alloc(bool binary, size_t len)
{
    struct gw_frame *f = malloc(sizeof *f + FRAME_WS_HEADROOM + len);
    if (f == NULL)
        return NULL;
    f->refs = 1;
    f->binary = binary;
    f->len = len;
    f->polling = NULL;
    f->polling_len = 0;
    f->polling_v3 = NULL;
    f->polling_v3_len = 0;
    f->ws_v3 = NULL;
    f->ws_v3_len = 0;
    uint8_t header[WS_FRAME_HEADER_MAX];
    size_t hl = ws_frame_header(binary ? WS_OP_BINARY : WS_OP_TEXT, true, len, NULL, header);
    f->ws_header_len = (uint8_t)hl;
    memcpy(f->bytes + FRAME_WS_HEADROOM - hl, header, hl);
    return f;
}

struct gw_frame *gw_frame_new_text(char type, const void *data, size_t len)
{
    struct gw_frame *f = frame_alloc(false, len + 1);
    if (f == NULL)
        return NULL;
    f->bytes[FRAME_WS_HEADROOM] = (uint8_t)type;
    if (len > 0)
        memcpy(f->bytes + FRAME_WS_HEADROOM + 1, data, len);
    return f;
}

struct gw_frame *gw_frame_new_plain_text(const void *data, size_t len)
{
    struct gw_frame *f = frame_alloc(false, len);
    if (f != NULL && len > 0)
        memcpy(f->bytes + FRAME_WS_HEADROOM, data, len);
    return f;
}

struct gw_frame *gw_frame_new_binary(const void *data, size_t len)
{
    struct gw_frame *f = frame_alloc(true, len);
    if (f != NULL && len > 0)
        memcpy(f->bytes + FRAME_WS_HEADROOM, data, len);
    return f;
}

struct gw_frame *gw_frame_ref(struct gw_frame *f)
{
    f->refs++;
    return f;
}

void gw_frame_unref(struct gw_frame *f)
{
    if (f == NULL || --f->refs > 0)
        return;
    free(f->polling);
    free(f->polling_v3);
    free(f->ws_v3);
    free(f);
}

const uint8_t *gw_frame_payload(const struct gw_frame *f)
{
    return f->bytes + FRAME_WS_HEADROOM;
}

const uint8_t *gw_frame_polling(struct gw_frame *f, size_t *len)
{
    if (!f->binary) {
        *len = f->len;
        return gw_frame_payload(f);
    }
    if (f->polling == NULL) {
        f->polling = malloc(1 + base64_encoded_len(f->len));
        if (f->polling == NULL)
            return NULL;
        f->polling[0] = 'b';
        f->polling_len = 1 + base64_encode(gw_frame_payload(f), f->len, (char *)f->polling + 1);
    }
    *len = f->polling_len;
    return f->polling;
}

const uint8_t *gw_frame_polling_v3(struct gw_frame *f, size_t *len)
{
    if (!f->binary)
        return gw_frame_polling(f, len);
    if (f->polling_v3 == NULL) {
        f->polling_v3 = malloc(2 + base64_encoded_len(f->len));
        if (f->polling_v3 == NULL)
            return NULL;
        f->polling_v3[0] = 'b';
        f->polling_v3[1] = '4'; /* 1.12: the type digit follows `b` in v3 */
        f->polling_v3_len =
            2 + base64_encode(gw_frame_payload(f), f->len, (char *)f->polling_v3 + 2);
    }
    *len = f->polling_v3_len;
    return f->polling_v3;
}

const uint8_t *gw_frame_ws_v3(struct gw_frame *f, size_t *len)
{
    if (!f->binary)
        return gw_frame_ws(f, len);
    if (f->ws_v3 == NULL) {
        uint8_t header[WS_FRAME_HEADER_MAX];
        size_t hl = ws_frame_header(WS_OP_BINARY, true, f->len + 1, NULL, header);
        f->ws_v3 = malloc(hl + 1 + f->len);
        if (f->ws_v3 == NULL)
            return NULL;
        memcpy(f->ws_v3, header, hl);
        f->ws_v3[hl] = 4; /* 1.12: binary frames carry the packet type as their first byte */
        if (f->len > 0)
            memcpy(f->ws_v3 + hl + 1, gw_frame_payload(f), f->len);
        f->ws_v3_len = hl + 1 + f->len;
    }
    *len = f->ws_v3_len;
    return f->ws_v3;
}

void gw_frame_release_cb(const void *p, size_t len, void *arg)
{
    (void)p;
    (void)len;
    gw_frame_unref(arg);
}
