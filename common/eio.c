/* eio.c: Engine.IO v4/v3 codec (PROTOCOL.md 1.2-1.5, 1.12): packets, the three polling payload
 * formats, the open packet, sids, error bodies, request validation order and JSONP wrapping.
 * Decoders point into their input (base64 binary goes into a caller buffer); encoders append to
 * a struct buf and roll it back on failure. */
#include "common/eio.h"

#include <assert.h>
#include <string.h>

#include "common/base64.h"
#include "common/error.h"
#include "common/http.h"
#include "common/utf8.h"

/* PROTOCOL.md 1.5.1: the record separator between v4 polling packets. */
#define EIO_SEPARATOR 0x1e
/* PROTOCOL.md 1.12: XHR2 payload entry markers and the end of the digit bytes. */
#define EIO_XHR2_TEXT 0x00
#define EIO_XHR2_BINARY 0x01
#define EIO_XHR2_DIGITS_END 0xff

static int type_from_char(uint8_t c)
{
    return c >= '0' && c <= '6' ? c - '0' : -1;
}

static bool type_valid(enum eio_packet_type t)
{
    return (int)t >= EIO_PACKET_OPEN && (int)t <= EIO_PACKET_NOOP;
}

/* Rolls `out` back to `start` if anything failed; returns the buffer's error or SIOC_OK. */
static int finish(struct buf *out, size_t start)
{
    if (out->err != SIOC_OK && out->len > start)
        buf_truncate(out, start);
    return out->err;
}

/* Fails with `err` (not a buffer error): roll back and report. */
static int fail(struct buf *out, size_t start, int err)
{
    buf_truncate(out, start);
    return err;
}

/* ---- decoding ---- */

static bool is_base64_char(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/' || c == '-' || c == '_';
}

/* Decodes base64 text the way Node's Buffer.from(s, "base64") does into `bin` (emptied first).
 * The exact output size is counted first so that bin->limit (normally maxHttpBufferSize) is
 * compared with the real size, not an upper bound. */
static int decode_base64(struct buf *bin, const uint8_t *p, size_t n, struct slice *out)
{
    size_t chars = 0;
    for (size_t i = 0; i < n && p[i] != '='; i++)
        chars += is_base64_char(p[i]);
    size_t bytes = chars / 4 * 3 + (chars % 4) * 6 / 8;
    buf_reset(bin);
    if (bytes > 0) {
        if (!buf_reserve(bin, bytes))
            return bin->err;
        bin->len = base64_decode_lenient((const char *)p, n, bin->data);
    }
    out->p = bin->data;
    out->len = bin->len;
    return SIOC_OK;
}

int eio_packet_decode(enum eio_version version, const uint8_t *p, size_t len, struct buf *bin,
                      struct eio_packet *out)
{
    assert(bin != NULL);
    /* PROTOCOL.md 1.4: an empty string is a parse error */
    if (len == 0)
        return SIOC_EPROTO;
    if (p[0] == 'b') {
        size_t skip = 1;
        enum eio_packet_type type = EIO_PACKET_MESSAGE;
        if (version == EIO_V3) {
            /* 1.12: v3 binary-in-text carries its own type digit, `b4…` */
            if (len < 2 || type_from_char(p[1]) < 0)
                return SIOC_EPROTO;
            type = (enum eio_packet_type)type_from_char(p[1]);
            skip = 2;
        }
        int rc = decode_base64(bin, p + skip, len - skip, &out->data);
        if (rc != SIOC_OK)
            return rc;
        out->type = type;
        out->binary = true;
        return SIOC_OK;
    }
    int type = type_from_char(p[0]);
    if (type < 0)
        return SIOC_EPROTO;
    out->type = (enum eio_packet_type)type;
    out->binary = false;
    out->data.p = p + 1;
    out->data.len = len - 1;
    return SIOC_OK;
}

