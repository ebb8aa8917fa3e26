/* gateway_config.h: sioc-gateway's options (DESIGN.md §2; each with --help text, env
 * SIOC_<KEY> and a row in docs/operations.md) and what config_load cannot check: choices,
 * cross-option rules and files, with the objects loaded on the way. */
#ifndef SIOC_GATEWAY_GATEWAY_CONFIG_H
#define SIOC_GATEWAY_GATEWAY_CONFIG_H

#include <stddef.h>

#include "common/config.h"
#include "common/ws_routes.h"

struct jwt_key;
struct redis_tls;
struct tls_context;

/* What validation loaded; NULL / empty when the options do not ask for it. */
struct gateway_loaded {
    struct jwt_key *jwt;         /* auth jwt: jwt-secret or jwt-public-key */
    struct tls_context *tls;     /* tls-cert, tls-key, tls-ciphers, tls-groups: HTTPS/WSS */
    struct redis_tls *redis_tls; /* rediss:// URLs (redis-tls-*) */
    struct ws_routes routes;     /* ws-routes */
};

/* The option table (static storage) and its length. */
const struct config_option *gateway_options(size_t *count);
/* Checks `cfg` and fills `out` (zeroed first). Returns NULL when the configuration is valid,
 * else the error text naming the option (a literal, or written to err[0..errlen)); `out` may
 * hold some objects then too: free it with gateway_loaded_free either way. */
const char *gateway_config_validate(struct config *cfg, struct gateway_loaded *out, char *err,
                                    size_t errlen);
/* Frees what `l` holds and zeroes it (may be called twice). */
void gateway_loaded_free(struct gateway_loaded *l);

#endif
