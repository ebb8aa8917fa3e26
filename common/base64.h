/* base64.h: RFC 4648 base64 as the protocols use it: standard alphabet with padding for
 * Engine.IO polling binary (`b<base64>`, PROTOCOL.md 1.4) and Sec-WebSocket-Accept; the URL
 * alphabet without padding for ids and JWT segments. */
#ifndef SIOC_BASE64_H
#define SIOC_BASE64_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Output size of base64_encode for n input bytes (padded), without a terminator. */
size_t base64_encoded_len(size_t n);
/* Output size of base64url_encode for n input bytes (unpadded). */
size_t base64url_encoded_len(size_t n);
/* Writes the encoding of p[0..n) to out (room for the *_encoded_len bytes); returns the length.
 * No NUL is written. */
size_t base64_encode(const uint8_t *p, size_t n, char *out);
size_t base64url_encode(const uint8_t *p, size_t n, char *out);
/* Upper bound of decoded bytes for n characters of input. */
size_t base64_decoded_max(size_t n);
/* Node's lenient Buffer.from(s, "base64"): both alphabets, characters outside them skipped,
 * decoding stops at the first '='. Writes at most base64_decoded_max(n) bytes; returns the count.
 * Never fails: this is what the reference accepts. */
size_t base64_decode_lenient(const char *s, size_t n, uint8_t *out);
/* Strict unpadded base64url (JWT, RFC 7515 2): only [A-Za-z0-9-_], no padding, no leftover
 * bits set, length % 4 != 1. Returns false on any violation. */
bool base64url_decode_strict(const char *s, size_t n, uint8_t *out, size_t *outlen);

#endif
