/* tls.c: the server side of TLS 1.2/1.3 (RFC 8446, RFC 5246) with OpenSSL 3 for http_server
 * (see tls.h): the contexts; the connections are tls_conn.c's. One SSL_CTX at a time is "current";
 * a reload builds a new one and swaps it in, and OpenSSL's reference counts keep the old one alive
 * for the connections that use it. Session tickets (RFC 5077 / RFC 8446 4.6.1) are encrypted under
 * keys this file makes and rotates itself, so that they survive reloads and a stolen key opens at
 * most two periods of tickets. Socket readiness, timeouts and logging are the caller's. */
#include "common/net/tls.h"
#include "common/net/tls_internal.h"

#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A ticket key serves new tickets for this long, then only opens them for as long again
 * (returning 2 asks OpenSSL to issue a fresh ticket). Sessions live as long as one period. */
#define TICKET_PERIOD_S 3600
#define TICKETS_PER_HANDSHAKE 1 /* TLS 1.3: one ticket (a browser resumes with one) */

/* ---- errors ---- */

void tls_ssl_error_text(char *why, size_t len, const char *fallback)
{
    unsigned long e = ERR_get_error();
    const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;
    if (reason != NULL)
        snprintf(why, len, "%s", reason);
    else if (e != 0)
        ERR_error_string_n(e, why, len);
    else
        snprintf(why, len, "%s", fallback);
    ERR_clear_error();
}

/* ---- callbacks ---- */

/* RFC 7301: HTTP/1.1 is all we speak; a client offering only other protocols (h2) gets no ALPN
 * answer rather than an alert, as most servers do. */
static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    static const unsigned char http11[] = "\x08http/1.1";
    unsigned char *chosen = NULL;
    if (SSL_select_next_proto(&chosen, outlen, http11, sizeof http11 - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = chosen;
    return SSL_TLSEXT_ERR_OK;
}

static int ticket_key_make(struct ticket_key *k, time_t now)
{
    if (RAND_bytes(k->name, sizeof k->name) != 1 || RAND_bytes(k->aes, sizeof k->aes) != 1 ||
        RAND_bytes(k->hmac, sizeof k->hmac) != 1)
        return -1;
    k->born = now;
    return 0;
}

/* The current key is replaced once it is a period old; the one it replaces still opens tickets
 * for one more period. */
static int ticket_rotate(struct tls_context *tls, time_t now)
{
    if (tls->keys[0].born != 0 && now - tls->keys[0].born < TICKET_PERIOD_S)
        return 0;
    struct ticket_key fresh;
    if (ticket_key_make(&fresh, now) != 0)
        return -1;
    tls->keys[1] = tls->keys[0];
    tls->keys[0] = fresh;
    OPENSSL_cleanse(&fresh, sizeof fresh);
    return 0;
}

static int ticket_hmac_init(EVP_MAC_CTX *hctx, const struct ticket_key *k)
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)k->hmac, sizeof k->hmac),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    return EVP_MAC_CTX_set_params(hctx, params) == 1 ? 0 : -1;
}

/* SSL_CTX_set_tlsext_ticket_key_evp_cb: enc = 1 seals a new ticket under the current key;
 * enc = 0 opens one: 1 (current key), 2 (previous key: valid, but issue a new ticket), 0 (unknown
 * or expired key: a full handshake), -1 on failure. */
static int ticket_cb(SSL *ssl, unsigned char key_name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx,
                     EVP_MAC_CTX *hctx, int enc)
{
    struct tls_context *tls = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    time_t now = time(NULL);
    if (tls == NULL || ticket_rotate(tls, now) != 0)
        return -1;
    if (enc) {
        const struct ticket_key *k = &tls->keys[0];
        if (RAND_bytes(iv, 16) != 1)
            return -1;
        memcpy(key_name, k->name, sizeof k->name);
        if (EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv) != 1 ||
            ticket_hmac_init(hctx, k) != 0)
            return -1;
        return 1;
    }
    for (int i = 0; i < 2; i++) {
        const struct ticket_key *k = &tls->keys[i];
        if (k->born == 0 || now - k->born >= 2 * TICKET_PERIOD_S ||
            memcmp(key_name, k->name, sizeof k->name) != 0)
            continue;
        if (EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv) != 1 ||
            ticket_hmac_init(hctx, k) != 0)
            return -1;
        return i == 0 ? 1 : 2;
    }
    return 0;
}

