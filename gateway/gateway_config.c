/* gateway_config.c: see gateway_config.h. */
#include "gateway/gateway_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/jwt.h"
#include "common/redis_slots.h"
#include "common/user_room.h"
#include "common/net/log.h"
#include "common/net/process.h"
#include "common/net/redis_tls.h"
#include "common/net/tls.h"
#include "gateway/cluster.h"

static const struct config_option options[] = {
    {"listen", CONFIG_STRING, "0.0.0.0:3000", 0, 0,
     "address to listen on (host:port; port 0 = any)"},
    {"path", CONFIG_STRING, "/socket.io/", 0, 0, "Engine.IO path prefix"},
    REDIS_OPTION_ENTRIES,
    {"node-id", CONFIG_STRING, NULL, 0, 0, "this node's id (random when unset, printed at start)"},
    {"key-prefix", CONFIG_STRING, "sioc", 0, 0, "prefix of sioc's Redis keys"},
    {"adapter-key", CONFIG_STRING, "socket.io", 0, 0, "Socket.IO Redis adapter key"},
    {"adapter-specific-response", CONFIG_BOOL, "no", 0, 0,
     "answer adapter requests on the requester's own channel (publishOnSpecificResponseChannel; adapter classic)"},
    {"adapter", CONFIG_STRING, "classic", 0, 0,
     "cluster fan-out: classic (@socket.io/redis-adapter pub/sub) or sharded (its createShardedAdapter: Redis 7 SPUBLISH/SSUBSCRIBE)"},
    {"subscription-mode", CONFIG_STRING, "dynamic", 0, 0,
     "adapter sharded: dynamic (a channel per public room), static or dynamic-private (as createShardedAdapter's subscriptionMode)"},
    {"ping-interval", CONFIG_MS, "25000", 1, 3600000, "Engine.IO ping interval"},
    {"ping-timeout", CONFIG_MS, "20000", 1, 3600000, "Engine.IO ping timeout"},
    {"max-payload", CONFIG_INT, "1000000", 1, 1 << 30, "largest message or POST body (bytes)"},
    {"transports", CONFIG_STRING, "polling,websocket", 0, 0, "enabled transports"},
    {"allow-eio3", CONFIG_BOOL, "no", 0, 0,
     "accept Engine.IO v3 clients (socket.io-client 2.x), as Node's allowEIO3"},
    {"cors-origin", CONFIG_STRING, NULL, 0, 0,
     "CORS: * or a comma list of origins (none when unset)"},
    {"namespaces", CONFIG_STRING, "/", 0, 0, "accepted namespaces: a comma list, or * for any"},
    {"forward", CONFIG_BOOL, "yes", 0, 0,
     "serve other gateways' Engine.IO sessions by forwarding their requests over Redis (no sticky sessions needed)"},
    {"forward-timeout", CONFIG_MS, "10000", 1, 3600000,
     "a forwarded polling request or upgrade must be answered within this (a GET: ping-interval more)"},
    {"forward-max", CONFIG_INT, "1024", 1, 1000000,
     "forwarded requests in flight per gateway, each way; more get 503"},
    {"ws-routes", CONFIG_STRING, NULL, 0, 0,
     "plain WebSocket routes: a comma list of PATH=NAMESPACE (e.g. /ws=/ws,/ws/{user}=/ws); {user} names the connection's user"},
    {"connect-timeout", CONFIG_MS, "45000", 1, 3600000, "close connections that join no namespace"},
    {"backpressure-timeout", CONFIG_MS, "60000", 1, 3600000,
     "while reading is paused for upstream back-pressure clients' heartbeats wait; longer pauses close them"},
    {"empty-namespace-timeout", CONFIG_MS, "30000", 1, 86400000,
     "namespaces *: a namespace without sockets is freed after this"},
    {"auth", CONFIG_STRING, "none", 0, 0, "none, jwt or backend"},
    {"jwt-secret", CONFIG_STRING, NULL, 0, 0, "HS256 secret (auth jwt)"},
    {"jwt-public-key", CONFIG_STRING, NULL, 0, 0, "PEM file with an RSA or P-256 key (auth jwt)"},
    {"jwt-user-claim", CONFIG_STRING, "sub", 0, 0, "claim holding the user id"},
    {"user-room", CONFIG_STRING, "user:%s", 0, 0, "room of authenticated users (%s = uid)"},
    {"auth-timeout", CONFIG_MS, "5000", 1, 3600000, "backend auth answer timeout"},
    {"upstream", CONFIG_STRING, "stream", 0, 0, "stream, pubsub or off"},
    {"upstream-shards", CONFIG_INT, "1", 1, 4096, "upstream stream shards per namespace"},
    {"upstream-maxlen", CONFIG_INT, "1000000", 0, 1000000000000,
     "approximate MAXLEN of upstream streams"},
    TLS_SERVER_OPTION_ENTRIES("HTTPS/WSS"),
    {"static", CONFIG_STRING, NULL, 0, 0, "directory served at / (e.g. a demo page)"},
    {"client-js", CONFIG_STRING, NULL, 0, 0, "file served at <path>socket.io.js"},
    {"log-format", CONFIG_STRING, "text", 0, 0, "text or json"},
    {"log-level", CONFIG_STRING, "info", 0, 0, "debug, info, warn or error"},
    {"log-file", CONFIG_STRING, NULL, 0, 0,
     "log to this file (reopened on SIGHUP) instead of stderr"},
    {"drain-timeout", CONFIG_MS, "10000", 1, 3600000, "longest SIGTERM drain"},
    {"max-connections", CONFIG_INT, "0", 0, 100000000,
     "client connections served at once (0 = the file-descriptor limit less 64 kept for Redis and health checks); above it 503"},
    {"recovery-window", CONFIG_MS, "0", 0, 86400000,
     "connection state recovery: a client reconnecting within this long (any gateway) gets its socket id, rooms, user and missed packets back (0 = off)"},
    {"node-timeout", CONFIG_MS, "6000", 100, 3600000,
     "heartbeat lifetime: the broker reaps a node this long after its last beat"},
    {"port-file", CONFIG_STRING, NULL, 0, 0, "write the bound port here once listening"},
    {"check-config", CONFIG_FLAG, NULL, 0, 0, "validate the configuration and exit"},
    {"help", CONFIG_FLAG, NULL, 0, 0, "print this help"},
    {"config", CONFIG_STRING, NULL, 0, 0, "config file: one 'key value' per line"},
};

