/* redis_tls.h: the client TLS settings of rediss:// links (DESIGN.md §2 `redis-tls-*`): one
 * OpenSSL context per process, loaded once from the CA, client certificate and key files, shared
 * by every Redis link of the process; redis_conn makes one TLS session per connection from it.
 * Verification (chain and server name) is on unless `insecure` says otherwise. */
#ifndef SIOC_NET_REDIS_TLS_H
#define SIOC_NET_REDIS_TLS_H

#include <stdbool.h>
#include <stddef.h>

struct config;
struct redis_tls;
struct ssl_st;

/* Every field may be NULL/false. Strings are copied by redis_tls_new. */
struct redis_tls_config {
    const char *ca_file;     /* PEM CA certificates to trust; NULL: the system's default store */
    const char *cert_file;   /* PEM client certificate (chain) for Redis's tls-auth-clients */
    const char *key_file;    /* its PEM private key; given together with cert_file */
    const char *server_name; /* name to verify and send as SNI; NULL: each URL's host */
    bool insecure;           /* verify nothing (chain, name): for tests; the owner logs it */
};

/* Loads the files (TLS 1.2 and 1.3 only). Returns NULL with a one-line reason in err[0..errlen)
 * ("redis-tls-ca /x.pem: No such file or directory") for an unreadable or invalid file, a
 * certificate without its key or a key that does not match it, or out of memory. */
struct redis_tls *redis_tls_new(const struct redis_tls_config *cfg, char *err, size_t errlen);

/* The entries a process puts in its option table (common/config.h) for these settings, the
 * same on every process (DESIGN.md §2). */
/* clang-format off */
#define REDIS_TLS_OPTION_ENTRIES                                                                   \
    {"redis-tls-ca", CONFIG_STRING, NULL, 0, 0,                                                    \
     "rediss://: PEM CA certificates to verify Redis with (default: the system's)"},               \
    {"redis-tls-cert", CONFIG_STRING, NULL, 0, 0,                                                  \
     "rediss://: client certificate (PEM) for Redis's tls-auth-clients"},                         \
    {"redis-tls-key", CONFIG_STRING, NULL, 0, 0,                                                   \
     "rediss://: the client certificate's private key (PEM)"},                                     \
    {"redis-tls-server-name", CONFIG_STRING, NULL, 0, 0,                                           \
     "rediss://: name to verify and send as SNI (default: the URL's host)"},                       \
    {"redis-tls-insecure", CONFIG_BOOL, "no", 0, 0,                                                \
     "rediss://: do not verify Redis's certificate at all (logged at start)"}
/* clang-format on */

/* The Redis URL and its TLS settings: the same entries on every process that talks to Redis. */
/* clang-format off */
#define REDIS_OPTION_ENTRIES                                                                       \
    {"redis", CONFIG_STRING, "redis://127.0.0.1:6379", 0, 0,                                       \
     "Redis URL: redis://[[user]:password@]host[:port][/db], rediss://... for TLS, redis-cluster://host:port[,host:port...] (rediss-cluster://) for a Redis Cluster"}, \
    REDIS_TLS_OPTION_ENTRIES
/* clang-format on */

/* Reads the redis-tls-* options of `cfg` (its table holds REDIS_TLS_OPTION_ENTRIES) for the Redis
 * URL `url`: *out is NULL for a redis:// URL, a new context (the caller frees it) for rediss://.
 * Returns NULL, or an error text in err ("redis-tls-ca: needs a rediss:// URL", a file that
 * cannot be loaded) with *out NULL. */
const char *redis_tls_from_config(const struct config *cfg, const char *url, struct redis_tls **out,
                                  char *err, size_t errlen);

/* Frees the context; every link using it must be freed first. NULL is a no-op. */
void redis_tls_free(struct redis_tls *tls);

/* A client session for one connection to `host` (the URL's host: the name checked, unless
 * server_name overrides it; an IP literal is matched against the certificate's IP addresses and
 * sends no SNI). The caller owns it (SSL_free). NULL when out of memory. */
struct ssl_st *redis_tls_session_new(struct redis_tls *tls, const char *host);

/* True when this context verifies nothing (redis-tls-insecure). */
bool redis_tls_insecure(const struct redis_tls *tls);

#endif
