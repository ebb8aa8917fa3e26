/* mp.h: MessagePack ("mp") writer and zero-copy reader (msgpack spec, 2013 str/bin formats).
 * The writer produces exactly what notepack.io 3 (the Socket.IO Redis adapter's codec) writes:
 * smallest integer forms, float64 for every non-integer, str8 for short strings (PROTOCOL.md 3.4).
 * The reader never allocates: items point into the input, and every declared length or
 * element count is checked against the bytes that remain before anything trusts it. */
#ifndef SIOC_MP_H
#define SIOC_MP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* ---- writer: each call appends one header (and for str/bin the bytes) to `b` ---- */
void mp_write_nil(struct buf *b);
void mp_write_bool(struct buf *b, bool v);
void mp_write_int(struct buf *b, int64_t v);   /* negative values use signed forms */
void mp_write_uint(struct buf *b, uint64_t v); /* fixint, cc, cd, ce, cf */
/* A JavaScript number as notepack writes it: finite integral values in [-2^63, 2^64) become
 * integers (-0 becomes 0), everything else (fractions, NaN, +-Infinity, huge) float64. */
void mp_write_number(struct buf *b, double v);
void mp_write_float64(struct buf *b, double v); /* always cb + 8 bytes */
void mp_write_str(struct buf *b, const void *p, size_t n);
void mp_write_cstr(struct buf *b, const char *s);
void mp_write_bin(struct buf *b, const void *p, size_t n);
void mp_write_array(struct buf *b, uint32_t n); /* n elements must follow */
void mp_write_map(struct buf *b, uint32_t n);   /* n key/value pairs must follow */

/* ---- reader ---- */
enum mp_kind {
    MP_NIL,
    MP_BOOL,
    MP_UINT,  /* positive fixint, uint8..uint64: value in `u` */
    MP_INT,   /* negative fixint, int8..int64 (may hold a non-negative value): value in `i` */
    MP_FLOAT, /* float32 or float64, widened: value in `f` */
    MP_STR,   /* `data`/`len` point at the bytes (not validated as UTF-8) */
    MP_BIN,   /* `data`/`len` */
    MP_ARRAY, /* `len` elements follow */
    MP_MAP,   /* `len` key/value pairs follow */
    MP_EXT,   /* `ext_type`, `data`/`len` */
};

struct mp_item {
    enum mp_kind kind;
    bool boolean;
    int8_t ext_type;
    uint32_t len;
    uint64_t u;
    int64_t i;
    double f;
    const uint8_t *data; /* points into the reader's input; valid as long as that input */
};

struct mp_reader {
    const uint8_t *p;
    size_t len;
    size_t pos; /* bytes consumed so far */
};

void mp_reader_init(struct mp_reader *r, const uint8_t *p, size_t len);
/* Reads one item header (plus the payload slice of str/bin/ext). Returns SIOC_OK;
 * SIOC_EAGAIN if the input ends inside the item; SIOC_EPROTO for the never-used byte 0xc1 or
 * an array/map whose declared count exceeds the bytes left (each element needs >= 1 byte).
 * On error the reader does not advance. */
int mp_read(struct mp_reader *r, struct mp_item *it);
/* Skips one complete value, containers included (iteratively: no depth limit needed).
 * Returns SIOC_OK or the first error of mp_read (the reader position is then unspecified). */
int mp_skip(struct mp_reader *r);
/* Checks that p[0..len) starts with one complete, well-formed value; stores its size in
 * *consumed. Returns SIOC_OK or an mp_read error. */
int mp_validate(const uint8_t *p, size_t len, size_t *consumed);
/* Integer view of an item: true for MP_UINT/MP_INT values that fit an int64_t, and for
 * MP_FLOAT values that are integral and fit (as a JavaScript reader would see them). */
bool mp_item_to_i64(const struct mp_item *it, int64_t *out);
/* Numeric view as a JavaScript number (double) for MP_UINT, MP_INT and MP_FLOAT. */
bool mp_item_to_double(const struct mp_item *it, double *out);
/* True when the item is a string equal to the NUL-terminated `s`. */
bool mp_item_is_str(const struct mp_item *it, const char *s);

/* Readers for a value that is whole in memory (a Redis message, a stream field): running out of
 * bytes inside it is SIOC_EPROTO there, not SIOC_EAGAIN. Otherwise as mp_read / mp_skip. */
int mp_read_whole(struct mp_reader *r, struct mp_item *it);
int mp_skip_whole(struct mp_reader *r);
/* Skips one value and gives its MessagePack bytes in *out. */
int mp_read_raw(struct mp_reader *r, struct slice *out);
/* A string's bytes in *out; SIOC_EPROTO for any other kind. */
int mp_read_str(struct mp_reader *r, struct slice *out);
/* A map header's pair count in *n; SIOC_EPROTO for any other kind. */
int mp_read_map_len(struct mp_reader *r, uint32_t *n);
/* An array header's element count in *n; SIOC_EPROTO for any other kind. */
int mp_read_array_len(struct mp_reader *r, uint32_t *n);
/* Consumes a nil if one is next (JS null/undefined); false (nothing consumed) otherwise. */
bool mp_take_nil(struct mp_reader *r);
/* Peek at the next value's first byte without consuming anything: true when it is a nil, an
 * array or a map header; false for any other kind and at the end of the input. (Inline: the
 * decoders ask before every optional field.) */
static inline bool mp_next_is_nil(const struct mp_reader *r)
{
    return r->pos < r->len && r->p[r->pos] == 0xc0;
}

/* fixarray 0x90-0x9f, array16 0xdc, array32 0xdd */
static inline bool mp_next_is_array(const struct mp_reader *r)
{
    return r->pos < r->len &&
           ((r->p[r->pos] & 0xf0) == 0x90 || r->p[r->pos] == 0xdc || r->p[r->pos] == 0xdd);
}

/* fixmap 0x80-0x8f, map16 0xde, map32 0xdf */
static inline bool mp_next_is_map(const struct mp_reader *r)
{
    return r->pos < r->len &&
           ((r->p[r->pos] & 0xf0) == 0x80 || r->p[r->pos] == 0xde || r->p[r->pos] == 0xdf);
}

#endif
