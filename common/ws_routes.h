/* ws_routes.h: plain WebSocket routes (the gateway's `ws-routes` option, DESIGN.md §2; rules in
 * docs/contracts.md "Plain WebSocket routes"): the option's parser, the matching of a request
 * path against the routes (exact paths, or one `{user}` segment that names the connection's
 * user), and the mapping between plain WebSocket messages and sioc events: upstream a message
 * is the event `message` with one argument (string or bytes), downstream an event's first
 * argument becomes a text frame (string), a binary frame (bytes) or JSON text (anything else).
 * Pure: no I/O, no allocation beyond the caller's buffers and the table's own strings. */
#ifndef SIOC_WS_ROUTES_H
#define SIOC_WS_ROUTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define WS_ROUTES_MAX 64            /* routes in one option */
#define WS_ROUTES_MAX_PATH 256      /* bytes of a route's path (as written) */
#define WS_ROUTES_MAX_NAMESPACE 256 /* bytes of a route's namespace (sio_server's bound) */
#define WS_ROUTES_MAX_USER 256      /* bytes of a decoded {user} segment */
#define WS_ROUTES_USER "{user}"     /* the one placeholder a path segment may be */

struct ws_route {
    char *path;      /* as written, e.g. "/ws/{user}" (NUL-terminated; owned by the table) */
    char *nsp;       /* e.g. "/ws" */
    size_t path_len, nsp_len;
    bool has_user;   /* one segment of the path is {user} */
};

struct ws_routes {
    struct ws_route routes[WS_ROUTES_MAX];
    size_t count;
    char *text; /* one copy of the option; the routes' strings point into it */
};

/* Parses `spec`: a comma list of PATH=NAMESPACE (no spaces). PATH starts with '/', holds no
 * '?', '#', '%', '=', ',', spaces or control bytes, at most one segment that is exactly
 * "{user}" and no other '{' or '}', no empty segment but a trailing "/" ("/a//b" is refused;
 * "/" and "/a/" are paths of their own); NAMESPACE starts with '/' and holds no ',', '=',
 * spaces or control bytes. The same PATH twice is refused. An empty or NULL spec gives an
 * empty table. Returns SIOC_OK, SIOC_EPROTO with `err` (errlen bytes, NUL-terminated) naming the
 * faulty item, SIOC_ETOOBIG (too many routes, a path or namespace too long; also named in err)
 * or SIOC_ENOMEM. On error the table is empty (nothing to free). */
int ws_routes_parse(struct ws_routes *t, const char *spec, char *err, size_t errlen);
/* Frees the table's strings; the table is empty afterwards. Safe on an empty table. */
void ws_routes_deinit(struct ws_routes *t);

enum ws_routes_match {
    WS_ROUTES_NONE,     /* no route has this path */
    WS_ROUTES_FOUND,    /* *route is set; *user is the decoded {user} (empty without one) */
    WS_ROUTES_BAD_USER, /* a {user} route's shape, but the segment decodes to invalid UTF-8, a
                         * NUL or more than WS_ROUTES_MAX_USER bytes; *route is set */
};

/* Matches a request path (the target before '?', raw). A literal route matches the same bytes;
 * a {user} route matches when every other segment is the same and the {user} segment is one
 * non-empty segment (no '/'), percent-decoded ('+' stays '+') into `user` (reset first). A
 * literal route wins over a {user} one; among {user} routes the first in the option wins.
 * *route is valid while the table is. */
enum ws_routes_match ws_routes_match(const struct ws_routes *t, const uint8_t *path, size_t len,
                                     const struct ws_route **route, struct buf *user);

/* Upstream (client → workers): the `args` of the event entry for one message: a MessagePack
 * array of one str (text) or one bin (binary) with the message bytes. Returns out->err. */
int ws_routes_message_args(const uint8_t *p, size_t len, bool binary, struct buf *out);

/* Downstream (workers, broadcasts → client): the plain message for an event whose MessagePack
 * array is `event` ([name, arg0, ...]; the name is dropped): arg0 a str → its bytes as text
 * (*binary false; a byte that starts no valid UTF-8 sequence becomes U+FFFD); a bin → its bytes (*binary true); anything else → its JSON text (as
 * JSON.stringify of the notepack-decoded value; bins inside as Node's Buffer.toJSON()). The
 * message is appended to `out`. Returns 1 (a message), 0 (the event has no argument: nothing
 * to send), SIOC_EPROTO (not an array with a name) or out's error. */
int ws_routes_message_frame(const uint8_t *event, size_t len, struct buf *out, bool *binary);

#endif
