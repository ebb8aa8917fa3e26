/* ws.c: WebSocket codec, RFC 6455: handshake key (4.2.2), the frame parser as an explicit state
 * machine that checks every framing rule of 5.2-5.5 and the UTF-8 rule of 8.1 before it reports
 * a message, frame writers (5.2, 5.3) and close-code rules (7.4). No extensions are negotiated,
 * so RSV bits are always an error. Transport, timers and Engine.IO meaning live elsewhere. */
#include "common/ws.h"

#include <assert.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/base64.h"
#include "common/error.h"

/* RFC 6455 1.3: the GUID appended to Sec-WebSocket-Key before hashing. */
static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

int ws_accept_key(const char *key, size_t len, char out[WS_ACCEPT_LEN])
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) == 1 &&
             EVP_DigestUpdate(ctx, key, len) == 1 &&
             EVP_DigestUpdate(ctx, ws_guid, sizeof ws_guid - 1) == 1 &&
             EVP_DigestFinal_ex(ctx, md, &md_len) == 1 && md_len == 20;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return SIOC_ENOMEM;
    base64_encode(md, 20, out);
    return SIOC_OK;
}

static bool ws_base64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

bool ws_client_key_valid(const char *key, size_t len)
{
    /* RFC 6455 4.1: "a randomly selected 16-byte value that has been base64-encoded";
     * 16 bytes encode to 22 characters and "==". */
    if (len != 24 || key[22] != '=' || key[23] != '=')
        return false;
    for (size_t i = 0; i < 22; i++)
        if (!ws_base64_char(key[i]))
            return false;
    return true;
}

bool ws_version_valid(const char *v, size_t len)
{
    return len == 2 && v[0] == '1' && v[1] == '3';
}

int ws_write_handshake_response(struct buf *b, const char *key, size_t len, const char *extra,
                                size_t extra_len)
{
    char accept[WS_ACCEPT_LEN];
    if (extra_len > 0 &&
        (extra_len < 2 || extra[extra_len - 2] != '\r' || extra[extra_len - 1] != '\n'))
        return SIOC_EINVAL;
    int rc = ws_accept_key(key, len, accept);
    if (rc != SIOC_OK)
        return rc;
    buf_append_cstr(b, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\nSec-WebSocket-Accept: ");
    buf_append(b, accept, sizeof accept);
    buf_append_cstr(b, "\r\n");
    buf_append(b, extra, extra_len);
    buf_append_cstr(b, "\r\n");
    return b->err;
}

bool ws_close_code_valid(unsigned code)
{
    /* RFC 6455 7.4.1/7.4.2: 1004 is reserved, 1005 and 1006 must never be sent, 1015 is for TLS
     * failures only; 1012-1014 were registered later (IANA) and are accepted as Node's ws does.
     * 3000-3999 are registered, 4000-4999 private use. */
    if (code >= 1000 && code <= 1014)
        return code != 1004 && code != 1005 && code != 1006;
    return code >= 3000 && code <= 4999;
}

uint16_t ws_error_close_code(int err)
{
    switch (err) {
    case SIOC_EPROTO: return WS_CLOSE_PROTOCOL_ERROR;
    case SIOC_EUTF8: return WS_CLOSE_INVALID_DATA;
    case SIOC_ETOOBIG: return WS_CLOSE_TOO_BIG;
    default: return WS_CLOSE_INTERNAL_ERROR;
    }
}

/* ---- frames ---- */

static bool ws_opcode_known(unsigned op)
{
    /* RFC 6455 5.2: 0x3-0x7 and 0xB-0xF are reserved. */
    return op <= WS_OP_BINARY || (op >= WS_OP_CLOSE && op <= WS_OP_PONG);
}

static bool ws_opcode_control(unsigned op)
{
    return (op & 0x8) != 0; /* RFC 6455 5.5: control opcodes have the high bit set */
}

void ws_mask_apply(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4],
                   uint64_t offset)
{
    /* RFC 6455 5.3: octet i is XORed with key[i mod 4]. Eight key bytes rotated to the current
     * offset form a word that stays aligned with the key for every further 8 bytes. */
    uint8_t k8[8];
    for (unsigned j = 0; j < 8; j++)
        k8[j] = key[(offset + j) & 3];
    uint64_t k;
    memcpy(&k, k8, 8);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, src + i, 8);
        w ^= k;
        memcpy(dst + i, &w, 8);
    }
    for (; i < n; i++)
        dst[i] = src[i] ^ k8[i & 7];
}

