/* hex.h: the value of one hexadecimal digit, for every decoder that reads "%XX", "\uXXXX" or
 * chunk sizes (http.c, json.c, redis_proto.c, the broker's API input). */
#ifndef SIOC_HEX_H
#define SIOC_HEX_H

#include <stdint.h>

/* 0..15 for '0'-'9', 'a'-'f', 'A'-'F'; -1 for any other byte. */
static inline int hex_digit_value(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20; /* ASCII lower case; digits and non-letters were handled or stay non-hex */
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

#endif
