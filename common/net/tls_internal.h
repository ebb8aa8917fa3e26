/* tls_internal.h: what tls.c (contexts) and tls_conn.c (connections) share. Not for other
 * modules: they use tls.h. Connections call into contexts (a reference, error text), never the
 * other way round. */
#ifndef SIOC_NET_TLS_INTERNAL_H
#define SIOC_NET_TLS_INTERNAL_H

#include <openssl/ssl.h>
#include <time.h>

#include "common/net/tls.h"
#include "common/net/tls_record.h"

struct ticket_key {
    uint8_t name[16]; /* TLSEXT_KEYNAME_LENGTH */
    uint8_t aes[32];  /* AES-256-CBC */
    uint8_t hmac[32]; /* HMAC-SHA256 */
    time_t born;      /* 0 = unset */
};

struct tls_context {
    SSL_CTX *ctx; /* current: new connections use it */
    char *cert_file, *key_file, *ciphers, *groups;
    struct ticket_key keys[2]; /* [0] current, [1] the one before */
    struct tls13_aead *aead;   /* shared by the connections past their handshake */
    unsigned refs;             /* the owner's, plus one per connection */
    char description[400];
};

/* A connection: OpenSSL's SSL during the handshake (and for good on TLS 1.2); after a TLS 1.3
 * handshake only the record state (tls_record.h) and the pending bytes of a record cut by the
 * socket. */
struct tls_conn {
    SSL *ssl; /* NULL once detached */
    struct tls_context *tls;
    int fd;
    enum tls13_suite suite; /* detached */
    uint8_t hs_starts;      /* handshake starts seen: a second one is a renegotiation */
    bool resumed;
    bool peer_closed;     /* close_notify received */
    bool owe_key_update;  /* a KeyUpdate goes out before the next application data */
    bool alert_sent;      /* ours went out: nothing follows it (RFC 8446 6) */
    uint8_t idle_records; /* records in a row without application data (empty, KeyUpdate,
                           * user_canceled): bounded like OpenSSL's, else one peer holds the loop */
    uint8_t hs_frag_len;  /* bytes of a handshake message cut at a record's end (RFC 8446 5.1) */
    uint8_t hs_frag[4];   /* ... kept here: a KeyUpdate, the one accepted, has 5 */
    /* handshake bookkeeping (RFC 8446 7.1 secrets from the key log; record counts since each
     * side's Finished: the first application-key sequence numbers) */
    bool got_client_secret, got_server_secret, server_finished, client_finished;
    uint32_t records_out, records_in;
    struct tls13_keys rd, wr; /* client -> server, server -> client */
    uint8_t *wpend;           /* the unsent tail of the last sealed record, or NULL */
    uint32_t wpend_len, wpend_off;
    uint32_t wpend_plain; /* caller's bytes that record carries (taken once it is sent) */
    uint8_t *rpend;       /* the start of a record not complete yet, or NULL */
    uint32_t rpend_len;
};

/* The first queued OpenSSL error as text ("unsupported protocol") into why, or `fallback`; the
 * queue is emptied. */
void tls_ssl_error_text(char *why, size_t len, const char *fallback);

/* Drops one reference; the last frees the context. */
void tls_context_unref(struct tls_context *tls);

#endif
