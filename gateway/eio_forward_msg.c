/* eio_forward_msg.c: encoding and decoding of the gateway-to-gateway forwarding messages (see
 * eio_forward_msg.h; the format is docs/contracts.md "Polling without sticky sessions"). */
#include "gateway/eio_forward_msg.h"

#include <string.h>

#include "common/error.h"
#include "common/mp.h"

static const char *const type_names[] = {
    [FWD_REQ] = "eio-req", [FWD_UP] = "eio-up",     [FWD_CANCEL] = "eio-cancel",
    [FWD_RES] = "eio-res", [FWD_MISS] = "eio-miss", [FWD_DOWN] = "eio-down",
    [FWD_END] = "eio-end",
};

/* Which fields each type carries. */
enum {
    F_FROM = 1,
    F_SID = 2,
    F_WS = 4,
    F_REQ = 8,
    F_DATA = 16,
    F_STATUS = 32,
    F_HEADERS = 64,
    F_BODY = 128,
};
static const unsigned type_fields[] = {
    [FWD_REQ] = F_FROM | F_SID | F_WS | F_REQ,
    [FWD_UP] = F_FROM | F_DATA,
    [FWD_CANCEL] = F_FROM,
    [FWD_RES] = F_STATUS | F_HEADERS | F_BODY,
    [FWD_MISS] = 0,
    [FWD_DOWN] = F_DATA,
    [FWD_END] = 0,
};

static unsigned popcount(unsigned v)
{
    unsigned n = 0;
    for (; v != 0; v &= v - 1)
        n++;
    return n;
}

int fwd_msg_encode(struct buf *out, const struct fwd_msg *m)
{
    unsigned f = type_fields[m->type];
    mp_write_map(out, 2 + popcount(f));
    mp_write_cstr(out, "t");
    mp_write_cstr(out, type_names[m->type]);
    mp_write_cstr(out, "id");
    mp_write_uint(out, m->id);
    if (f & F_FROM) {
        mp_write_cstr(out, "from");
        mp_write_str(out, m->from, m->from_len);
    }
    if (f & F_SID) {
        mp_write_cstr(out, "sid");
        mp_write_str(out, m->sid, m->sid_len);
    }
    if (f & F_WS) {
        mp_write_cstr(out, "ws");
        mp_write_bool(out, m->ws);
    }
    if (f & F_STATUS) {
        mp_write_cstr(out, "status");
        mp_write_uint(out, (uint64_t)m->status);
    }
    if (f & F_HEADERS) {
        mp_write_cstr(out, "headers");
        mp_write_array(out, (uint32_t)(2 * m->header_count));
        for (size_t i = 0; i < m->header_count; i++) {
            mp_write_str(out, m->headers[i].name, m->headers[i].name_len);
            mp_write_str(out, m->headers[i].value, m->headers[i].value_len);
        }
    }
    const char *data_key = (f & F_REQ)    ? "req"
                           : (f & F_BODY) ? "body"
                           : (f & F_DATA) ? "data"
                                          : NULL;
    if (data_key != NULL) {
        mp_write_cstr(out, data_key);
        mp_write_bin(out, m->data, m->data_len);
    }
    return out->err;
}

static int read_headers(struct mp_reader *r, const struct mp_item *it, struct fwd_msg *m)
{
    if (it->kind != MP_ARRAY || it->len % 2 != 0 || it->len / 2 > FWD_MAX_HEADERS)
        return SIOC_EPROTO;
    m->header_count = it->len / 2;
    for (size_t i = 0; i < m->header_count; i++) {
        struct mp_item n, v;
        if (mp_read(r, &n) != SIOC_OK || n.kind != MP_STR || mp_read(r, &v) != SIOC_OK ||
            v.kind != MP_STR)
            return SIOC_EPROTO;
        m->headers[i].name = n.data;
        m->headers[i].name_len = n.len;
        m->headers[i].value = v.data;
        m->headers[i].value_len = v.len;
    }
    return SIOC_OK;
}

