/* gateway_internal.h: the state of the sioc-gateway process (main_gateway.c), shared with the
 * files that serve parts of it: gateway_routes.c (ws-routes requests). Everything the process
 * owns hangs off one struct gateway; no globals. */
#ifndef SIOC_GATEWAY_GATEWAY_INTERNAL_H
#define SIOC_GATEWAY_GATEWAY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "common/net/http_server.h"
#include "gateway/eio_server.h"
#include "gateway/gateway_config.h"

struct event;
struct event_base;
struct log;
struct metrics;

struct gateway {
    struct config *cfg;
    struct event_base *base;
    struct log *log;
    struct metrics *metrics;
    struct http_server *http;
    struct sio_server *sio;
    struct subscriber *sub; /* the one pub/sub connection: replies, adapter, forwarder */
    struct bridge *bridge;
    struct cluster *cluster;
    struct registry *registry;
    struct eio_forward *forward; /* polling without sticky sessions (NULL: forward no) */
    struct expiry *expiry;       /* auth jwt: tokens expire during the session too */
    struct recovery *recovery;   /* recovery-window > 0 */
    struct gateway_loaded opt;   /* jwt, tls, redis_tls, routes (gateway_config.h) */
    enum { AUTH_NONE, AUTH_JWT, AUTH_BACKEND } auth;
    const char *user_room;
    const char *jwt_claim;
    char node_id[40];
    char client_js_path[300];
    const char *key_prefix; /* key-prefix, or "{P}" on a Redis Cluster (docs/contracts.md) */
    char cluster_prefix[CONFIG_MAX_VALUE + 3];
    char sid_tag[EIO_SID_TAG_LEN + 1]; /* forward: the routing tag of our session ids */
    bool forward_on;
    uint64_t seed;
    size_t max_connections;
    bool draining;
    bool nsp_limit_logged; /* namespaces *: the limit was logged since a namespace was freed */
    struct event *sigterm, *sigint, *sighup, *drain_timer;
    uint64_t *http_requests, *connects_refused, *events_in;
};

/* A request whose path is a ws-routes route (gateway_routes.c): a GET with a valid WebSocket
 * upgrade (and, with auth jwt, a valid token) becomes a plain connection whose socket is accepted
 * as a Socket.IO CONNECT would be; anything else is answered (405, 426, 400, 401, 403) and
 * logged. False when the path is no route's. */
bool gateway_route_request(struct gateway *g, struct http_conn *conn,
                           struct http_server_request *req);

#endif
