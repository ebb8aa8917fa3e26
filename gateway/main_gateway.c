/* main_gateway.c: sioc-gateway (DESIGN.md §2): the wiring of the HTTP listener, the Socket.IO
 * layer, auth, the subscriber connection, the worker bridge, the adapter, the registry, recovery
 * and the forwarder, one set-up function per module (start()), each failure printed as
 * "sioc-gateway: cannot start: <step>: <cause>"; the HTTP endpoints besides Engine.IO (/healthz,
 * /readyz, /metrics, static files, the client bundle); signals (SIGTERM/SIGINT drain, SIGHUP
 * reopens the log and reloads the TLS certificate). Options and their validation are
 * gateway_config.c's, ws-routes requests gateway_routes.c's. Everything the process owns hangs
 * off one struct gateway (gateway_internal.h); no globals. */
#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/user_room.h"
#include "common/base64.h"
#include "common/config.h"
#include "common/envelope.h"
#include "common/redis_slots.h"
#include "common/error.h"
#include "common/jwt.h"
#include "common/metrics.h"
#include "common/net/http_server.h"
#include "common/net/log.h"
#include "common/net/process.h"
#include "common/net/redis_link.h"
#include "common/net/redis_tls.h"
#include "common/net/tls.h"
#include "gateway/auth.h"
#include "gateway/bridge.h"
#include "gateway/cluster.h"
#include "gateway/eio_forward.h"
#include "gateway/expiry.h"
#include "gateway/gateway_config.h"
#include "gateway/gateway_internal.h"
#include "gateway/recovery.h"
#include "gateway/registry.h"
#include "gateway/sio_server.h"
#include "gateway/static_files.h"
#include "gateway/subscriber.h"

/* ---- Socket.IO callbacks ---- */

static void connect_fresh(struct gateway *g, struct sio_socket *sock, const uint8_t *auth,
                          size_t len)
{
    if (g->auth == AUTH_JWT) {
        struct jwt_claims claims;
        const struct sio_handshake *hs = sio_socket_handshake(sock);
        struct slice payload = {auth, len};
        /* socket.io-client 2.x (protocol v4) has no auth payload for "/": its credentials come
         * as io(url, {query: {token}}), so the handshake query stands in for it (PROTOCOL.md 2.7)
         */
        if (sio_socket_protocol_v4(sock) &&
            auth_find_token(payload, (struct slice){NULL, 0}).len == 0)
            payload = hs->query;
        enum jwt_result r = auth_check_jwt(g->opt.jwt, g->jwt_claim, payload, hs->headers,
                                           (int64_t)time(NULL), &claims);
        if (r != JWT_OK) {
            (*g->connects_refused)++;
            log_write(g->log, LOG_LEVEL_INFO, "auth.refused", "nsp=%s reason=%s",
                      sio_socket_nsp(sock), jwt_strerror(r));
            sio_socket_reject(sock, jwt_strerror(r), NULL, 0);
            return;
        }
        sio_socket_accept(sock, claims.uid, g->user_room);
        if (claims.exp > 0 && expiry_add(g->expiry, sock, claims.exp) != SIOC_OK)
            sio_socket_disconnect(sock, false); /* cannot enforce exp: do not keep the socket */
        else
            bridge_on_connect(g->bridge, sock, auth, len, false);
        return;
    }
    if (g->auth == AUTH_BACKEND) {
        bridge_on_connect(g->bridge, sock, auth, len, true); /* the worker answers */
        return;
    }
    sio_socket_accept(sock, NULL, NULL);
    bridge_on_connect(g->bridge, sock, auth, len, false);
}

/* With recovery on, a CONNECT carrying {"pid","offset"} is first offered to recovery.c; what it
 * cannot restore comes back through on_recovery_fallback. A recovered socket skips auth (Node's
 * skipMiddlewares, its default). */
static void on_connect(void *ctx, struct sio_socket *sock, const uint8_t *auth, size_t len)
{
    struct gateway *g = ctx;
    if (g->recovery != NULL && recovery_restore(g->recovery, sock, auth, len))
        return;
    connect_fresh(g, sock, auth, len);
}

static void on_recovery_fallback(void *ctx, struct sio_socket *sock)
{
    struct gateway *g = ctx;
    struct slice auth = sio_socket_auth(sock);
    connect_fresh(g, sock, auth.p, auth.len);
}

static void on_recovered(void *ctx, struct sio_socket *sock)
{
    struct gateway *g = ctx;
    bridge_on_recovered(g->bridge, sock);
}

static void on_recovery_expired(void *ctx, const char *nsp, const char *sid, const char *uid,
                                const char *reason)
{
    struct gateway *g = ctx;
    bridge_write_disconnect(g->bridge, nsp, sid, uid, reason);
}

static void on_token_expired(void *ctx, struct sio_socket *sock)
{
    struct gateway *g = ctx;
    log_write(g->log, LOG_LEVEL_INFO, "auth.expired", "nsp=%s sid=%s uid=%s", sio_socket_nsp(sock),
              sio_socket_id(sock), sio_socket_uid(sock));
}

static void on_event(void *ctx, struct sio_socket *sock, struct slice event, struct slice args,
                     bool has_ack, uint64_t ack_id)
{
    struct gateway *g = ctx;
    (*g->events_in)++;
    bridge_on_event(g->bridge, sock, event, args, has_ack, ack_id);
}

