/* main_broker.c: sioc-broker (DESIGN.md §2, §3.4): options, the Redis links, the lease (active
 * or standby), the registry consumer, the liveness check, the HTTP API and its acks on one
 * libevent loop; /healthz, /readyz (Redis connected; says active or standby) and /metrics;
 * SIGTERM/SIGINT stop (the lease is given up so a standby takes over at once; unacknowledged
 * registry entries are claimed by the next active broker), SIGHUP reopens the log and reloads
 * the TLS certificate (tls-cert). Everything hangs off one struct broker; no globals. */
#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "broker/api.h"
#include "broker/broker.h"
#include "broker/calls.h"
#include "broker/lease.h"
#include "broker/liveness.h"
#include "broker/mirror.h"
#include "common/user_room.h"
#include "common/clock.h"
#include "common/cluster_msg.h"
#include "common/config.h"
#include "common/redis_slots.h"
#include "common/error.h"
#include "common/metrics.h"
#include "common/net/http_server.h"
#include "common/net/log.h"
#include "common/net/process.h"
#include "common/net/redis_link.h"
#include "common/net/redis_tls.h"
#include "common/net/tls.h"

static const struct config_option options[] = {
    {"listen", CONFIG_STRING, "127.0.0.1:8081", 0, 0, "HTTP API address (host:port; port 0 = any)"},
    REDIS_OPTION_ENTRIES,
    {"key-prefix", CONFIG_STRING, "sioc", 0, 0, "prefix of sioc's Redis keys"},
    {"adapter-key", CONFIG_STRING, "socket.io", 0, 0, "Socket.IO Redis adapter key"},
    {"adapter", CONFIG_STRING, "classic", 0, 0,
     "format of pushes (/v1/emit, join, leave, disconnect): classic (@socket.io/redis-adapter pub/sub) or sharded (createShardedAdapter: SPUBLISH)"},
    {"subscription-mode", CONFIG_STRING, "dynamic", 0, 0,
     "adapter sharded: the cluster's subscriptionMode (dynamic, static or dynamic-private): picks a room broadcast's channel"},
    {"api-key", CONFIG_STRING, NULL, 0, 0,
     "bearer token the API requires (unset: loopback listen only)"},
    TLS_SERVER_OPTION_ENTRIES("the API over HTTPS"),
    {"node-timeout", CONFIG_MS, "6000", 100, 3600000,
     "heartbeat PX of the gateways (for last_heartbeat), and the grace every node gets after a Redis outage"},
    {"broker-id", CONFIG_STRING, NULL, 0, 0,
     "this broker's name in the lease and the logs (default: the host name); a random suffix is added per start"},
    {"lease-timeout", CONFIG_MS, NULL, 30, 3600000,
     "the active broker's lease; a standby takes over at most this + min(this / 4, 1 s) after the active one died (default: node-timeout / 2)"},
    {"check-interval", CONFIG_MS, "1000", 10, 60000, "how often node liveness is checked"},
    {"forget-after", CONFIG_MS, "600000", 100, 604800000,
     "a dead node leaves /v1/nodes (and the broker's state) this long after its heartbeat expired"},
    {"user-room", CONFIG_STRING, "user:%s", 0, 0,
     "room of authenticated users (%s = uid), as on the gateways"},
    {"upstream-shards", CONFIG_INT, "1", 1, 4096,
     "upstream stream shards per namespace, as on the gateways"},
    {"upstream-maxlen", CONFIG_INT, "1000000", 0, 1000000000000,
     "approximate MAXLEN of upstream streams"},
    {"log-format", CONFIG_STRING, "text", 0, 0, "text or json"},
    {"log-level", CONFIG_STRING, "info", 0, 0, "debug, info, warn or error"},
    {"log-file", CONFIG_STRING, NULL, 0, 0,
     "log to this file (reopened on SIGHUP) instead of stderr"},
    {"port-file", CONFIG_STRING, NULL, 0, 0, "write the bound port here once listening"},
    {"check-config", CONFIG_FLAG, NULL, 0, 0, "validate the configuration and exit"},
    {"help", CONFIG_FLAG, NULL, 0, 0, "print this help"},
    {"config", CONFIG_STRING, NULL, 0, 0, "config file: one 'key value' per line"},
};

