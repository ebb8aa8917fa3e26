/* frame.h: one Engine.IO packet encoded once and shared by every recipient (DESIGN.md §4).
 * The bytes hold room for the WebSocket header in front of the payload, so a WebSocket client
 * gets header + payload from the same buffer (server frames are unmasked, so the header is the
 * same for everyone) and a polling client gets the payload, or for binary messages its
 * `b<base64>` form (PROTOCOL.md 1.4), built on first use and cached. Engine.IO v3 sessions
 * (PROTOCOL.md 1.12) frame binary messages differently (`b4<base64>`, a WebSocket frame with a
 * leading 0x04): those forms are built on first use too, so a broadcast is framed once per
 * protocol revision, never once per recipient. Reference-counted; the loop is single-threaded,
 * so counts are plain integers. */
#ifndef SIOC_GATEWAY_FRAME_H
#define SIOC_GATEWAY_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FRAME_WS_HEADROOM 10 /* the longest unmasked WebSocket header */

struct gw_frame {
    uint32_t refs;
    bool binary;           /* a binary message (raw bytes), else a text Engine.IO packet */
    uint8_t ws_header_len; /* header bytes right before the payload */
    size_t len;            /* payload bytes */
    uint8_t *polling;      /* binary only: "b" + base64, once built; owned */
    size_t polling_len;
    uint8_t *polling_v3; /* binary only: "b4" + base64, once built; owned */
    size_t polling_v3_len;
    uint8_t *ws_v3; /* binary only: WebSocket header, 0x04, the bytes; owned */
    size_t ws_v3_len;
    uint8_t bytes[]; /* FRAME_WS_HEADROOM bytes of room, then the payload */
};

/* A text packet: Engine.IO type digit `type` followed by data[0..len) (e.g. '4' and the
 * Socket.IO packet). Returns a frame with one reference, or NULL when out of memory. */
struct gw_frame *gw_frame_new_text(char type, const void *data, size_t len);
/* A binary message with the given bytes. One reference, or NULL. It is also the binary
 * message of a plain WebSocket connection (ws-routes). */
struct gw_frame *gw_frame_new_binary(const void *data, size_t len);
/* A plain WebSocket text message (ws-routes): a text frame of exactly data[0..len), no
 * Engine.IO type digit. Only its WebSocket form (gw_frame_ws) is meaningful. One reference, or
 * NULL. */
struct gw_frame *gw_frame_new_plain_text(const void *data, size_t len);
struct gw_frame *gw_frame_ref(struct gw_frame *f);
void gw_frame_unref(struct gw_frame *f); /* NULL is a no-op */
/* The complete WebSocket frame (header + payload); valid while a reference is held. */
static inline const uint8_t *gw_frame_ws(const struct gw_frame *f, size_t *len)
{
    *len = f->ws_header_len + f->len;
    return f->bytes + FRAME_WS_HEADROOM - f->ws_header_len;
}
/* The Engine.IO v4 polling form: the text packet, or "b<base64>" for binary (built once);
 * NULL when building it runs out of memory. Valid while a reference is held. */
const uint8_t *gw_frame_polling(struct gw_frame *f, size_t *len);
/* The Engine.IO v3 forms (PROTOCOL.md 1.12): a text packet is the same as in v4; a binary
 * message is `b4<base64>` in a text payload, or a WebSocket binary frame whose payload starts
 * with the type byte 0x04. Built once, NULL when that runs out of memory; valid while a
 * reference is held. */
const uint8_t *gw_frame_polling_v3(struct gw_frame *f, size_t *len);
const uint8_t *gw_frame_ws_v3(struct gw_frame *f, size_t *len);
/* The payload alone (text packet or raw binary bytes). */
const uint8_t *gw_frame_payload(const struct gw_frame *f);

/* For http_conn_write_ref: drops the reference taken for one write. `arg` is the frame. */
void gw_frame_release_cb(const void *p, size_t len, void *arg);

#endif