int eio_binary_frame_decode(enum eio_version version, const uint8_t *p, size_t len,
                            struct eio_packet *out)
{
    if (version == EIO_V4) {
        /* 1.4: a v4 binary frame is always a message, raw bytes, no type byte */
        out->type = EIO_PACKET_MESSAGE;
        out->binary = true;
        out->data.p = p;
        out->data.len = len;
        return SIOC_OK;
    }
    /* 1.12: v3 binary frames lead with the packet type as a number */
    if (len == 0 || p[0] > EIO_PACKET_NOOP)
        return SIOC_EPROTO;
    out->type = (enum eio_packet_type)p[0];
    out->binary = true;
    out->data.p = p + 1;
    out->data.len = len - 1;
    return SIOC_OK;
}

void eio_payload_iter_init(struct eio_payload_iter *it, enum eio_payload_format format,
                           const uint8_t *p, size_t len)
{
    it->p = p;
    it->len = len;
    it->pos = 0;
    it->format = format;
    it->done = false;
    it->err = SIOC_OK;
}

/* Adds decimal digit `d` to *n unless the result would exceed `limit` (the bytes left, which
 * every honest length fits in): no declared length can overflow. */
static bool length_push_digit(size_t *n, unsigned d, size_t limit)
{
    if (*n > limit / 10 || d > limit - *n * 10)
        return false;
    *n = *n * 10 + d;
    return true;
}

static int next_v4(struct eio_payload_iter *it, struct buf *bin, struct eio_packet *out)
{
    if (it->done)
        return 0;
    size_t rest = it->len - it->pos;
    const uint8_t *start = rest > 0 ? it->p + it->pos : it->p; /* no NULL + 0 */
    /* 1.5.1: split on 0x1e; each piece, even an empty one (empty body, trailing separator), is
     * decoded as a packet, so an empty piece is a parse error. */
    const uint8_t *sep = rest > 0 ? memchr(start, EIO_SEPARATOR, rest) : NULL;
    size_t seg = sep != NULL ? (size_t)(sep - start) : rest;
    int rc = eio_packet_decode(EIO_V4, start, seg, bin, out);
    if (rc != SIOC_OK)
        return rc;
    if (sep != NULL) {
        it->pos += seg + 1;
    } else {
        it->pos = it->len;
        it->done = true;
    }
    return 1;
}

static int next_v3_text(struct eio_payload_iter *it, struct buf *bin, struct eio_packet *out)
{
    const uint8_t *p = it->p;
    /* 1.12: an empty body is a parse error; `0:` is the empty list */
    if (it->len == 0)
        return SIOC_EPROTO;
    for (;;) {
        if (it->pos == it->len)
            return 0;
        size_t i = it->pos, units = 0;
        for (; i < it->len && p[i] != ':'; i++) {
            /* strict decimal: Node's Number() would also take " 5", "0x5" or "5.0" */
            if (p[i] < '0' || p[i] > '9' ||
                !length_push_digit(&units, (unsigned)(p[i] - '0'), it->len - i))
                return SIOC_EPROTO;
        }
        if (i == it->len || i == it->pos) /* trailing partial entry, or `:` with no length */
            return SIOC_EPROTO;
        size_t body = i + 1;
        if (units == 0) { /* Node skips empty entries */
            it->pos = body;
            continue;
        }
        /* The length counts UTF-16 units; a prefix that is valid UTF-8 was measured correctly. */
        long bytes = utf8_prefix_for_utf16_units(p + body, it->len - body, units);
        if (bytes < 0)
            return SIOC_EPROTO;
        if (!utf8_valid(p + body, (size_t)bytes))
            return SIOC_EUTF8;
        int rc = eio_packet_decode(EIO_V3, p + body, (size_t)bytes, bin, out);
        if (rc != SIOC_OK)
            return rc;
        it->pos = body + (size_t)bytes;
        return 1;
    }
}

static int next_v3_binary(struct eio_payload_iter *it, struct buf *bin, struct eio_packet *out)
{
    const uint8_t *p = it->p;
    if (it->pos == it->len)
        return 0;
    uint8_t marker = p[it->pos];
    if (marker != EIO_XHR2_TEXT && marker != EIO_XHR2_BINARY)
        return SIOC_EPROTO;
    size_t i = it->pos + 1, n = 0;
    for (; i < it->len && p[i] != EIO_XHR2_DIGITS_END; i++) {
        if (p[i] > 9 || !length_push_digit(&n, p[i], it->len - i))
            return SIOC_EPROTO;
    }
    if (i == it->len || i == it->pos + 1)
        return SIOC_EPROTO;
    size_t body = i + 1;
    if (n > it->len - body) /* truncated entry */
        return SIOC_EPROTO;
    int rc = marker == EIO_XHR2_TEXT ? eio_packet_decode(EIO_V3, p + body, n, bin, out)
                                     : eio_binary_frame_decode(EIO_V3, p + body, n, out);
    if (rc != SIOC_OK)
        return rc;
    it->pos = body + n;
    return 1;
}