const struct config_option *gateway_options(size_t *count)
{
    *count = sizeof options / sizeof options[0];
    return options;
}

/* True when `nsp` is accepted by the `namespaces` list ("*" accepts any). */
static bool namespace_listed(const char *list, const char *nsp, size_t len)
{
    if (strcmp(list, "*") == 0)
        return true;
    return config_list_has(list, nsp, len);
}

/* ws-routes: the syntax (common/ws_routes.h), each namespace accepted by `namespaces`, and no
 * path that another endpoint answers first. Fills g->routes; an error text or NULL. */
static const char *validate_routes(struct config *cfg, struct gateway_loaded *g, char *err,
                                   size_t errlen)
{
    char why[200];
    if (ws_routes_parse(&g->routes, config_get(cfg, "ws-routes"), why, sizeof why) != SIOC_OK) {
        snprintf(err, errlen, "ws-routes: %s", why[0] ? why : "out of memory");
        return err;
    }
    const char *path = config_get(cfg, "path");
    for (size_t i = 0; i < g->routes.count; i++) {
        const struct ws_route *r = &g->routes.routes[i];
        const char *problem = NULL;
        if (!namespace_listed(config_get(cfg, "namespaces"), r->nsp, r->nsp_len))
            problem = "the namespace is not accepted by the namespaces option";
        else if (strncmp(r->path, path, strlen(path)) == 0)
            problem = "the path is under the Engine.IO path (option path)";
        else if (strcmp(r->path, "/healthz") == 0 || strcmp(r->path, "/readyz") == 0 ||
                 strcmp(r->path, "/metrics") == 0)
            problem = "the path is a health or metrics endpoint";
        if (problem != NULL) {
            snprintf(err, errlen, "ws-routes: \"%s=%s\": %s", r->path, r->nsp, problem);
            ws_routes_deinit(&g->routes);
            return err;
        }
    }
    return NULL;
}

/* Checks what config_load cannot: choices, cross-option rules, files. Returns an error text or
 * NULL. */
