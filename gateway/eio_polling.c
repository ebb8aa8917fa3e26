/* eio_polling.c: v3 and JSONP polling bodies (see eio_polling.h; PROTOCOL.md 1.5.7, 1.12). */
#include "gateway/eio_polling.h"

#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/http.h"
#include "common/utf8.h"

#define CONTENT_TEXT "text/plain; charset=UTF-8"
#define CONTENT_BINARY "application/octet-stream"
#define POLL_COPY_MAX (64 * 1024) /* plain bodies up to this are built in one block */

bool eio_poll_format_init(struct eio_poll_format *fmt, struct slice query, enum eio_version version)
{
    struct buf b64, j;
    buf_init(&b64, 64);
    buf_init(&j, 4096);
    http_query_get(query, "b64", &b64);
    bool jsonp = http_query_get(query, "j", &j) == 1;
    *fmt = (struct eio_poll_format){.version = version, .b64 = b64.len > 0};
    bool ok = true;
    if (jsonp) {
        char *digits = malloc(j.len + 1);
        size_t n = 0;
        for (size_t i = 0; digits != NULL && i < j.len; i++) {
            if (j.data[i] >= '0' && j.data[i] <= '9') /* 1.5.7: Node drops every non-digit */
                digits[n++] = (char)j.data[i];
        }
        if (digits != NULL)
            digits[n] = '\0';
        fmt->jsonp = digits;
        ok = digits != NULL;
    }
    buf_deinit(&b64);
    buf_deinit(&j);
    return ok;
}

void eio_poll_format_deinit(struct eio_poll_format *fmt)
{
    free((char *)fmt->jsonp);
    fmt->jsonp = NULL;
}

bool eio_poll_format_plain(const struct eio_poll_format *fmt)
{
    return fmt->version == EIO_V4 && fmt->jsonp == NULL;
}

/* 1.5.1: the v4 text payload, every frame's cached polling form joined by 0x1e. */
static void v4_text(struct buf *out, struct gw_frame *const *frames, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        const uint8_t *p = gw_frame_polling(frames[i], &len);
        if (p == NULL) {
            out->err = out->err != SIOC_OK ? out->err : SIOC_ENOMEM;
            return;
        }
        if (i > 0)
            buf_append_byte(out, 0x1e);
        buf_append(out, p, len);
    }
}

/* 1.12: `<len>:<packet>`, len in UTF-16 units as JavaScript counts them. Binary frames use their
 * cached `b4<base64>` (ASCII: units are bytes), so the base64 is made once per broadcast. */
static void v3_text(struct buf *out, struct gw_frame *const *frames, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        const uint8_t *p = gw_frame_polling_v3(frames[i], &len);
        if (p == NULL) {
            out->err = out->err != SIOC_OK ? out->err : SIOC_ENOMEM;
            return;
        }
        buf_append_u64(out, frames[i]->binary ? len : utf8_utf16_units(p, len));
        buf_append_byte(out, ':');
        buf_append(out, p, len);
    }
}

/* 1.12 XHR2: the codec's encoder over the frames as packets (raw bytes, nothing to encode). */
static int v3_binary(struct buf *out, struct gw_frame *const *frames, size_t n)
{
    struct eio_packet pkts[16];
    for (size_t done = 0; done < n;) {
        size_t k = 0;
        for (; k < 16 && done + k < n; k++) {
            struct gw_frame *f = frames[done + k];
            const uint8_t *p = gw_frame_payload(f);
            if (f->binary)
                pkts[k] = (struct eio_packet){EIO_PACKET_MESSAGE, true, {p, f->len}};
            else
                pkts[k] = (struct eio_packet){
                    (enum eio_packet_type)(p[0] - '0'), false, {p + 1, f->len - 1}};
        }
        int rc = eio_v3_binary_payload_encode(out, pkts, k);
        if (rc != SIOC_OK)
            return rc;
        done += k;
    }
    return SIOC_OK;
}

int eio_poll_body(struct buf *out, const struct eio_poll_format *fmt,
                  struct gw_frame *const *frames, size_t n, const char **content_type)
{
    size_t start = out->len;
    *content_type = CONTENT_TEXT;
    bool any_binary = false;
    for (size_t i = 0; i < n; i++)
        any_binary |= frames[i]->binary;
    if (fmt->version == EIO_V3 && !fmt->b64 && fmt->jsonp == NULL && any_binary) {
        /* engine.io-parser v3 encodePayload: supportsBinary and a binary packet */
        *content_type = CONTENT_BINARY;
        int rc = v3_binary(out, frames, n);
        if (rc != SIOC_OK)
            buf_truncate(out, start);
        return rc;
    }
    if (fmt->jsonp == NULL) {
        if (fmt->version == EIO_V3)
            v3_text(out, frames, n);
        else
            v4_text(out, frames, n);
    } else {
        struct buf text;
        buf_init(&text, 0);
        if (fmt->version == EIO_V3)
            v3_text(&text, frames, n);
        else
            v4_text(&text, frames, n);
        if (text.err != SIOC_OK)
            out->err = text.err;
        else
            eio_jsonp_encode(out, (struct slice){(const uint8_t *)fmt->jsonp, strlen(fmt->jsonp)},
                             text.data, text.len);
        buf_deinit(&text);
    }
    if (out->err != SIOC_OK) {
        int err = out->err;
        buf_truncate(out, start);
        return err;
    }
    return SIOC_OK;
}