size_t ws_frame_header(enum ws_opcode op, bool fin, uint64_t payload_len, const uint8_t *mask,
                       uint8_t out[WS_FRAME_HEADER_MAX])
{
    assert(ws_opcode_known(op));
    assert(!ws_opcode_control(op) || (fin && payload_len <= WS_CONTROL_PAYLOAD_MAX));
    size_t n;
    out[0] = (uint8_t)((fin ? 0x80 : 0) | op);
    /* RFC 6455 5.2: the minimal number of length bytes MUST be used. */
    if (payload_len < 126) {
        out[1] = (uint8_t)payload_len;
        n = 2;
    } else if (payload_len <= 0xffff) {
        out[1] = 126;
        out[2] = (uint8_t)(payload_len >> 8);
        out[3] = (uint8_t)payload_len;
        n = 4;
    } else {
        out[1] = 127;
        for (unsigned i = 0; i < 8; i++)
            out[2 + i] = (uint8_t)(payload_len >> (56 - 8 * i));
        n = 10;
    }
    if (mask != NULL) {
        out[1] |= 0x80;
        memcpy(out + n, mask, 4);
        n += 4;
    }
    return n;
}

static int ws_write(struct buf *b, enum ws_opcode op, bool fin, const uint8_t *p, size_t len,
                    const uint8_t *mask)
{
    if (!ws_opcode_known(op) || (ws_opcode_control(op) && (!fin || len > WS_CONTROL_PAYLOAD_MAX)))
        return SIOC_EINVAL;
    uint8_t header[WS_FRAME_HEADER_MAX];
    size_t hn = ws_frame_header(op, fin, len, mask, header);
    if (len > SIZE_MAX - hn && b->err == SIOC_OK)
        b->err = SIOC_ETOOBIG;
    if (!buf_reserve(b, hn + len))
        return b->err;
    buf_append(b, header, hn);
    if (len > 0) {
        if (mask != NULL)
            ws_mask_apply(b->data + b->len, p, len, mask, 0);
        else
            memcpy(b->data + b->len, p, len);
        b->len += len;
    }
    return SIOC_OK;
}

int ws_write_frame(struct buf *b, enum ws_opcode op, bool fin, const uint8_t *p, size_t len)
{
    return ws_write(b, op, fin, p, len, NULL);
}

int ws_write_frame_masked(struct buf *b, enum ws_opcode op, bool fin, const uint8_t *p, size_t len,
                          const uint8_t mask[4])
{
    return ws_write(b, op, fin, p, len, mask);
}

int ws_close_payload(unsigned code, const uint8_t *reason, size_t reason_len,
                     uint8_t out[WS_CONTROL_PAYLOAD_MAX])
{
    if (code == WS_CLOSE_NO_STATUS)
        return reason_len == 0 ? 0 : SIOC_EINVAL;
    /* RFC 6455 5.5.1: a 2-byte code, then a UTF-8 reason, within 125 bytes in all. */
    if (!ws_close_code_valid(code) || reason_len > WS_CLOSE_REASON_MAX ||
        !utf8_valid(reason, reason_len))
        return SIOC_EINVAL;
    out[0] = (uint8_t)(code >> 8);
    out[1] = (uint8_t)code;
    if (reason_len > 0)
        memcpy(out + 2, reason, reason_len);
    return (int)(2 + reason_len);
}

int ws_write_close(struct buf *b, unsigned code, const uint8_t *reason, size_t reason_len)
{
    uint8_t payload[WS_CONTROL_PAYLOAD_MAX];
    int n = ws_close_payload(code, reason, reason_len, payload);
    if (n < 0)
        return n;
    return ws_write(b, WS_OP_CLOSE, true, payload, (size_t)n, NULL);
}

/* ---- parser ---- */

void ws_parser_init(struct ws_parser *p, struct buf *message, struct buf *control,
                    size_t max_message, unsigned flags)
{
    memset(p, 0, sizeof *p);
    p->state = WS_STATE_HEADER;
    p->flags = flags;
    p->max_message = max_message == 0 ? SIZE_MAX : max_message;
    p->message = message;
    p->control = control;
    p->need = 2;
    utf8_validator_init(&p->utf8);
}

/* What an event with no bytes points at (ws_event.data is never NULL). */
static const uint8_t ws_empty[1] = {0};

static int ws_fail(struct ws_parser *p, int err)
{
    p->state = WS_STATE_ERROR;
    p->error = err;
    return err;
}

/* Checks the first header byte as soon as it arrives. */
static int ws_check_byte0(struct ws_parser *p, uint8_t b0)
{
    p->fin = (b0 & 0x80) != 0;
    p->opcode = b0 & 0x0f;
    /* RFC 6455 5.2: RSV1-3 MUST be 0 unless an extension defines them; we negotiate none. */
    if ((b0 & 0x70) != 0 || !ws_opcode_known(p->opcode))
        return SIOC_EPROTO;
    /* RFC 6455 5.5: control frames MUST NOT be fragmented. */
    if (ws_opcode_control(p->opcode))
        return p->fin ? SIOC_OK : SIOC_EPROTO;
    /* RFC 6455 5.4: a continuation needs an open message; a new message may not start while one
     * is open (only control frames may be interleaved). */
    if ((p->opcode == WS_OP_CONTINUATION) != (p->message_opcode != 0))
        return SIOC_EPROTO;
    return SIOC_OK;
}

