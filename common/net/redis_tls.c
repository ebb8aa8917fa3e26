/* redis_tls.c: the OpenSSL client context of redis_tls.h (OpenSSL 3: SSL_CTX, verification with
 * SSL_set1_host / X509_VERIFY_PARAM_set1_ip_asc, SNI per RFC 6066 §3, never for IP literals). */
#include "common/net/redis_tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "common/config.h"
#include "common/error.h"
#include "common/redis_proto.h"

struct redis_tls {
    SSL_CTX *ctx;
    char *server_name; /* NULL: each URL's host */
    bool insecure;
};

/* Writes "<what> <file>: <OpenSSL's or errno's reason>" to err and clears OpenSSL's queue. */
static void file_error(char *err, size_t errlen, const char *what, const char *file)
{
    /* errno first: OpenSSL reports a missing file as "system lib" */
    unsigned long e = ERR_peek_last_error();
    const char *reason = errno != 0 ? strerror(errno) : e != 0 ? ERR_reason_error_string(e) : NULL;
    if (reason == NULL)
        reason = "not a valid PEM file";
    snprintf(err, errlen, "%s %s: %s", what, file, reason);
    ERR_clear_error();
}

struct redis_tls *redis_tls_new(const struct redis_tls_config *cfg, char *err, size_t errlen)
{
    struct redis_tls *t = calloc(1, sizeof(*t));
    if (t == NULL || (t->ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
        snprintf(err, errlen, "out of memory");
        free(t);
        return NULL;
    }
    t->insecure = cfg->insecure;
    SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
    /* Writes resume with whatever is left of the output buffer, which may have moved. */
    SSL_CTX_set_mode(t->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_verify(t->ctx, cfg->insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
    errno = 0;
    if (cfg->ca_file != NULL) {
        if (SSL_CTX_load_verify_locations(t->ctx, cfg->ca_file, NULL) != 1) {
            file_error(err, errlen, "redis-tls-ca", cfg->ca_file);
            goto fail;
        }
    } else if (SSL_CTX_set_default_verify_paths(t->ctx) != 1) {
        snprintf(err, errlen, "redis-tls-ca: cannot load the system's CA certificates");
        goto fail;
    }
    if ((cfg->cert_file == NULL) != (cfg->key_file == NULL)) {
        snprintf(err, errlen, "redis-tls-cert and redis-tls-key go together");
        goto fail;
    }
    if (cfg->cert_file != NULL) {
        errno = 0;
        if (SSL_CTX_use_certificate_chain_file(t->ctx, cfg->cert_file) != 1) {
            file_error(err, errlen, "redis-tls-cert", cfg->cert_file);
            goto fail;
        }
        errno = 0;
        if (SSL_CTX_use_PrivateKey_file(t->ctx, cfg->key_file, SSL_FILETYPE_PEM) != 1) {
            file_error(err, errlen, "redis-tls-key", cfg->key_file);
            goto fail;
        }
        if (SSL_CTX_check_private_key(t->ctx) != 1) {
            snprintf(err, errlen, "redis-tls-key %s does not match redis-tls-cert %s",
                     cfg->key_file, cfg->cert_file);
            ERR_clear_error();
            goto fail;
        }
    }
    if (cfg->server_name != NULL && (t->server_name = strdup(cfg->server_name)) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    return t;
fail:
    redis_tls_free(t);
    return NULL;
}

void redis_tls_free(struct redis_tls *t)
{
    if (t == NULL)
        return;
    SSL_CTX_free(t->ctx);
    free(t->server_name);
    free(t);
}

static const char *const option_keys[] = {"redis-tls-ca", "redis-tls-cert", "redis-tls-key",
                                          "redis-tls-server-name", "redis-tls-insecure"};

const char *redis_tls_from_config(const struct config *cfg, const char *url, struct redis_tls **out,
                                  char *err, size_t errlen)
{
    *out = NULL;
    struct redis_url u;
    if (redis_url_parse(url, &u) != SIOC_OK)
        return "redis: not a redis://, rediss://, redis-cluster:// or rediss-cluster:// URL (a "
               "cluster has only db 0)";
    if (!u.tls) {
        /* Settings that would silently do nothing: the operator meant TLS. */
        for (size_t i = 0; i < sizeof(option_keys) / sizeof(option_keys[0]); i++) {
            if (config_source_of(cfg, option_keys[i]) != CONFIG_FROM_DEFAULT) {
                snprintf(err, errlen, "%s: needs a rediss:// URL in redis%s", option_keys[i],
                         u.cluster ? " (rediss-cluster:// for a cluster)" : "");
                return err;
            }
        }
        return NULL;
    }
    struct redis_tls_config tc = {
        .ca_file = config_get(cfg, "redis-tls-ca"),
        .cert_file = config_get(cfg, "redis-tls-cert"),
        .key_file = config_get(cfg, "redis-tls-key"),
        .server_name = config_get(cfg, "redis-tls-server-name"),
        .insecure = config_get_bool(cfg, "redis-tls-insecure"),
    };
    *out = redis_tls_new(&tc, err, errlen);
    return *out == NULL ? err : NULL;
}

bool redis_tls_insecure(const struct redis_tls *t)
{
    return t->insecure;
}

static bool is_ip_literal(const char *name)
{
    unsigned char addr[16];
    return inet_pton(AF_INET, name, addr) == 1 || inet_pton(AF_INET6, name, addr) == 1;
}

SSL *redis_tls_session_new(struct redis_tls *t, const char *host)
{
    SSL *ssl = SSL_new(t->ctx);
    if (ssl == NULL)
        return NULL;
    const char *name = t->server_name != NULL ? t->server_name : host;
    bool ip = is_ip_literal(name);
    bool ok = ip || SSL_set_tlsext_host_name(ssl, name) == 1; /* RFC 6066 §3: no IP in SNI */
    if (ok && !t->insecure)
        ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) == 1
                : SSL_set1_host(ssl, name) == 1;
    if (!ok) {
        ERR_clear_error();
        SSL_free(ssl);
        return NULL;
    }
    SSL_set_connect_state(ssl);
    return ssl;
}