int eio_payload_next(struct eio_payload_iter *it, struct buf *bin, struct eio_packet *out)
{
    if (it->err != SIOC_OK)
        return it->err;
    int rc;
    switch (it->format) {
    case EIO_PAYLOAD_V4: rc = next_v4(it, bin, out); break;
    case EIO_PAYLOAD_V3_TEXT: rc = next_v3_text(it, bin, out); break;
    case EIO_PAYLOAD_V3_BINARY: rc = next_v3_binary(it, bin, out); break;
    default: rc = SIOC_EINVAL; break;
    }
    if (rc < 0)
        it->err = rc;
    return rc;
}

/* ---- encoding ---- */

static void append_base64(struct buf *out, const uint8_t *p, size_t n)
{
    if (n == 0)
        return;
    if (n > (SIZE_MAX - 2) / 4 * 3) {
        out->err = out->err != SIOC_OK ? out->err : SIOC_ETOOBIG;
        return;
    }
    size_t need = base64_encoded_len(n);
    if (!buf_reserve(out, need))
        return;
    out->len += base64_encode(p, n, (char *)out->data + out->len);
}

/* Appends `v` as one byte per decimal digit (values 0..9), as XHR2 lengths are written. */
static void append_digit_bytes(struct buf *out, uint64_t v)
{
    uint8_t tmp[20];
    size_t n = 0;
    do {
        tmp[sizeof tmp - 1 - n++] = (uint8_t)(v % 10);
        v /= 10;
    } while (v > 0);
    buf_append(out, tmp + sizeof tmp - n, n);
}

int eio_packet_encode(struct buf *out, enum eio_version version, const struct eio_packet *pkt)
{
    size_t start = out->len;
    if (!type_valid(pkt->type))
        return SIOC_EINVAL;
    if (pkt->binary) {
        /* 1.4: v4 binary is only ever a message; 1.12: v3 names the type, `b4…` */
        if (version == EIO_V4 && pkt->type != EIO_PACKET_MESSAGE)
            return SIOC_EINVAL;
        buf_append_byte(out, 'b');
        if (version == EIO_V3)
            buf_append_byte(out, (uint8_t)('0' + pkt->type));
        append_base64(out, pkt->data.p, pkt->data.len);
    } else {
        buf_append_byte(out, (uint8_t)('0' + pkt->type));
        buf_append(out, pkt->data.p, pkt->data.len);
    }
    return finish(out, start);
}

int eio_v3_binary_frame_encode(struct buf *out, const struct eio_packet *pkt)
{
    size_t start = out->len;
    if (!type_valid(pkt->type))
        return SIOC_EINVAL;
    buf_append_byte(out, (uint8_t)pkt->type);
    buf_append(out, pkt->data.p, pkt->data.len);
    return finish(out, start);
}

int eio_payload_encode(struct buf *out, const struct eio_packet *pkts, size_t n)
{
    size_t start = out->len;
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            buf_append_byte(out, EIO_SEPARATOR);
        int rc = eio_packet_encode(out, EIO_V4, &pkts[i]);
        if (rc != SIOC_OK)
            return fail(out, start, rc);
    }
    return finish(out, start);
}

int eio_v3_payload_encode(struct buf *out, const struct eio_packet *pkts, size_t n)
{
    size_t start = out->len;
    /* 1.12: the empty packet list is `0:` */
    if (n == 0)
        buf_append_cstr(out, "0:");
    for (size_t i = 0; i < n; i++) {
        const struct eio_packet *pkt = &pkts[i];
        size_t units;
        if (pkt->binary) {
            units = 2 + base64_encoded_len(pkt->data.len); /* `b<digit>` + ASCII base64 */
        } else {
            if (!utf8_valid(pkt->data.p, pkt->data.len))
                return fail(out, start, SIOC_EUTF8);
            units = 1 + utf8_utf16_units(pkt->data.p, pkt->data.len);
        }
        buf_append_u64(out, units);
        buf_append_byte(out, ':');
        int rc = eio_packet_encode(out, EIO_V3, pkt);
        if (rc != SIOC_OK)
            return fail(out, start, rc);
    }
    return finish(out, start);
}

