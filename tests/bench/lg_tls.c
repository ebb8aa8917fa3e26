/* lg_tls.c: the load generator's TLS client (see lg_tls.h). */
#include "tests/bench/lg_tls.h"

#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --tls-resume: the latest session a server gave (the context's app data). */
struct resume {
    SSL_SESSION *session;
};

static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
    struct resume *r = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    SSL_SESSION_free(r->session);
    r->session = sess;
    return 1; /* the reference is ours */
}

struct ssl_ctx_st *lg_tls_ctx_new(const char *ca_file, bool resume, const char **err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        *err = "cannot create a TLS context";
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    static const unsigned char alpn[] = "\x08http/1.1";
    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn - 1);
    if (ca_file != NULL) {
        if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
            SSL_CTX_free(ctx);
            *err = "--tls-ca: cannot read the CA file";
            return NULL;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }
    if (resume) {
        struct resume *r = calloc(1, sizeof *r);
        if (r == NULL) {
            SSL_CTX_free(ctx);
            *err = "out of memory";
            return NULL;
        }
        SSL_CTX_set_app_data(ctx, r);
        SSL_CTX_set_session_cache_mode(ctx,
                                       SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
        SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
    }
    return ctx;
}

void lg_tls_ctx_free(struct ssl_ctx_st *ctx)
{
    struct resume *r = SSL_CTX_get_app_data(ctx);
    if (r != NULL) {
        SSL_SESSION_free(r->session);
        free(r);
    }
    SSL_CTX_free(ctx);
}

bool lg_tls_have_session(struct ssl_ctx_st *ctx)
{
    struct resume *r = SSL_CTX_get_app_data(ctx);
    return r != NULL && r->session != NULL;
}

bool lg_tls_resumed(const struct ssl_st *ssl)
{
    return SSL_session_reused((SSL *)ssl) == 1;
}

struct ssl_st *lg_tls_new(struct ssl_ctx_st *ctx, int fd, const char *host)
{
    SSL *ssl = SSL_new(ctx);
    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
        SSL_free(ssl);
        return NULL;
    }
    char name[64];
    snprintf(name, sizeof name, "%s", host);
    char *colon = strrchr(name, ':');
    if (colon != NULL)
        *colon = '\0';
    if (SSL_get_verify_mode(ssl) != SSL_VERIFY_NONE)
        SSL_set1_host(ssl, name); /* a name or an IP address, as the certificate's SAN */
    SSL_set_tlsext_host_name(ssl, name);
    struct resume *r = SSL_CTX_get_app_data(ctx);
    if (r != NULL && r->session != NULL) {
        /* a copy: a TLS 1.3 client marks the session it resumed as used up */
        SSL_SESSION *copy = SSL_SESSION_dup(r->session);
        if (copy != NULL) {
            SSL_set_session(ssl, copy);
            SSL_SESSION_free(copy);
        }
    }
    SSL_set_connect_state(ssl);
    return ssl;
}

void lg_tls_free(struct ssl_st *ssl)
{
    SSL_free(ssl);
    ERR_clear_error();
}

int lg_tls_handshake(struct ssl_st *ssl, bool *want_write)
{
    ERR_clear_error();
    int rc = SSL_do_handshake(ssl);
    if (rc == 1)
        return 1;
    int e = SSL_get_error(ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        *want_write = e == SSL_ERROR_WANT_WRITE;
        return 0;
    }
    static bool said;
    if (!said) {
        said = true;
        char why[160] = "closed";
        unsigned long err = ERR_get_error();
        if (err != 0)
            ERR_error_string_n(err, why, sizeof why);
        long v = SSL_get_verify_result(ssl);
        fprintf(stderr, "loadgen: TLS handshake failed: %s%s%s\n", why,
                v != X509_V_OK ? "; certificate: " : "",
                v != X509_V_OK ? X509_verify_cert_error_string(v) : "");
    }
    ERR_clear_error();
    return -1;
}

/* errno for a failed SSL_read/SSL_write: EAGAIN when it only has to wait. */
static ssize_t failed(SSL *ssl, int rc)
{
    int e = SSL_get_error(ssl, rc);
    ERR_clear_error();
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        errno = EAGAIN;
        return -1;
    }
    if (e == SSL_ERROR_ZERO_RETURN)
        return 0;
    if (e != SSL_ERROR_SYSCALL || errno == 0)
        errno = EPIPE;
    return -1;
}

ssize_t lg_tls_send(struct ssl_st *ssl, const void *p, size_t len)
{
    ERR_clear_error();
    errno = 0;
    int n = SSL_write(ssl, p, len > INT_MAX ? INT_MAX : (int)len);
    return n > 0 ? n : failed(ssl, n);
}

ssize_t lg_tls_recv(struct ssl_st *ssl, uint8_t *p, size_t cap)
{
    size_t got = 0;
    while (got < cap) {
        ERR_clear_error();
        errno = 0;
        int n = SSL_read(ssl, p + got, cap - got > INT_MAX ? INT_MAX : (int)(cap - got));
        if (n > 0) {
            got += (size_t)n;
            continue;
        }
        if (got > 0)
            break; /* what was read goes first; the end or the error shows on the next call */
        return failed(ssl, n);
    }
    return (ssize_t)got;
}
