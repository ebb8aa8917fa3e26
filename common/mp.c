/* mp.c: MessagePack writer (notepack.io-identical) and bounded zero-copy reader (see mp.h). */
#include "common/mp.h"

#include <math.h>
#include <string.h>

#include "common/error.h"

static void put_be(struct buf *b, uint8_t tag, uint64_t v, int nbytes)
{
    uint8_t tmp[9];
    tmp[0] = tag;
    for (int k = 0; k < nbytes; k++)
        tmp[1 + k] = (uint8_t)(v >> (8 * (nbytes - 1 - k)));
    buf_append(b, tmp, (size_t)nbytes + 1);
}

void mp_write_nil(struct buf *b)
{
    buf_append_byte(b, 0xc0);
}

void mp_write_bool(struct buf *b, bool v)
{
    buf_append_byte(b, v ? 0xc3 : 0xc2);
}

void mp_write_uint(struct buf *b, uint64_t v)
{
    if (v < 0x80)
        buf_append_byte(b, (uint8_t)v);
    else if (v <= 0xff)
        put_be(b, 0xcc, v, 1);
    else if (v <= 0xffff)
        put_be(b, 0xcd, v, 2);
    else if (v <= 0xffffffffu)
        put_be(b, 0xce, v, 4);
    else
        put_be(b, 0xcf, v, 8);
}

void mp_write_int(struct buf *b, int64_t v)
{
    if (v >= 0)
        mp_write_uint(b, (uint64_t)v);
    else if (v >= -32)
        buf_append_byte(b, (uint8_t)(int8_t)v);
    else if (v >= INT8_MIN)
        put_be(b, 0xd0, (uint64_t)v, 1);
    else if (v >= INT16_MIN)
        put_be(b, 0xd1, (uint64_t)v, 2);
    else if (v >= INT32_MIN)
        put_be(b, 0xd2, (uint64_t)v, 4);
    else
        put_be(b, 0xd3, (uint64_t)v, 8);
}

void mp_write_float64(struct buf *b, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    put_be(b, 0xcb, bits, 8);
}

void mp_write_number(struct buf *b, double v)
{
    /* notepack: Math.floor(v) !== v || !isFinite(v) -> float64; otherwise an integer form.
     * Integers outside [-2^63, 2^64) are written as float64 too (notepack would write a
     * truncated cf/d3, a quirk not worth copying). */
    if (!isfinite(v) || floor(v) != v || v >= 18446744073709551616.0 || v < -9223372036854775808.0)
        mp_write_float64(b, v);
    else if (v >= 0)
        mp_write_uint(b, (uint64_t)v);
    else
        mp_write_int(b, (int64_t)v);
}

void mp_write_str(struct buf *b, const void *p, size_t n)
{
    if (n < 32)
        buf_append_byte(b, (uint8_t)(0xa0 | n));
    else if (n <= 0xff)
        put_be(b, 0xd9, n, 1);
    else if (n <= 0xffff)
        put_be(b, 0xda, n, 2);
    else
        put_be(b, 0xdb, n, 4);
    buf_append(b, p, n);
}

void mp_write_cstr(struct buf *b, const char *s)
{
    mp_write_str(b, s, strlen(s));
}

void mp_write_bin(struct buf *b, const void *p, size_t n)
{
    if (n <= 0xff)
        put_be(b, 0xc4, n, 1);
    else if (n <= 0xffff)
        put_be(b, 0xc5, n, 2);
    else
        put_be(b, 0xc6, n, 4);
    buf_append(b, p, n);
}

void mp_write_array(struct buf *b, uint32_t n)
{
    if (n < 16)
        buf_append_byte(b, (uint8_t)(0x90 | n));
    else if (n <= 0xffff)
        put_be(b, 0xdc, n, 2);
    else
        put_be(b, 0xdd, n, 4);
}

void mp_write_map(struct buf *b, uint32_t n)
{
    if (n < 16)
        buf_append_byte(b, (uint8_t)(0x80 | n));
    else if (n <= 0xffff)
        put_be(b, 0xde, n, 2);
    else
        put_be(b, 0xdf, n, 4);
}

/* ---- reader ---- */

void mp_reader_init(struct mp_reader *r, const uint8_t *p, size_t len)
{
    r->p = p;
    r->len = len;
    r->pos = 0;
}

static uint64_t get_be(const uint8_t *p, int nbytes)
{
    uint64_t v = 0;
    for (int k = 0; k < nbytes; k++)
        v = (v << 8) | p[k];
    return v;
}