struct broker_process {
    struct broker b;
    struct config *cfg;
    struct http_server *http;
    struct tls_context *tls; /* tls-cert: the API over HTTPS */
    struct event *sigterm, *sigint, *sighup, *stop_timer;
    uint64_t *http_requests;
};

/* ---- HTTP ---- */

static bool path_is(const struct http_server_request *req, const char *p)
{
    return req->path.len == strlen(p) && memcmp(req->path.p, p, req->path.len) == 0;
}

static bool redis_ready(const struct broker *b)
{
    return redis_link_connected(b->cmd) && redis_link_connected(b->reader);
}

static void on_request(void *ctx, struct http_conn *conn, struct http_server_request *req)
{
    struct broker_process *p = ctx;
    (*p->http_requests)++;
    static const struct http_field text[] = {{"Content-Type", "text/plain"}};
    if (req->path.len >= 4 && memcmp(req->path.p, "/v1/", 4) == 0) {
        bk_api_handle(p->b.api, conn, req);
        return;
    }
    if (path_is(req, "/healthz")) {
        http_conn_respond(conn, 200, text, 1, "ok\n", 3, false);
        return;
    }
    if (path_is(req, "/readyz")) {
        /* active and standby brokers are both healthy: each answers the API (lease.h) */
        bool ready = redis_ready(&p->b);
        char body[256];
        const char *holder = bk_lease_holder(p->b.lease);
        int n = snprintf(body, sizeof body, "%s (%s; active: %s)\n", ready ? "ready" : "not ready",
                         bk_lease_active(p->b.lease) ? "active" : "standby",
                         holder[0] ? holder : "unknown");
        http_conn_respond(conn, ready ? 200 : 503, text, 1, body,
                          n > 0 && (size_t)n < sizeof body ? (size_t)n : sizeof body - 1, false);
        return;
    }
    if (path_is(req, "/metrics")) {
        struct buf out;
        buf_init(&out, 0);
        metrics_render(p->b.metrics, &out);
        static const struct http_field prom[] = {{"Content-Type", METRICS_CONTENT_TYPE}};
        http_conn_respond(conn, 200, prom, 1, out.data, out.len, false);
        buf_deinit(&out);
        return;
    }
    static const struct http_field json[] = {{"Content-Type", "application/json"}};
    http_conn_respond(conn, 404, json, 1, "{\"error\":\"no such endpoint\"}", 28, false);
}

static void on_http_error(void *ctx, const char *what, const char *peer)
{
    struct broker_process *p = ctx;
    log_write(p->b.log, LOG_LEVEL_INFO, "http.refused", "%s peer=%s", what, peer);
}

static void on_listener(void *ctx, bool trouble, const char *what)
{
    struct broker_process *p = ctx;
    log_write(p->b.log, trouble ? LOG_LEVEL_WARN : LOG_LEVEL_INFO, "http.listener", "%s", what);
}

/* ---- Redis links ---- */

static void link_event(struct broker *b, const char *which, enum redis_link_event ev,
                       const char *detail)
{
    static const char *const names[] = {"connected",         "disconnected",    "connect failed",
                                        "connect timeout",   "handshake error", "liveness timeout",
                                        "queue full",        "slot map",        "redirect",
                                        "shard channel lost"};
    enum log_level level = ev == REDIS_LINK_EV_CONNECTED ? LOG_LEVEL_INFO : LOG_LEVEL_WARN;
    log_write(b->log, level, "redis.link", "%s: %s%s%s", which, names[ev], detail ? ": " : "",
              detail ? detail : "");
}

static void cmd_event_cb(void *ctx, enum redis_link_event ev, const char *detail)
{
    link_event(ctx, "command", ev, detail);
}

static void reader_event_cb(void *ctx, enum redis_link_event ev, const char *detail)
{
    link_event(ctx, "registry reader", ev, detail);
}

static void cmd_state_cb(void *ctx, bool connected)
{
    struct broker *b = ctx;
    bk_liveness_redis_state(b->liveness, connected);
}

static void reader_state_cb(void *ctx, bool connected)
{
    struct broker *b = ctx;
    if (connected && b->mirror != NULL)
        bk_mirror_on_connected(b->mirror);
}

static void lease_change_cb(void *ctx, bool active)
{
    struct broker *b = ctx;
    bk_liveness_set_active(b->liveness, active);
    bk_mirror_set_active(b->mirror, active);
}

