/* sio_handshake.h: the connection facts the Socket.IO layer keeps per client (DESIGN.md §3.2
 * `hs`, PROTOCOL.md 3.5 fetchSockets' handshake), and the auth object protocol v4 clients carry
 * in their namespace's query string (PROTOCOL.md 2.7). */
#ifndef SIOC_GATEWAY_SIO_HANDSHAKE_H
#define SIOC_GATEWAY_SIO_HANDSHAKE_H

#include <stdint.h>

#include "common/buf.h"
#include "common/net/http_server.h"
#include "gateway/sio_server.h"

/* Fills *hs from the handshake request: headers (lower-cased names) and the decoded query as
 * MessagePack maps, the target, the peer address without its port, the time. Returns the one
 * exact-size block hs points into (the caller frees it when the client goes), or NULL when out of
 * memory (hs then holds empty values). `req` and `peer` are only read during the call. */
uint8_t *sio_handshake_build(struct sio_handshake *hs, const struct http_server_request *req,
                             const char *peer);

/* Pairs of a namespace query looked at (a bound on the work a CONNECT can ask for). */
#define SIO_QUERY_MAX_PAIRS 1000

/* PROTOCOL.md 2.7: appends the namespace's query string (raw, after '?') as the auth object, a
 * MessagePack map of percent-decoded strings ('+' as space), as socket.io 4.8 builds it
 * (objectFromEntries of the URL's searchParams): keys in the order they first appear, each with
 * the value of its last pair; only the first SIO_QUERY_MAX_PAIRS pairs. Returns SIOC_OK or out's
 * error. */
int sio_query_auth(struct slice query, struct buf *out);

#endif