/* Checks the second header byte; sets `need` to the extended length size (0 if none). */
static int ws_check_byte1(struct ws_parser *p, uint8_t b1)
{
    p->masked = (b1 & 0x80) != 0;
    /* RFC 6455 5.1: clients MUST mask every frame, servers MUST NOT. */
    if (p->masked != ((p->flags & WS_PARSER_CLIENT) == 0))
        return SIOC_EPROTO;
    unsigned len7 = b1 & 0x7f;
    /* RFC 6455 5.5: control payloads are at most 125 bytes, so never an extended length. */
    if (ws_opcode_control(p->opcode) && len7 > WS_CONTROL_PAYLOAD_MAX)
        return SIOC_EPROTO;
    p->need = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
    p->frame_len = len7;
    return SIOC_OK;
}

static int ws_check_length(struct ws_parser *p)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < p->need; i++)
        v = v << 8 | p->header[i];
    /* RFC 6455 5.2: the most significant bit of a 64-bit length MUST be 0, and "the minimal
     * number of bytes MUST be used to encode the length". */
    if (p->need == 8 && (v >> 63) != 0)
        return SIOC_EPROTO;
    if (v < (p->need == 2 ? 126u : 65536u))
        return SIOC_EPROTO;
    p->frame_len = v;
    return SIOC_OK;
}

/* The frame length is known: start a message if this frame opens one and enforce the size limit
 * on the declared length, before any payload is buffered (RFC 6455 10.4). */
static int ws_begin_payload(struct ws_parser *p)
{
    p->frame_pos = 0;
    if (ws_opcode_control(p->opcode)) {
        /* at most 125 bytes (checked at the header): room for all of them now */
        buf_reset(p->control);
        if (p->frame_len > 0 && !buf_reserve(p->control, (size_t)p->frame_len))
            return SIOC_ENOMEM;
        return SIOC_OK;
    }
    struct buf *m = p->message;
    if (p->opcode != WS_OP_CONTINUATION) {
        buf_reset(m);
        utf8_validator_init(&p->utf8);
        p->message_opcode = p->opcode;
    }
    size_t limit = p->max_message;
    if (m->limit != 0 && m->limit < limit)
        limit = m->limit;
    if (p->frame_len > limit - m->len)
        return SIOC_ETOOBIG;
    return SIOC_OK;
}

static int ws_take_payload(struct ws_parser *p, const uint8_t *src, size_t n)
{
    uint8_t *dst;
    if (ws_opcode_control(p->opcode)) {
        dst = p->control->data + p->frame_pos;
        p->control->len = (size_t)p->frame_pos + n;
    } else {
        /* Grows with the bytes that arrived, not the declared length, so a peer that declares a
         * large frame and stalls does not pin that much memory. */
        if (!buf_reserve(p->message, n))
            return p->message->err;
        dst = p->message->data + p->message->len;
        p->message->len += n;
    }
    if (p->masked)
        ws_mask_apply(dst, src, n, p->mask, p->frame_pos);
    else
        memcpy(dst, src, n);
    p->frame_pos += n;
    /* RFC 6455 8.1: text is checked as it arrives, so invalid UTF-8 fails fast. */
    if (!ws_opcode_control(p->opcode) && p->message_opcode == WS_OP_TEXT &&
        utf8_validator_feed(&p->utf8, dst, n) != SIOC_OK)
        return SIOC_EUTF8;
    return SIOC_OK;
}

static int ws_close_event(struct ws_parser *p, struct ws_event *ev)
{
    size_t n = (size_t)p->frame_len;
    ev->type = WS_EVENT_CLOSE;
    ev->close_code = WS_CLOSE_NO_STATUS;
    ev->data = ws_empty;
    ev->len = 0;
    if (n == 0)
        return SIOC_OK;
    /* RFC 6455 5.5.1: a body starts with a 2-byte code; 7.4: only valid codes; the reason is
     * UTF-8 (8.1), else 1007. */
    if (n == 1)
        return SIOC_EPROTO;
    const uint8_t *body = p->control->data;
    unsigned code = (unsigned)body[0] << 8 | body[1];
    if (!ws_close_code_valid(code))
        return SIOC_EPROTO;
    if (!utf8_valid(body + 2, n - 2))
        return SIOC_EUTF8;
    ev->close_code = (uint16_t)code;
    ev->data = body + 2;
    ev->len = n - 2;
    return SIOC_OK;
}

