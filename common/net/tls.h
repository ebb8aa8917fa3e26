/* tls.h: TLS termination with OpenSSL for the HTTP connection layer (http_server): a server
 * context built from a certificate chain and key file (TLS 1.2 and 1.3 only, modern ciphers,
 * groups X25519 and P-256, ALPN http/1.1, session tickets under a rotating key, renegotiation
 * refused, no buffers kept by idle connections), reloaded in place on request (SIGHUP) without
 * touching established connections, and the per-connection handshake/read/write on a
 * non-blocking socket. The event loop, timeouts and logging are the caller's. */
#ifndef SIOC_NET_TLS_H
#define SIOC_NET_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct tls_context;
struct tls_conn;

/* Defaults of tls_options.ciphers / .groups (DESIGN.md §2 tls-ciphers, tls-groups). */
#define TLS_DEFAULT_CIPHERS                                                                        \
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:"                  \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"     \
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define TLS_DEFAULT_GROUPS "X25519:P-256"

/* The entries a serving process puts in its option table (common/config.h) for these settings,
 * the same on the gateway and the broker; `serves` completes "serve ...: PEM certificate". */
/* clang-format off */
#define TLS_SERVER_OPTION_ENTRIES(serves)                                                          \
    {"tls-cert", CONFIG_STRING, NULL, 0, 0,                                                        \
     "serve " serves ": PEM certificate with its chain (reloaded on SIGHUP)"},                     \
    {"tls-key", CONFIG_STRING, NULL, 0, 0, "PEM private key of tls-cert (reloaded on SIGHUP)"},    \
    {"tls-ciphers", CONFIG_STRING, TLS_DEFAULT_CIPHERS, 0, 0,                                      \
     "TLS 1.3 suites (TLS_*) and TLS 1.2 ciphers, a colon list"},                                  \
    {"tls-groups", CONFIG_STRING, TLS_DEFAULT_GROUPS, 0, 0,                                        \
     "TLS key-exchange groups, a colon list"},                                                     \
    {"tls-handshake-timeout", CONFIG_MS, "10000", 1, 3600000,                                      \
     "a TLS handshake must complete within this"},                                                 \
    {"tls-plain-health", CONFIG_BOOL, "no", 0, 0,                                                  \
     "with TLS, also answer plain HTTP on the same port for /healthz, /readyz and /metrics only"}
/* clang-format on */

struct tls_options {
    const char *cert_file; /* PEM: the certificate, then its chain */
    const char *key_file;  /* PEM private key matching it */
    const char *ciphers;   /* colon list; TLS_* names are TLS 1.3 suites, the rest TLS 1.2 ciphers;
                            * NULL = TLS_DEFAULT_CIPHERS */
    const char *groups;    /* colon list of key-exchange groups; NULL = TLS_DEFAULT_GROUPS */
};

/* Builds the context. The strings are copied. Returns NULL and fills err with a message naming
 * the option at fault ("tls-key: does not match the certificate of tls-cert ...") on failure. */
struct tls_context *tls_context_new(const struct tls_options *opt, char *err, size_t errlen);
/* Reads the files again and swaps in a new context for connections accepted from now on;
 * established connections keep the one they started with. Returns 0; or -1 with err filled and
 * the old context still in use. */
int tls_context_reload(struct tls_context *tls, char *err, size_t errlen);
/* NULL is a no-op. Connections made from it may outlive it (OpenSSL counts references). */
void tls_context_free(struct tls_context *tls);
/* "subject CN=example, issuer ..., expires 2027-01-01 00:00:00 GMT" of the certificate in use,
 * for the start and reload log lines. Valid until the next reload or free. */
const char *tls_context_describe(const struct tls_context *tls);

/* ---- connections ---- */

/* Results of the connection functions besides byte counts (> 0). */
enum {
    TLS_CLOSED = 0,      /* the peer closed (close_notify or end of stream) */
    TLS_WANT_READ = -1,  /* call again once the socket is readable */
    TLS_WANT_WRITE = -2, /* call again once the socket is writable */
    TLS_FAILED = -3,     /* protocol error or refusal; `why` says which; the connection is over */
};

/* A server-side TLS connection on the non-blocking socket fd (not owned: the caller closes it).
 * NULL when out of memory. OpenSSL writes with write(2): the process must ignore SIGPIPE (both
 * programs do).
 * Memory: OpenSSL's SSL object (about 12 KiB in OpenSSL 3.0, whatever its buffer mode) lives
 * only during the handshake. Once a TLS 1.3 handshake with one of the AES-GCM or ChaCha20-Poly1305
 * suites is complete, its traffic secrets are taken (from OpenSSL's key log callback), the SSL is
 * freed, and the records are sealed and opened here (tls_record.h, the user-space counterpart of
 * kernel TLS): an idle connection then keeps about 300 bytes, plus the unsent or unfinished part
 * of one record while the socket cuts one. TLS 1.2 connections keep their SSL. */
struct tls_conn *tls_conn_new(struct tls_context *tls, int fd);
/* Frees the connection. With `notify` and a finished handshake, a close_notify alert is tried
 * first (one non-blocking attempt). NULL is a no-op. */
void tls_conn_free(struct tls_conn *c, bool notify);
/* Advances the handshake: 1 when it is complete, else TLS_WANT_*, TLS_CLOSED or TLS_FAILED
 * (also when the client sent more than 32 KiB without completing it; OpenSSL itself refuses a
 * ClientHello above 128 KiB, so that is what a handshake can cost at most). */
int tls_conn_handshake(struct tls_conn *c, char *why, size_t whylen);
/* Decrypts into p[0..cap): bytes (> 0) or a TLS_* result. cap must be at least TLS_READ_MIN
 * (a whole record and its header fit). Past a TLS 1.3 handshake, a KeyUpdate from the peer is
 * followed (RFC 8446 4.6.3; it must end its record, it may be cut across records); an alert
 * other than close_notify, a record that does not authenticate, any other handshake message or
 * record type, or more than 32 records in a row without application data is TLS_FAILED, after
 * the alert RFC 8446 5-6 asks for (bad_record_mac, unexpected_message, record_overflow,
 * decode_error, illegal_parameter); nothing is sent after it. */
#define TLS_READ_MIN (16384u + 256u + 5u)
ssize_t tls_conn_read(struct tls_conn *c, uint8_t *p, size_t cap, char *why, size_t whylen);
/* Encrypts and sends iov[0..n) from its start, in records of at most `stage_cap` bytes gathered
 * through `stage` (a scratch buffer of the caller's; the bytes are copied out of it at once;
 * past a TLS 1.3 handshake the sealed record is built in it: records then carry at most
 * stage_cap - 22 bytes, and a KeyUpdate goes out every 2^23 records, RFC 8446 5.5).
 * Returns bytes taken (> 0), or TLS_WANT_WRITE / TLS_WANT_READ (nothing taken; call again with
 * the same bytes in front, more may follow), or TLS_FAILED. */
ssize_t tls_conn_writev(struct tls_conn *c, const struct iovec *iov, int n, uint8_t *stage,
                        size_t stage_cap, char *why, size_t whylen);
/* True once the peer tried to renegotiate (TLS 1.2): refused; the caller closes. */
bool tls_conn_renegotiating(const struct tls_conn *c);
/* True when the handshake resumed a session (a ticket). */
bool tls_conn_resumed(const struct tls_conn *c);
/* True once the SSL is freed and records are handled by tls_record.h. */
bool tls_conn_detached(const struct tls_conn *c);

#endif
