/* tls_record.h: TLS 1.3 record protection (RFC 8446 5.2-5.3, 7.1-7.3) for a connection whose
 * handshake OpenSSL has finished: the traffic keys of one direction derived from its traffic
 * secret, sealing and opening records with them, and the key update (RFC 8446 4.6.3). This is
 * what kernel TLS does in the kernel: the SSL object (about 12 KiB in OpenSSL 3.0) can be freed
 * once the handshake is over, and an idle connection keeps only these bytes. The AEAD contexts
 * are shared (struct tls13_aead, one per process or server); the keys are set per record.
 * Pure computation on buffers: the socket is the caller's. */
#ifndef SIOC_NET_TLS_RECORD_H
#define SIOC_NET_TLS_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define TLS13_HEADER 5
#define TLS13_TAG 16
#define TLS13_MAX_PLAIN 16384u                        /* 2^14 (RFC 8446 5.1) */
#define TLS13_MAX_CIPHERTEXT (TLS13_MAX_PLAIN + 256u) /* 2^14 + 256 (RFC 8446 5.2) */
/* bytes a sealed record adds to its plaintext: header, content type, tag */
#define TLS13_OVERHEAD (TLS13_HEADER + 1 + TLS13_TAG)
/* record types (RFC 8446 5.1) */
#define TLS13_ALERT 21
#define TLS13_HANDSHAKE 22
#define TLS13_APPLICATION_DATA 23
/* alert descriptions (RFC 8446 6.2) */
#define TLS13_UNEXPECTED_MESSAGE 10
#define TLS13_BAD_RECORD_MAC 20
#define TLS13_RECORD_OVERFLOW 22
#define TLS13_ILLEGAL_PARAMETER 47
#define TLS13_DECODE_ERROR 50
#define TLS13_INTERNAL_ERROR 80

/* The three AEAD suites of RFC 8446 B.4 that this layer carries (CCM suites stay in OpenSSL). */
enum tls13_suite { TLS13_AES_128_GCM = 1, TLS13_AES_256_GCM, TLS13_CHACHA20_POLY1305 };

/* One direction's state: 100 bytes. */
struct tls13_keys {
    uint8_t secret[48]; /* the current traffic secret (hash length: 32 or 48) */
    uint8_t key[32];
    uint8_t iv[12];
    uint64_t seq; /* the next record's sequence number */
};

/* The shared cipher contexts (one per suite, made on first use). */
struct tls13_aead;
struct tls13_aead *tls13_aead_new(void);
void tls13_aead_free(struct tls13_aead *a);

/* The suite of an IANA cipher-suite number (0x1301..0x1303), 0 for any other. */
enum tls13_suite tls13_suite_of(uint16_t iana);

/* Sets k from a traffic secret of the suite's hash length (secret_len; it may be k->secret):
 * key and iv derived, seq 0. 0, or -1 (wrong length, or OpenSSL failed). */
int tls13_keys_init(struct tls13_keys *k, enum tls13_suite s, const uint8_t *secret,
                    size_t secret_len);
/* The next generation of k (RFC 8446 7.2: "traffic upd"), seq 0 again. 0 or -1. */
int tls13_keys_update(struct tls13_keys *k, enum tls13_suite s);

/* Seals iov[0..n) (len bytes in all, at most TLS13_MAX_PLAIN) as one record of inner type
 * `type` under k at k->seq into out (len + TLS13_OVERHEAD bytes), without advancing seq (the
 * caller does once the record is on its way). Returns the record's length, or -1 (also when
 * seq is 2^64 - 1: sequence numbers never wrap, RFC 8446 5.3). */
long tls13_seal(struct tls13_aead *a, const struct tls13_keys *k, enum tls13_suite s, uint8_t type,
                const struct iovec *iov, int n, size_t len, uint8_t *out);
/* Opens the record rec[0..TLS13_HEADER + body) in place under k and advances k->seq. On success
 * returns the plaintext length (its bytes at rec + TLS13_HEADER) and sets *type to the inner
 * content type. On failure (the connection is over) returns -1 and sets *alert to what RFC 8446
 * says to send: bad_record_mac (does not authenticate, or too short to), record_overflow (body
 * above 2^14 + 256, or content above 2^14: 5.2), unexpected_message (no non-zero byte: 5.4),
 * internal_error (seq 2^64 - 1: no wrap, 5.3). No plaintext is usable before the tag checks. */
long tls13_open(struct tls13_aead *a, struct tls13_keys *k, enum tls13_suite s, uint8_t *rec,
                size_t body, uint8_t *type, uint8_t *alert);

#endif
