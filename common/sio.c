/* sio.c: Socket.IO packet codec (PROTOCOL.md 2.2 encoder, 2.3 decoder, 2.7 v4 variant) and
 * binary attachment reassembly. Payload JSON <-> MessagePack is json.c's job; what a packet
 * means for a connection (namespaces joined, ack ids, closing) is the gateway's. */
#include "common/sio.h"

#include <stdio.h>
#include <string.h>

#include "common/error.h"
#include "common/json.h"
#include "common/mp.h"

static const uint8_t root_nsp[] = "/";

/* socket.io-parser RESERVED_EVENTS: refused as EVENT names (2.3 step 5). */
static const char *const reserved_events[] = {
    "connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener",
};

const char *sio_reason_string(enum sio_reason r)
{
    switch (r) {
    case SIO_REASON_NONE: return "ok";
    case SIO_REASON_EMPTY: return "empty packet";
    case SIO_REASON_UNKNOWN_TYPE: return "unknown packet type";
    case SIO_REASON_ILLEGAL_ATTACHMENTS: return "Illegal attachments";
    case SIO_REASON_TOO_MANY_ATTACHMENTS: return "too many attachments";
    case SIO_REASON_INVALID_ACK_ID: return "invalid ack id";
    case SIO_REASON_INVALID_PAYLOAD: return "invalid payload";
    case SIO_REASON_PAYLOAD_LIMIT: return "payload too deep, too big or out of memory";
    case SIO_REASON_ILLEGAL_PLACEHOLDER: return "illegal attachments";
    case SIO_REASON_UNEXPECTED_TEXT: return "got plaintext data when reconstructing a packet";
    case SIO_REASON_UNEXPECTED_BINARY: return "got binary data when not reconstructing a packet";
    }
    return "unknown reason";
}

static bool is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

/* ---------------------------------------------------------------- decoder ---- */

/* 2.3 step 5: the payload (already msgpack at m[0..n)) must have the shape its type demands. */
static bool payload_valid(enum sio_type type, const uint8_t *m, size_t n)
{
    struct mp_reader r;
    struct mp_item it;
    mp_reader_init(&r, m, n);
    if (mp_read(&r, &it) != SIOC_OK)
        return false;
    switch (type) {
    case SIO_CONNECT: /* isObject(): a plain object, not null or an array */
        return it.kind == MP_MAP;
    case SIO_DISCONNECT: /* payload === undefined; never reached with a payload */ return false;
    case SIO_CONNECT_ERROR: return it.kind == MP_STR || it.kind == MP_MAP;
    case SIO_ACK:
    case SIO_BINARY_ACK: return it.kind == MP_ARRAY;
    case SIO_EVENT:
    case SIO_BINARY_EVENT:
        if (it.kind != MP_ARRAY || it.len == 0 || mp_read(&r, &it) != SIOC_OK)
            return false;
        if (it.kind == MP_UINT || it.kind == MP_INT || it.kind == MP_FLOAT)
            return true; /* typeof payload[0] === "number" */
        if (it.kind != MP_STR)
            return false;
        for (size_t k = 0; k < sizeof reserved_events / sizeof reserved_events[0]; k++)
            if (mp_item_is_str(&it, reserved_events[k]))
                return false;
        return true;
    }
    return false;
}

static int decode_fail(struct sio_packet *pkt, enum sio_reason reason, int err)
{
    pkt->reason = reason;
    return err;
}

/* v4 (2.7): Node runs url.parse(nsp) on every packet of an EIO=3 client: the pathname is the
 * namespace, the query the CONNECT auth. A '#' ends both. */
static void split_query(struct sio_packet *pkt)
{
    const uint8_t *s = pkt->nsp.p;
    size_t n = pkt->nsp.len, path_end = 0;
    while (path_end < n && s[path_end] != '?' && s[path_end] != '#')
        path_end++;
    if (path_end < n && s[path_end] == '?') {
        size_t q = path_end + 1, q_end = q;
        while (q_end < n && s[q_end] != '#')
            q_end++;
        pkt->has_query = true;
        pkt->query.p = s + q;
        pkt->query.len = q_end - q;
    }
    pkt->nsp.len = path_end;
}