static void on_ack(void *ctx, struct sio_socket *sock, uint64_t ack_id, struct slice args)
{
    struct gateway *g = ctx;
    bridge_on_ack(g->bridge, sock, ack_id, args);
}

static void on_disconnect(void *ctx, struct sio_socket *sock, const char *reason)
{
    struct gateway *g = ctx;
    if (log_enabled(g->log, LOG_LEVEL_DEBUG))
        log_write(g->log, LOG_LEVEL_DEBUG, "socket.disconnect", "nsp=%s sid=%s reason=%s",
                  sio_socket_nsp(sock), sio_socket_id(sock), reason);
    registry_on_disconnect(g->registry, sock);
    if (g->recovery != NULL && recovery_on_disconnect(g->recovery, sock, reason))
        bridge_on_park(g->bridge, sock); /* its disconnect entry waits for the window */
    else
        bridge_on_disconnect(g->bridge, sock, reason);
}

static void on_accepted(void *ctx, struct sio_socket *sock)
{
    struct gateway *g = ctx;
    registry_on_accepted(g->registry, sock);
    if (g->recovery != NULL)
        recovery_on_accepted(g->recovery, sock);
}

/* The broker reaped this node's epoch while it lived (e.g. Redis was unreachable for this
 * gateway only): workers were told `node lost` for its sockets, so the clients must see that
 * too. They reconnect (a transport close) and are registered under the registry's new epoch. */
static void on_epoch_reaped(void *ctx, const char *old_epoch, const char *new_epoch)
{
    struct gateway *g = ctx;
    (void)old_epoch;
    (void)new_epoch;
    sio_server_close_all(g->sio, "node lost");
}

/* ---- the subscriber connection's routes (subscriber.h) ---- */

/* P:node:<node>: the workers' replies are the bridge's; the broker's snapshot request (asked
 * when this node's socket count and its mirror differ) is the registry's. */
static void on_node_message(void *ctx, struct slice pattern, struct slice channel,
                            struct slice payload)
{
    struct gateway *g = ctx;
    (void)pattern;
    (void)channel;
    if (!bridge_apply_reply(g->bridge, payload.p, payload.len))
        registry_snapshot(g->registry);
}

/* P:eio:<tag>: requests forwarded to this node and answers to its own (eio_forward.h). */
static void on_forward_message(void *ctx, struct slice pattern, struct slice channel,
                               struct slice payload)
{
    struct gateway *g = ctx;
    (void)pattern;
    (void)channel;
    if (g->forward != NULL) /* NULL only inside eio_forward_new, before the loop runs */
        eio_forward_on_message(g->forward, payload.p, payload.len);
}

static bool on_foreign_sid(void *ctx, struct http_conn *conn, struct http_server_request *req,
                           const char *sid)
{
    struct gateway *g = ctx;
    return g->forward != NULL && eio_forward_request(g->forward, conn, req, sid);
}

/* The cluster's channels of a namespace under `namespaces *` (cluster.h subscribe_cb). */
static int cluster_subscribe(void *ctx, const char *channel)
{
    struct gateway *g = ctx;
    return subscriber_add(g->sub, SUBSCRIBER_CHANNEL, channel, cluster_on_message, g->cluster);
}

static int cluster_unsubscribe(void *ctx, const char *channel)
{
    struct gateway *g = ctx;
    return subscriber_remove(g->sub, SUBSCRIBER_CHANNEL, channel);
}

/* adapter sharded: shard channels (cluster.h shard_cb). */
static int cluster_shard(void *ctx, const char *channel, bool subscribe)
{
    struct gateway *g = ctx;
    return subscribe
               ? subscriber_add(g->sub, SUBSCRIBER_SHARD, channel, cluster_on_message, g->cluster)
               : subscriber_remove(g->sub, SUBSCRIBER_SHARD, channel);
}

static int forward_subscribe(void *ctx, const char *channel)
{
    struct gateway *g = ctx;
    return subscriber_add(g->sub, SUBSCRIBER_CHANNEL, channel, on_forward_message, g);
}

/* A room came to exist or went away on this node: the sharded adapter's dynamic channels. */
static void on_room_change(void *ctx, const char *nsp, size_t nsp_len, const uint8_t *room,
                           size_t len, bool created, bool is_socket_id)
{
    struct gateway *g = ctx;
    if (g->bridge != NULL)
        cluster_on_room_change(g->cluster, nsp, nsp_len, room, len, created, is_socket_id);
}

/* namespaces *: a namespace exists only while the cluster follows it (DESIGN.md §3.1: Node
 * peers count members with PUBSUB NUMSUB), so one it cannot subscribe is refused. */
static int on_namespace(void *ctx, const char *nsp, size_t len, bool open)
{
    struct gateway *g = ctx;
    if (!open) {
        cluster_nsp_close(g->cluster, nsp, len);
        g->nsp_limit_logged = false;
        return SIOC_OK;
    }
    int rc = cluster_nsp_open(g->cluster, nsp, len);
    if (rc != SIOC_OK && !g->nsp_limit_logged) {
        g->nsp_limit_logged = true; /* once: a client may try thousands */
        log_write(g->log, LOG_LEVEL_WARN, "cluster.namespace_refused",
                  "%.*s: %s (at most %d namespaces are followed at once; further ones are refused "
                  "until empty ones are freed)",
                  (int)len, nsp, sioc_strerror(rc), CLUSTER_MAX_NAMESPACES);
    }
    return rc;
}

