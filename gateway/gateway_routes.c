/* gateway_routes.c: requests for the plain WebSocket routes of `ws-routes` (docs/contracts.md
 * "Plain WebSocket routes"; matching in common/ws_routes.c): checked before the upgrade, then
 * handed to sio_server_open_plain and accepted, or left to the worker (auth backend). */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/http.h"
#include "common/jwt.h"
#include "common/net/log.h"
#include "common/ws.h"
#include "common/ws_routes.h"
#include "gateway/bridge.h"
#include "gateway/expiry.h"
#include "gateway/gateway_internal.h"
#include "gateway/sio_server.h"
#include "gateway/ws_link.h"

/* An answer to a route request that cannot become a plain connection, with its log line. An
 * upgrade request's connection closes after it (the client sent no more than the head). */
static void route_refuse(struct gateway *g, struct http_conn *conn,
                         const struct http_server_request *req, int status,
                         const struct http_field *extra, size_t nextra, const char *why)
{
    struct http_field fields[4] = {{"Content-Type", "text/plain"}};
    size_t n = 1;
    for (size_t i = 0; i < nextra && n < 4; i++)
        fields[n++] = extra[i];
    char body[200];
    int len = snprintf(body, sizeof body, "%s\n", why);
    log_write(g->log, LOG_LEVEL_INFO, "ws.route_refused", "path=%.*s status=%d peer=%s: %s",
              (int)(req->path.len > 256 ? 256 : req->path.len), (const char *)req->path.p, status,
              http_conn_peer(conn), why);
    http_conn_respond(conn, status, fields, n, body, len > 0 ? (size_t)len : 0, req->upgrade);
}

/* auth jwt on a plain route: the `token` query parameter, else `Authorization: Bearer`. */
static enum jwt_result route_token(struct gateway *g, const struct http_server_request *req,
                                   struct jwt_claims *claims)
{
    struct buf token;
    buf_init(&token, 16384);
    const uint8_t *p = NULL;
    size_t len = 0;
    if (http_query_get(req->query, "token", &token) == 1 && token.len > 0) {
        p = token.data;
        len = token.len;
    } else {
        const struct http_header *h = http_header_find(req->head, "Authorization", NULL);
        /* RFC 6750 2.1: "Bearer" is case-insensitive, followed by one space */
        if (h != NULL && h->value.len > 7 &&
            strncasecmp((const char *)h->value.p, "Bearer ", 7) == 0) {
            p = h->value.p + 7;
            len = h->value.len - 7;
        }
    }
    enum jwt_result r = JWT_MALFORMED;
    memset(claims, 0, sizeof *claims);
    if (len > 0)
        r = jwt_verify(g->opt.jwt, (const char *)p, len, g->jwt_claim, (int64_t)time(NULL), claims);
    buf_deinit(&token);
    return r;
}

/* A request for a route's path: a GET with a valid WebSocket upgrade (and, with auth jwt, a
 * valid token) becomes a plain connection whose socket is accepted as a Socket.IO CONNECT
 * would be (auth none and jwt here; auth backend by the worker). */
static void serve_route(struct gateway *g, struct http_conn *conn, struct http_server_request *req,
                        const struct ws_route *route, const char *user)
{
    struct slice m = req->head->method;
    if (m.len != 3 || memcmp(m.p, "GET", 3) != 0) {
        static const struct http_field allow[] = {{"Allow", "GET"}};
        route_refuse(g, conn, req, 405, allow, 1, "a plain WebSocket route takes GET only");
        return;
    }
    if (!req->upgrade) {
        /* RFC 9110 15.5.22: 426 names the protocol to upgrade to */
        static const struct http_field up[] = {{"Upgrade", "websocket"}, {"Connection", "Upgrade"}};
        route_refuse(g, conn, req, 426, up, 2, "WebSocket upgrade required");
        return;
    }
    const struct http_header *version = http_header_find(req->head, "Sec-WebSocket-Version", NULL);
    if (version == NULL || !ws_version_valid((const char *)version->value.p, version->value.len)) {
        /* RFC 6455 4.4: the versions the server speaks */
        static const struct http_field v[] = {{"Sec-WebSocket-Version", "13"}};
        route_refuse(g, conn, req, 426, v, 1, "unsupported Sec-WebSocket-Version");
        return;
    }
    if (!ws_link_request_valid(req)) {
        route_refuse(g, conn, req, 400, NULL, 0, "invalid Sec-WebSocket-Key");
        return;
    }
    struct jwt_claims claims = {0};
    if (g->auth == AUTH_JWT) {
        enum jwt_result r = route_token(g, req, &claims);
        if (r != JWT_OK) {
            static const struct http_field www[] = {{"WWW-Authenticate", "Bearer"}};
            (*g->connects_refused)++;
            route_refuse(g, conn, req, 401, www, 1, jwt_strerror(r));
            return;
        }
        if (user != NULL && strcmp(user, claims.uid) != 0) {
            (*g->connects_refused)++;
            route_refuse(g, conn, req, 403, NULL, 0, "the path's user is not the token's user");
            return;
        }
    }
    struct sio_socket *sock =
        sio_server_open_plain(g->sio, conn, req, route->nsp, route->nsp_len, user);
    if (sock == NULL)
        return;                              /* answered (503) and logged */
    static const uint8_t no_auth[] = {0x80}; /* {}: a plain client sends no CONNECT payload */
    if (g->auth == AUTH_BACKEND) {
        bridge_on_connect(g->bridge, sock, no_auth, 1, true); /* the worker answers */
        return;
    }
    sio_socket_accept(sock, g->auth == AUTH_JWT ? claims.uid : NULL, g->user_room);
    if (claims.exp > 0 && expiry_add(g->expiry, sock, claims.exp) != SIOC_OK)
        sio_socket_disconnect(sock, false); /* cannot enforce exp: do not keep the socket */
    else
        bridge_on_connect(g->bridge, sock, no_auth, 1, false);
}

bool gateway_route_request(struct gateway *g, struct http_conn *conn,
                           struct http_server_request *req)
{
    if (g->opt.routes.count == 0)
        return false;
    const struct ws_route *route = NULL;
    struct buf user;
    buf_init(&user, WS_ROUTES_MAX_USER * 3 + 1);
    enum ws_routes_match r =
        ws_routes_match(&g->opt.routes, req->path.p, req->path.len, &route, &user);
    if (r == WS_ROUTES_BAD_USER) {
        route_refuse(g, conn, req, 400, NULL, 0,
                     "the {user} segment is not valid UTF-8 text of at most 256 bytes");
    } else if (r == WS_ROUTES_FOUND) {
        buf_append_byte(&user, 0);
        serve_route(g, conn, req, route, route->has_user ? (const char *)user.data : NULL);
    }
    buf_deinit(&user);
    return r != WS_ROUTES_NONE;
}