int sio_packet_decode(enum sio_version version, const uint8_t *p, size_t len,
                      struct sio_packet *pkt, struct buf *out)
{
    memset(pkt, 0, sizeof *pkt);
    pkt->nsp.p = root_nsp;
    pkt->nsp.len = 1;
    if (len == 0) /* Node throws reading the undefined packet of an empty message */
        return decode_fail(pkt, SIO_REASON_EMPTY, SIOC_EPROTO);
    if (p[0] < '0' || p[0] > '6')
        return decode_fail(pkt, SIO_REASON_UNKNOWN_TYPE, SIOC_EPROTO);
    pkt->type = (enum sio_type)(p[0] - '0');
    size_t i = 1;

    /* Step 2: "<digits>-" for the binary types; 4.2.7 refuses 0 and more than 10. */
    if (pkt->type == SIO_BINARY_EVENT || pkt->type == SIO_BINARY_ACK) {
        unsigned count = 0;
        size_t start = i;
        while (i < len && is_digit(p[i])) {
            /* saturate: any value past the limit is "too many", however many digits */
            if (count <= SIO_MAX_ATTACHMENTS)
                count = count * 10 + (unsigned)(p[i] - '0');
            i++;
        }
        if (i == start || i == len || p[i] != '-')
            return decode_fail(pkt, SIO_REASON_ILLEGAL_ATTACHMENTS, SIOC_EPROTO);
        if (count > SIO_MAX_ATTACHMENTS)
            return decode_fail(pkt, SIO_REASON_TOO_MANY_ATTACHMENTS, SIOC_ETOOBIG);
        if (count == 0)
            return decode_fail(pkt, SIO_REASON_ILLEGAL_ATTACHMENTS, SIOC_EPROTO);
        pkt->attachments = count;
        i++;
    }

    /* Step 3: a '/' starts the namespace, which runs to the next ',' (consumed) or the end. */
    if (i < len && p[i] == '/') {
        size_t start = i;
        while (i < len && p[i] != ',')
            i++;
        pkt->nsp.p = p + start;
        pkt->nsp.len = i - start;
        if (i < len)
            i++;
        if (version == SIO_V4)
            split_query(pkt);
    }

    /* Step 4: ASCII digits form the ack id (leading zeros allowed: "42007[..]" is id 7). */
    if (i < len && is_digit(p[i])) {
        uint64_t id = 0;
        for (; i < len && is_digit(p[i]); i++) {
            id = id * 10 + (uint64_t)(p[i] - '0');
            if (id > SIO_MAX_ACK_ID)
                return decode_fail(pkt, SIO_REASON_INVALID_ACK_ID, SIOC_EPROTO);
        }
        pkt->has_id = true;
        pkt->id = id;
    }

    /* Step 5: whatever remains is the JSON payload, validated per type. */
    if (i == len)
        return SIOC_OK;
    if (pkt->type == SIO_DISCONNECT)
        return decode_fail(pkt, SIO_REASON_INVALID_PAYLOAD, SIOC_EPROTO);
    size_t start = out->len;
    int err = json_to_msgpack(p + i, len - i, out);
    if (err == SIOC_EPROTO || err == SIOC_EUTF8)
        return decode_fail(pkt, SIO_REASON_INVALID_PAYLOAD, SIOC_EPROTO);
    if (err != SIOC_OK)
        return decode_fail(pkt, SIO_REASON_PAYLOAD_LIMIT, err);
    if (!payload_valid(pkt->type, out->data + start, out->len - start)) {
        buf_truncate(out, start);
        return decode_fail(pkt, SIO_REASON_INVALID_PAYLOAD, SIOC_EPROTO);
    }
    pkt->has_data = true;
    pkt->data.p = out->data + start;
    pkt->data.len = out->len - start;
    return SIOC_OK;
}

/* ---------------------------------------------------------------- encoder ---- */

/* 2.2: binary is replaced by {"_placeholder":true,"num":K}, K in the order JSON.stringify
 * visits it (integer-like keys first, a bin overwritten by a repeated key not at all). json.c
 * reorders map members after writing them, so the callback cannot number bins itself: it
 * writes a marker holding the bin's address and length, and finish_placeholders numbers the
 * markers in their final textual order. 0xff and 0xfe never occur in json_from_msgpack output
 * (it is valid UTF-8), so they delimit a marker unambiguously. */