/* Sign-extends the low `nbytes` bytes of v. */
static int64_t sign_extend(uint64_t v, int nbytes)
{
    if (nbytes == 8)
        return (int64_t)v;
    uint64_t sign = (uint64_t)1 << (8 * nbytes - 1);
    return (int64_t)((v ^ sign) - sign);
}

int mp_read(struct mp_reader *r, struct mp_item *it)
{
    size_t left = r->len - r->pos;
    if (left == 0)
        return SIOC_EAGAIN;
    const uint8_t *p = r->p + r->pos;
    uint8_t tag = p[0];
    size_t head = 1;    /* header bytes, tag included */
    size_t payload = 0; /* bytes of str/bin/ext data after the header */
    int lenbytes = 0;   /* width of an explicit length field */
    memset(it, 0, sizeof *it);

    if (tag <= 0x7f) {
        it->kind = MP_UINT;
        it->u = tag;
    } else if (tag >= 0xe0) {
        it->kind = MP_INT;
        it->i = (int64_t)tag - 256; /* negative fixint 0xe0..0xff is -32..-1 */
    } else if ((tag & 0xf0) == 0x80) {
        it->kind = MP_MAP;
        it->len = tag & 0x0f;
    } else if ((tag & 0xf0) == 0x90) {
        it->kind = MP_ARRAY;
        it->len = tag & 0x0f;
    } else if ((tag & 0xe0) == 0xa0) {
        it->kind = MP_STR;
        payload = tag & 0x1f;
    } else {
        switch (tag) {
        case 0xc0: it->kind = MP_NIL; break;
        case 0xc2:
        case 0xc3:
            it->kind = MP_BOOL;
            it->boolean = tag == 0xc3;
            break;
        case 0xc4:
        case 0xc5:
        case 0xc6:
            it->kind = MP_BIN;
            lenbytes = 1 << (tag - 0xc4);
            break;
        case 0xd9:
        case 0xda:
        case 0xdb:
            it->kind = MP_STR;
            lenbytes = 1 << (tag - 0xd9);
            break;
        case 0xdc:
        case 0xdd:
            it->kind = MP_ARRAY;
            lenbytes = tag == 0xdc ? 2 : 4;
            break;
        case 0xde:
        case 0xdf:
            it->kind = MP_MAP;
            lenbytes = tag == 0xde ? 2 : 4;
            break;
        case 0xc7:
        case 0xc8:
        case 0xc9:
            it->kind = MP_EXT;
            lenbytes = 1 << (tag - 0xc7);
            head = 2;
            break;
        case 0xd4:
        case 0xd5:
        case 0xd6:
        case 0xd7:
        case 0xd8:
            it->kind = MP_EXT;
            payload = (size_t)1 << (tag - 0xd4);
            head = 2;
            break;
        case 0xcc:
        case 0xcd:
        case 0xce:
        case 0xcf:
            it->kind = MP_UINT;
            head = 1 + ((size_t)1 << (tag - 0xcc));
            break;
        case 0xd0:
        case 0xd1:
        case 0xd2:
        case 0xd3:
            it->kind = MP_INT;
            head = 1 + ((size_t)1 << (tag - 0xd0));
            break;
        case 0xca:
            it->kind = MP_FLOAT;
            head = 5;
            break;
        case 0xcb:
            it->kind = MP_FLOAT;
            head = 9;
            break;
        default: return SIOC_EPROTO; /* 0xc1: never used */
        }
    }

    if (lenbytes > 0) {
        head += (size_t)lenbytes;
        if (left < head)
            return SIOC_EAGAIN;
        uint64_t n = get_be(p + head - (size_t)lenbytes - (it->kind == MP_EXT ? 1 : 0), lenbytes);
        if (it->kind == MP_ARRAY || it->kind == MP_MAP)
            it->len = (uint32_t)n;
        else
            payload = (size_t)n;
    }
    if (left < head)
        return SIOC_EAGAIN;

    switch (it->kind) {
    case MP_UINT:
        if (tag >= 0xcc)
            it->u = get_be(p + 1, (int)head - 1);
        break;
    case MP_INT:
        if (tag >= 0xd0 && tag <= 0xd3)
            it->i = sign_extend(get_be(p + 1, (int)head - 1), (int)head - 1);
        break;
    case MP_FLOAT:
        if (tag == 0xca) {
            uint32_t bits = (uint32_t)get_be(p + 1, 4);
            float f;
            memcpy(&f, &bits, sizeof f);
            it->f = f;
        } else {
            uint64_t bits = get_be(p + 1, 8);
            memcpy(&it->f, &bits, sizeof it->f);
        }
        break;
    case MP_EXT: it->ext_type = (int8_t)p[head - 1]; break;
    case MP_ARRAY:
    case MP_MAP: {
        /* Each element takes at least one byte: a count beyond the input is a lie, and
         * trusting it is how a 5-byte message asks for gigabytes. */
        uint64_t need = (uint64_t)it->len * (it->kind == MP_MAP ? 2u : 1u);
        if (need > left - head)
            return SIOC_EPROTO;
        break;
    }
    default: break;
    }

    if (it->kind == MP_STR || it->kind == MP_BIN || it->kind == MP_EXT) {
        if (payload > left - head)
            return SIOC_EAGAIN;
        it->data = p + head;
        it->len = (uint32_t)payload;
    }
    r->pos += head + payload;
    return SIOC_OK;
}

