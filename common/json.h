/* json.h: JSON <-> MessagePack transcoding with JavaScript's semantics (RFC 8259 parsing,
 * JSON.stringify output), so that a payload relayed by sioc reads byte for byte as a Node
 * socket.io server would have written it (PROTOCOL.md 2.2). The parser goes straight from text
 * to MessagePack (no tree); the writer goes straight from MessagePack to text. Both are
 * iterative with an explicit stack bounded by JSON_MAX_DEPTH. */
#ifndef SIOC_JSON_H
#define SIOC_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/mp.h"

/* Deepest nesting of arrays/objects either direction accepts. */
#define JSON_MAX_DEPTH 128

/* Parses exactly one JSON text p[0..len) (whitespace around it allowed, nothing else) and
 * appends its MessagePack form to `out`:
 *   object -> map (keys as str, in input order; as JSON.parse, a repeated key keeps its first
 *   place and its last value, and the keys of the whole text are then in JS property order,
 *   array indices first, as json_from_msgpack writes them),
 *   array -> array, string -> str (escapes decoded; a lone surrogate escape becomes U+FFFD),
 *   number -> mp_write_number(correctly rounded double) (so 1, 1.0 and 1e0 are the int 1,
 *   1.5 is float64), true/false/null -> bool/nil.
 * The input must be UTF-8 (invalid bytes are a syntax error). Returns SIOC_OK, SIOC_EPROTO
 * (syntax), SIOC_EDEPTH, or the buffer's error (SIOC_ENOMEM, SIOC_ETOOBIG). On error `out` is
 * truncated back to its length at entry and its `err` cleared (the error is the return value);
 * if `out->err` is already set at entry, that error is returned and nothing is written. */
int json_to_msgpack(const uint8_t *p, size_t len, struct buf *out);

/* How the writer renders MessagePack `bin` values, which JSON cannot hold. */
struct json_write_opts {
    /* Appends the JSON text that stands for bin p[0..n) to out (e.g. a Socket.IO placeholder
     * {"_placeholder":true,"num":K}) and returns SIOC_OK or a negative error that aborts the
     * write. NULL: bins are written as Node's Buffer.toJSON(): {"type":"Buffer","data":[1,2]}.
     * Calls come in MessagePack (input) order, before maps are put in JS property order; the
     * text a call wrote moves with its key if the map is reordered. A caller that numbers bins
     * in output order must renumber afterwards (sio.c does, with markers). */
    int (*bin_cb)(void *ctx, const uint8_t *p, size_t n, struct buf *out);
    void *ctx;
};

/* Reads exactly one MessagePack value from `r` and appends what JavaScript's
 * JSON.stringify(notepack.decode(value)) would produce:
 *   - no whitespace; strings escaped as JS does (\" \\ \b \f \n \r \t, other C0 as \u00xx,
 *     everything else raw, U+2028/2029 and DEL included); invalid UTF-8 becomes one U+FFFD per
 *     maximal subpart, as Buffer.toString does (so no lone surrogate can arise);
 *   - numbers as Number.prototype.toString (shortest round trip, exponent from 1e21 and below
 *     1e-6, -0 as 0, NaN/Infinity as null); integers beyond 2^53 go through double as in JS;
 *   - maps in JS property order: keys that are array indices ("0".."4294967294", canonical)
 *     first in ascending numeric order, then the others in insertion order; a repeated key
 *     keeps its first position and its last value (bin_cb still sees the overwritten values);
 *     nil/bool/number/str/bin keys use their JS string form; array, map and ext keys (which
 *     notepack never writes) are SIOC_EPROTO;
 *   - nil -> null; ext -1 (timestamp) of 4, 8 or 12 bytes -> the Date's ISO string (null if out
 *     of the Date range); other ext -> null.
 * opts may be NULL. Returns SIOC_OK, SIOC_EPROTO (malformed MessagePack), SIOC_EAGAIN
 * (truncated), SIOC_EDEPTH (more than JSON_MAX_DEPTH nested arrays/maps), a bin_cb error, or
 * the buffer's error. On error `out` is truncated back to its length at entry and its `err`
 * cleared, as for json_to_msgpack; the reader position is then unspecified. */
int json_from_msgpack(struct mp_reader *r, const struct json_write_opts *opts, struct buf *out);

/* Appends s[0..n) as a JSON string literal, quotes included, escaped as JSON.stringify does
 * (invalid UTF-8 replaced by U+FFFD as above). */
void json_write_string(struct buf *out, const uint8_t *s, size_t n);
/* Appends a double as JSON.stringify writes a number (NaN and +-Infinity as null). */
void json_write_number(struct buf *out, double v);

#endif
