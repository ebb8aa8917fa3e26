/* json.c: JSON <-> MessagePack with JavaScript's semantics (see json.h, PROTOCOL.md 2.2, 3.4).
 * Parsing is RFC 8259 in one iterative pass straight into notepack-exact MessagePack; writing
 * follows ECMA-262 JSON.stringify (25.5.2) and Number::toString (6.1.6.1.20) over what
 * notepack.decode would build. UTF-8: RFC 3629 strict on input; on output invalid bytes become
 * U+FFFD per maximal subpart (WHATWG Encoding 4.1, as Node's Buffer.toString). */
#include "common/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/hex.h"

/* ---------------------------------------------------------------- shared helpers */

/* Length of the well-formed UTF-8 sequence starting at p[0] (>= 0x80) within p[0..n), or 0 if
 * it is ill-formed; then *subpart is the length of its maximal subpart (Unicode 3.9 D93b),
 * i.e. the bytes that one U+FFFD replaces. RFC 3629 4 ranges: no overlongs, no surrogates,
 * nothing above U+10FFFF. */
static size_t utf8_sequence(const uint8_t *p, size_t n, size_t *subpart)
{
    uint8_t c = p[0], lo = 0x80, hi = 0xbf;
    size_t need;
    if (c >= 0xc2 && c <= 0xdf) {
        need = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 2;
        lo = c == 0xe0 ? 0xa0 : 0x80;
        hi = c == 0xed ? 0x9f : 0xbf;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 3;
        lo = c == 0xf0 ? 0x90 : 0x80;
        hi = c == 0xf4 ? 0x8f : 0xbf;
    } else {
        *subpart = 1;
        return 0;
    }
    for (size_t k = 1; k <= need; k++) {
        if (k >= n || p[k] < lo || p[k] > hi) {
            *subpart = k;
            return 0;
        }
        lo = 0x80;
        hi = 0xbf;
    }
    return need + 1;
}