int mp_skip(struct mp_reader *r)
{
    uint64_t pending = 1;
    while (pending > 0) {
        struct mp_item it;
        int rc = mp_read(r, &it);
        if (rc != SIOC_OK)
            return rc;
        pending--;
        if (it.kind == MP_ARRAY)
            pending += it.len;
        else if (it.kind == MP_MAP)
            pending += (uint64_t)it.len * 2;
    }
    return SIOC_OK;
}

int mp_validate(const uint8_t *p, size_t len, size_t *consumed)
{
    struct mp_reader r;
    mp_reader_init(&r, p, len);
    int rc = mp_skip(&r);
    if (rc == SIOC_OK)
        *consumed = r.pos;
    return rc;
}

bool mp_item_to_i64(const struct mp_item *it, int64_t *out)
{
    switch (it->kind) {
    case MP_UINT:
        if (it->u > (uint64_t)INT64_MAX)
            return false;
        *out = (int64_t)it->u;
        return true;
    case MP_INT: *out = it->i; return true;
    case MP_FLOAT:
        if (!isfinite(it->f) || floor(it->f) != it->f || it->f < -9223372036854775808.0 ||
            it->f >= 9223372036854775808.0)
            return false;
        *out = (int64_t)it->f;
        return true;
    default: return false;
    }
}

bool mp_item_to_double(const struct mp_item *it, double *out)
{
    switch (it->kind) {
    case MP_UINT: *out = (double)it->u; return true;
    case MP_INT: *out = (double)it->i; return true;
    case MP_FLOAT: *out = it->f; return true;
    default: return false;
    }
}

bool mp_item_is_str(const struct mp_item *it, const char *s)
{
    size_t n = strlen(s);
    return it->kind == MP_STR && it->len == n && memcmp(it->data, s, n) == 0;
}

int mp_read_whole(struct mp_reader *r, struct mp_item *it)
{
    int err = mp_read(r, it);
    return err == SIOC_EAGAIN ? SIOC_EPROTO : err;
}

int mp_skip_whole(struct mp_reader *r)
{
    int err = mp_skip(r);
    return err == SIOC_EAGAIN ? SIOC_EPROTO : err;
}

int mp_read_raw(struct mp_reader *r, struct slice *out)
{
    size_t start = r->pos;
    int err = mp_skip_whole(r);
    if (err != SIOC_OK)
        return err;
    *out = (struct slice){r->p + start, r->pos - start};
    return SIOC_OK;
}

int mp_read_str(struct mp_reader *r, struct slice *out)
{
    struct mp_item it;
    int err = mp_read_whole(r, &it);
    if (err != SIOC_OK)
        return err;
    if (it.kind != MP_STR)
        return SIOC_EPROTO;
    *out = (struct slice){it.data, it.len};
    return SIOC_OK;
}

/* A container header of `kind` (MP_MAP or MP_ARRAY): its count in *n. */
static int read_container_len(struct mp_reader *r, enum mp_kind kind, uint32_t *n)
{
    struct mp_item it;
    int err = mp_read_whole(r, &it);
    if (err != SIOC_OK)
        return err;
    if (it.kind != kind)
        return SIOC_EPROTO;
    *n = it.len;
    return SIOC_OK;
}

int mp_read_map_len(struct mp_reader *r, uint32_t *n)
{
    return read_container_len(r, MP_MAP, n);
}

int mp_read_array_len(struct mp_reader *r, uint32_t *n)
{
    return read_container_len(r, MP_ARRAY, n);
}

bool mp_take_nil(struct mp_reader *r)
{
    if (!mp_next_is_nil(r))
        return false;
    r->pos++;
    return true;
}