/* ---- contexts ---- */

/* Splits a colon list into TLS 1.3 suites (TLS_*) and TLS 1.2 ciphers and applies both. */
static int apply_ciphers(SSL_CTX *ctx, const char *list, char *err, size_t errlen)
{
    size_t n = strlen(list) + 1;
    char *v13 = calloc(1, n), *v12 = calloc(1, n), *copy = strdup(list);
    int rc = -1;
    if (v13 == NULL || v12 == NULL || copy == NULL) {
        snprintf(err, errlen, "tls-ciphers: out of memory");
        goto out;
    }
    /* each list is at most as long as the input: the appends below stay within n bytes */
    char *save = NULL;
    size_t len13 = 0, len12 = 0;
    for (char *tok = strtok_r(copy, ":", &save); tok != NULL; tok = strtok_r(NULL, ":", &save)) {
        bool is13 = strncmp(tok, "TLS_", 4) == 0;
        char *dst = is13 ? v13 : v12;
        size_t *len = is13 ? &len13 : &len12;
        size_t k = strlen(tok);
        if (*len > 0)
            dst[(*len)++] = ':';
        memcpy(dst + *len, tok, k);
        *len += k;
        dst[*len] = '\0';
    }
    if (v13[0] == '\0' && v12[0] == '\0') {
        snprintf(err, errlen, "tls-ciphers: empty list");
        goto out;
    }
    /* only TLS 1.3 suites named: TLS 1.2 is off; only TLS 1.2 ciphers: TLS 1.3 keeps its defaults
     */
    if (v13[0] != '\0' && SSL_CTX_set_ciphersuites(ctx, v13) != 1) {
        snprintf(err, errlen, "tls-ciphers: no usable TLS 1.3 suite in '%s'", v13);
        goto out;
    }
    if (v12[0] == '\0') {
        SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    } else if (SSL_CTX_set_cipher_list(ctx, v12) != 1) {
        snprintf(err, errlen, "tls-ciphers: no usable TLS 1.2 cipher in '%s'", v12);
        goto out;
    }
    rc = 0;
out:
    free(v13);
    free(v12);
    free(copy);
    ERR_clear_error();
    return rc;
}

/* Loads the certificate chain and the key, checking they belong together. */
static int load_pair(SSL_CTX *ctx, const char *cert_file, const char *key_file, char *err,
                     size_t errlen)
{
    char why[160];
    FILE *f = fopen(cert_file, "r");
    if (f == NULL) {
        snprintf(err, errlen, "tls-cert: cannot read %s: %s", cert_file, strerror(errno));
        return -1;
    }
    fclose(f);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        tls_ssl_error_text(why, sizeof why, "unreadable");
        snprintf(err, errlen, "tls-cert: %s is not a PEM certificate chain (%s)", cert_file, why);
        return -1;
    }
    f = fopen(key_file, "r");
    if (f == NULL) {
        snprintf(err, errlen, "tls-key: cannot read %s: %s", key_file, strerror(errno));
        return -1;
    }
    EVP_PKEY *key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (key == NULL) {
        ERR_clear_error();
        snprintf(err, errlen,
                 "tls-key: %s holds no readable PEM private key (an encrypted key "
                 "needs decrypting first)",
                 key_file);
        return -1;
    }
    int ok = SSL_CTX_use_PrivateKey(ctx, key) == 1 && SSL_CTX_check_private_key(ctx) == 1;
    EVP_PKEY_free(key);
    if (!ok) {
        tls_ssl_error_text(why, sizeof why, "mismatch");
        snprintf(err, errlen, "tls-key: %s does not match the certificate of tls-cert %s (%s)",
                 key_file, cert_file, why);
        return -1;
    }
    return 0;
}