/* 1.5.1 written straight from the shared frames (the hot path: no intermediate buffer). */
static void respond_plain(struct http_conn *conn, struct http_field *fields, size_t nfields,
                          struct gw_frame *const *frames, size_t n, struct gw_frame *extra)
{
    size_t total = 0, parts = n + (extra != NULL);
    for (size_t i = 0; i < parts; i++) {
        struct gw_frame *f = i < n ? frames[i] : extra;
        size_t len = 0;
        if (gw_frame_polling(f, &len) == NULL)
            len = 0;
        total += len + (i > 0);
    }
    fields[nfields++] = (struct http_field){"Content-Type", CONTENT_TEXT};
    fields[nfields++] = (struct http_field){"cache-control", "no-store"};
    http_conn_respond_begin(conn, 200, fields, nfields, total, false);
    /* A body of small packets is copied into one block (one piece of output, not two per
     * packet); a large one references the shared frames. */
    uint8_t *dst = total <= POLL_COPY_MAX ? http_conn_write_space(conn, total) : NULL;
    for (size_t i = 0; i < parts; i++) {
        struct gw_frame *f = i < n ? frames[i] : extra;
        size_t len = 0;
        const uint8_t *p = gw_frame_polling(f, &len);
        if (dst != NULL) {
            if (i > 0)
                *dst++ = 0x1e; /* PROTOCOL.md 1.5.1: the record separator */
            if (p != NULL && len > 0)
                memcpy(dst, p, len);
            dst += p != NULL ? len : 0;
            continue;
        }
        if (i > 0)
            http_conn_write(conn, "\x1e", 1);
        if (p != NULL)
            http_conn_write_ref(conn, p, len, gw_frame_release_cb, gw_frame_ref(f));
    }
    http_conn_respond_end(conn);
}

int eio_poll_respond(struct http_conn *conn, const struct eio_poll_format *fmt,
                     struct http_field *fields, size_t nfields, struct gw_frame *const *frames,
                     size_t n, struct gw_frame *extra)
{
    if (eio_poll_format_plain(fmt)) {
        respond_plain(conn, fields, nfields, frames, n, extra);
        return SIOC_OK;
    }
    size_t parts = n + (extra != NULL);
    struct gw_frame **all = malloc(parts * sizeof *all);
    struct buf body;
    buf_init(&body, 0);
    const char *type = NULL;
    int rc = SIOC_ENOMEM;
    if (all != NULL) {
        if (n > 0)
            memcpy(all, frames, n * sizeof *all);
        if (extra != NULL)
            all[n] = extra;
        rc = eio_poll_body(&body, fmt, all, parts, &type);
    }
    if (rc != SIOC_OK) {
        http_conn_respond(conn, 500, fields, nfields, NULL, 0, false);
    } else {
        fields[nfields++] = (struct http_field){"Content-Type", type};
        fields[nfields++] = (struct http_field){"cache-control", "no-store"};
        http_conn_respond(conn, 200, fields, nfields, body.data, body.len, false);
    }
    free(all);
    buf_deinit(&body);
    return rc;
}

int eio_poll_post_payload(const struct eio_poll_format *fmt, const uint8_t *p, size_t len,
                          bool octet_stream, struct buf *scratch, struct slice *payload,
                          enum eio_payload_format *format)
{
    *payload = (struct slice){p, len};
    if (fmt->version == EIO_V4) {
        *format = EIO_PAYLOAD_V4;
        if (octet_stream)
            return SIOC_EINVAL; /* 1.5.3: binary payloads are a v3 feature */
    } else {
        /* 1.12: clients may POST the XHR2 form; Node picks it by the Content-Type alone */
        *format = octet_stream ? EIO_PAYLOAD_V3_BINARY : EIO_PAYLOAD_V3_TEXT;
    }
    if (fmt->jsonp != NULL && !octet_stream) {
        int rc = eio_jsonp_body_decode(p, len, scratch);
        if (rc != SIOC_OK)
            return rc;
        *payload = (struct slice){scratch->data, scratch->len};
    }
    return SIOC_OK;
}
