/* ws.h: the WebSocket codec (RFC 6455): opening-handshake helpers (4.2), a strict incremental
 * frame parser that reassembles messages (5.2-5.6, 8.1), frame writers (5.2, 5.7) and close
 * codes (7.4). No I/O, no extensions (permessage-deflate is declined, PROTOCOL.md 1.6); HTTP
 * header parsing belongs to the http module, what messages mean to the gateway. */
#ifndef SIOC_WS_H
#define SIOC_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/utf8.h"

/* ---- opening handshake (RFC 6455 4.2) ---- */

#define WS_ACCEPT_LEN 28 /* base64 of a 20-byte SHA-1 */

/* Writes Sec-WebSocket-Accept for the client key key[0..len) (base64 of SHA-1(key + GUID),
 * RFC 6455 4.2.2 step 5.4) to out (not NUL-terminated). Returns SIOC_OK, or SIOC_ENOMEM if
 * libcrypto fails. The key is hashed as given; check it first with ws_client_key_valid. */
int ws_accept_key(const char *key, size_t len, char out[WS_ACCEPT_LEN]);
/* True when key[0..len) is a Sec-WebSocket-Key that decodes to 16 bytes (RFC 6455 4.1): exactly
 * 22 characters of the standard base64 alphabet followed by "==" (what Node's ws accepts; the
 * unused low bits of the 22nd character are not checked). The caller trims header whitespace. */
bool ws_client_key_valid(const char *key, size_t len);
/* True when the Sec-WebSocket-Version value v[0..len) is exactly "13" (RFC 6455 4.2.1 item 6). */
bool ws_version_valid(const char *v, size_t len);
/* Appends the 101 response for client key key[0..len): status line, Upgrade, Connection,
 * Sec-WebSocket-Accept, then extra[0..extra_len) verbatim (whole header lines, each ending in
 * CRLF, e.g. CORS; may be NULL/0), then the blank line. Returns SIOC_OK, SIOC_EINVAL when
 * `extra` is non-empty and does not end in CRLF, SIOC_ENOMEM from ws_accept_key, or b->err. */
int ws_write_handshake_response(struct buf *b, const char *key, size_t len, const char *extra,
                                size_t extra_len);

/* ---- close codes (RFC 6455 7.4) ---- */

enum ws_close_code {
    WS_CLOSE_NORMAL = 1000,
    WS_CLOSE_GOING_AWAY = 1001,
    WS_CLOSE_PROTOCOL_ERROR = 1002,
    WS_CLOSE_UNSUPPORTED_DATA = 1003,
    WS_CLOSE_NO_STATUS = 1005, /* never on the wire: "the close frame had no status code" */
    WS_CLOSE_INVALID_DATA = 1007,
    WS_CLOSE_POLICY_VIOLATION = 1008,
    WS_CLOSE_TOO_BIG = 1009,
    WS_CLOSE_INTERNAL_ERROR = 1011,
};

/* True when `code` may appear in a close frame: 1000-1003, 1007-1014 (1012-1014 were registered
 * with IANA after RFC 6455 and are sent by servers in the wild, so they are accepted), and
 * 3000-4999. False for < 1000, 1004-1006, 1015, 1016-2999 and >= 5000. */
bool ws_close_code_valid(unsigned code);
/* The close code a server sends after a parser error `err`: SIOC_EPROTO -> 1002,
 * SIOC_EUTF8 -> 1007, SIOC_ETOOBIG -> 1009, anything else (SIOC_ENOMEM) -> 1011. */
uint16_t ws_error_close_code(int err);

/* ---- frames ---- */

enum ws_opcode {
    WS_OP_CONTINUATION = 0x0,
    WS_OP_TEXT = 0x1,
    WS_OP_BINARY = 0x2,
    WS_OP_CLOSE = 0x8,
    WS_OP_PING = 0x9,
    WS_OP_PONG = 0xA,
};

#define WS_FRAME_HEADER_MAX 14         /* 2 + 8-byte length + 4-byte mask */
#define WS_CONTROL_PAYLOAD_MAX 125     /* RFC 6455 5.5 */
#define WS_CLOSE_REASON_MAX 123        /* control payload minus the 2-byte code */
#define WS_MAX_MESSAGE_DEFAULT 1000000 /* Engine.IO maxHttpBufferSize default (PROTOCOL.md 1.3) */

/* XORs n bytes of src with the 4-byte masking key (RFC 6455 5.3) into dst, starting at key
 * position `offset` (bytes of the frame payload already processed). dst == src is allowed;
 * otherwise the ranges must not overlap. Works 8 bytes at a time. */
void ws_mask_apply(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4],
                   uint64_t offset);
/* Writes a frame header to out and returns its size (2, 4, 10; +4 with a mask). `mask` is NULL
 * for server frames (unmasked) or the 4-byte key of a client frame, which is copied into the
 * header; the payload itself must then be masked with ws_mask_apply. The caller guarantees a
 * valid opcode and, for control frames, fin and payload_len <= 125 (assert). */
size_t ws_frame_header(enum ws_opcode op, bool fin, uint64_t payload_len, const uint8_t *mask,
                       uint8_t out[WS_FRAME_HEADER_MAX]);
/* Appends one unmasked (server) frame, header then p[0..len). Returns SIOC_OK, SIOC_EINVAL for
 * an invalid opcode or a control frame that is not final or exceeds 125 bytes, or b->err. */
