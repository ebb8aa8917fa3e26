/* main_eio_echo.c: sioc-eio-echo, an Engine.IO-only server built from the gateway's transport
 * code that echoes every text and binary message back, for conformance testing against the
 * Engine.IO protocol test suite (pingInterval 300, pingTimeout 200, maxPayload 1000000, CORS *).
 * A text message "sioc-echo:close" makes the server close that session (edge-case tests).
 * Options as every sioc process: flags, SIOC_<KEY> environment, --config file. */
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/error.h"
#include "common/net/http_server.h"
#include "common/net/log.h"
#include "common/net/process.h"
#include "gateway/eio_server.h"

static const struct config_option options[] = {
    {"listen", CONFIG_STRING, "127.0.0.1:3000", 0, 0, "address to listen on (port 0: any)"},
    {"path", CONFIG_STRING, "/engine.io/", 0, 0, "Engine.IO path prefix"},
    {"ping-interval", CONFIG_MS, "300", 1, 3600000, "ping interval"},
    {"ping-timeout", CONFIG_MS, "200", 1, 3600000, "ping timeout"},
    {"max-payload", CONFIG_INT, "1000000", 1, 1 << 30, "largest message or POST body"},
    {"transports", CONFIG_STRING, "polling,websocket", 0, 0, "enabled transports"},
    {"upgrade-timeout", CONFIG_MS, "10000", 1, 3600000, "longest wait for an upgrade's 5 packet"},
    {"poll-linger", CONFIG_MS, "30000", 1, 3600000, "a closed polling session waits for its GET"},
    {"out-hard-limit", CONFIG_INT, "4194304", 1, 1 << 30,
     "bytes queued for a client before it is closed"},
    {"cors-origin", CONFIG_STRING, "*", 0, 0, "CORS origin: *, a comma list, or empty"},
    {"log-level", CONFIG_STRING, "info", 0, 0, "debug, info, warn or error"},
    {"port-file", CONFIG_STRING, NULL, 0, 0, "write the bound port here once listening"},
    {"help", CONFIG_FLAG, NULL, 0, 0, "print this help"},
    {"config", CONFIG_STRING, NULL, 0, 0, "config file"},
};

struct echo {
    struct event_base *base;
    struct log *log;
    struct http_server *http;
    struct eio_server *eio;
    struct event *sigint, *sigterm;
};

static void *echo_open(void *ctx, struct eio_session *s, const struct http_server_request *req,
                       const char *peer)
{
    (void)req;
    struct echo *e = ctx;
    log_write(e->log, LOG_LEVEL_DEBUG, "eio.open", "sid=%s peer=%s", eio_session_id(s), peer);
    return e;
}

static void echo_message(void *ctx, struct eio_session *s, void *user, const uint8_t *p, size_t len,
                         bool binary)
{
    (void)ctx;
    (void)user;
    static const char close_me[] = "sioc-echo:close"; /* tests: the server closes the session */
    if (!binary && len == sizeof close_me - 1 && memcmp(p, close_me, len) == 0) {
        eio_session_close(s, "closed by the server");
        return;
    }
    struct gw_frame *f = binary ? gw_frame_new_binary(p, len) : gw_frame_new_text('4', p, len);
    if (f == NULL) {
        eio_session_close(s, "out of memory");
        return;
    }
    eio_session_send(s, f);
    gw_frame_unref(f);
}

static void echo_close(void *ctx, struct eio_session *s, void *user, const char *reason)
{
    (void)user;
    struct echo *e = ctx;
    log_write(e->log, LOG_LEVEL_DEBUG, "eio.close", "sid=%s reason=%s", eio_session_id(s), reason);
}

static void echo_log(void *ctx, const char *event, const char *detail)
{
    struct echo *e = ctx;
    log_write(e->log, LOG_LEVEL_INFO, event, "%s", detail);
}

static void http_error(void *ctx, const char *what, const char *peer)
{
    struct echo *e = ctx;
    log_write(e->log, LOG_LEVEL_INFO, "http.error", "%s peer=%s", what, peer);
}

static void on_request(void *ctx, struct http_conn *conn, struct http_server_request *req)
{
    struct echo *e = ctx;
    if (eio_server_handle(e->eio, conn, req))
        return;
    static const struct http_field fields[] = {{"Content-Type", "text/plain"}};
    http_conn_respond(conn, 404, fields, 1, "not found\n", 10, false);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct echo *e = arg;
    log_write(e->log, LOG_LEVEL_INFO, "process.stop", "signal %d", (int)sig);
    event_base_loopbreak(e->base);
}

int main(int argc, char **argv)
{
    struct config cfg;
    char err[256] = "";
    enum process_start start = process_load_config(
        &cfg, options, sizeof options / sizeof options[0], "sioc-eio-echo", argc, argv);
    if (start != PROCESS_RUN)
        return start == PROCESS_EXIT ? 0 : 2;
    enum log_level level = LOG_LEVEL_INFO;
    log_level_parse(config_get(&cfg, "log-level"), &level);
    signal(SIGPIPE, SIG_IGN);

    struct echo e = {0};
    e.base = event_base_new();
    e.log = log_new("eio-echo", LOG_TEXT, level, NULL);
    const char *transports = config_get(&cfg, "transports");
    struct eio_server_config ecfg = {
        .path = config_get(&cfg, "path"),
        .ping_interval_ms = (unsigned)config_get_int(&cfg, "ping-interval"),
        .ping_timeout_ms = (unsigned)config_get_int(&cfg, "ping-timeout"),
        .upgrade_timeout_ms = (unsigned)config_get_int(&cfg, "upgrade-timeout"),
        .poll_linger_ms = (unsigned)config_get_int(&cfg, "poll-linger"),
        .out_hard_limit = (size_t)config_get_int(&cfg, "out-hard-limit"),
        .max_payload = (size_t)config_get_int(&cfg, "max-payload"),
        .polling = strstr(transports, "polling") != NULL,
        .websocket = strstr(transports, "websocket") != NULL,
        .cors_origin = config_get(&cfg, "cors-origin"),
        .on_open = echo_open,
        .on_message = echo_message,
        .on_close = echo_close,
        .on_log = echo_log,
        .ctx = &e,
    };
    e.eio = eio_server_new(e.base, &ecfg);
    struct http_server_config hcfg = {
        .listen = config_get(&cfg, "listen"),
        .max_body = ecfg.max_payload,
        .on_request = on_request,
        .on_error = http_error,
        .ctx = &e,
    };
    e.http = http_server_new(e.base, &hcfg, err, sizeof err);
    if (e.base == NULL || e.log == NULL || e.eio == NULL || e.http == NULL) {
        fprintf(stderr, "sioc-eio-echo: %s\n", err[0] ? err : "cannot start");
        return 1;
    }
    log_write(e.log, LOG_LEVEL_INFO, "process.start", "listening on port %u path %s",
              http_server_port(e.http), ecfg.path);
    process_write_port_file(config_get(&cfg, "port-file"), http_server_port(e.http));
    e.sigint = evsignal_new(e.base, SIGINT, signal_cb, &e);
    e.sigterm = evsignal_new(e.base, SIGTERM, signal_cb, &e);
    evsignal_add(e.sigint, NULL);
    evsignal_add(e.sigterm, NULL);
    event_base_dispatch(e.base);

    http_server_stop_listening(e.http);
    eio_server_free(e.eio);
    http_server_free(e.http);
    event_free(e.sigint);
    event_free(e.sigterm);
    log_free(e.log);
    event_base_free(e.base);
    config_deinit(&cfg);
    return 0;
}