int eio_v3_binary_payload_encode(struct buf *out, const struct eio_packet *pkts, size_t n)
{
    size_t start = out->len;
    for (size_t i = 0; i < n; i++) {
        const struct eio_packet *pkt = &pkts[i];
        if (!type_valid(pkt->type))
            return fail(out, start, SIOC_EINVAL);
        /* 1.12: text entries count UTF-8 bytes of `<digit><data>`; binary entries count the
         * type byte plus the data */
        buf_append_byte(out, pkt->binary ? EIO_XHR2_BINARY : EIO_XHR2_TEXT);
        append_digit_bytes(out, (uint64_t)pkt->data.len + 1);
        buf_append_byte(out, EIO_XHR2_DIGITS_END);
        buf_append_byte(out, (uint8_t)(pkt->binary ? pkt->type : '0' + pkt->type));
        buf_append(out, pkt->data.p, pkt->data.len);
    }
    return finish(out, start);
}

/* Appends p[0..n) as a JSON string literal the way JSON.stringify writes it; with
 * `escape_separators`, U+2028/U+2029 are escaped too (PROTOCOL.md 1.5.7, JSONP). */
static void append_json_string(struct buf *out, const uint8_t *p, size_t n, bool escape_separators)
{
    static const char hex[] = "0123456789abcdef";
    buf_append_byte(out, '"');
    if (n == 0) {
        buf_append_byte(out, '"');
        return;
    }
    size_t run = 0; /* start of the bytes not yet copied */
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        const char *esc = NULL;
        char u[7];
        size_t skip = 1;
        if (c == '"') {
            esc = "\\\"";
        } else if (c == '\\') {
            esc = "\\\\";
        } else if (c == '\b') {
            esc = "\\b";
        } else if (c == '\f') {
            esc = "\\f";
        } else if (c == '\n') {
            esc = "\\n";
        } else if (c == '\r') {
            esc = "\\r";
        } else if (c == '\t') {
            esc = "\\t";
        } else if (c < 0x20) {
            memcpy(u, "\\u00", 4);
            u[4] = hex[c >> 4];
            u[5] = hex[c & 15];
            u[6] = '\0';
            esc = u;
        } else if (escape_separators && c == 0xe2 && n - i >= 3 && p[i + 1] == 0x80 &&
                   (p[i + 2] == 0xa8 || p[i + 2] == 0xa9)) {
            esc = p[i + 2] == 0xa8 ? "\\u2028" : "\\u2029";
            skip = 3;
        }
        if (esc == NULL)
            continue;
        buf_append(out, p + run, i - run);
        buf_append_cstr(out, esc);
        i += skip - 1;
        run = i + 1;
    }
    buf_append(out, p + run, n - run);
    buf_append_byte(out, '"');
}

static void append_json_cstr(struct buf *out, const char *s)
{
    append_json_string(out, (const uint8_t *)s, strlen(s), false);
}

int eio_open_encode(struct buf *out, const struct eio_open *open)
{
    size_t start = out->len;
    /* 1.3: exactly these keys, in this order, compact */
    buf_append_cstr(out, "0{\"sid\":");
    append_json_cstr(out, open->sid);
    buf_append_cstr(out, ",\"upgrades\":[");
    for (size_t i = 0; i < open->upgrades_len; i++) {
        if (i > 0)
            buf_append_byte(out, ',');
        append_json_cstr(out, open->upgrades[i]);
    }
    buf_append_cstr(out, "],\"pingInterval\":");
    buf_append_u64(out, open->ping_interval_ms);
    buf_append_cstr(out, ",\"pingTimeout\":");
    buf_append_u64(out, open->ping_timeout_ms);
    buf_append_cstr(out, ",\"maxPayload\":");
    buf_append_u64(out, open->max_payload);
    buf_append_byte(out, '}');
    return finish(out, start);
}