static void calls_event_cb(void *ctx, enum redis_link_event ev, const char *detail)
{
    link_event(ctx, "ack answers", ev, detail);
}

static void calls_state_cb(void *ctx, bool connected)
{
    struct broker *b = ctx;
    bk_calls_on_state(b->calls, connected);
}

static void calls_message_cb(void *ctx, struct slice pattern, struct slice channel,
                             struct slice payload)
{
    (void)pattern;
    (void)channel;
    struct broker *b = ctx;
    bk_calls_on_message(b->calls, payload);
}

static double gauge_redis(void *ctx)
{
    return redis_ready(ctx) ? 1.0 : 0.0;
}

/* ---- signals ---- */

static void stop_now(void *arg)
{
    struct broker_process *p = arg;
    event_base_loopbreak(p->b.base);
}

static void stop_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    stop_now(arg);
}

static void stop_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct broker_process *p = arg;
    log_write(p->b.log, LOG_LEVEL_INFO, "process.stop", "signal %d", (int)sig);
    /* give the lease up first (at most 1 s): a standby takes over without waiting for it */
    struct timeval bound = {1, 0};
    if (p->stop_timer != NULL && !evtimer_pending(p->stop_timer, NULL)) {
        evtimer_add(p->stop_timer, &bound);
        bk_lease_release(p->b.lease, stop_now, p);
    } else {
        stop_now(p);
    }
}

static void hup_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    struct broker_process *p = arg;
    if (log_reopen(p->b.log) != 0)
        log_write(p->b.log, LOG_LEVEL_WARN, "log.reopen", "failed; still writing to the old file");
    if (p->tls != NULL) {
        char err[512];
        if (tls_context_reload(p->tls, err, sizeof err) == 0)
            log_write(p->b.log, LOG_LEVEL_INFO, "tls.reload", "new connections get %s",
                      tls_context_describe(p->tls));
        else
            log_write(p->b.log, LOG_LEVEL_WARN, "tls.reload",
                      "failed, the old certificate stays: %s", err);
    }
}

/* ---- configuration ---- */

/* True when the host part of "host:port" ("[v6]:port" too) is a loopback address written as
 * one (127.0.0.0/8, ::1, ::ffff:127.x.y.z) or the name localhost. Other names are not
 * resolved: a check here and a resolution at bind time could disagree. */
static bool listen_is_loopback(const char *listen)
{
    const char *colon = strrchr(listen, ':');
    size_t n = colon ? (size_t)(colon - listen) : strlen(listen);
    char host[INET6_ADDRSTRLEN + 2];
    if (n >= 2 && listen[0] == '[' && listen[n - 1] == ']') {
        listen++;
        n -= 2;
    }
    if (n == 0 || n >= sizeof host)
        return false;
    memcpy(host, listen, n);
    host[n] = '\0';
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1) {
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        return IN6_IS_ADDR_LOOPBACK(&a6) ||
               (memcmp(a6.s6_addr, mapped, 12) == 0 && a6.s6_addr[12] == 127);
    }
    return strcmp(host, "localhost") == 0;
}

static bool broker_id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)id[i] <= ' ' || (unsigned char)id[i] >= 0x7f || id[i] == '/')
            return false;
    return true;
}

static unsigned lease_timeout_ms(const struct config *cfg)
{
    int64_t set = config_get_int(cfg, "lease-timeout");
    return set > 0 ? (unsigned)set
                   : bk_lease_default_ms((unsigned)config_get_int(cfg, "node-timeout"));
}

/* The lease token "<broker-id or host name>/<8 hex digits of this start>" (lease.h). */
static void make_token(const struct config *cfg, uint64_t seed, char *out, size_t cap)
{
    char host[65] = "broker";
    const char *id = config_get(cfg, "broker-id");
    if (id == NULL && gethostname(host, sizeof host - 1) == 0 && broker_id_valid(host))
        id = host;
    snprintf(out, cap, "%s/%08x", id != NULL && broker_id_valid(id) ? id : "broker",
             (unsigned)(seed >> 32 ^ seed));
}