#define MARK_START 0xff
#define MARK_END 0xfe
#define MARK_LEN (2 + sizeof(uintptr_t) + sizeof(size_t))
#define PLACEHOLDER_PREFIX "{\"_placeholder\":true,\"num\":"

static int marker_cb(void *ctx, const uint8_t *p, size_t n, struct buf *out)
{
    (void)ctx;
    uint8_t mark[MARK_LEN];
    uintptr_t addr = (uintptr_t)p;
    mark[0] = MARK_START;
    memcpy(mark + 1, &addr, sizeof addr);
    memcpy(mark + 1 + sizeof addr, &n, sizeof n);
    mark[MARK_LEN - 1] = MARK_END;
    buf_append(out, mark, MARK_LEN);
    return SIOC_OK;
}

static size_t decimal_len(size_t v)
{
    size_t n = 1;
    for (; v >= 10; v /= 10)
        n++;
    return n;
}

/* out[json_at..len) is the payload with markers. Records the bins in textual order, then
 * rewrites in place, back to front (every step grows, so nothing is overwritten before it
 * is read): each marker becomes its placeholder, and "<count>-" goes in at count_at. Returns
 * the count or a negative error. */
static int finish_placeholders(struct buf *out, size_t count_at, size_t json_at, struct slice *bins,
                               size_t bins_cap)
{
    size_t count = 0, growth = 0;
    for (size_t i = json_at; i < out->len; i++) {
        if (out->data[i] != MARK_START)
            continue;
        if (count == bins_cap)
            return SIOC_ETOOBIG;
        uintptr_t addr;
        memcpy(&addr, out->data + i + 1, sizeof addr);
        memcpy(&bins[count].len, out->data + i + 1 + sizeof addr, sizeof(size_t));
        bins[count].p = (const uint8_t *)addr;
        growth += sizeof PLACEHOLDER_PREFIX - 1 + decimal_len(count) + 1 - MARK_LEN;
        count++;
        i += MARK_LEN - 1;
    }
    if (count == 0)
        return 0;
    growth += decimal_len(count) + 1;
    if (!buf_reserve(out, growth))
        return out->err;
    uint8_t *d = out->data;
    size_t src = out->len, dst = out->len + growth, k = count;
    out->len += growth;
    for (;;) {
        size_t run_end = src;
        while (src > json_at && d[src - 1] != MARK_END)
            src--;
        dst -= run_end - src;
        memmove(d + dst, d + src, run_end - src);
        if (src == json_at)
            break;
        src -= MARK_LEN;
        char ph[64];
        int n = snprintf(ph, sizeof ph, PLACEHOLDER_PREFIX "%zu}", --k);
        dst -= (size_t)n;
        memcpy(d + dst, ph, (size_t)n);
    }
    dst -= json_at - count_at;
    memmove(d + dst, d + count_at, json_at - count_at);
    char num[32];
    int n = snprintf(num, sizeof num, "%zu-", count);
    memcpy(d + count_at, num, (size_t)n);
    return (int)count;
}

static int encode_fail(struct buf *out, size_t start, int err)
{
    buf_truncate(out, start);
    return err;
}

int sio_packet_encode(enum sio_version version, const struct sio_packet *pkt, struct buf *out,
                      struct slice *bins, size_t bins_cap)
{
    enum sio_type type = pkt->type;
    if ((unsigned)type > SIO_BINARY_ACK)
        return SIOC_EINVAL;
    if (type == SIO_BINARY_EVENT)
        type = SIO_EVENT;
    else if (type == SIO_BINARY_ACK)
        type = SIO_ACK;
    if (pkt->nsp.len > 0 && pkt->nsp.p[0] != '/')
        return SIOC_EINVAL;
    if (pkt->has_data && type == SIO_DISCONNECT)
        return SIOC_EINVAL;

    struct mp_reader r = {NULL, 0, 0};
    if (pkt->has_data) {
        struct mp_item it;
        mp_reader_init(&r, pkt->data.p, pkt->data.len);
        int err = mp_read(&r, &it);
        if (err != SIOC_OK)
            return err;
        /* 2.1: a v5 CONNECT_ERROR carries {"message",...} (or a string); v4 any JSON (2.7) */
        if (version == SIO_V5 && type == SIO_CONNECT_ERROR && it.kind != MP_MAP &&
            it.kind != MP_STR)
            return SIOC_EINVAL;
        mp_reader_init(&r, pkt->data.p, pkt->data.len);
    }