const char *gateway_config_validate(struct config *cfg, struct gateway_loaded *g, char *err,
                                    size_t errlen)
{
    memset(g, 0, sizeof *g);
    const char *auth = config_get(cfg, "auth");
    const char *upstream = config_get(cfg, "upstream");
    char prefix_buf[CONFIG_MAX_VALUE + 3];
    if (redis_key_prefix_for(config_get(cfg, "redis"), config_get(cfg, "key-prefix"), prefix_buf,
                             sizeof prefix_buf) == NULL)
        return "key-prefix: must not be empty or contain { or } on a Redis Cluster";
    const char *tls_problem =
        redis_tls_from_config(cfg, config_get(cfg, "redis"), &g->redis_tls, err, errlen);
    if (tls_problem != NULL)
        return tls_problem;
    if (strcmp(auth, "none") != 0 && strcmp(auth, "jwt") != 0 && strcmp(auth, "backend") != 0)
        return "auth: must be none, jwt or backend";
    if (strcmp(upstream, "stream") != 0 && strcmp(upstream, "pubsub") != 0 &&
        strcmp(upstream, "off") != 0)
        return "upstream: must be stream, pubsub or off";
    if (strcmp(auth, "backend") == 0 && strcmp(upstream, "off") == 0)
        return "auth backend needs an upstream (stream or pubsub)";
    const char *adapter = config_get(cfg, "adapter");
    enum cluster_sub_mode mode;
    if (strcmp(adapter, "classic") != 0 && strcmp(adapter, "sharded") != 0)
        return "adapter: must be classic or sharded";
    if (!cluster_sub_mode_parse(config_get(cfg, "subscription-mode"), &mode))
        return "subscription-mode: must be dynamic, static or dynamic-private";
    if (strcmp(adapter, "sharded") == 0 && config_get_bool(cfg, "adapter-specific-response"))
        return "adapter-specific-response: only with adapter classic (sharded answers always go to the requester's channel)";
    if (!user_room_valid(config_get(cfg, "user-room")))
        return "user-room: must contain exactly one %s and no other %";
    size_t nsp_count = 0;
    const char *cursor = config_get(cfg, "namespaces"), *item;
    for (size_t len; config_list_next(&cursor, &item, &len);)
        nsp_count++;
    if (nsp_count > CLUSTER_MAX_NAMESPACES) {
        snprintf(err, errlen, "namespaces: %zu listed, at most %d (the adapter follows no more)",
                 nsp_count, CLUSTER_MAX_NAMESPACES);
        return err;
    }
    const char *path = config_get(cfg, "path");
    if (path[0] != '/' || path[strlen(path) - 1] != '/')
        return "path: must start and end with /";
    enum log_level level;
    enum log_format format;
    if (log_level_parse(config_get(cfg, "log-level"), &level) != SIOC_OK)
        return "log-level: must be debug, info, warn or error";
    if (log_format_parse(config_get(cfg, "log-format"), &format) != SIOC_OK)
        return "log-format: must be text or json";
    if (strcmp(auth, "jwt") == 0) {
        const char *secret = config_get(cfg, "jwt-secret");
        const char *pem_file = config_get(cfg, "jwt-public-key");
        if ((secret == NULL) == (pem_file == NULL))
            return "auth jwt: give exactly one of jwt-secret and jwt-public-key";
        if (secret != NULL) {
            g->jwt = jwt_key_from_secret(secret, strlen(secret));
        } else {
            size_t len = 0;
            char *pem = process_read_file(pem_file, 65536, &len);
            g->jwt = pem ? jwt_key_from_pem(pem, len) : NULL;
            free(pem);
            if (g->jwt == NULL) {
                snprintf(err, errlen, "jwt-public-key: %s is not a PEM RSA or P-256 public key",
                         pem_file);
                return err;
            }
        }
    }
    if (config_get(cfg, "tls-cert") != NULL || config_get(cfg, "tls-key") != NULL) {
        struct tls_options topt = {config_get(cfg, "tls-cert"), config_get(cfg, "tls-key"),
                                   config_get(cfg, "tls-ciphers"), config_get(cfg, "tls-groups")};
        g->tls = tls_context_new(&topt, err, errlen);
        if (g->tls == NULL)
            return err;
    }
    const char *routes_problem = validate_routes(cfg, g, err, errlen);
    if (routes_problem != NULL)
        return routes_problem;
    const char *js = config_get(cfg, "client-js");
    if (js != NULL) {
        FILE *f = fopen(js, "rb");
        if (f == NULL) {
            snprintf(err, errlen, "client-js: cannot read %s", js);
            return err;
        }
        fclose(f);
    }
    return NULL;
}

void gateway_loaded_free(struct gateway_loaded *g)
{
    jwt_key_free(g->jwt);
    tls_context_free(g->tls);
    redis_tls_free(g->redis_tls);
    ws_routes_deinit(&g->routes);
    memset(g, 0, sizeof *g);
}