/* Also makes the TLS context of a rediss:// URL (*tls, else NULL). */
static const char *validate(const struct config *cfg, struct redis_tls **tls, char *err,
                            size_t errlen)
{
    const char *tls_problem =
        redis_tls_from_config(cfg, config_get(cfg, "redis"), tls, err, errlen);
    if (tls_problem != NULL)
        return tls_problem;
    if (!user_room_valid(config_get(cfg, "user-room")))
        return "user-room: must contain exactly one %s and no other %";
    const char *key = config_get(cfg, "api-key");
    if (key != NULL && key[0] == '\0')
        return "api-key: must not be empty";
    if (key == NULL && !listen_is_loopback(config_get(cfg, "listen")))
        return "listen: without an api-key the API listens on loopback only (127.0.0.1, ::1)";
    if (config_get(cfg, "key-prefix")[0] == '\0' || config_get(cfg, "adapter-key")[0] == '\0')
        return "key-prefix and adapter-key must not be empty";
    char prefix_buf[CONFIG_MAX_VALUE + 3];
    if (redis_key_prefix_for(config_get(cfg, "redis"), config_get(cfg, "key-prefix"), prefix_buf,
                             sizeof prefix_buf) == NULL)
        return "key-prefix: must not contain { or } on a Redis Cluster";
    const char *id = config_get(cfg, "broker-id");
    if (id != NULL && !broker_id_valid(id))
        return "broker-id: 1 to 64 printable characters, no space or '/'";
    unsigned node_timeout = (unsigned)config_get_int(cfg, "node-timeout");
    unsigned lease = lease_timeout_ms(cfg);
    unsigned poll = lease / 4 < 1000 ? lease / 4 : 1000;
    if (lease + poll > node_timeout)
        return "lease-timeout: lease-timeout + min(lease-timeout / 4, 1 s) must not exceed node-timeout "
               "(a standby must take over within node-timeout)";
    const char *adapter = config_get(cfg, "adapter");
    enum cluster_sub_mode mode;
    if (strcmp(adapter, "classic") != 0 && strcmp(adapter, "sharded") != 0)
        return "adapter: must be classic or sharded";
    if (!cluster_sub_mode_parse(config_get(cfg, "subscription-mode"), &mode))
        return "subscription-mode: must be dynamic, static or dynamic-private";
    enum log_level level;
    enum log_format format;
    if (log_level_parse(config_get(cfg, "log-level"), &level) != SIOC_OK)
        return "log-level: must be debug, info, warn or error";
    if (log_format_parse(config_get(cfg, "log-format"), &format) != SIOC_OK)
        return "log-format: must be text or json";
    return NULL;
}

/* 0 to run, 1 to exit 0 (help or check-config printed), 2 to exit 2 (message printed). */
/* *tls: the API's HTTPS context (tls-cert), *rtls: the Redis links' (rediss://); NULL when unset.
 */
static int load_config(struct config *cfg, struct tls_context **tls, struct redis_tls **rtls,
                       int argc, char **argv)
{
    char err[512];
    enum process_start start = process_load_config(cfg, options, sizeof options / sizeof options[0],
                                                   "sioc-broker", argc, argv);
    if (start != PROCESS_RUN)
        return start == PROCESS_EXIT ? 1 : 2;
    const char *problem = validate(cfg, rtls, err, sizeof err);
    if (problem != NULL) {
        fprintf(stderr, "sioc-broker: invalid configuration: %s\n", problem);
        redis_tls_free(*rtls);
        *rtls = NULL;
        return 2;
    }
    if (config_get(cfg, "tls-cert") != NULL || config_get(cfg, "tls-key") != NULL) {
        struct tls_options topt = {config_get(cfg, "tls-cert"), config_get(cfg, "tls-key"),
                                   config_get(cfg, "tls-ciphers"), config_get(cfg, "tls-groups")};
        *tls = tls_context_new(&topt, err, sizeof err);
        if (*tls == NULL) {
            fprintf(stderr, "sioc-broker: invalid configuration: %s\n", err);
            redis_tls_free(*rtls);
            *rtls = NULL;
            return 2;
        }
    }
    if (config_get_bool(cfg, "check-config")) {
        printf("configuration ok\n");
        tls_context_free(*tls);
        redis_tls_free(*rtls);
        *tls = NULL;
        *rtls = NULL;
        return 1;
    }
    return 0;
}

/* `lc` gives the mode and callbacks; the URL, Redis TLS context, seed and context are filled in
 * here. */
