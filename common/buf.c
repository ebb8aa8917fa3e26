/* buf.c: growable byte buffer with a sticky error (see buf.h). */
#include "common/buf.h"

#include <stdlib.h>
#include <string.h>

#include "common/error.h"

void buf_init(struct buf *b, size_t limit)
{
    memset(b, 0, sizeof *b);
    b->limit = limit;
}

void buf_deinit(struct buf *b)
{
    size_t limit = b->limit;
    free(b->data);
    buf_init(b, limit);
}

void buf_reset(struct buf *b)
{
    b->len = 0;
    b->err = SIOC_OK;
}

bool buf_reserve(struct buf *b, size_t extra)
{
    if (b->err != SIOC_OK)
        return false;
    if (extra > SIZE_MAX - b->len || (b->limit != 0 && b->len + extra > b->limit)) {
        b->err = SIOC_ETOOBIG;
        return false;
    }
    size_t need = b->len + extra;
    if (need <= b->cap)
        return true;
    size_t cap = b->cap < 64 ? 64 : b->cap;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (b->limit != 0 && cap > b->limit)
        cap = b->limit;
    uint8_t *data = realloc(b->data, cap);
    if (data == NULL) {
        b->err = SIOC_ENOMEM;
        return false;
    }
    b->data = data;
    b->cap = cap;
    return true;
}

void buf_append(struct buf *b, const void *p, size_t n)
{
    if (n == 0 || !buf_reserve(b, n))
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void buf_append_byte(struct buf *b, uint8_t c)
{
    if (!buf_reserve(b, 1))
        return;
    b->data[b->len++] = c;
}

void buf_append_cstr(struct buf *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

void buf_append_u64(struct buf *b, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[sizeof tmp - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    buf_append(b, tmp + sizeof tmp - n, n);
}

void buf_append_i64(struct buf *b, int64_t v)
{
    if (v < 0) {
        buf_append_byte(b, '-');
        /* negate in unsigned arithmetic so INT64_MIN does not overflow */
        buf_append_u64(b, (uint64_t)0 - (uint64_t)v);
    } else {
        buf_append_u64(b, (uint64_t)v);
    }
}

void buf_truncate(struct buf *b, size_t len)
{
    if (len < b->len)
        b->len = len;
}

uint8_t *buf_detach(struct buf *b, size_t *len)
{
    uint8_t *data = b->data;
    *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    b->err = SIOC_OK;
    return data;
}

char *slice_strdup(struct slice s)
{
    if (s.len > 0 && memchr(s.p, '\0', s.len) != NULL)
        return NULL;
    char *out = malloc(s.len + 1);
    if (out == NULL)
        return NULL;
    if (s.len > 0)
        memcpy(out, s.p, s.len);
    out[s.len] = '\0';
    return out;
}