/* Reads the value of `key` into m; `seen` collects the fields read. */
static int read_field(struct mp_reader *r, const struct mp_item *key, struct fwd_msg *m,
                      unsigned *seen)
{
    struct mp_item v;
    if (mp_read(r, &v) != SIOC_OK)
        return SIOC_EPROTO;
    bool str = v.kind == MP_STR, bin = v.kind == MP_BIN || v.kind == MP_STR;
    if (mp_item_is_str(key, "from") && str && v.len <= FWD_TAG_MAX) {
        m->from = v.data, m->from_len = v.len, *seen |= F_FROM;
    } else if (mp_item_is_str(key, "sid") && str) {
        m->sid = v.data, m->sid_len = v.len, *seen |= F_SID;
    } else if (mp_item_is_str(key, "ws") && v.kind == MP_BOOL) {
        m->ws = v.boolean, *seen |= F_WS;
    } else if (mp_item_is_str(key, "status") && v.kind == MP_UINT && v.u >= 100 && v.u <= 599) {
        m->status = (int)v.u, *seen |= F_STATUS;
    } else if (mp_item_is_str(key, "headers")) {
        if (read_headers(r, &v, m) != SIOC_OK)
            return SIOC_EPROTO;
        *seen |= F_HEADERS;
    } else if ((mp_item_is_str(key, "req") || mp_item_is_str(key, "data") ||
                mp_item_is_str(key, "body")) &&
               bin) {
        m->data = v.data, m->data_len = v.len;
        *seen |= mp_item_is_str(key, "req") ? F_REQ : mp_item_is_str(key, "body") ? F_BODY : F_DATA;
    } else if (mp_item_is_str(key, "from") || mp_item_is_str(key, "sid") ||
               mp_item_is_str(key, "ws") || mp_item_is_str(key, "status") ||
               mp_item_is_str(key, "req") || mp_item_is_str(key, "data") ||
               mp_item_is_str(key, "body")) {
        return SIOC_EPROTO; /* a known key with a value of the wrong kind */
    } else {
        /* an unknown key (forward compatibility): its value's header is read; skip the rest */
        if ((v.kind == MP_ARRAY || v.kind == MP_MAP) && v.len > 0) {
            size_t items = v.kind == MP_MAP ? 2 * (size_t)v.len : v.len;
            for (size_t i = 0; i < items; i++)
                if (mp_skip(r) != SIOC_OK)
                    return SIOC_EPROTO;
        }
    }
    return SIOC_OK;
}

int fwd_msg_decode(const uint8_t *p, size_t len, struct fwd_msg *m)
{
    memset(m, 0, sizeof *m);
    struct mp_reader r;
    mp_reader_init(&r, p, len);
    struct mp_item map;
    if (mp_read(&r, &map) != SIOC_OK || map.kind != MP_MAP)
        return SIOC_EPROTO;
    int type = -1;
    bool has_id = false;
    unsigned seen = 0;
    for (uint32_t i = 0; i < map.len; i++) {
        struct mp_item key;
        if (mp_read(&r, &key) != SIOC_OK || key.kind != MP_STR)
            return SIOC_EPROTO;
        if (mp_item_is_str(&key, "t")) {
            struct mp_item v;
            if (mp_read(&r, &v) != SIOC_OK || v.kind != MP_STR)
                return SIOC_EPROTO;
            type = -2;
            for (size_t k = 0; k < sizeof type_names / sizeof type_names[0]; k++)
                if (mp_item_is_str(&v, type_names[k]))
                    type = (int)k;
        } else if (mp_item_is_str(&key, "id")) {
            struct mp_item v;
            if (mp_read(&r, &v) != SIOC_OK || v.kind != MP_UINT)
                return SIOC_EPROTO;
            m->id = v.u;
            has_id = true;
        } else if (read_field(&r, &key, m, &seen) != SIOC_OK) {
            return SIOC_EPROTO;
        }
    }
    if (type == -2)
        return SIOC_ENOTSUP;
    if (type < 0 || !has_id || r.pos != len)
        return SIOC_EPROTO;
    m->type = (enum fwd_type)type;
    unsigned need = type_fields[m->type];
    if ((seen & need) != need)
        return SIOC_EPROTO;
    return SIOC_OK;
}