static struct redis_link *new_link(struct broker *b, const char *url, uint64_t seed,
                                   struct redis_link_config lc)
{
    lc.url = url;
    lc.tls = b->redis_tls;
    lc.jitter_seed = seed;
    lc.ctx = b;
    return redis_link_new(b->base, &lc);
}

/* The SUBSCRIBER link of calls.c: its answer channel, probed (calls.h). */
static struct redis_link *new_calls_link(struct broker *b, const char *url, uint64_t seed)
{
    struct redis_link *link = new_link(b, url, seed,
                                       (struct redis_link_config){
                                           .mode = REDIS_LINK_SUBSCRIBER,
                                           .liveness_timeout_ms = BK_CALLS_LIVENESS_MS,
                                           .probe_channel = bk_calls_probe_channel(b->calls),
                                           .on_state_cb = calls_state_cb,
                                           .on_message_cb = calls_message_cb,
                                           .on_event_cb = calls_event_cb,
                                       });
    if (link != NULL && redis_link_subscribe(link, bk_calls_channel(b->calls)) != SIOC_OK) {
        redis_link_free(link);
        link = NULL;
    }
    return link;
}

int main(int argc, char **argv)
{
    struct config cfg;
    struct tls_context *tls = NULL;
    struct redis_tls *rtls = NULL; /* rediss:// only; freed after the links */
    int rc = load_config(&cfg, &tls, &rtls, argc, argv);
    if (rc != 0) {
        config_deinit(&cfg);
        return rc == 1 ? 0 : rc;
    }
    signal(SIGPIPE, SIG_IGN);
    enum log_level level = LOG_LEVEL_INFO;
    enum log_format format = LOG_TEXT;
    log_level_parse(config_get(&cfg, "log-level"), &level);
    log_format_parse(config_get(&cfg, "log-format"), &format);
    uint64_t seed = process_random_u64(&cfg);

    struct broker_process p = {.cfg = &cfg, .tls = tls};
    struct broker *b = &p.b;
    /* "{P}" on a Redis Cluster: every key the broker's scripts touch in one slot */
    char cluster_prefix[CONFIG_MAX_VALUE + 3];
    *b = (struct broker){
        .prefix = redis_key_prefix_for(config_get(&cfg, "redis"), config_get(&cfg, "key-prefix"),
                                       cluster_prefix, sizeof cluster_prefix),
        .adapter_key = config_get(&cfg, "adapter-key"),
        .sharded = strcmp(config_get(&cfg, "adapter"), "sharded") == 0,
        .user_room = config_get(&cfg, "user-room"),
        .api_key = config_get(&cfg, "api-key"),
        .node_timeout_ms = (unsigned)config_get_int(&cfg, "node-timeout"),
        .check_interval_ms = (unsigned)config_get_int(&cfg, "check-interval"),
        .lease_ms = lease_timeout_ms(&cfg),
        .forget_after_ms = (unsigned)config_get_int(&cfg, "forget-after"),
        .upstream_shards = (uint32_t)config_get_int(&cfg, "upstream-shards"),
        .upstream_maxlen = (uint64_t)config_get_int(&cfg, "upstream-maxlen"),
    };
    enum cluster_sub_mode sub_mode = CLUSTER_SUB_DYNAMIC;
    cluster_sub_mode_parse(config_get(&cfg, "subscription-mode"), &sub_mode);
    b->sub_mode = (int)sub_mode;
    b->base = event_base_new();
    b->log = log_new("broker", format, level, config_get(&cfg, "log-file"));
    b->metrics = metrics_new();
    if (b->base == NULL || b->log == NULL || b->metrics == NULL) {
        fprintf(stderr, "sioc-broker: cannot start (out of memory or log file)\n");
        return 1;
    }
    log_route_libevent(b->log);
    b->redis_tls = rtls;
    if (rtls != NULL && redis_tls_insecure(rtls))
        log_write(b->log, LOG_LEVEL_WARN, "redis.tls",
                  "redis-tls-insecure: Redis's certificate and name are NOT verified");
    const char *url = config_get(&cfg, "redis");
    b->cmd = new_link(b, url, seed,
                      (struct redis_link_config){.mode = REDIS_LINK_COMMAND,
                                                 .on_event_cb = cmd_event_cb,
                                                 .on_state_cb = cmd_state_cb});
    b->reader = new_link(b, url, seed ^ 0x9e3779b97f4a7c15ull,
                         (struct redis_link_config){.mode = REDIS_LINK_COMMAND,
                                                    .on_event_cb = reader_event_cb,
                                                    .on_state_cb = reader_state_cb});
    char token[128];
    make_token(&cfg, seed * 0x94d049bb133111ebull + 7, token, sizeof token);
    b->lease = b->cmd && b->reader ? bk_lease_new(b, token, b->lease_ms, lease_change_cb, b) : NULL;
    b->mirror = b->lease ? bk_mirror_new(b) : NULL;
    b->liveness = b->mirror ? bk_liveness_new(b) : NULL;
    b->calls = b->liveness ? bk_calls_new(b, seed * 0xff51afd7ed558ccdull + 1) : NULL;
    b->calls_sub = b->calls ? new_calls_link(b, url, seed ^ 0xc4ceb9fe1a85ec53ull) : NULL;
    b->api = b->calls_sub ? bk_api_new(b) : NULL;
    char err[512] = "";
    static const char *const health_paths[] = {"/healthz", "/readyz", "/metrics", NULL};
    struct http_server_config hcfg = {
        .listen = config_get(&cfg, "listen"),
        .on_request = on_request,
        .on_error = on_http_error,
        .on_listener = on_listener,
        .tls = tls,
        .handshake_timeout_ms = (unsigned)config_get_int(&cfg, "tls-handshake-timeout"),
        .plain_paths = config_get_bool(&cfg, "tls-plain-health") ? health_paths : NULL,
        .ctx = &p,
    };
    p.http = b->api ? http_server_new(b->base, &hcfg, err, sizeof err) : NULL;
    if (p.http == NULL) {
        fprintf(stderr, "sioc-broker: cannot start: %s\n", err[0] ? err : "out of memory");
        return 1;
    }
    p.http_requests =
        metrics_counter(b->metrics, "sioc_broker_http_requests_total", "HTTP requests", NULL);
    metrics_gauge_fn(b->metrics, "sioc_redis_connected", "1 while both Redis links are up", NULL,
                     gauge_redis, b);
    p.sigterm = evsignal_new(b->base, SIGTERM, stop_cb, &p);
    p.sigint = evsignal_new(b->base, SIGINT, stop_cb, &p);
    p.sighup = evsignal_new(b->base, SIGHUP, hup_cb, &p);
    evsignal_add(p.sigterm, NULL);
    evsignal_add(p.sigint, NULL);
    evsignal_add(p.sighup, NULL);
    p.stop_timer = evtimer_new(b->base, stop_timer_cb, &p);
    process_write_port_file(config_get(&cfg, "port-file"), http_server_port(p.http));
    struct redis_url parsed; /* the password stays out of the log */
    redis_url_parse(url, &parsed);
    log_write(b->log, LOG_LEVEL_INFO, "process.start",
              "API on port %u, redis %s://%s:%d%s, prefix %s, auth %s, broker %s (lease %u ms)",
              http_server_port(p.http), parsed.tls ? "rediss" : "redis", parsed.host, parsed.port,
              parsed.user != NULL ? " (ACL user)" : "", b->prefix,
              b->api_key ? "api-key" : "none (loopback)", token, b->lease_ms);
    if (tls != NULL)
        log_write(b->log, LOG_LEVEL_INFO, "tls.start", "API over HTTPS with %s%s",
                  tls_context_describe(tls),
                  config_get_bool(&cfg, "tls-plain-health") ? "; plain HTTP for health checks"
                                                            : "");

    event_base_dispatch(b->base);

    http_server_stop_listening(p.http);
    bk_api_free(b->api);
    bk_calls_free(b->calls);
    http_server_free(p.http);
    bk_liveness_free(b->liveness);
    bk_mirror_free(b->mirror);
    bk_lease_free(b->lease);
    redis_link_free(b->cmd);
    redis_link_free(b->reader);
    redis_link_free(b->calls_sub);
    redis_tls_free(rtls);
    event_free(p.sigterm);
    event_free(p.sigint);
    event_free(p.sighup);
    if (p.stop_timer != NULL)
        event_free(p.stop_timer);
    metrics_free(b->metrics);
    tls_context_free(tls);
    log_free(b->log);
    event_base_free(b->base);
    config_deinit(&cfg);
    return 0;
}