static size_t utf8_encode(uint8_t *d, uint32_t cp)
{
    if (cp < 0x80) {
        d[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        d[0] = (uint8_t)(0xc0 | (cp >> 6));
        d[1] = (uint8_t)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        d[0] = (uint8_t)(0xe0 | (cp >> 12));
        d[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        d[2] = (uint8_t)(0x80 | (cp & 0x3f));
        return 3;
    }
    d[0] = (uint8_t)(0xf0 | (cp >> 18));
    d[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
    d[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
    d[3] = (uint8_t)(0x80 | (cp & 0x3f));
    return 4;
}

/* ---------------------------------------------------------------- parser: JSON -> MessagePack */

/* A container whose count needs more than the 1-byte header reserved for it. */
struct json_fixup {
    size_t off; /* offset in out of the reserved byte */
    uint32_t count;
    bool is_map;
};

/* Fixups sorted by offset; heap storage only past the inline slots. */
struct json_fixups {
    struct json_fixup *v;
    size_t n, cap;
    struct json_fixup inline_slots[16];
};

struct json_frame {
    size_t hdr;      /* offset of the reserved header byte */
    size_t fix_mark; /* fixups.n when the container opened: its descendants' fixups follow */
    uint32_t count;
    bool is_map;
    size_t key_mark; /* json_keys.n when the map opened: its keys follow */
};

/* The encoded keys (str header + bytes, by offset into out) of the maps being parsed, to find
 * a repeated key when a map closes. */
struct json_key {
    size_t off, len;
};
struct json_keys {
    struct json_key *v;
    size_t n, cap;
    struct json_key inline_slots[32];
    bool dup; /* some map had a repeated key */
};

static bool is_ws(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r'; /* RFC 8259 2 */
}

static size_t skip_ws(const uint8_t *p, size_t len, size_t i)
{
    while (i < len && is_ws(p[i]))
        i++;
    return i;
}

/* Reads "\uXXXX" at p[i..len): the unit, or -1. */
static long unicode_escape(const uint8_t *p, size_t len, size_t i)
{
    if (len - i < 6 || p[i] != '\\' || p[i + 1] != 'u')
        return -1;
    long v = 0;
    for (size_t k = 2; k < 6; k++) {
        int h = hex_digit_value(p[i + k]);
        if (h < 0)
            return -1;
        v = v << 4 | h;
    }
    return v;
}

/* Decodes the escape at p[i] == '\\' (RFC 8259 7) into *cp. Returns the bytes it spans, or 0
 * if it is invalid. A surrogate pair is one code point; a lone surrogate becomes U+FFFD (JS
 * would keep it, but it cannot be held in UTF-8: the documented json.h choice). */
static size_t decode_escape(const uint8_t *p, size_t len, size_t i, uint32_t *cp)
{
    if (len - i < 2)
        return 0;
    switch (p[i + 1]) {
    case '"': *cp = '"'; return 2;
    case '\\': *cp = '\\'; return 2;
    case '/': *cp = '/'; return 2;
    case 'b': *cp = '\b'; return 2;
    case 'f': *cp = '\f'; return 2;
    case 'n': *cp = '\n'; return 2;
    case 'r': *cp = '\r'; return 2;
    case 't': *cp = '\t'; return 2;
    case 'u': break;
    default: return 0;
    }
    long u = unicode_escape(p, len, i);
    if (u < 0)
        return 0;
    if (u >= 0xd800 && u <= 0xdbff) {
        long lo = unicode_escape(p, len, i + 6);
        if (lo >= 0xdc00 && lo <= 0xdfff) {
            *cp = 0x10000 + (((uint32_t)u - 0xd800) << 10) + ((uint32_t)lo - 0xdc00);
            return 12;
        }
        u = 0xfffd;
    } else if (u >= 0xdc00 && u <= 0xdfff) {
        u = 0xfffd;
    }
    *cp = (uint32_t)u;
    return 6;
}

/* Writes a str header for n bytes at d, as mp_write_str would; returns its width. */
static size_t str_header(uint8_t *d, size_t n)
{
    if (n < 32) {
        d[0] = (uint8_t)(0xa0 | n);
        return 1;
    }
    if (n <= 0xff) {
        d[0] = 0xd9;
        d[1] = (uint8_t)n;
        return 2;
    }
    if (n <= 0xffff) {
        d[0] = 0xda;
        d[1] = (uint8_t)(n >> 8);
        d[2] = (uint8_t)n;
        return 3;
    }
    d[0] = 0xdb;
    for (int k = 0; k < 4; k++)
        d[1 + k] = (uint8_t)(n >> (24 - 8 * k));
    return 5;
}

/* Parses the string whose opening quote is at p[*pos] and appends it as a MessagePack str.
 * A first scan validates and measures; escape-free strings (the common case) are then one
 * memcpy, others are decoded straight into place behind an exact header. */
static int parse_string(const uint8_t *p, size_t len, size_t *pos, struct buf *out)
{
    size_t s = *pos + 1, i = s, decoded = 0;
    bool escaped = false;
    for (;;) {
        while (i < len && p[i] >= 0x20 && p[i] < 0x80 && p[i] != '"' && p[i] != '\\') {
            i++;
            decoded++;
        }
        if (i >= len)
            return SIOC_EPROTO;
        uint8_t c = p[i];
        if (c == '"')
            break;
        if (c < 0x20)
            return SIOC_EPROTO; /* RFC 8259 7: control characters must be escaped */
        if (c == '\\') {
            uint32_t cp;
            size_t n = decode_escape(p, len, i, &cp);
            if (n == 0)
                return SIOC_EPROTO;
            uint8_t tmp[4];
            decoded += utf8_encode(tmp, cp);
            escaped = true;
            i += n;
            continue;
        }
        size_t sub, n = utf8_sequence(p + i, len - i, &sub);
        if (n == 0)
            return SIOC_EPROTO; /* RFC 8259 8.1: JSON text is UTF-8 */
        i += n;
        decoded += n;
    }
    *pos = i + 1;
    if (decoded > UINT32_MAX)
        return SIOC_ETOOBIG;
    if (!escaped) {
        mp_write_str(out, p + s, i - s);
        return out->err;
    }
    uint8_t head[5];
    size_t hw = str_header(head, decoded);
    if (!buf_reserve(out, hw + decoded))
        return out->err;
    uint8_t *d = out->data + out->len;
    memcpy(d, head, hw);
    d += hw;
    for (size_t j = s; j < i;) {
        const uint8_t *bs = memchr(p + j, '\\', i - j);
        size_t run = bs != NULL ? (size_t)(bs - (p + j)) : i - j;
        memcpy(d, p + j, run);
        d += run;
        j += run;
        if (j < i) {
            uint32_t cp = 0xfffd; /* always set: the string was validated in the first pass */
            j += decode_escape(p, len, j, &cp);
            d += utf8_encode(d, cp);
        }
    }
    out->len += hw + decoded;
    return SIOC_OK;
}

static const double powers_of_ten[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                         1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                         1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Clinger's fast path for valid unsigned number text t[0..n): with at most 15 significant
 * digits m is exact, as is 10^|e| for |e| <= 22, so one IEEE multiply or divide gives the
 * correctly rounded value strtod would. Returns false when it does not apply. */
static bool clinger_fast_path(const uint8_t *t, size_t n, double *v)
{
    uint64_t m = 0;
    int digits = 0, exp10 = 0;
    size_t k = 0;
    bool frac = false;
    for (; k < n && t[k] != 'e' && t[k] != 'E'; k++) {
        if (t[k] == '.') {
            frac = true;
            continue;
        }
        if (m == 0 && t[k] == '0') {
            exp10 -= frac; /* leading zeros are not significant */
            continue;
        }
        if (++digits > 15)
            return false;
        m = m * 10 + (uint64_t)(t[k] - '0');
        exp10 -= frac;
    }
    if (k < n) {
        bool eneg = t[++k] == '-';
        k += t[k] == '-' || t[k] == '+';
        int e = 0;
        for (; k < n; k++) {
            if (e > 9999)
                return false;
            e = e * 10 + (t[k] - '0');
        }
        exp10 += eneg ? -e : e;
    }
    if (m == 0) {
        *v = 0;
        return true;
    }
    if (exp10 < -22 || exp10 > 22)
        return false;
    *v = exp10 < 0 ? (double)m / powers_of_ten[-exp10] : (double)m * powers_of_ten[exp10];
    return true;
}

/* Parses the number at p[*pos] (RFC 8259 6 grammar) and appends mp_write_number of it. */
static int parse_number(const uint8_t *p, size_t len, size_t *pos, struct buf *out)
{
    size_t s = *pos, i = s;
    bool neg = p[i] == '-', integral = true;
    if (neg)
        i++;
    if (i >= len || p[i] < '0' || p[i] > '9')
        return SIOC_EPROTO;
    if (p[i] == '0')
        i++;
    else
        while (i < len && p[i] >= '0' && p[i] <= '9')
            i++;
    size_t int_digits = i - s - neg;
    if (i < len && p[i] == '.') {
        integral = false;
        if (++i >= len || p[i] < '0' || p[i] > '9')
            return SIOC_EPROTO;
        while (i < len && p[i] >= '0' && p[i] <= '9')
            i++;
    }
    if (i < len && (p[i] == 'e' || p[i] == 'E')) {
        integral = false;
        i++;
        if (i < len && (p[i] == '+' || p[i] == '-'))
            i++;
        if (i >= len || p[i] < '0' || p[i] > '9')
            return SIOC_EPROTO;
        while (i < len && p[i] >= '0' && p[i] <= '9')
            i++;
    }
    *pos = i;
    if (integral && int_digits <= 15) {
        /* Below 10^15 < 2^53 the value is exact: skip strtod (and "-0" becomes 0, as in
         * notepack) */
        int64_t v = 0;
        for (size_t k = s + neg; k < i; k++)
            v = v * 10 + (p[k] - '0');
        mp_write_int(out, neg ? -v : v);
        return out->err;
    }
    double fast;
    if (clinger_fast_path(p + s + neg, i - s - neg, &fast)) {
        mp_write_number(out, neg ? -fast : fast);
        return out->err;
    }
    /* strtod needs a terminated copy (the input may end at the number). The text holds only
     * [-+.0-9eE], which strtod reads the same in every locale, and rounds correctly. */
    char local[64], *text = local;
    size_t n = i - s;
    if (n >= sizeof local && (text = malloc(n + 1)) == NULL)
        return SIOC_ENOMEM;
    memcpy(text, p + s, n);
    text[n] = '\0';
    mp_write_number(out, strtod(text, NULL));
    if (text != local)
        free(text);
    return out->err;
}

static bool fixups_insert(struct json_fixups *fx, size_t at, struct json_fixup f)
{
    if (fx->n == fx->cap) {
        size_t cap = fx->cap * 2;
        struct json_fixup *v = malloc(cap * sizeof *v);
        if (v == NULL)
            return false;
        memcpy(v, fx->v, fx->n * sizeof *v);
        if (fx->v != fx->inline_slots)
            free(fx->v);
        fx->v = v;
        fx->cap = cap;
    }
    memmove(fx->v + at + 1, fx->v + at, (fx->n - at) * sizeof *fx->v);
    fx->v[at] = f;
    fx->n++;
    return true;
}

/* Closes the container on top of the stack: a count below 16 fits the reserved byte; larger
 * ones are recorded, in offset order, for the final widening pass. */
static int close_container(struct buf *out, struct json_frame *f, struct json_fixups *fx)
{
    if (out->err != SIOC_OK)
        return out->err;
    if (f->count < 16) {
        out->data[f->hdr] = (uint8_t)((f->is_map ? 0x80 : 0x90) | f->count);
        return SIOC_OK;
    }
    /* Every fixup recorded since this container opened lies inside it, after it. */
    struct json_fixup fix = {f->hdr, f->count, f->is_map};
    return fixups_insert(fx, f->fix_mark, fix) ? SIOC_OK : SIOC_ENOMEM;
}

/* Widens the recorded headers to dc/dd/de/df forms. Walking from the last fixup backwards,
 * each byte is moved once (right, by the growth of the headers before it): O(n) overall. */
static int apply_fixups(struct buf *out, const struct json_fixups *fx)
{
    size_t grow = 0;
    for (size_t k = 0; k < fx->n; k++)
        grow += fx->v[k].count <= 0xffff ? 2 : 4;
    if (grow == 0)
        return SIOC_OK;
    if (!buf_reserve(out, grow))
        return out->err;
    size_t end = out->len, shift = grow;
    for (size_t k = fx->n; k-- > 0;) {
        const struct json_fixup *f = &fx->v[k];
        memmove(out->data + f->off + 1 + shift, out->data + f->off + 1, end - (f->off + 1));
        size_t w = f->count <= 0xffff ? 2 : 4;
        shift -= w;
        uint8_t *d = out->data + f->off + shift;
        d[0] = (uint8_t)((f->is_map ? 0xde : 0xdc) + (w == 4));
        for (size_t b = 0; b < w; b++)
            d[1 + b] = (uint8_t)(f->count >> (8 * (w - 1 - b)));
        end = f->off;
    }
    out->len += grow;
    return SIOC_OK;
}

static bool keys_push(struct json_keys *ks, struct json_key k)
{
    if (ks->n == ks->cap) {
        size_t cap = ks->cap * 2;
        struct json_key *v = malloc(cap * sizeof *v);
        if (v == NULL)
            return false;
        memcpy(v, ks->v, ks->n * sizeof *v);
        if (ks->v != ks->inline_slots)
            free(ks->v);
        ks->v = v;
        ks->cap = cap;
    }
    ks->v[ks->n++] = k;
    return true;
}

struct json_key_bytes {
    const uint8_t *p;
    size_t len;
};

static int cmp_key_bytes(const void *a, const void *b)
{
    const struct json_key_bytes *x = a, *y = b;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return memcmp(x->p, y->p, x->len);
}

/* True when two of the k keys are equal (the same encoded str is the same string). */
static int keys_repeat(const struct buf *out, const struct json_key *v, size_t k, bool *dup)
{
    if (k <= 16) { /* the common case: few keys, O(k^2) */
        for (size_t a = 1; a < k; a++)
            for (size_t b = 0; b < a; b++)
                if (v[a].len == v[b].len &&
                    memcmp(out->data + v[a].off, out->data + v[b].off, v[a].len) == 0) {
                    *dup = true;
                    return SIOC_OK;
                }
        return SIOC_OK;
    }
    struct json_key_bytes *sorted = malloc(k * sizeof *sorted);
    if (sorted == NULL)
        return SIOC_ENOMEM;
    for (size_t j = 0; j < k; j++)
        sorted[j] = (struct json_key_bytes){out->data + v[j].off, v[j].len};
    qsort(sorted, k, sizeof *sorted, cmp_key_bytes);
    for (size_t j = 1; j < k && !*dup; j++)
        *dup = cmp_key_bytes(&sorted[j - 1], &sorted[j]) == 0;
    free(sorted);
    return SIOC_OK;
}

/* Reads `"key" :` at p[*pos] (after whitespace) into out, noting where the key is. */
static int parse_key(const uint8_t *p, size_t len, size_t *pos, struct buf *out,
                     struct json_keys *ks)
{
    size_t i = skip_ws(p, len, *pos);
    if (i >= len || p[i] != '"')
        return SIOC_EPROTO;
    size_t at = out->len;
    int rc = parse_string(p, len, &i, out);
    if (rc != SIOC_OK)
        return rc;
    if (!ks->dup && !keys_push(ks, (struct json_key){at, out->len - at}))
        return SIOC_ENOMEM;
    i = skip_ws(p, len, i);
    if (i >= len || p[i] != ':')
        return SIOC_EPROTO;
    *pos = i + 1;
    return SIOC_OK;
}

static int parse_literal(const uint8_t *p, size_t len, size_t *pos, struct buf *out)
{
    size_t i = *pos, left = len - i;
    if (left >= 4 && memcmp(p + i, "true", 4) == 0) {
        mp_write_bool(out, true);
        *pos = i + 4;
    } else if (left >= 5 && memcmp(p + i, "false", 5) == 0) {
        mp_write_bool(out, false);
        *pos = i + 5;
    } else if (left >= 4 && memcmp(p + i, "null", 4) == 0) {
        mp_write_nil(out);
        *pos = i + 4;
    } else {
        return SIOC_EPROTO;
    }
    return out->err;
}

/* The state machine: parse a value; after it, loop closing containers until one expects
 * another element (',') or the text ends. */
static int parse_text(const uint8_t *p, size_t len, struct buf *out, struct json_fixups *fx,
                      struct json_keys *ks)
{
    struct json_frame stack[JSON_MAX_DEPTH];
    size_t depth = 0, i = 0;
    int rc;
    for (;;) {
        i = skip_ws(p, len, i);
        if (i >= len)
            return SIOC_EPROTO;
        uint8_t c = p[i];
        if (c == '[' || c == '{') {
            if (depth == JSON_MAX_DEPTH)
                return SIOC_EDEPTH;
            struct json_frame *f = &stack[depth++];
            *f = (struct json_frame){out->len, fx->n, 0, c == '{', ks->n};
            buf_append_byte(out, 0); /* header, patched when the container closes */
            i = skip_ws(p, len, i + 1);
            if (i < len && p[i] == (c == '{' ? '}' : ']')) {
                i++;
                if ((rc = close_container(out, f, fx)) != SIOC_OK)
                    return rc;
                depth--;
            } else {
                if (c == '{' && (rc = parse_key(p, len, &i, out, ks)) != SIOC_OK)
                    return rc;
                f->count = 1;
                continue;
            }
        } else {
            if (c == '"')
                rc = parse_string(p, len, &i, out);
            else if (c == '-' || (c >= '0' && c <= '9'))
                rc = parse_number(p, len, &i, out);
            else
                rc = parse_literal(p, len, &i, out);
            if (rc != SIOC_OK)
                return rc;
        }
        /* after a value */
        for (;;) {
            i = skip_ws(p, len, i);
            if (depth == 0)
                return i == len ? out->err : SIOC_EPROTO;
            struct json_frame *f = &stack[depth - 1];
            if (i >= len)
                return SIOC_EPROTO;
            if (p[i] == ',') {
                i++;
                if (f->count == UINT32_MAX)
                    return SIOC_ETOOBIG;
                f->count++;
                if (f->is_map && (rc = parse_key(p, len, &i, out, ks)) != SIOC_OK)
                    return rc;
                break;
            }
            if (p[i] != (f->is_map ? '}' : ']'))
                return SIOC_EPROTO;
            i++;
            if (f->is_map && !ks->dup && f->count > 1 &&
                (rc = keys_repeat(out, ks->v + f->key_mark, ks->n - f->key_mark, &ks->dup)) !=
                    SIOC_OK)
                return rc;
            if (f->is_map)
                ks->n = f->key_mark;
            if ((rc = close_container(out, f, fx)) != SIOC_OK)
                return rc;
            depth--;
        }
    }
}

static int dedupe(struct buf *out, size_t start);

int json_to_msgpack(const uint8_t *p, size_t len, struct buf *out)
{
    if (out->err != SIOC_OK)
        return out->err;
    size_t start = out->len;
    struct json_fixups fx;
    fx.v = fx.inline_slots;
    fx.n = 0;
    fx.cap = sizeof fx.inline_slots / sizeof fx.inline_slots[0];
    struct json_keys ks;
    ks.v = ks.inline_slots;
    ks.n = 0;
    ks.cap = sizeof ks.inline_slots / sizeof ks.inline_slots[0];
    ks.dup = false;
    int rc = parse_text(p, len, out, &fx, &ks);
    if (rc == SIOC_OK)
        rc = apply_fixups(out, &fx);
    if (fx.v != fx.inline_slots)
        free(fx.v);
    if (ks.v != ks.inline_slots)
        free(ks.v);
    if (rc == SIOC_OK && ks.dup)
        rc = dedupe(out, start);
    if (rc != SIOC_OK) {
        buf_truncate(out, start);
        out->err = SIOC_OK; /* the error is the return value; the buffer stays usable */
    }
    return rc;
}

/* ---------------------------------------------------------------- numbers (ECMA-262 6.1.6.1.20) */

/* Shortest digits d1..dk (no trailing zero) and n with v = 0.d1..dk * 10^n that read back as
 * v > 0. Up to 15 digits the correctly rounded string is the only candidate; at 16 the nearest
 * may miss the (asymmetric, at a power of two) rounding interval while a neighbour hits it;
 * 17 digits always round-trip. */
static int shortest_digits(double v, char *dig, int *n)
{
    char tmp[40];
    int k = 0, exp10 = 0;
    /* subnormals have fewer significant bits: their shortest form may be much shorter */
    for (int prec = v < 2.2250738585072014e-308 ? 1 : 15; prec <= 17 && k == 0; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, v);
        char *e = strchr(tmp, 'e');
        exp10 = atoi(e + 1);
        if (strtod(tmp, NULL) == v) {
            dig[k++] = tmp[0];
            for (const char *q = tmp + 2; q < e; q++)
                dig[k++] = *q;
        } else if (prec == 16) {
            unsigned long long s = tmp[0] - '0';
            for (const char *q = tmp + 2; q < e; q++)
                s = s * 10 + (unsigned long long)(*q - '0');
            for (int delta = -1; delta <= 1 && k == 0; delta += 2) {
                char cand[48];
                snprintf(cand, sizeof cand, "%llue%d", s + (unsigned long long)delta, exp10 - 15);
                if (strtod(cand, NULL) == v) {
                    k = snprintf(dig, 24, "%llu", s + (unsigned long long)delta);
                    exp10 += k - 16;
                }
            }
        }
    }
    while (k > 1 && dig[k - 1] == '0')
        k--;
    *n = exp10 + 1;
    return k;
}

/* Number::toString(v) for finite v into s (>= 32 bytes); returns the length. */
static size_t number_text(char *s, double v)
{
    char *o = s;
    if (v == 0) {
        *o = '0'; /* -0 too */
        return 1;
    }
    if (v < 0) {
        *o++ = '-';
        v = -v;
    }
    if (v <= 9007199254740992.0 && v == floor(v))
        return (size_t)(o - s) + (size_t)snprintf(o, 24, "%llu", (unsigned long long)v);
    char dig[24];
    int n = 0, k = 0;
    /* Fast path: m = v * 10^j integral with at most 15 digits and m / 10^j == v (an exactly
     * rounded division of exact operands, i.e. the round trip) makes m * 10^-j the only
     * candidate of <= 15 digits, hence the shortest (see shortest_digits). */
    for (int j = 1; j <= 15 && v < 1e15; j++) {
        double m = v * powers_of_ten[j];
        if (m >= 1e15)
            break;
        if (m == floor(m) && m / powers_of_ten[j] == v) {
            k = snprintf(dig, sizeof dig, "%llu", (unsigned long long)m);
            n = k - j;
            while (dig[k - 1] == '0')
                k--;
            break;
        }
    }
    if (k == 0)
        k = shortest_digits(v, dig, &n);
    if (k <= n && n <= 21) {
        memcpy(o, dig, (size_t)k);
        o += k;
        memset(o, '0', (size_t)(n - k));
        o += n - k;
    } else if (n > 0 && n <= 21) {
        memcpy(o, dig, (size_t)n);
        o[n] = '.';
        memcpy(o + n + 1, dig + n, (size_t)(k - n));
        o += k + 1;
    } else if (n > -6 && n <= 0) {
        *o++ = '0';
        *o++ = '.';
        memset(o, '0', (size_t)-n);
        o += -n;
        memcpy(o, dig, (size_t)k);
        o += k;
    } else {
        *o++ = dig[0];
        if (k > 1) {
            *o++ = '.';
            memcpy(o, dig + 1, (size_t)k - 1);
            o += k - 1;
        }
        o += snprintf(o, 8, "e%c%d", n - 1 < 0 ? '-' : '+', abs(n - 1));
    }
    return (size_t)(o - s);
}

void json_write_number(struct buf *out, double v)
{
    if (!isfinite(v)) {
        buf_append(out, "null", 4); /* ECMA-262 25.5.2.2 SerializeJSONProperty step 9 */
        return;
    }
    char s[40];
    buf_append(out, s, number_text(s, v));
}

/* Integers as notepack decodes them: exact up to 2^53, beyond it a double, printed as such. */
static void write_u64(struct buf *out, uint64_t u)
{
    if (u <= 9007199254740992ull)
        buf_append_u64(out, u);
    else
        json_write_number(out, (double)u);
}

static void write_i64(struct buf *out, int64_t i)
{
    if (i >= -9007199254740992ll && i <= 9007199254740992ll)
        buf_append_i64(out, i);
    else
        json_write_number(out, (double)i);
}

/* ---------------------------------------------------------------- writer: MessagePack -> JSON */

void json_write_string(struct buf *out, const uint8_t *s, size_t n)
{
    static const char short_escape[32] = {
        ['\b'] = 'b', ['\t'] = 't', ['\n'] = 'n', ['\f'] = 'f', ['\r'] = 'r'};
    static const char hex[] = "0123456789abcdef";
    buf_append_byte(out, '"');
    size_t i = 0, run = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            i++;
            continue;
        }
        size_t skip = 1, sub = 0;
        if (c >= 0x80 && (skip = utf8_sequence(s + i, n - i, &sub)) != 0) {
            i += skip; /* well-formed: raw, as JSON.stringify leaves non-ASCII alone */
            continue;
        }
        buf_append(out, s + run, i - run);
        if (c >= 0x80) {
            buf_append(out, "\xef\xbf\xbd", 3); /* U+FFFD per maximal subpart */
            skip = sub;
        } else if (c == '"' || c == '\\') {
            uint8_t e[2] = {'\\', c};
            buf_append(out, e, 2);
        } else if (short_escape[c & 0x1f] != 0) { /* c < 0x20: the mask only informs checkers */
            uint8_t e[2] = {'\\', (uint8_t)short_escape[c & 0x1f]};
            buf_append(out, e, 2);
        } else {
            uint8_t e[6] = {'\\', 'u', '0', '0', (uint8_t)hex[c >> 4], (uint8_t)hex[c & 15]};
            buf_append(out, e, 6);
        }
        i += skip;
        run = i;
    }
    buf_append(out, s + run, n - run);
    buf_append_byte(out, '"');
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Ext -1 (msgpack timestamp 32/64/96) as notepack builds the Date, then Date.prototype.toJSON
 * (ECMA-262 21.4.4.37: toISOString, or null for an invalid time value). The double arithmetic
 * is notepack's, so rounding matches. */
static void write_timestamp(struct buf *out, const struct mp_item *it)
{
    const uint8_t *d = it->data;
    double ms;
    if (it->len == 4) {
        ms = (double)be32(d) * 1e3;
    } else if (it->len == 8) {
        uint32_t hi = be32(d), lo = be32(d + 4);
        ms = ((double)(hi & 3) * 4294967296.0 + lo) * 1e3 + (double)(hi >> 2) / 1e6;
    } else if (it->len == 12) {
        ms = ((double)(int32_t)be32(d + 4) * 4294967296.0 + be32(d + 8)) * 1e3 + be32(d) / 1e6;
    } else {
        buf_append(out, "null", 4);
        return;
    }
    if (!(fabs(ms) <= 8.64e15)) { /* ECMA-262 21.4.1.31 TimeClip */
        buf_append(out, "null", 4);
        return;
    }
    int64_t t = (int64_t)ms;
    int64_t days = t / 86400000, rem = t % 86400000;
    if (rem < 0) {
        rem += 86400000;
        days--;
    }
    /* days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant, civil_from_days) */
    int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    int64_t day = doy - (153 * mp + 2) / 5 + 1, month = mp < 10 ? mp + 3 : mp - 9;
    long long year = (long long)(yoe + era * 400 + (month <= 2));
    char s[48];
    /* 21.4.1.32: years outside 0..9999 use the signed six-digit extended form */
    int n = snprintf(s, sizeof s, year >= 0 && year <= 9999 ? "\"%04lld" : "\"%+07lld", year);
    n += snprintf(s + n, sizeof s - (size_t)n, "-%02d-%02dT%02d:%02d:%02d.%03dZ\"", (int)month,
                  (int)day, (int)(rem / 3600000), (int)(rem / 60000 % 60), (int)(rem / 1000 % 60),
                  (int)(rem % 1000));
    buf_append(out, s, (size_t)n);
}

/* Node's Buffer.prototype.toJSON. */
static void write_buffer_json(struct buf *out, const uint8_t *p, size_t n)
{
    buf_append_cstr(out, "{\"type\":\"Buffer\",\"data\":[");
    for (size_t k = 0; k < n; k++) {
        if (k > 0)
            buf_append_byte(out, ',');
        buf_append_u64(out, p[k]);
    }
    buf_append(out, "]}", 2);
}

/* A map key as the property key JS makes of it (ToPropertyKey of what notepack decoded),
 * written as a JSON string. Containers and ext as keys (never produced by notepack's encoder)
 * are rejected: their String() forms depend on contents and on the local time zone. */
static int write_key(struct buf *out, const struct mp_item *it)
{
    char s[40];
    size_t n;
    switch (it->kind) {
    case MP_STR:
    case MP_BIN: /* Buffer keys: String(buf) is buf.toString('utf8') */
        json_write_string(out, it->data, it->len);
        return SIOC_OK;
    case MP_NIL: n = (size_t)snprintf(s, sizeof s, "null"); break;
    case MP_BOOL: n = (size_t)snprintf(s, sizeof s, it->boolean ? "true" : "false"); break;
    case MP_UINT:
    case MP_INT:
    case MP_FLOAT: {
        double v;
        mp_item_to_double(it, &v);
        if (it->kind == MP_UINT && it->u <= 9007199254740992ull)
            n = (size_t)snprintf(s, sizeof s, "%llu", (unsigned long long)it->u);
        else if (it->kind == MP_INT && it->i >= -9007199254740992ll && it->i <= 9007199254740992ll)
            n = (size_t)snprintf(s, sizeof s, "%lld", (long long)it->i);
        else if (isnan(v))
            n = (size_t)snprintf(s, sizeof s, "NaN");
        else if (isinf(v))
            n = (size_t)snprintf(s, sizeof s, v > 0 ? "Infinity" : "-Infinity");
        else
            n = number_text(s, v);
        break;
    }
    default: return SIOC_EPROTO;
    }
    buf_append_byte(out, '"');
    buf_append(out, s, n);
    buf_append_byte(out, '"');
    return SIOC_OK;
}

/* One "key":value member of a map being written, by offsets into out (which may move). */
struct json_member {
    size_t off;     /* where the key's opening quote is */
    size_t key_len; /* bytes of the key literal, quotes included */
    uint32_t index; /* numeric value when is_index */
    bool is_index;
};

struct json_members {
    struct json_member *v;
    size_t n, cap;
    struct json_member inline_slots[32];
};

struct json_wframe {
    size_t remaining; /* items left to read (a map counts keys and values) */
    size_t base;      /* first member of this map in json_members */
    bool is_map, first, has_index;
};

/* ECMA-262 6.1.7: an array index is a canonical numeric string of a value below 2^32 - 1. */
static bool array_index(const uint8_t *lit, size_t n, uint32_t *index)
{
    if (n < 3 || n > 12 || (lit[1] == '0' && n > 3))
        return false;
    uint64_t v = 0;
    for (size_t k = 1; k + 1 < n; k++) {
        if (lit[k] < '0' || lit[k] > '9')
            return false;
        v = v * 10 + (uint64_t)(lit[k] - '0');
    }
    if (v > 4294967294u)
        return false;
    *index = (uint32_t)v;
    return true;
}

/* Sort records for the slow path: members grouped by key, then in final property order. */
struct json_sort_key {
    const uint8_t *key;
    size_t key_len;
    size_t first, last; /* member positions: where the property sits, which value it holds */
    uint32_t index;
    bool is_index;
};

static int cmp_by_key(const void *a, const void *b)
{
    const struct json_sort_key *x = a, *y = b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);
    if (c != 0)
        return c;
    if (x->key_len != y->key_len)
        return x->key_len < y->key_len ? -1 : 1;
    return x->first < y->first ? -1 : x->first > y->first;
}

/* ECMA-262 10.1.11.1 OrdinaryOwnPropertyKeys: indices ascending, then strings by creation. */
static int cmp_by_order(const void *a, const void *b)
{
    const struct json_sort_key *x = a, *y = b;
    if (x->is_index != y->is_index)
        return x->is_index ? -1 : 1;
    if (x->is_index)
        return x->index < y->index ? -1 : x->index > y->index;
    return x->first < y->first ? -1 : x->first > y->first;
}

static bool same_key(const struct buf *out, const struct json_member *a,
                     const struct json_member *b)
{
    return a->key_len == b->key_len &&
           memcmp(out->data + a->off, out->data + b->off, a->key_len) == 0;
}

/* Called before the '}' of a map whose k >= 2 members sit in out as "k":v,"k":v,...: puts
 * them in JS property order, a repeated key keeping its first place and its last value. */
static int order_members(struct buf *out, const struct json_member *m, size_t k, bool has_index)
{
    if (!has_index && k <= 16) { /* the common case: few keys, no index: O(k^2) dup check */
        bool dup = false;
        for (size_t a = 1; a < k && !dup; a++)
            for (size_t b = 0; b < a && !dup; b++)
                dup = same_key(out, &m[a], &m[b]);
        if (!dup)
            return SIOC_OK;
    }
    struct json_sort_key *sk = malloc(k * sizeof *sk);
    if (sk == NULL)
        return SIOC_ENOMEM;
    for (size_t j = 0; j < k; j++)
        sk[j] = (struct json_sort_key){out->data + m[j].off, m[j].key_len, j, j,
                                       m[j].index,           m[j].is_index};
    qsort(sk, k, sizeof *sk, cmp_by_key);
    size_t u = 0;
    for (size_t j = 0; j < k; j++) {
        if (u > 0 && sk[u - 1].key_len == sk[j].key_len &&
            memcmp(sk[u - 1].key, sk[j].key, sk[j].key_len) == 0)
            sk[u - 1].last = sk[j].first; /* sorted by position within a key: this is later */
        else
            sk[u++] = sk[j];
    }
    if (u == k && !has_index) {
        free(sk);
        return SIOC_OK;
    }
    qsort(sk, u, sizeof *sk, cmp_by_order);
    /* Rebuild after the current end, then move the result down over the old members. */
    size_t begin = m[0].off, end = out->len;
    if (!buf_reserve(out, end - begin)) {
        free(sk);
        return out->err;
    }
    uint8_t *d = out->data + end;
    for (size_t j = 0; j < u; j++) {
        size_t key = m[sk[j].first].off, val = m[sk[j].last].off + m[sk[j].last].key_len;
        size_t val_end = sk[j].last + 1 < k ? m[sk[j].last + 1].off - 1 : end;
        if (j > 0)
            *d++ = ',';
        memcpy(d, out->data + key, m[sk[j].first].key_len);
        d += m[sk[j].first].key_len;
        memcpy(d, out->data + val, val_end - val);
        d += val_end - val;
    }
    size_t n = (size_t)(d - (out->data + end));
    memmove(out->data + begin, out->data + end, n);
    out->len = begin + n;
    free(sk);
    return SIOC_OK;
}

static bool members_push(struct json_members *ms, struct json_member m)
{
    if (ms->n == ms->cap) {
        size_t cap = ms->cap * 2;
        struct json_member *v = malloc(cap * sizeof *v);
        if (v == NULL)
            return false;
        memcpy(v, ms->v, ms->n * sizeof *v);
        if (ms->v != ms->inline_slots)
            free(ms->v);
        ms->v = v;
        ms->cap = cap;
    }
    ms->v[ms->n++] = m;
    return true;
}

/* Writes one non-container value. */
static int write_scalar(struct buf *out, const struct mp_item *it,
                        const struct json_write_opts *opts)
{
    switch (it->kind) {
    case MP_NIL: buf_append(out, "null", 4); break;
    case MP_BOOL: buf_append_cstr(out, it->boolean ? "true" : "false"); break;
    case MP_UINT: write_u64(out, it->u); break;
    case MP_INT: write_i64(out, it->i); break;
    case MP_FLOAT: json_write_number(out, it->f); break;
    case MP_STR: json_write_string(out, it->data, it->len); break;
    case MP_BIN:
        if (opts != NULL && opts->bin_cb != NULL) {
            int rc = opts->bin_cb(opts->ctx, it->data, it->len, out);
            return rc < 0 ? rc : SIOC_OK;
        }
        write_buffer_json(out, it->data, it->len);
        break;
    case MP_EXT:
        if (it->ext_type == -1)
            write_timestamp(out, it);
        else
            buf_append(out, "null", 4); /* json.h: other ext types are written as null */
        break;
    default: return SIOC_EPROTO;
    }
    return SIOC_OK;
}

static int write_value(struct mp_reader *r, const struct json_write_opts *opts, struct buf *out,
                       struct json_members *ms)
{
    struct json_wframe stack[JSON_MAX_DEPTH];
    size_t depth = 0;
    int rc;
    for (;;) {
        struct mp_item it;
        if ((rc = mp_read(r, &it)) != SIOC_OK)
            return rc;
        struct json_wframe *f = depth > 0 ? &stack[depth - 1] : NULL;
        if (f != NULL) {
            if (!f->first && (!f->is_map || f->remaining % 2 == 0))
                buf_append_byte(out, ',');
            f->first = false;
            if (f->is_map && f->remaining-- % 2 == 0) {
                struct json_member m = {out->len, 0, 0, false};
                if ((rc = write_key(out, &it)) != SIOC_OK)
                    return rc;
                buf_append_byte(out, ':');
                if (out->err != SIOC_OK)
                    return out->err;
                m.key_len = out->len - m.off - 1;
                m.is_index = array_index(out->data + m.off, m.key_len, &m.index);
                f->has_index |= m.is_index;
                if (!members_push(ms, m))
                    return SIOC_ENOMEM;
                continue;
            }
            if (!f->is_map)
                f->remaining--;
        }
        if (it.kind == MP_ARRAY || it.kind == MP_MAP) {
            bool is_map = it.kind == MP_MAP;
            if (depth == JSON_MAX_DEPTH)
                return SIOC_EDEPTH;
            buf_append_byte(out, is_map ? '{' : '[');
            if (it.len > 0) {
                stack[depth++] = (struct json_wframe){(size_t)it.len * (is_map ? 2 : 1), ms->n,
                                                      is_map, true, false};
                continue;
            }
            buf_append_byte(out, is_map ? '}' : ']');
        } else if ((rc = write_scalar(out, &it, opts)) != SIOC_OK) {
            return rc;
        }
        /* frames below depth were all written when their containers opened */
        // cppcheck-suppress uninitvar
        while (depth > 0 && stack[depth - 1].remaining == 0) {
            f = &stack[--depth];
            if (f->is_map) {
                if (out->err != SIOC_OK)
                    return out->err;
                size_t k = ms->n - f->base;
                if (k > 1 && (rc = order_members(out, ms->v + f->base, k, f->has_index)) != SIOC_OK)
                    return rc;
                ms->n = f->base;
            }
            buf_append_byte(out, f->is_map ? '}' : ']');
        }
        if (depth == 0)
            return out->err;
    }
}

int json_from_msgpack(struct mp_reader *r, const struct json_write_opts *opts, struct buf *out)
{
    if (out->err != SIOC_OK)
        return out->err;
    size_t start = out->len;
    struct json_members ms;
    ms.v = ms.inline_slots;
    ms.n = 0;
    ms.cap = sizeof ms.inline_slots / sizeof ms.inline_slots[0];
    int rc = write_value(r, opts, out, &ms);
    if (ms.v != ms.inline_slots)
        free(ms.v);
    if (rc == SIOC_OK && out->err != SIOC_OK)
        rc = out->err;
    if (rc != SIOC_OK) {
        buf_truncate(out, start);
        out->err = SIOC_OK; /* the error is the return value; the buffer stays usable */
    }
    return rc;
}

/* A map of out[start..] repeats a key: JSON.parse keeps the last value at the first key's
 * place. The writer does exactly that (and puts the keys in JS property order, which is the
 * order JSON.parse gives them), so the value is written as JSON and parsed again, once: the
 * result has no repeated key. Rare (only such input pays for it). */
static int dedupe(struct buf *out, size_t start)
{
    struct buf text;
    buf_init(&text, 0);
    struct mp_reader r;
    mp_reader_init(&r, out->data + start, out->len - start);
    int rc = json_from_msgpack(&r, NULL, &text);
    if (rc == SIOC_OK) {
        buf_truncate(out, start);
        rc = json_to_msgpack(text.data, text.len, out);
    }
    buf_deinit(&text);
    return rc;
}