void eio_sid_format(const uint8_t random12[12], uint32_t counter, char out[EIO_SID_LEN])
{
    /* 1.3 (Node base64id): 12 random bytes, then the counter's low 24 bits big-endian; 15 bytes
     * encode to exactly 20 characters, so base64url (which maps + and / the same way) is it. */
    uint8_t raw[15];
    memcpy(raw, random12, 12);
    raw[12] = (uint8_t)(counter >> 16);
    raw[13] = (uint8_t)(counter >> 8);
    raw[14] = (uint8_t)counter;
    base64url_encode(raw, sizeof raw, out);
}

/* ---- request validation and errors ---- */

struct error_entry {
    const char *message;
    int status;
};

/* 1.2: exact strings; only code 4 is 403 */
static const struct error_entry error_table[] = {
    {"Transport unknown", 400}, {"Session ID unknown", 400}, {"Bad handshake method", 400},
    {"Bad request", 400},       {"Forbidden", 403},          {"Unsupported protocol version", 400},
};

static bool code_valid(enum eio_error_code code)
{
    return (int)code >= 0 && (size_t)code < sizeof error_table / sizeof error_table[0];
}

const char *eio_error_message(enum eio_error_code code)
{
    return code_valid(code) ? error_table[code].message : NULL;
}

int eio_error_status(enum eio_error_code code)
{
    return code_valid(code) ? error_table[code].status : 0;
}

/* Node uses the custom message when it is a non-empty string (`ctx.message || standard`). */
static const char *pick_message(enum eio_error_code code, const char *message)
{
    return message != NULL && message[0] != '\0' ? message : error_table[code].message;
}

int eio_error_body_json(struct buf *out, enum eio_error_code code, const char *message)
{
    if (!code_valid(code))
        return SIOC_EINVAL;
    size_t start = out->len;
    buf_append_cstr(out, "{\"code\":");
    buf_append_u64(out, (uint64_t)code);
    buf_append_cstr(out, ",\"message\":");
    append_json_cstr(out, pick_message(code, message));
    buf_append_byte(out, '}');
    return finish(out, start);
}

int eio_error_upgrade_response(struct buf *out, enum eio_error_code code, const char *message)
{
    if (!code_valid(code))
        return SIOC_EINVAL;
    size_t start = out->len;
    const char *text = pick_message(code, message);
    /* 1.2: Node's abortUpgrade writes this by hand: 400 even for code 4, "Content-type" */
    buf_append_cstr(out, "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n"
                         "Content-type: text/html\r\nContent-Length: ");
    buf_append_u64(out, strlen(text));
    buf_append_cstr(out, "\r\n\r\n");
    buf_append_cstr(out, text);
    return finish(out, start);
}

static bool slice_is(struct slice s, const char *lit)
{
    size_t n = strlen(lit);
    return s.p != NULL && s.len == n && memcmp(s.p, lit, n) == 0;
}

enum eio_error_code eio_check_request(const struct eio_request *req, enum eio_transport *transport,
                                      enum eio_version *version)
{
    enum eio_transport t = slice_is(req->transport, "polling")     ? EIO_TRANSPORT_POLLING
                           : slice_is(req->transport, "websocket") ? EIO_TRANSPORT_WEBSOCKET
                                                                   : EIO_TRANSPORT_NONE;
    /* 1.1: only the exact string "4" is v4; anything else, even absent, is v3 */
    enum eio_version v = slice_is(req->eio, "4") ? EIO_V4 : EIO_V3;
    /* 1.2 step 1: an unknown or disabled transport (webtransport is never enabled here) */
    if (t == EIO_TRANSPORT_NONE || (req->enabled_transports & (unsigned)t) == 0)
        return EIO_ERR_UNKNOWN_TRANSPORT;
    if (req->origin_invalid) /* step 2: INVALID_ORIGIN */
        return EIO_ERR_BAD_REQUEST;
    if (req->has_sid) { /* step 3 */
        if (!req->session_found)
            return EIO_ERR_UNKNOWN_SID;
        if (!req->is_upgrade && t != req->session_transport) /* TRANSPORT_MISMATCH */
            return EIO_ERR_BAD_REQUEST;
        /* PROTOCOL_MISMATCH: observed 400 code 3 for EIO=3 with a v4 sid (d1 transcript) */
        if (v != req->session_version)
            return EIO_ERR_BAD_REQUEST;
    } else { /* step 4 */
        if (!req->is_get)
            return EIO_ERR_BAD_HANDSHAKE_METHOD;
        if (t == EIO_TRANSPORT_WEBSOCKET && !req->is_upgrade) /* TRANSPORT_HANDSHAKE_ERROR */
            return EIO_ERR_BAD_REQUEST;
        if (req->forbidden)
            return EIO_ERR_FORBIDDEN;
        if (v == EIO_V3 && !req->allow_eio3) /* step 5 */
            return EIO_ERR_UNSUPPORTED_PROTOCOL_VERSION;
    }
    *transport = t;
    *version = v;
    return EIO_ERR_NONE;
}

