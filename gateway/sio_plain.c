/* sio_plain.c: plain WebSocket clients of the Socket.IO layer (ws-routes; see
 * sio_server_open_plain in sio_server.h, docs/contracts.md "Plain WebSocket routes"). A plain
 * client is a sio_client without an Engine.IO session: its transport is a plain_ws connection
 * and it holds exactly one socket, in its route's namespace, so rooms, broadcasts, the
 * registry, the adapter and the worker bridge see it as any socket. Messages become the event
 * "message"; what is emitted to it leaves as the event's first argument (common/ws_routes.h).
 * Also the transport helpers every client goes through (send, writable, close). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/ws.h"
#include "common/ws_routes.h"
#include "gateway/plain_ws.h"
#include "gateway/sio_handshake.h"
#include "gateway/sio_internal.h"

#define PLAIN_EVENT "message"

void sio_client_close(struct sio_client *c, unsigned ws_code, const char *reason)
{
    if (c->plain != NULL)
        plain_ws_conn_close(c->plain, ws_code, reason);
    else
        eio_session_close(c->session, reason);
}

struct gw_frame *sio_plain_frame(struct sio_server *srv, struct slice data, int *rc)
{
    bool binary = false;
    buf_reset(&srv->plain_text);
    int n = ws_routes_message_frame(data.p, data.len, &srv->plain_text, &binary);
    if (n <= 0) {
        *rc = n;
        return NULL;
    }
    const uint8_t *p = srv->plain_text.data;
    size_t len = srv->plain_text.len;
    struct gw_frame *f = binary ? gw_frame_new_binary(p, len) : gw_frame_new_plain_text(p, len);
    *rc = f != NULL ? SIOC_OK : SIOC_ENOMEM;
    return f;
}

int sio_plain_send_event(struct sio_client *c, struct slice data)
{
    int rc;
    struct gw_frame *f = sio_plain_frame(c->srv, data, &rc);
    if (f == NULL)
        return rc; /* 0: an event without an argument sends nothing */
    plain_ws_conn_send(c->plain, f);
    gw_frame_unref(f);
    return SIOC_OK;
}

/* One message from a plain client: the event "message" with the string or the bytes. */
static void on_plain_message(void *ctx, struct plain_ws_conn *pc, void *user, const uint8_t *p,
                             size_t len, bool binary)
{
    struct sio_server *srv = ctx;
    struct sio_client *c = user;
    (void)pc;
    struct sio_socket *s = c->sockets;
    if (c->closing || s == NULL || s->ending)
        return;
    buf_reset(&srv->args);
    if (ws_routes_message_args(p, len, binary, &srv->args) != SIOC_OK) {
        sio_client_close(c, WS_CLOSE_INTERNAL_ERROR, "out of memory");
        return;
    }
    struct slice event = {(const uint8_t *)PLAIN_EVENT, sizeof PLAIN_EVENT - 1};
    struct slice args = {srv->args.data, srv->args.len};
    if (s->accepted)
        sio_forward_client_event(s, event, args, false, 0);
    else
        sio_queue_event(s, event, args, false, 0); /* auth backend: until the worker answers */
}

static void on_plain_close(void *ctx, struct plain_ws_conn *pc, void *user, const char *reason)
{
    (void)ctx;
    (void)pc;
    sio_client_free(user, reason);
}

static void on_plain_log(void *ctx, const char *event, const char *detail)
{
    struct sio_server *srv = ctx;
    if (srv->cfg.on_log != NULL)
        srv->cfg.on_log(srv->cfg.ctx, event, detail);
}

int sio_plain_init(struct sio_server *srv, const struct eio_server_config *eio)
{
    struct plain_ws_config pcfg = srv->cfg.plain;
    if (pcfg.ping_interval_ms == 0)
        pcfg.ping_interval_ms = eio->ping_interval_ms;
    if (pcfg.ping_timeout_ms == 0)
        pcfg.ping_timeout_ms = eio->ping_timeout_ms;
    if (pcfg.max_payload == 0)
        pcfg.max_payload = eio->max_payload;
    if (pcfg.heartbeat_hold_max_ms == 0)
        pcfg.heartbeat_hold_max_ms = eio->heartbeat_hold_max_ms;
    if (pcfg.out_hard_limit == 0)
        pcfg.out_hard_limit = eio->out_hard_limit;
    pcfg.on_message = on_plain_message;
    pcfg.on_close = on_plain_close;
    pcfg.on_log = on_plain_log;
    pcfg.ctx = srv;
    srv->plain = plain_ws_new(srv->base, &pcfg);
    return srv->plain != NULL ? SIOC_OK : SIOC_ENOMEM;
}

struct plain_ws *sio_server_plain(struct sio_server *srv)
{
    return srv->plain;
}

bool sio_socket_is_plain(const struct sio_socket *s)
{
    return s->client->plain != NULL;
}

static void refuse(struct sio_server *srv, struct http_conn *conn, const char *nsp, size_t nsp_len,
                   const char *why)
{
    static const struct http_field text[] = {{"Content-Type", "text/plain"}};
    char body[128];
    int n = snprintf(body, sizeof body, "%s\n", why);
    http_conn_respond(conn, 503, text, 1, body, n > 0 ? (size_t)n : 0, false);
    if (srv->cfg.on_log != NULL) {
        char detail[400];
        snprintf(detail, sizeof detail, "nsp=%.*s: %s", (int)(nsp_len > 256 ? 256 : nsp_len), nsp,
                 why);
        srv->cfg.on_log(srv->cfg.ctx, "ws.route_refused", detail);
    }
}

struct sio_socket *sio_server_open_plain(struct sio_server *srv, struct http_conn *conn,
                                         const struct http_server_request *req, const char *nsp,
                                         size_t nsp_len, const char *user)
{
    enum nsp_refusal why;
    struct sio_nsp *n = sio_nsp_get(srv, nsp, nsp_len, &why);
    struct sio_client *c = n != NULL ? calloc(1, sizeof *c) : NULL;
    char *uid = user != NULL && user[0] != '\0' ? strdup(user) : NULL;
    if (c == NULL || (user != NULL && user[0] != '\0' && uid == NULL)) {
        if (n != NULL)
            sio_nsp_release(srv, n);
        free(c);
        free(uid);
        refuse(srv, conn, nsp, nsp_len,
               why == NSP_LIMIT ? "Namespace limit reached" : "out of memory");
        return NULL;
    }
    c->srv = srv;
    c->hs_bytes = sio_handshake_build(&c->hs, req, http_conn_peer(conn));
    c->plain = plain_ws_accept(srv->plain, conn, req, c); /* the 101; req is done after it */
    struct sio_socket *s = c->plain != NULL ? sio_socket_new(c, n) : NULL;
    if (s == NULL) {
        free(uid);
        sio_nsp_release(srv, n);
        if (c->plain != NULL) {
            sio_client_close(c, WS_CLOSE_INTERNAL_ERROR, "out of memory"); /* frees c later */
        } else {
            free(c->hs_bytes);
            free(c);
        }
        return NULL;
    }
    s->uid = uid;
    return s;
}