static void on_room(void *ctx, struct sio_socket *sock, const uint8_t *room, size_t len,
                    bool joined)
{
    struct gateway *g = ctx;
    registry_on_room(g->registry, sock, room, len, joined);
    if (g->recovery != NULL)
        recovery_on_room(g->recovery, sock);
}

static void on_log(void *ctx, const char *event, const char *detail)
{
    struct gateway *g = ctx;
    log_write(g->log, LOG_LEVEL_INFO, event, "%s", detail);
}

static void on_pause(void *ctx, bool paused)
{
    struct gateway *g = ctx;
    log_write(g->log, LOG_LEVEL_WARN, "upstream.backpressure", "%s reading from clients",
              paused ? "pausing" : "resuming");
    /* DESIGN.md §3.2: what overflows is kept and client reads pause until it is written; the
     * clients' pongs wait unread meanwhile, so the pause must not count against them */
    http_server_pause_reading(g->http, paused);
    eio_server_hold_heartbeats(sio_server_eio(g->sio), paused);
    plain_ws_hold_heartbeats(sio_server_plain(g->sio), paused);
}

/* ---- HTTP routes ---- */

static bool path_is(const struct http_server_request *req, const char *p)
{
    return req->path.len == strlen(p) && memcmp(req->path.p, p, req->path.len) == 0;
}

static void on_request(void *ctx, struct http_conn *conn, struct http_server_request *req)
{
    struct gateway *g = ctx;
    (*g->http_requests)++;
    static const struct http_field text[] = {{"Content-Type", "text/plain"}};
    if (req->over_limit && !path_is(req, "/healthz") && !path_is(req, "/readyz") &&
        !path_is(req, "/metrics")) {
        /* a reserve connection above max-connections: health checks only */
        http_conn_respond(conn, 503, text, 1, "connection limit reached\n", 25, true);
        return;
    }
    if (g->client_js_path[0] != '\0' && path_is(req, g->client_js_path) &&
        static_serve_file(conn, req, config_get(g->cfg, "client-js")))
        return;
    if (sio_server_handle(g->sio, conn, req))
        return;
    if (path_is(req, "/healthz")) {
        http_conn_respond(conn, 200, text, 1, "ok\n", 3, false);
        return;
    }
    if (path_is(req, "/readyz")) {
        bool ready = !g->draining && bridge_ready(g->bridge);
        http_conn_respond(conn, ready ? 200 : 503, text, 1, ready ? "ready\n" : "not ready\n",
                          ready ? 6 : 10, false);
        return;
    }
    if (path_is(req, "/metrics")) {
        struct buf out;
        buf_init(&out, 0);
        metrics_render(g->metrics, &out);
        static const struct http_field prom[] = {{"Content-Type", METRICS_CONTENT_TYPE}};
        http_conn_respond(conn, 200, prom, 1, out.data, out.len, false);
        buf_deinit(&out);
        return;
    }
    if (gateway_route_request(g, conn, req))
        return;
    const char *dir = config_get(g->cfg, "static");
    if (dir != NULL && static_serve_dir(conn, req, dir))
        return;
    http_conn_respond(conn, 404, text, 1, "not found\n", 10, false);
}

static void on_http_error(void *ctx, const char *what, const char *peer)
{
    struct gateway *g = ctx;
    log_write(g->log, LOG_LEVEL_INFO, "http.refused", "%s peer=%s", what, peer);
}

static void on_listener(void *ctx, bool trouble, const char *what)
{
    struct gateway *g = ctx;
    log_write(g->log, trouble ? LOG_LEVEL_WARN : LOG_LEVEL_INFO, "http.listener", "%s", what);
}

/* Descriptors kept out of max-connections: Redis links and their reconnects, the log file,
 * the listener and the event loop's own, and the reserve for health checks. */
#define FD_HEADROOM 64
#define HEALTH_RESERVE 16

/* max-connections, checked against RLIMIT_NOFILE (raised towards the hard limit if needed). */
static size_t connection_budget(struct gateway *g, size_t wanted)
{
    size_t limit = process_fd_limit(wanted != 0 ? wanted + FD_HEADROOM : 0);
    size_t usable = limit == SIZE_MAX         ? SIZE_MAX
                    : limit > 2 * FD_HEADROOM ? limit - FD_HEADROOM
                                              : limit / 2;
    if (wanted == 0) {
        if (usable == SIZE_MAX) {
            log_write(g->log, LOG_LEVEL_INFO, "process.fds",
                      "no file-descriptor limit: max-connections unlimited");
            return 0;
        }
        log_write(g->log, LOG_LEVEL_INFO, "process.fds",
                  "max-connections %zu (file-descriptor limit %zu, %d kept for Redis and %d "
                  "health checks)",
                  usable, limit, FD_HEADROOM - HEALTH_RESERVE, HEALTH_RESERVE);
        return usable;
    }
    if (wanted > usable)
        log_write(g->log, LOG_LEVEL_WARN, "process.fds",
                  "max-connections %zu exceeds the file-descriptor limit %zu (less %d kept for "
                  "Redis and health checks): accepts will fail and back off above %zu",
                  wanted, limit, FD_HEADROOM, usable);
    return wanted;
}