    size_t start = out->len;
    buf_append_byte(out, (uint8_t)('0' + type));
    size_t count_at = out->len;
    if (pkt->nsp.len > 0 && !(pkt->nsp.len == 1 && pkt->nsp.p[0] == '/')) {
        buf_append(out, pkt->nsp.p, pkt->nsp.len);
        buf_append_byte(out, ',');
    }
    if (pkt->has_id)
        buf_append_u64(out, pkt->id);
    if (out->err != SIOC_OK)
        return encode_fail(out, start, out->err);

    if (!pkt->has_data)
        return 0;
    size_t json_at = out->len;
    bool binary_capable = type == SIO_EVENT || type == SIO_ACK;
    struct json_write_opts opts = {marker_cb, NULL};
    int err = json_from_msgpack(&r, binary_capable ? &opts : NULL, out);
    if (err != SIOC_OK)
        return encode_fail(out, start, err);
    if (r.pos != r.len)
        return encode_fail(out, start, SIOC_EINVAL);
    if (!binary_capable)
        return 0;
    int count = finish_placeholders(out, count_at, json_at, bins, bins_cap);
    if (count < 0)
        return encode_fail(out, start, count);
    if (count > 0) /* 2.2: EVENT becomes BINARY_EVENT (ACK BINARY_ACK) only with binary */
        out->data[start] = (uint8_t)('0' + (type == SIO_EVENT ? SIO_BINARY_EVENT : SIO_BINARY_ACK));
    return count;
}

/* -------------------------------------------------------------- assembler ---- */

void sio_assembler_init(struct sio_assembler *a, size_t limit)
{
    memset(a, 0, sizeof *a);
    buf_init(&a->store, limit);
}

void sio_assembler_deinit(struct sio_assembler *a)
{
    buf_deinit(&a->store);
    a->pending = false;
}

void sio_assembler_reset(struct sio_assembler *a)
{
    buf_reset(&a->store);
    a->pending = false;
    a->received = 0;
    a->reason = SIO_REASON_NONE;
}

bool sio_assembler_pending(const struct sio_assembler *a)
{
    return a->pending;
}

enum sio_reason sio_assembler_reason(const struct sio_assembler *a)
{
    return a->reason;
}

static int store_fail(struct sio_assembler *a)
{
    int err = a->store.err;
    sio_assembler_reset(a);
    a->reason = SIO_REASON_PAYLOAD_LIMIT;
    return err;
}

int sio_assembler_start(struct sio_assembler *a, const struct sio_packet *pkt)
{
    if (a->pending || (pkt->type != SIO_BINARY_EVENT && pkt->type != SIO_BINARY_ACK) ||
        pkt->attachments == 0 || pkt->attachments > SIO_MAX_ATTACHMENTS)
        return SIOC_EINVAL;
    sio_assembler_reset(a);
    a->head = *pkt;
    a->nsp_len = pkt->nsp.len;
    a->query_len = pkt->query.len;
    a->data_len = pkt->has_data ? pkt->data.len : 0;
    buf_append(&a->store, pkt->nsp.p, a->nsp_len);
    buf_append(&a->store, pkt->query.p, a->query_len);
    buf_append(&a->store, pkt->data.p, a->data_len);
    if (a->store.err != SIOC_OK)
        return store_fail(a);
    a->pending = true;
    return SIOC_OK;
}

int sio_assembler_add(struct sio_assembler *a, const uint8_t *p, size_t n)
{
    if (!a->pending || a->received == a->head.attachments) {
        a->reason = SIO_REASON_UNEXPECTED_BINARY;
        return SIOC_EPROTO;
    }
    buf_append(&a->store, p, n);
    if (a->store.err != SIOC_OK)
        return store_fail(a);
    a->att_end[a->received++] = a->store.len;
    a->reason = SIO_REASON_NONE;
    return (int)(a->head.attachments - a->received);
}

/* Node's _reconstructPacket test for one object: `_placeholder === true` and a `num` that
 * indexes an attachment. Reads the map whose entries start at r (count pairs); returns 1 (a
 * placeholder, *num set), 0 (an ordinary map) or SIOC_EPROTO (a placeholder with a bad num). */
