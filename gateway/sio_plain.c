/* sio_plain.c: plain WebSocket clients of the Socket.IO layer (ws-routes; see
 * sio_server_open_plain in sio_server.h, docs/contracts.md "Plain WebSocket routes"). A plain
 * client is a sio_client without an Engine.IO session: its transport is a plain_ws connection
 * and it holds exactly one socket, in its route's namespace, so rooms, broadcasts, the
 * registry, the adapter and the worker bridge see it as any socket. Messages become the event
 * "message"; what is emitted to it leaves as the event's first argument (common/ws_routes.h).
 * What plain clients send arrives in sio_server.c (beside what Engine.IO clients send); what
 * leaves for them goes through sio_transport.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/ws.h"
#include "common/ws_routes.h"
#include "gateway/plain_ws.h"
#include "gateway/sio_handshake.h"
#include "gateway/sio_internal.h"

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