/* ---- metrics ---- */

static double gauge_websocket(void *ctx)
{
    struct gateway *g = ctx;
    return (double)eio_server_count_transport(sio_server_eio(g->sio), true);
}

static double gauge_polling(void *ctx)
{
    struct gateway *g = ctx;
    return (double)eio_server_count_transport(sio_server_eio(g->sio), false);
}

static double gauge_plain(void *ctx)
{
    struct gateway *g = ctx;
    return (double)plain_ws_count(sio_server_plain(g->sio));
}

static double gauge_sockets(void *ctx)
{
    struct gateway *g = ctx;
    return (double)sio_server_socket_count(g->sio);
}

static double gauge_redis(void *ctx)
{
    struct gateway *g = ctx;
    return bridge_ready(g->bridge) ? 1.0 : 0.0;
}

static void register_metrics(struct gateway *g)
{
    metrics_gauge_fn(g->metrics, "sioc_connections", "Engine.IO connections by transport",
                     "transport=\"websocket\"", gauge_websocket, g);
    metrics_gauge_fn(g->metrics, "sioc_connections", "Engine.IO connections by transport",
                     "transport=\"polling\"", gauge_polling, g);
    metrics_gauge_fn(g->metrics, "sioc_plain_connections",
                     "plain WebSocket connections (ws-routes)", NULL, gauge_plain, g);
    metrics_gauge_fn(g->metrics, "sioc_sockets", "Socket.IO namespace sockets", NULL, gauge_sockets,
                     g);
    metrics_gauge_fn(g->metrics, "sioc_redis_connected", "1 while the Redis link is up", NULL,
                     gauge_redis, g);
    g->http_requests =
        metrics_counter(g->metrics, "sioc_http_requests_total", "HTTP requests", NULL);
    g->connects_refused = metrics_counter(g->metrics, "sioc_connects_refused_total",
                                          "namespace connects refused by auth", NULL);
    g->events_in = metrics_counter(g->metrics, "sioc_events_in_total", "events from clients", NULL);
}

/* ---- signals and drain ---- */

/* Upstream is flushed; registry entries (the sockets' disconnects) follow on their own link. */
static void drain_registry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gateway *g = arg;
    if (registry_pending(g->registry) > 0) {
        struct timeval tv = {0, 20000};
        event_base_once(g->base, -1, EV_TIMEOUT, drain_registry_cb, g, &tv);
        return;
    }
    log_write(g->log, LOG_LEVEL_INFO, "process.stop", "drained");
    event_base_loopbreak(g->base);
}

static void drain_done(void *ctx)
{
    drain_registry_cb(-1, 0, ctx);
}

static void drain_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gateway *g = arg;
    log_write(g->log, LOG_LEVEL_WARN, "process.stop",
              "drain timeout with %zu upstream entries pending", bridge_pending(g->bridge));
    event_base_loopbreak(g->base);
}

static void stop_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct gateway *g = arg;
    if (g->draining) {
        event_base_loopbreak(g->base); /* a second signal: stop now */
        return;
    }
    g->draining = true;
    log_write(g->log, LOG_LEVEL_INFO, "process.drain", "signal %d: closing %zu connections",
              (int)sig,
              eio_server_session_count(sio_server_eio(g->sio)) +
                  plain_ws_count(sio_server_plain(g->sio)));
    /* DESIGN.md §2: stop accepting, close sockets so clients reconnect elsewhere, flush upstream */
    http_server_stop_listening(g->http);
    sio_server_close_all(g->sio, "server shutting down");
    unsigned ms = (unsigned)config_get_int(g->cfg, "drain-timeout");
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(g->drain_timer, &tv);
    bridge_drain(g->bridge, drain_done, g);
}

static void hup_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    struct gateway *g = arg;
    if (log_reopen(g->log) != 0)
        log_write(g->log, LOG_LEVEL_WARN, "log.reopen", "failed; still writing to the old file");
    if (g->opt.tls != NULL) {
        char err[512];
        if (tls_context_reload(g->opt.tls, err, sizeof err) == 0)
            log_write(g->log, LOG_LEVEL_INFO, "tls.reload", "new connections get %s",
                      tls_context_describe(g->opt.tls));
        else
            log_write(g->log, LOG_LEVEL_WARN, "tls.reload", "failed, the old certificate stays: %s",
                      err);
    }
}

/* ---- start-up: one set-up per module, each failure named ---- */