/* The frame is complete. Returns SIOC_OK with an event, SIOC_EAGAIN without, or an error. */
static int ws_end_frame(struct ws_parser *p, struct ws_event *ev)
{
    p->state = WS_STATE_HEADER;
    p->have = 0;
    p->need = 2;
    switch (p->opcode) {
    case WS_OP_CLOSE: {
        int rc = ws_close_event(p, ev);
        if (rc == SIOC_OK)
            p->state = WS_STATE_CLOSED;
        return rc;
    }
    case WS_OP_PING:
    case WS_OP_PONG:
        ev->type = p->opcode == WS_OP_PING ? WS_EVENT_PING : WS_EVENT_PONG;
        ev->data = p->frame_len > 0 ? p->control->data : ws_empty;
        ev->len = (size_t)p->frame_len;
        return SIOC_OK;
    default:
        if (!p->fin)
            return SIOC_EAGAIN;
        /* RFC 6455 8.1: a text message that ends inside a character is invalid. */
        if (p->message_opcode == WS_OP_TEXT && !utf8_validator_complete(&p->utf8))
            return SIOC_EUTF8;
        ev->type = p->message_opcode == WS_OP_TEXT ? WS_EVENT_TEXT : WS_EVENT_BINARY;
        ev->data = p->message->data != NULL ? p->message->data : ws_empty;
        ev->len = p->message->len;
        p->message_opcode = 0;
        return SIOC_OK;
    }
}

/* After the length: a mask, or straight to the payload. */
static int ws_after_length(struct ws_parser *p)
{
    int rc = ws_begin_payload(p);
    if (rc != SIOC_OK)
        return rc;
    p->have = 0;
    if (p->masked) {
        p->state = WS_STATE_MASK;
        p->need = 4;
    } else {
        p->state = WS_STATE_PAYLOAD;
    }
    return SIOC_OK;
}

/* Copies header bytes of the current field; true once it is complete. */
static bool ws_collect(struct ws_parser *p, const uint8_t *in, size_t len, size_t *i)
{
    size_t n = (size_t)(p->need - p->have);
    if (n > len - *i)
        n = len - *i;
    if (n > 0) {
        memcpy(p->header + p->have, in + *i, n);
        p->have = (uint8_t)(p->have + n);
        *i += n;
    }
    return p->have == p->need;
}

int ws_parser_feed(struct ws_parser *p, const uint8_t *in, size_t len, size_t *consumed,
                   struct ws_event *ev)
{
    size_t i = 0;
    int rc = SIOC_OK;
    memset(ev, 0, sizeof *ev);
    *consumed = 0;
    for (;;) {
        switch (p->state) {
        case WS_STATE_HEADER:
            if (i == len)
                goto need_more;
            p->header[p->have] = in[i++];
            rc = p->have == 0 ? ws_check_byte0(p, p->header[0]) : ws_check_byte1(p, p->header[1]);
            if (rc != SIOC_OK)
                return ws_fail(p, rc);
            if (++p->have < 2)
                break;
            p->have = 0;
            if (p->need > 0)
                p->state = WS_STATE_LENGTH;
            else if ((rc = ws_after_length(p)) != SIOC_OK)
                return ws_fail(p, rc);
            break;
        case WS_STATE_LENGTH:
            if (!ws_collect(p, in, len, &i))
                goto need_more;
            if ((rc = ws_check_length(p)) != SIOC_OK || (rc = ws_after_length(p)) != SIOC_OK)
                return ws_fail(p, rc);
            break;
        case WS_STATE_MASK:
            if (!ws_collect(p, in, len, &i))
                goto need_more;
            memcpy(p->mask, p->header, 4);
            p->state = WS_STATE_PAYLOAD;
            break;
        case WS_STATE_PAYLOAD: {
            uint64_t left = p->frame_len - p->frame_pos;
            size_t n = left < len - i ? (size_t)left : len - i;
            if (n > 0 && (rc = ws_take_payload(p, in + i, n)) != SIOC_OK)
                return ws_fail(p, rc);
            i += n;
            if (p->frame_pos < p->frame_len)
                goto need_more;
            rc = ws_end_frame(p, ev);
            if (rc == SIOC_OK) {
                *consumed = i;
                return SIOC_OK;
            }
            if (rc != SIOC_EAGAIN)
                return ws_fail(p, rc);
            break;
        }
        case WS_STATE_CLOSED: i = len; goto need_more;
        case WS_STATE_ERROR: return p->error;
        }
    }
need_more:
    *consumed = i;
    return SIOC_EAGAIN;
}
