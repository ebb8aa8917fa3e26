/* utf8.c: strict incremental UTF-8 validator and UTF-16 unit counting (see utf8.h). */
#include "common/utf8.h"

#include "common/error.h"

void utf8_validator_init(struct utf8_validator *v)
{
    v->need = 0;
    v->lo = 0x80;
    v->hi = 0xbf;
}

int utf8_validator_feed(struct utf8_validator *v, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (v->need > 0) {
            if (c < v->lo || c > v->hi)
                return SIOC_EUTF8;
            v->need--;
            v->lo = 0x80;
            v->hi = 0xbf;
            continue;
        }
        if (c < 0x80)
            continue;
        /* RFC 3629 4: the second byte's range depends on the first */
        if (c >= 0xc2 && c <= 0xdf) {
            v->need = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            v->need = 2;
            if (c == 0xe0)
                v->lo = 0xa0; /* no overlongs */
            else if (c == 0xed)
                v->hi = 0x9f; /* no surrogates */
        } else if (c >= 0xf0 && c <= 0xf4) {
            v->need = 3;
            if (c == 0xf0)
                v->lo = 0x90; /* no overlongs */
            else if (c == 0xf4)
                v->hi = 0x8f; /* nothing above U+10FFFF */
        } else {
            return SIOC_EUTF8;
        }
    }
    return SIOC_OK;
}

bool utf8_validator_complete(const struct utf8_validator *v)
{
    return v->need == 0;
}

bool utf8_valid(const uint8_t *p, size_t n)
{
    struct utf8_validator v;
    utf8_validator_init(&v);
    return utf8_validator_feed(&v, p, n) == SIOC_OK && utf8_validator_complete(&v);
}

size_t utf8_utf16_units(const uint8_t *p, size_t n)
{
    size_t units = 0;
    for (size_t i = 0; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            units += p[i] >= 0xf0 ? 2 : 1;
    }
    return units;
}

long utf8_prefix_for_utf16_units(const uint8_t *p, size_t n, size_t units)
{
    size_t i = 0, have = 0;
    while (have < units) {
        if (i >= n)
            return -1;
        size_t step = p[i] < 0x80 ? 1 : p[i] < 0xe0 ? 2 : p[i] < 0xf0 ? 3 : 4;
        have += step == 4 ? 2 : 1;
        i += step;
    }
    if (have != units || i > n)
        return -1;
    return (long)i;
}