static void describe(struct tls_context *tls, SSL_CTX *ctx)
{
    X509 *cert = SSL_CTX_get0_certificate(ctx);
    char subject[160] = "?", expires[64] = "?";
    if (cert != NULL) {
        X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof subject);
        BIO *mem = BIO_new(BIO_s_mem());
        if (mem != NULL && ASN1_TIME_print(mem, X509_get0_notAfter(cert)) == 1) {
            int n = BIO_read(mem, expires, sizeof expires - 1);
            expires[n > 0 ? n : 0] = '\0';
        }
        BIO_free(mem);
    }
    bool expired = cert != NULL && X509_cmp_current_time(X509_get0_notAfter(cert)) < 0;
    snprintf(tls->description, sizeof tls->description, "subject %s, expires %s%s", subject,
             expires, expired ? " (EXPIRED)" : "");
    ERR_clear_error();
}

/* A new server context from the files and options kept in `tls`. */
static SSL_CTX *build(struct tls_context *tls, char *err, size_t errlen)
{
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        snprintf(err, errlen, "TLS: cannot create a context (out of memory)");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* no renegotiation (a CPU sink and an old attack surface); EOF without close_notify is an
     * ordinary close, as browsers do it all the time */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* RELEASE_BUFFERS: an idle connection keeps no record buffers (DESIGN.md §4). The writer
     * gathers records through a shared stage, so a retried write may come from elsewhere. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* resumption by tickets only: no server-side session cache to grow */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, TICKETS_PER_HANDSHAKE);
    SSL_CTX_set_timeout(ctx, TICKET_PERIOD_S);
    SSL_CTX_set_app_data(ctx, tls);
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, NULL);
    /* the info, key-log and message callbacks are tls_conn.c's: it installs them (contexts do
     * not call into connections; connections use their context) */
    if (apply_ciphers(ctx, tls->ciphers, err, errlen) != 0)
        goto fail;
    if (SSL_CTX_set1_groups_list(ctx, tls->groups) != 1) {
        snprintf(err, errlen, "tls-groups: '%s' is not a list of known groups", tls->groups);
        goto fail;
    }
    if (load_pair(ctx, tls->cert_file, tls->key_file, err, errlen) != 0)
        goto fail;
    ERR_clear_error();
    return ctx;
fail:
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return NULL;
}

void tls_context_unref(struct tls_context *tls)
{
    if (tls == NULL || --tls->refs > 0)
        return;
    SSL_CTX_free(tls->ctx);
    tls13_aead_free(tls->aead);
    free(tls->cert_file);
    free(tls->key_file);
    free(tls->ciphers);
    free(tls->groups);
    OPENSSL_cleanse(tls->keys, sizeof tls->keys);
    free(tls);
}

void tls_context_free(struct tls_context *tls)
{
    tls_context_unref(tls);
}

struct tls_context *tls_context_new(const struct tls_options *opt, char *err, size_t errlen)
{
    if (opt->cert_file == NULL || opt->key_file == NULL) {
        snprintf(err, errlen, "%s",
                 opt->cert_file == NULL ? "tls-key needs tls-cert" : "tls-cert needs tls-key");
        return NULL;
    }
    struct tls_context *tls = calloc(1, sizeof *tls);
    if (tls == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    tls->cert_file = strdup(opt->cert_file);
    tls->key_file = strdup(opt->key_file);
    tls->ciphers = strdup(opt->ciphers != NULL ? opt->ciphers : TLS_DEFAULT_CIPHERS);
    tls->groups = strdup(opt->groups != NULL ? opt->groups : TLS_DEFAULT_GROUPS);
    tls->aead = tls13_aead_new();
    tls->refs = 1;
    if (tls->cert_file == NULL || tls->key_file == NULL || tls->ciphers == NULL ||
        tls->groups == NULL || tls->aead == NULL) {
        snprintf(err, errlen, "out of memory");
        tls_context_free(tls);
        return NULL;
    }
    tls->ctx = build(tls, err, errlen);
    if (tls->ctx == NULL) {
        tls_context_free(tls);
        return NULL;
    }
    describe(tls, tls->ctx);
    return tls;
}

int tls_context_reload(struct tls_context *tls, char *err, size_t errlen)
{
    SSL_CTX *ctx = build(tls, err, errlen);
    if (ctx == NULL)
        return -1;
    /* connections made from the old context hold their own references to it */
    SSL_CTX_free(tls->ctx);
    tls->ctx = ctx;
    describe(tls, ctx);
    return 0;
}

const char *tls_context_describe(const struct tls_context *tls)
{
    return tls->description;
}