static int placeholder_num(struct mp_reader *r, uint32_t count, unsigned attachments, unsigned *num)
{
    bool placeholder = false, num_ok = false;
    for (uint32_t k = 0; k < count; k++) {
        struct mp_item key, val;
        size_t key_pos = r->pos;
        if (mp_read(r, &key) != SIOC_OK)
            return SIOC_EPROTO;
        bool is_ph = mp_item_is_str(&key, "_placeholder");
        bool is_num = mp_item_is_str(&key, "num");
        if (!is_ph && !is_num) {
            r->pos = key_pos; /* skip the whole key (a container key has contents) */
            if (mp_skip(r) != SIOC_OK || mp_skip(r) != SIOC_OK)
                return SIOC_EPROTO;
            continue;
        }
        size_t before = r->pos;
        if (mp_read(r, &val) != SIOC_OK)
            return SIOC_EPROTO;
        if (val.kind == MP_ARRAY || val.kind == MP_MAP) {
            r->pos = before;
            if (mp_skip(r) != SIOC_OK)
                return SIOC_EPROTO;
        }
        if (is_ph) { /* duplicate keys: the last value wins, as with JSON.parse */
            placeholder = val.kind == MP_BOOL && val.boolean;
        } else {
            /* typeof num === "number" && num >= 0 && num < buffers.length, and (sioc) an
             * integer: Node maps a fraction to buffers[0.5] === undefined */
            int64_t v;
            num_ok = mp_item_to_i64(&val, &v) && v >= 0 && (uint64_t)v < attachments;
            if (num_ok)
                *num = (unsigned)v;
        }
    }
    if (!placeholder)
        return 0;
    return num_ok ? 1 : SIOC_EPROTO;
}

int sio_assembler_finish(struct sio_assembler *a, struct sio_packet *pkt, struct buf *out)
{
    if (!a->pending || a->received != a->head.attachments)
        return SIOC_EINVAL;
    a->pending = false;
    const uint8_t *base = a->store.data;
    const uint8_t *data = base + a->nsp_len + a->query_len;
    size_t start = out->len;

    /* The msgpack is a pre-order walk of the value, so it can be rewritten in one linear pass:
     * copy item bytes through, and replace each placeholder map (header and entries) by a bin. */
    struct mp_reader r;
    mp_reader_init(&r, data, a->data_len);
    size_t copied = 0;
    while (r.pos < r.len) {
        size_t item_start = r.pos;
        struct mp_item it;
        if (mp_read(&r, &it) != SIOC_OK)
            break; /* cannot happen: the data came from json_to_msgpack */
        if (it.kind != MP_MAP)
            continue;
        struct mp_reader look = r;
        unsigned num = 0;
        int ph = placeholder_num(&look, it.len, a->head.attachments, &num);
        if (ph == 0)
            continue;
        if (ph < 0) {
            buf_truncate(out, start);
            a->reason = SIO_REASON_ILLEGAL_PLACEHOLDER;
            return SIOC_EPROTO;
        }
        size_t att_start = num == 0 ? a->nsp_len + a->query_len + a->data_len : a->att_end[num - 1];
        buf_append(out, data + copied, item_start - copied);
        mp_write_bin(out, base + att_start, a->att_end[num] - att_start);
        r.pos = look.pos;
        copied = r.pos;
    }
    buf_append(out, data + copied, a->data_len - copied);
    if (out->err != SIOC_OK) {
        int err = out->err;
        buf_truncate(out, start);
        a->reason = SIO_REASON_PAYLOAD_LIMIT;
        return err;
    }
    *pkt = a->head;
    pkt->type = a->head.type == SIO_BINARY_EVENT ? SIO_EVENT : SIO_ACK;
    pkt->nsp.p = a->nsp_len > 0 ? base : root_nsp;
    pkt->nsp.len = a->nsp_len > 0 ? a->nsp_len : 1;
    pkt->query.p = base + a->nsp_len;
    pkt->query.len = a->query_len;
    pkt->has_data = a->data_len > 0;
    pkt->data.p = pkt->has_data ? out->data + start : NULL;
    pkt->data.len = out->len - start;
    pkt->reason = SIO_REASON_NONE;
    a->reason = SIO_REASON_NONE;
    return SIOC_OK;
}
