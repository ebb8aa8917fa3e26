/* buf.h: the shared byte vocabulary of common/: a borrowed slice and a growable output buffer.
 * Encoders append to a `struct buf` without checking every call: the first failure (out of
 * memory, or growth past `limit`) is remembered in `err` and later appends are ignored, so an
 * encoder checks `buf.err` once at the end. */
#ifndef SIOC_BUF_H
#define SIOC_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A borrowed view of bytes; never owns, never NUL-terminated by contract. */
struct slice {
    const uint8_t *p;
    size_t len;
};

struct buf {
    uint8_t *data; /* owned; NULL until the first append */
    size_t len;    /* bytes written */
    size_t cap;    /* bytes allocated */
    size_t limit;  /* 0 = unlimited; otherwise len may never exceed it (err = SIOC_ETOOBIG) */
    int err;       /* SIOC_OK, or the first error (SIOC_ENOMEM, SIOC_ETOOBIG); sticky until reset */
};

/* Initialises an empty buffer with an optional size limit (0 = none). Allocates nothing. */
void buf_init(struct buf *b, size_t limit);
/* Frees the storage; the buffer is then empty and may be reused. */
void buf_deinit(struct buf *b);
/* Empties the buffer and clears `err`, keeping the allocation for reuse. */
void buf_reset(struct buf *b);
/* Ensures room for `extra` more bytes. Returns false (and sets err) on failure or limit. */
bool buf_reserve(struct buf *b, size_t extra);
/* Appenders: no-ops once `err` is set. */
void buf_append(struct buf *b, const void *p, size_t n);
void buf_append_byte(struct buf *b, uint8_t c);
void buf_append_cstr(struct buf *b, const char *s);
/* Appends the decimal text of an integer (no padding, '-' for negatives). */
void buf_append_u64(struct buf *b, uint64_t v);
void buf_append_i64(struct buf *b, int64_t v);
/* Shrinks len to `len` (which must be <= b->len); used to roll back a partial write. */
void buf_truncate(struct buf *b, size_t len);
/* A NUL-terminated copy (malloc) of a slice, or NULL when out of memory or when the bytes hold
 * a NUL (which a C string cannot carry). */
char *slice_strdup(struct slice s);
/* Hands the storage to the caller (who frees it with free()); the buffer becomes empty.
 * Returns NULL when nothing was ever written. */
uint8_t *buf_detach(struct buf *b, size_t *len);

#endif
