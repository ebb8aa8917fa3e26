/* eio_forward.h: Engine.IO long-polling without sticky sessions (issue 18; docs/contracts.md
 * "Polling without sticky sessions", an addition to DESIGN.md §3). Every session id starts with
 * its owner's routing tag (eio_server_config.sid_tag); a request for another node's session
 * (a polling GET or POST, or the WebSocket upgrade) is published to the owner on `P:eio:<tag>`,
 * which replays it into its own HTTP server through a socketpair, so the same eio_server code
 * answers it as a local request, and sends the answer back on the requester's channel: a
 * polling answer as one message, an upgrade as a byte tunnel in both directions for the life of
 * the WebSocket. The requester parks the client's request meanwhile, with bounds: a timeout,
 * the owner's disappearance (PUBSUB NUMSUB every second), at most max_inflight requests in each
 * role. Both roles live here: the requester in eio_forward.c, the owner in eio_forward_host.c. */
#ifndef SIOC_GATEWAY_EIO_FORWARD_H
#define SIOC_GATEWAY_EIO_FORWARD_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "common/net/http_server.h"

struct event_base;
struct eio_forward;
struct eio_server;
struct log;
struct metrics;
struct redis_tls;

#define EIO_FORWARD_DEFAULT_TIMEOUT_MS 10000
#define EIO_FORWARD_DEFAULT_MAX 1024

/* Strings are copied by eio_forward_new. */
struct eio_forward_config {
    const char *redis_url;       /* required: its own command link publishes */
    struct redis_tls *redis_tls; /* rediss:// only; borrowed, must outlive the forwarder */
    const char *key_prefix;      /* NULL = "sioc" */
    const char *tag;             /* this node's sid tag (EIO_SID_TAG_LEN characters), required */
    /* A forwarded POST or upgrade must be answered within timeout_ms; a GET within
     * get_hold_ms + timeout_ms (the owner holds it until it has packets: at most a ping
     * interval); a tunnel silent for tunnel_idle_ms (ping interval + ping timeout: the owner
     * pings) is closed. 0 = EIO_FORWARD_DEFAULT_TIMEOUT_MS, get_hold_ms 25 s, tunnel 45 s. */
    unsigned timeout_ms;
    unsigned get_hold_ms;
    unsigned tunnel_idle_ms;
    size_t max_inflight; /* per role: parked client requests, and replayed ones; 0 = default */
    /* Adds the node's channel to the subscriber connection its messages come on (subscriber.h);
     * the owner of that connection hands them to eio_forward_on_message. */
    int (*subscribe)(void *ctx, const char *channel);
    void *subscribe_ctx;
};

/* Creates the forwarder and subscribes its channel. `eio` answers replayed requests' session
 * checks, `http` serves the replays; both, `log` and `metrics` (may be NULL) are borrowed and
 * must outlive it. Returns NULL on a bad config or out of memory. */
struct eio_forward *eio_forward_new(struct event_base *base, const struct eio_forward_config *cfg,
                                    struct eio_server *eio, struct http_server *http,
                                    struct log *log, struct metrics *metrics);
/* Closes every parked client request and replay; no callback runs afterwards. NULL is a no-op.
 * Not from inside one of its own callbacks. */
void eio_forward_free(struct eio_forward *f);

/* The channel to read (`P:eio:<tag>`), NUL-terminated, valid as long as the forwarder. */
const char *eio_forward_channel(const struct eio_forward *f);

/* eio_server_config.on_foreign_sid: forwards `req` for session `sid` to the node named by its
 * tag and parks `conn` until the answer. Always takes the request (true): when it cannot be
 * forwarded (limit reached: 503; Redis refused the message) it is answered at once. */
bool eio_forward_request(struct eio_forward *f, struct http_conn *conn,
                         struct http_server_request *req, const char *sid);

/* One message that arrived on the channel (borrowed). Malformed ones are counted and logged. */
void eio_forward_on_message(struct eio_forward *f, const uint8_t *p, size_t len);

#endif