int ws_write_frame(struct buf *b, enum ws_opcode op, bool fin, const uint8_t *p, size_t len);
/* The same for a client frame masked with `mask` (RFC 6455 5.3); p is not modified. */
int ws_write_frame_masked(struct buf *b, enum ws_opcode op, bool fin, const uint8_t *p, size_t len,
                          const uint8_t mask[4]);
/* Builds a close payload into out: nothing for WS_CLOSE_NO_STATUS (PROTOCOL.md 1.6: the server
 * closes sessions with a close frame without status code), else the big-endian code then
 * reason[0..reason_len). Returns the payload size, or SIOC_EINVAL for a code that fails
 * ws_close_code_valid (other than 1005), a reason with 1005, a reason over 123 bytes or not
 * UTF-8 (RFC 6455 5.5.1). */
int ws_close_payload(unsigned code, const uint8_t *reason, size_t reason_len,
                     uint8_t out[WS_CONTROL_PAYLOAD_MAX]);
/* Appends an unmasked close frame built by ws_close_payload (code WS_CLOSE_NO_STATUS gives the
 * 2-byte frame 88 00). Returns SIOC_OK, SIOC_EINVAL as ws_close_payload, or b->err. */
int ws_write_close(struct buf *b, unsigned code, const uint8_t *reason, size_t reason_len);

/* ---- parser ---- */

enum ws_parser_state {
    WS_STATE_HEADER,  /* first two header bytes */
    WS_STATE_LENGTH,  /* 2- or 8-byte extended payload length */
    WS_STATE_MASK,    /* 4-byte masking key */
    WS_STATE_PAYLOAD, /* frame payload */
    WS_STATE_CLOSED,  /* a close frame was delivered; later input is discarded (RFC 6455 5.5.1) */
    WS_STATE_ERROR,   /* sticky: every feed returns `error` */
};

enum ws_event_type {
    WS_EVENT_NONE,   /* no event completed (SIOC_EAGAIN) */
    WS_EVENT_TEXT,   /* a whole text message, validated UTF-8 */
    WS_EVENT_BINARY, /* a whole binary message */
    WS_EVENT_PING,   /* the sender expects a pong with the same data (RFC 6455 5.5.2) */
    WS_EVENT_PONG,
    WS_EVENT_CLOSE, /* close_code; data/len = reason (UTF-8, may be empty) */
};

struct ws_event {
    enum ws_event_type type;
    const uint8_t *data; /* unmasked bytes, never NULL; see ws_parser_feed for the lifetime */
    size_t len;
    uint16_t close_code; /* WS_EVENT_CLOSE: the code, or WS_CLOSE_NO_STATUS for an empty payload */
};

#define WS_PARSER_CLIENT 1u /* parse server frames: unmasked required, masked rejected (5.1) */

/* Opaque to callers: read only through the functions below. */
struct ws_parser {
    enum ws_parser_state state;
    int error; /* the sticky error in WS_STATE_ERROR */
    unsigned flags;
    size_t max_message;  /* as given to ws_parser_init, SIZE_MAX for 0 */
    struct buf *message; /* borrowed: reassembly buffer of data messages */
    struct buf *control; /* borrowed: payload of the current control frame */
    uint8_t header[8];   /* bytes of the field being collected */
    uint8_t have;        /* bytes collected of it */
    uint8_t need;        /* bytes the field has */
    uint8_t opcode;      /* of the current frame */
    bool fin;
    bool masked;
    uint8_t mask[4];
    uint64_t frame_len;     /* declared payload length */
    uint64_t frame_pos;     /* payload bytes processed */
    uint8_t message_opcode; /* WS_OP_TEXT/BINARY while a message is open, else 0 */
    struct utf8_validator utf8;
};

/* Prepares a parser. `message` (borrowed, must outlive the parser and not be touched while a
 * message is being assembled) receives the unmasked bytes of data messages; the parser resets
 * it at the first frame of each message. A message whose declared size exceeds max_message
 * (0 = no limit of its own), or message->limit when that is set and smaller, fails with
 * SIOC_ETOOBIG at the frame header, before any of its payload is buffered (RFC 6455 10.4).
 * `control` (borrowed likewise, no limit below WS_CONTROL_PAYLOAD_MAX) receives the payload of
 * each control frame; the parser resets it per frame. Both buffers belong to the caller, who
 * may buf_deinit them between events (an idle connection then holds no buffer at all).
 * `flags`: 0 for a server, WS_PARSER_CLIENT for a client. Allocates nothing itself. */
void ws_parser_init(struct ws_parser *p, struct buf *message, struct buf *control,
                    size_t max_message, unsigned flags);
/* Parses in[0..len) (in may be NULL when len is 0) up to the end of the next event. Stores the
 * bytes used in *consumed (0 on error) and returns:
 *   SIOC_OK      an event is in *ev; *consumed may be < len: call again with the rest.
 *   SIOC_EAGAIN  all input consumed (and kept), no event yet; ev->type == WS_EVENT_NONE.
 *   SIOC_EPROTO / SIOC_EUTF8 / SIOC_ETOOBIG: the peer broke RFC 6455 or the size limit;
 *   SIOC_ENOMEM: a buffer could not grow. Either way send a close frame with
 *                ws_error_close_code(err); the parser then returns this error forever.
 * ev->data points into *message (text/binary) or *control (control frames) and stays
 * valid until the next ws_parser_feed; the caller may buf_detach() a delivered message to keep
 * it. After WS_EVENT_CLOSE all further input is consumed and ignored (SIOC_EAGAIN). */
int ws_parser_feed(struct ws_parser *p, const uint8_t *in, size_t len, size_t *consumed,
                   struct ws_event *ev);

#endif