/* Prints "sioc-gateway: cannot start: <step>: <cause>" (one line, stderr); returns false. */
static bool start_failed(const char *step, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static bool start_failed(const char *step, const char *fmt, ...)
{
    char cause[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cause, sizeof cause, fmt, ap);
    va_end(ap);
    fprintf(stderr, "sioc-gateway: cannot start: %s: %s\n", step, cause);
    return false;
}

/* Options that every module reads, decided once: auth, node id, seed, key prefix, sid tag. */
static void setup_identity(struct gateway *g)
{
    struct config *cfg = g->cfg;
    const char *auth = config_get(cfg, "auth");
    g->auth = strcmp(auth, "jwt") == 0       ? AUTH_JWT
              : strcmp(auth, "backend") == 0 ? AUTH_BACKEND
                                             : AUTH_NONE;
    g->user_room = config_get(cfg, "user-room");
    g->jwt_claim = config_get(cfg, "jwt-user-claim");
    g->seed = process_random_u64(g);
    if (config_get(cfg, "node-id") != NULL)
        snprintf(g->node_id, sizeof g->node_id, "%s", config_get(cfg, "node-id"));
    else
        snprintf(g->node_id, sizeof g->node_id, "%016llx", (unsigned long long)g->seed);
    if (config_get(cfg, "client-js") != NULL)
        snprintf(g->client_js_path, sizeof g->client_js_path, "%ssocket.io.js",
                 config_get(cfg, "path"));
    /* "{P}" on a Redis Cluster (docs/contracts.md); gateway_config_validate checked it */
    g->key_prefix = redis_key_prefix_for(config_get(cfg, "redis"), config_get(cfg, "key-prefix"),
                                         g->cluster_prefix, sizeof g->cluster_prefix);
    /* the routing tag at the start of every session id (eio_forward.h): 24 random bits */
    uint8_t tag_bytes[3];
    process_random_bytes(tag_bytes, sizeof tag_bytes, g);
    base64url_encode(tag_bytes, sizeof tag_bytes, g->sid_tag);
    g->sid_tag[EIO_SID_TAG_LEN] = '\0';
    g->forward_on = config_get_bool(cfg, "forward");
}

/* The event loop, the log (log-file, log-level, log-format) and the metrics registry. */
static bool setup_process(struct gateway *g)
{
    struct config *cfg = g->cfg;
    enum log_level level = LOG_LEVEL_INFO;
    enum log_format format = LOG_TEXT;
    log_level_parse(config_get(cfg, "log-level"), &level);
    log_format_parse(config_get(cfg, "log-format"), &format);
    const char *file = config_get(cfg, "log-file");
    errno = 0;
    if ((g->log = log_new("gateway", format, level, file)) == NULL)
        return file != NULL ? start_failed("log-file", "cannot open %s: %s", file, strerror(errno))
                            : start_failed("log", "%s", strerror(errno));
    if ((g->base = event_base_new()) == NULL)
        return start_failed("event loop", "libevent cannot create an event base");
    if ((g->metrics = metrics_new()) == NULL)
        return start_failed("metrics", "out of memory");
    log_route_libevent(g->log);
    if (g->opt.redis_tls != NULL && redis_tls_insecure(g->opt.redis_tls))
        log_write(g->log, LOG_LEVEL_WARN, "redis.tls",
                  "redis-tls-insecure: Redis's certificate and name are NOT verified");
    g->max_connections = connection_budget(g, (size_t)config_get_int(cfg, "max-connections"));
    return true;
}

static uint64_t *packets(struct metrics *m, const char *name, const char *help, bool in)
{
    return metrics_counter(m, name, help, in ? "direction=\"in\"" : "direction=\"out\"");
}

/* Engine.IO (ping-*, max-payload, transports, cors-origin, allow-eio3, forward) and Socket.IO
 * (namespaces, connect-timeout, empty-namespace-timeout, recovery-window) on top. */
static bool setup_sio(struct gateway *g)
{
    struct config *cfg = g->cfg;
    struct metrics *m = g->metrics;
    const char *transports = config_get(cfg, "transports");
    struct eio_server_config ecfg = {
        .path = config_get(cfg, "path"),
        .ping_interval_ms = (unsigned)config_get_int(cfg, "ping-interval"),
        .ping_timeout_ms = (unsigned)config_get_int(cfg, "ping-timeout"),
        .heartbeat_hold_max_ms = (unsigned)config_get_int(cfg, "backpressure-timeout"),
        .max_payload = (size_t)config_get_int(cfg, "max-payload"),
        .polling = strstr(transports, "polling") != NULL,
        .websocket = strstr(transports, "websocket") != NULL,
        .cors_origin = config_get(cfg, "cors-origin"),
        .allow_eio3 = config_get_bool(cfg, "allow-eio3"),
        .sid_tag = g->forward_on ? g->sid_tag : NULL,
        .on_foreign_sid = g->forward_on ? on_foreign_sid : NULL,
        .foreign_ctx = g,
        .packets_in = packets(m, "sioc_packets_total", "Engine.IO packets", true),
        .packets_out = packets(m, "sioc_packets_total", "Engine.IO packets", false),
        .bytes_in = packets(m, "sioc_payload_bytes_total", "Engine.IO payload bytes", true),
        .bytes_out = packets(m, "sioc_payload_bytes_total", "Engine.IO payload bytes", false),
    };
    static const char msgs[] = "plain WebSocket messages (ws-routes)";
    static const char bytes[] = "plain WebSocket message bytes (ws-routes)";
    struct sio_server_config scfg = {
        .namespaces = config_get(cfg, "namespaces"),
        .pid_suffix = config_get_int(cfg, "recovery-window") > 0 ? g->node_id : NULL,
        .connect_timeout_ms = (unsigned)config_get_int(cfg, "connect-timeout"),
        .max_payload = ecfg.max_payload,
        .seed = g->seed,
        .on_connect = on_connect,
        .on_event = on_event,
        .on_disconnect = on_disconnect,
        .on_ack = on_ack,
        .on_accepted = on_accepted,
        .on_room = on_room,
        .on_room_change =
            strcmp(config_get(cfg, "adapter"), "sharded") == 0 ? on_room_change : NULL,
        .on_log = on_log,
        .on_namespace = on_namespace,
        .max_namespaces = CLUSTER_MAX_NAMESPACES,
        .empty_namespace_ms = (unsigned)config_get_int(cfg, "empty-namespace-timeout"),
        .plain = {.messages_in = packets(m, "sioc_plain_messages_total", msgs, true),
                  .messages_out = packets(m, "sioc_plain_messages_total", msgs, false),
                  .bytes_in = packets(m, "sioc_plain_bytes_total", bytes, true),
                  .bytes_out = packets(m, "sioc_plain_bytes_total", bytes, false)},
        .ctx = g,
    };
    if ((g->sio = sio_server_new(g->base, &scfg, &ecfg)) == NULL)
        return start_failed("Socket.IO server", "out of memory");
    return true;
}

/* The one pub/sub connection (subscriber.h) and its first route, P:node:<node>. */
static bool setup_subscriber(struct gateway *g)
{
    struct subscriber_config sc = {
        .redis_url = config_get(g->cfg, "redis"),
        .redis_tls = g->opt.redis_tls,
        .key_prefix = g->key_prefix,
        .node_id = g->node_id,
        .name = "bridge-subscriber",
        .seed = g->seed ^ 0x2545f4914f6cdd1dull,
    };
    if ((g->sub = subscriber_new(g->base, &sc, g->log)) == NULL)
        return start_failed("redis", "the subscriber connection to %s: out of memory",
                            sc.redis_url);
    struct buf node;
    buf_init(&node, 0);
    envelope_key_node(&node, g->key_prefix,
                      (struct slice){(const uint8_t *)g->node_id, strlen(g->node_id)});
    buf_append_byte(&node, '\0');
    int rc = node.err != SIOC_OK ? node.err
                                 : subscriber_add(g->sub, SUBSCRIBER_CHANNEL,
                                                  (const char *)node.data, on_node_message, g);
    buf_deinit(&node);
    if (rc != SIOC_OK)
        return start_failed("redis", "the reply channel of node %s: %s", g->node_id,
                            sioc_strerror(rc));
    return true;
}

/* The worker bridge (upstream, upstream-shards, upstream-maxlen, auth backend, auth-timeout). */
static bool setup_bridge(struct gateway *g)
{
    struct config *cfg = g->cfg;
    const char *up = config_get(cfg, "upstream");
    struct bridge_config bcfg = {
        .redis_url = config_get(cfg, "redis"),
        .redis_tls = g->opt.redis_tls,
        .key_prefix = g->key_prefix,
        .node_id = g->node_id,
        .upstream = strcmp(up, "pubsub") == 0 ? BRIDGE_UPSTREAM_PUBSUB
                    : strcmp(up, "off") == 0  ? BRIDGE_UPSTREAM_OFF
                                              : BRIDGE_UPSTREAM_STREAM,
        .shards = (uint32_t)config_get_int(cfg, "upstream-shards"),
        .maxlen = (uint64_t)config_get_int(cfg, "upstream-maxlen"),
        .auth_backend = g->auth == AUTH_BACKEND,
        .auth_timeout_ms = (unsigned)config_get_int(cfg, "auth-timeout"),
        .user_room = g->user_room,
        .seed = g->seed,
        .on_pause = on_pause,
        .ctx = g,
        .subscriber = g->sub,
    };
    if ((g->bridge = bridge_new(g->base, &bcfg, g->sio, g->log, g->metrics)) == NULL)
        return start_failed("worker bridge", "out of memory or metrics registration failed");
    return true;
}

/* The Redis adapter (adapter, adapter-key, adapter-specific-response, subscription-mode): its
 * patterns and channels on the subscriber connection, its own publishing connection. */
static bool setup_cluster(struct gateway *g)
{
    struct config *cfg = g->cfg;
    struct cluster_config ccfg = {
        .redis_url = config_get(cfg, "redis"),
        .redis_tls = g->opt.redis_tls,
        .adapter_key = config_get(cfg, "adapter-key"),
        .namespaces = config_get(cfg, "namespaces"),
        .seed = g->seed ^ 0x9e3779b97f4a7c15ull,
        .specific_response_channel = config_get_bool(cfg, "adapter-specific-response"),
        .subscribe_cb = cluster_subscribe,
        .unsubscribe_cb = cluster_unsubscribe,
        .subscribe_ctx = g,
        .sharded = strcmp(config_get(cfg, "adapter"), "sharded") == 0,
        .shard_cb = cluster_shard,
    };
    cluster_sub_mode_parse(config_get(cfg, "subscription-mode"), &ccfg.sub_mode);
    if ((g->cluster = cluster_new(g->base, &ccfg, g->sio, g->log, g->metrics)) == NULL)
        return start_failed("adapter",
                            "namespaces \"%s\": a namespace longer than 255 bytes, or out of "
                            "memory",
                            ccfg.namespaces);
    const char *const *names;
    size_t n = cluster_patterns(g->cluster, &names);
    for (size_t i = 0; i < n; i++)
        if (subscriber_add(g->sub, SUBSCRIBER_PATTERN, names[i], cluster_on_message, g->cluster) !=
            SIOC_OK)
            return start_failed("adapter", "pattern %s: out of memory", names[i]);
    n = cluster_channels(g->cluster, &names);
    for (size_t i = 0; i < n; i++)
        if (subscriber_add(g->sub, SUBSCRIBER_CHANNEL, names[i], cluster_on_message, g->cluster) !=
            SIOC_OK)
            return start_failed("adapter", "channel %s: out of memory", names[i]);
    if (cluster_start(g->cluster) != SIOC_OK)
        return start_failed("adapter sharded", "the namespaces' shard channels cannot be "
                                               "subscribed (out of memory)");
    return true;
}

/* The cluster registry (node-timeout) and, with auth jwt, token expiry. */
static bool setup_registry(struct gateway *g)
{
    struct registry_config rcfg = {
        .redis_url = config_get(g->cfg, "redis"),
        .redis_tls = g->opt.redis_tls,
        .key_prefix = g->key_prefix,
        .node_id = g->node_id,
        .address = config_get(g->cfg, "listen"),
        .node_timeout_ms = (unsigned)config_get_int(g->cfg, "node-timeout"),
        .seed = g->seed ^ 0xd1b54a32d192ed03ull,
        .on_epoch_reaped = on_epoch_reaped,
        .ctx = g,
    };
    if ((g->registry = registry_new(g->base, &rcfg, g->sio, g->log, g->metrics)) == NULL)
        return start_failed("registry", "out of memory");
    if ((g->expiry = expiry_new(g->base, g->sio, on_token_expired, g)) == NULL)
        return start_failed("token expiry", "out of memory");
    return true;
}

/* The HTTP listener (listen, max-connections, tls-*, max-payload). */
static bool setup_http(struct gateway *g)
{
    struct config *cfg = g->cfg;
    static const char *const health_paths[] = {"/healthz", "/readyz", "/metrics", NULL};
    size_t max_payload = (size_t)config_get_int(cfg, "max-payload");
    struct http_server_config hcfg = {
        .listen = config_get(cfg, "listen"),
        .max_body = max_payload,
        /* above the Engine.IO session's own limit (4 MiB, "slow consumer"), with room for one
         * polling body of it in base64 and one more message */
        .output_hard_limit = (16u << 20) + 2 * max_payload,
        .max_connections = g->max_connections,
        .reserve_connections = HEALTH_RESERVE,
        .on_request = on_request,
        .on_error = on_http_error,
        .on_listener = on_listener,
        .tls = g->opt.tls,
        .handshake_timeout_ms = (unsigned)config_get_int(cfg, "tls-handshake-timeout"),
        .plain_paths = config_get_bool(cfg, "tls-plain-health") ? health_paths : NULL,
        .ctx = g,
    };
    char err[512] = "";
    if ((g->http = http_server_new(g->base, &hcfg, err, sizeof err)) == NULL)
        return start_failed("listen", "%s", err[0] ? err : "out of memory");
    /* P:nodes names the bound address: "host:0" in the config becomes the real port */
    const char *listen = hcfg.listen;
    const char *colon = strrchr(listen, ':');
    char bound[300];
    snprintf(bound, sizeof bound, "%.*s:%u", colon ? (int)(colon - listen) : (int)strlen(listen),
             listen, http_server_port(g->http));
    registry_set_address(g->registry, bound);
    return true;
}

/* forward yes: polling without sticky sessions (forward-timeout, forward-max). */
static bool setup_forward(struct gateway *g)
{
    if (!g->forward_on)
        return true;
    struct config *cfg = g->cfg;
    unsigned ping_interval = (unsigned)config_get_int(cfg, "ping-interval");
    struct eio_forward_config fcfg = {
        .redis_url = config_get(cfg, "redis"),
        .redis_tls = g->opt.redis_tls,
        .key_prefix = g->key_prefix,
        .tag = g->sid_tag,
        .timeout_ms = (unsigned)config_get_int(cfg, "forward-timeout"),
        .get_hold_ms = ping_interval,
        .tunnel_idle_ms = ping_interval + (unsigned)config_get_int(cfg, "ping-timeout"),
        .max_inflight = (size_t)config_get_int(cfg, "forward-max"),
        .subscribe = forward_subscribe,
        .subscribe_ctx = g,
    };
    g->forward =
        eio_forward_new(g->base, &fcfg, sio_server_eio(g->sio), g->http, g->log, g->metrics);
    if (g->forward == NULL)
        return start_failed("forward", "the forwarder of sid tag %s: out of memory", g->sid_tag);
    return true;
}

/* recovery-window > 0: connection state recovery (gateway/recovery.h). */
static bool setup_recovery(struct gateway *g)
{
    struct recovery_config rc = {
        .redis_url = config_get(g->cfg, "redis"),
        .redis_tls = g->opt.redis_tls,
        .key_prefix = config_get(g->cfg, "key-prefix"),
        .node_id = g->node_id,
        .window_ms = (unsigned)config_get_int(g->cfg, "recovery-window"),
        .user_room = g->user_room,
        .on_fallback = on_recovery_fallback,
        .on_recovered = on_recovered,
        .on_expired = on_recovery_expired,
        .ctx = g,
    };
    if (rc.window_ms == 0)
        return true;
    if ((g->recovery = recovery_new(g->base, &rc, g->sio, g->log, g->metrics)) == NULL)
        return start_failed("recovery-window", "out of memory");
    log_write(g->log, LOG_LEVEL_INFO, "recovery.start",
              "connection state recovery on: window %u ms (sessions and missed packets in Redis; "
              "workers' broadcasts are stored by the SDK)",
              rc.window_ms);
    return true;
}

/* SIGTERM/SIGINT drain (drain-timeout), SIGHUP reopen/reload. */
static bool setup_signals(struct gateway *g)
{
    g->sigterm = evsignal_new(g->base, SIGTERM, stop_cb, g);
    g->sigint = evsignal_new(g->base, SIGINT, stop_cb, g);
    g->sighup = evsignal_new(g->base, SIGHUP, hup_cb, g);
    g->drain_timer = evtimer_new(g->base, drain_timeout_cb, g);
    if (g->sigterm == NULL || g->sigint == NULL || g->sighup == NULL || g->drain_timer == NULL ||
        evsignal_add(g->sigterm, NULL) != 0 || evsignal_add(g->sigint, NULL) != 0 ||
        evsignal_add(g->sighup, NULL) != 0)
        return start_failed("signals", "cannot watch SIGTERM, SIGINT and SIGHUP");
    signal(SIGPIPE, SIG_IGN);
    return true;
}

/* The start-up lines of the log. */
static void announce(struct gateway *g)
{
    struct config *cfg = g->cfg;
    const char *auth = config_get(cfg, "auth");
    const char *up = config_get(cfg, "upstream");
    process_write_port_file(config_get(cfg, "port-file"), http_server_port(g->http));
    log_write(g->log, LOG_LEVEL_INFO, "process.start",
              "node=%s epoch=%s sid-tag=%s listening on port %u path %s auth=%s upstream=%s",
              g->node_id, registry_epoch(g->registry), g->forward_on ? g->sid_tag : "-",
              http_server_port(g->http), config_get(cfg, "path"), auth, up);
    if (g->opt.routes.count > 0)
        log_write(g->log, LOG_LEVEL_INFO, "process.ws_routes", "%zu plain WebSocket routes: %s",
                  g->opt.routes.count, config_get(cfg, "ws-routes"));
    if (g->opt.tls != NULL)
        log_write(g->log, LOG_LEVEL_INFO, "tls.start", "HTTPS/WSS with %s%s",
                  tls_context_describe(g->opt.tls),
                  config_get_bool(cfg, "tls-plain-health") ? "; plain HTTP for health checks" : "");
    if (g->auth != AUTH_BACKEND && strcmp(up, "off") != 0)
        log_write(g->log, LOG_LEVEL_INFO, "process.auth",
                  "auth=%s: sockets are accepted here; workers' connect handlers are told "
                  "afterwards and cannot refuse sockets or name their user (use --auth backend "
                  "for that)",
                  auth);
}

/* Every module in dependency order; false (the failure printed) at the first that fails. */
static bool start(struct gateway *g)
{
    setup_identity(g);
    if (!setup_process(g) || !setup_sio(g) || !setup_subscriber(g) || !setup_bridge(g) ||
        !setup_cluster(g) || !setup_registry(g) || !setup_http(g) || !setup_forward(g) ||
        !setup_recovery(g) || !setup_signals(g))
        return false;
    register_metrics(g);
    announce(g);
    return true;
}

/* Frees whatever exists, in the order the modules need (each free takes NULL). */
static void stop(struct gateway *g)
{
    if (g->http != NULL)
        http_server_stop_listening(g->http);
    eio_forward_free(g->forward); /* its parked requests and replays, before the server */
    sio_server_free(g->sio);      /* sockets report their disconnects to the bridge first */
    bridge_free(g->bridge);       /* detaches its probe link from the subscriber */
    cluster_free(g->cluster);
    subscriber_free(g->sub);
    registry_free(g->registry);
    expiry_free(g->expiry);
    recovery_free(g->recovery);
    http_server_free(g->http);
    struct event *events[] = {g->sigterm, g->sigint, g->sighup, g->drain_timer};
    for (size_t i = 0; i < sizeof events / sizeof events[0]; i++)
        if (events[i] != NULL)
            event_free(events[i]);
    metrics_free(g->metrics);
    gateway_loaded_free(&g->opt); /* after every link: the Redis TLS context */
    log_free(g->log);
    if (g->base != NULL)
        event_base_free(g->base);
    config_deinit(g->cfg);
}

int main(int argc, char **argv)
{
    struct config cfg;
    char err[512] = "";
    size_t noptions;
    const struct config_option *options = gateway_options(&noptions);
    enum process_start run =
        process_load_config(&cfg, options, noptions, "sioc-gateway", argc, argv);
    if (run != PROCESS_RUN)
        return run == PROCESS_EXIT ? 0 : 2;
    struct gateway g = {.cfg = &cfg};
    const char *problem = gateway_config_validate(&cfg, &g.opt, err, sizeof err);
    if (problem != NULL || config_get_bool(&cfg, "check-config")) {
        if (problem != NULL)
            fprintf(stderr, "sioc-gateway: invalid configuration: %s\n", problem);
        else
            printf("configuration ok\n");
        stop(&g);
        return problem != NULL ? 2 : 0;
    }
    bool started = start(&g);
    if (started)
        event_base_dispatch(g.base);
    stop(&g);
    return started ? 0 : 1;
}