int eio_jsonp_encode(struct buf *out, struct slice j, const uint8_t *payload, size_t len)
{
    size_t start = out->len;
    buf_append_cstr(out, "___eio[");
    /* Node: (j || "").replace(/[^0-9]/g, "") */
    for (size_t i = 0; i < j.len; i++) {
        if (j.p[i] >= '0' && j.p[i] <= '9')
            buf_append_byte(out, j.p[i]);
    }
    buf_append_cstr(out, "](");
    append_json_string(out, payload, len, true);
    buf_append_cstr(out, ");");
    return finish(out, start);
}

/* The two replacements of polling-jsonp's onData, byte for byte: rSlashes /(\\)?\\n/g keeps
 * `\\n` and turns `\n` into a newline; then rDoubleSlashes /\\\\n/g turns `\\n` into `\n`.
 * A regex tries the longer alternative first at each position, then moves on by one. */
static void jsonp_unescape_newlines(const uint8_t *p, size_t n, struct buf *mid, struct buf *out)
{
    for (size_t i = 0; i < n;) {
        if (i + 2 < n && p[i] == '\\' && p[i + 1] == '\\' && p[i + 2] == 'n') {
            buf_append(mid, p + i, 3);
            i += 3;
        } else if (i + 1 < n && p[i] == '\\' && p[i + 1] == 'n') {
            buf_append_byte(mid, '\n');
            i += 2;
        } else {
            buf_append_byte(mid, p[i++]);
        }
    }
    const uint8_t *q = mid->data;
    size_t m = mid->len;
    for (size_t i = 0; i < m;) {
        if (i + 2 < m && q[i] == '\\' && q[i + 1] == '\\' && q[i + 2] == 'n') {
            buf_append(out, "\\n", 2);
            i += 3;
        } else {
            buf_append_byte(out, q[i++]);
        }
    }
}

int eio_jsonp_body_decode(const uint8_t *p, size_t len, struct buf *out)
{
    size_t start = out->len;
    struct http_query_iter it;
    struct slice name, value, d = {NULL, 0};
    unsigned found = 0, pairs = 0;
    struct buf key, decoded, mid;
    buf_init(&key, 0);
    buf_init(&decoded, 0);
    buf_init(&mid, 0);
    http_query_iter_init(&it, (struct slice){p, len});
    while (pairs < EIO_JSONP_MAX_PAIRS && http_query_next(&it, &name, &value)) {
        pairs++;
        if (name.len != 1 && name.len != 3)
            continue; /* "d" is 1 byte, "%64" 3: nothing longer decodes to it */
        buf_reset(&key);
        http_percent_decode(name, true, &key);
        if (key.len == 1 && key.data[0] == 'd') {
            found++;
            d = value;
        }
    }
    int rc = SIOC_EPROTO;
    if (found == 1) {
        http_percent_decode(d, true, &decoded);
        jsonp_unescape_newlines(decoded.data ? decoded.data : (const uint8_t *)"", decoded.len,
                                &mid, out);
        rc = decoded.err != SIOC_OK ? decoded.err : mid.err != SIOC_OK ? mid.err : SIOC_OK;
    }
    buf_deinit(&key);
    buf_deinit(&decoded);
    buf_deinit(&mid);
    if (rc != SIOC_OK) {
        if (out->err == SIOC_OK)
            buf_truncate(out, start);
        return rc;
    }
    return finish(out, start);
}
