/* redis_conn.h: one connection to a Redis server on a libevent loop, plain TCP or TLS: a
 * non-blocking connect, the optional TLS handshake (redis_tls), RESP bytes out (already encoded
 * by the owner, common/redis_proto) and replies in, parsed with hiredis's reader. It pairs no
 * reply with any command and never reconnects: redis_link does both. This is the transport
 * under a redis_link; a cluster link would plug in at the same place. */
#ifndef SIOC_NET_REDIS_CONN_H
#define SIOC_NET_REDIS_CONN_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct redisReply;
struct redis_conn;
struct redis_tls;

struct redis_conn_config {
    const char *host; /* a name (resolved blocking) or an IP literal; borrowed during _new */
    int port;
    struct redis_tls *tls; /* NULL: plain TCP; else borrowed, must outlive the connection */
    void *ctx;             /* passed to every callback */
    /* The connection is open (TCP connected and, with TLS, the handshake done). */
    void (*on_open_cb)(void *ctx);
    /* One reply, in the order Redis sent them. `reply` is freed after the call returns. */
    void (*on_reply_cb)(void *ctx, struct redisReply *reply);
    /* The connection failed or was lost (`reason` valid during the call: "connection refused",
     * "TLS handshake failed: certificate verify failed: ...", "connection closed by peer").
     * Called at most once; nothing else is called afterwards. The owner then frees it. */
    void (*on_error_cb)(void *ctx, const char *reason);
};

/* Starts connecting; the callbacks run from the loop later, never from here. The process must
 * ignore SIGPIPE (OpenSSL writes with write(2), which raises it on a connection the peer reset).
 * Returns NULL with a reason in err[0..errlen) when the name does not resolve, no socket can be
 * made, or out of memory. */
struct redis_conn *redis_conn_new(struct event_base *base, const struct redis_conn_config *cfg,
                                  char *err, size_t errlen);

/* Closes the socket at once and frees everything; no callback runs afterwards. Inside one of
 * this connection's callbacks the memory is released when that callback returns. NULL is a
 * no-op. */
void redis_conn_free(struct redis_conn *conn);

/* Appends data[0..len) (copied) to the output. Everything appended during one loop iteration
 * leaves in one write at its end (or as soon as the connection is open). Returns false when out
 * of memory (nothing appended). */
bool redis_conn_write(struct redis_conn *conn, const char *data, size_t len);

/* True while the connection is open (on_open_cb ran, on_error_cb did not). */
bool redis_conn_open(const struct redis_conn *conn);

#endif
