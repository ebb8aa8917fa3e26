/* utf8.h: strict UTF-8 validation (RFC 3629: no overlongs, no surrogates, nothing above
 * U+10FFFF), incremental across fragments for RFC 6455 8.1, plus the UTF-16 length arithmetic
 * of Engine.IO v3 payloads (PROTOCOL.md 1.12: lengths count JavaScript string units). */
#ifndef SIOC_UTF8_H
#define SIOC_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct utf8_validator {
    uint8_t need; /* continuation bytes still expected for the current character */
    uint8_t lo;   /* allowed range of the next continuation byte */
    uint8_t hi;
};

void utf8_validator_init(struct utf8_validator *v);
/* Validates the next fragment. Returns SIOC_OK if every byte so far can start or continue a
 * valid sequence, SIOC_EUTF8 at the first impossible byte (the validator is then stuck). */
int utf8_validator_feed(struct utf8_validator *v, const uint8_t *p, size_t n);
/* True when the input fed so far ends on a character boundary. */
bool utf8_validator_complete(const struct utf8_validator *v);
/* Whole-buffer validation. */
bool utf8_valid(const uint8_t *p, size_t n);
/* Number of UTF-16 code units in valid UTF-8 text p[0..n) (4-byte sequences count 2). */
size_t utf8_utf16_units(const uint8_t *p, size_t n);
/* The byte length of the prefix of valid UTF-8 text p[0..n) that holds exactly `units` UTF-16
 * code units. Returns -1 if the text is shorter or the boundary would split a surrogate pair. */
long utf8_prefix_for_utf16_units(const uint8_t *p, size_t n, size_t units);

#endif
