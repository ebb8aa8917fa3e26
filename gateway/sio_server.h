/* sio_server.h: Socket.IO v5 on top of Engine.IO sessions (PROTOCOL.md §2), and v4 on Engine.IO
 * v3 sessions (§2.7: implicit "/", CONNECT without payload, nsp#sid ids): namespaces,
 * CONNECT / CONNECT_ERROR / DISCONNECT, events and acks with binary attachments, the close
 * policy of §2.4, connect-timeout, rooms (every socket is in the room of its own id), and
 * broadcasts encoded once for all recipients. It knows nothing of Redis or auth: the
 * application layer (upstream, auth, adapter) sees sockets through the callbacks below and acts
 * on them through the sio_socket_* and sio_server_* functions. Payloads are MessagePack (binary
 * as `bin`), as workers and the Redis adapter carry them. */
#ifndef SIOC_GATEWAY_SIO_SERVER_H
#define SIOC_GATEWAY_SIO_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/net/http_server.h"
#include "gateway/eio_server.h"
#include "gateway/plain_ws.h"

struct event_base;
struct sio_server;
struct sio_socket;

#define SIO_SOCKET_ID_LEN 20

/* Connection facts kept per client for workers (DESIGN.md §3.2 `hs`) and fetchSockets
 * (PROTOCOL.md 3.5 REMOTE_FETCH `handshake`). Owned by the client; valid while a socket is. */
struct sio_handshake {
    struct slice headers; /* MessagePack map of request headers (names lower-cased) */
    struct slice query;   /* MessagePack map of query parameters (decoded) */
    const char *url;      /* the request target */
    const char *address;  /* peer IP */
    int64_t issued_ms;    /* ms since the epoch */
    bool secure;          /* TLS */
};

struct sio_server_config {
    const char *namespaces;      /* "/" | "/,/chat" | "*" (any namespace) */
    unsigned connect_timeout_ms; /* an Engine.IO connection with no namespace by then closes */
    size_t max_payload;          /* bound of binary reassembly (attachments) */
    size_t max_pending_events;   /* events queued while a CONNECT awaits its answer; 0 = 64 */
    /* Connection state recovery on (recovery-window > 0): every protocol v5 CONNECT gets a pid,
     * 20 random characters followed by this text (the node id), sent in its CONNECT reply
     * {"sid","pid"} (gateway/recovery.h). NULL = off: no pid, reply {"sid"}. */
    const char *pid_suffix;
    /* Namespaces under "*": a name must be valid UTF-8 without NUL, at most max_namespaces
     * exist at once (0 = no limit), one connection joins at most max_namespaces_per_client
     * (0 = 64; any namespaces list), and one without sockets for empty_namespace_ms (0 = 30 s)
     * is freed ("/" excepted). A CONNECT beyond a limit gets CONNECT_ERROR ("Namespace limit
     * reached", "Too many namespaces on this connection"); a bad name "Invalid namespace". */
    size_t max_namespaces;
    size_t max_namespaces_per_client;
    unsigned empty_namespace_ms;
    uint64_t seed; /* hashes of socket ids and room names */
    /* Plain WebSocket connections (ws-routes): counters and limits; zero heartbeat, payload
     * and hold values take the Engine.IO config's. The callbacks are the layer's own. */
    struct plain_ws_config plain;

    /* A client asked to join an allowed namespace. `auth` is the CONNECT payload as one
     * MessagePack value (a map; {} when absent). The application answers with
     * sio_socket_accept or sio_socket_reject, now or later; events the client sends meanwhile
     * are queued and delivered after the accept. */
    void (*on_connect)(void *ctx, struct sio_socket *sock, const uint8_t *auth, size_t auth_len);
    /* An event from an accepted socket. `event` is the name (a string, or a number as its JS
     * string form), `args` the MessagePack array of the remaining arguments (binary as bin),
     * `ack_id` valid when has_ack. Data is valid only during the call. */
    void (*on_event)(void *ctx, struct sio_socket *sock, struct slice event, struct slice args,
                     bool has_ack, uint64_t ack_id);
    /* An ACK from the client for a server emit made with sio_socket_emit_with_ack:
     * `args` is the MessagePack array of the ack arguments. */
    void (*on_ack)(void *ctx, struct sio_socket *sock, uint64_t ack_id, struct slice args);
    /* A socket is gone (only sockets that were accepted, or whose CONNECT was pending, are
     * reported): `reason` is the Socket.IO disconnect reason ("client namespace disconnect",
     * "server namespace disconnect", "transport close", "ping timeout", "parse error", ...).
     * From the loop, once (see "How a socket ends" below); the socket is valid during the
     * call and freed after it. */
    void (*on_disconnect)(void *ctx, struct sio_socket *sock, const char *reason);
    /* A socket was accepted: its CONNECT reply is queued and it is in its own-id room (and its
     * user room). Called before the events queued while it waited are delivered. */
    void (*on_accepted)(void *ctx, struct sio_socket *sock);
    /* An accepted socket joined (joined = true) or left a room, by any path (application,
     * adapter request, worker reply). Not called for the own-id/user rooms of the accept, nor
     * for the rooms a socket leaves by going away (on_disconnect covers those). */
    void (*on_room)(void *ctx, struct sio_socket *sock, const uint8_t *room, size_t len,
                    bool joined);
    /* A room of namespace `nsp` came to exist on this node (created: its first local member
     * joined, the join done) or is going away (its last member left or went). `is_socket_id`:
     * the room is the id of a socket of this namespace on this node (its own-id room). May be
     * NULL. Must not change rooms or sockets. (The sharded adapter subscribes room channels.) */
    void (*on_room_change)(void *ctx, const char *nsp, size_t nsp_len, const uint8_t *room,
                           size_t len, bool created, bool is_socket_id);
    /* A peer error worth a log line. */
    void (*on_log)(void *ctx, const char *event, const char *detail);
    /* Under "*": namespace `nsp` (NUL-terminated, `len` bytes) is about to exist (open =
     * true; return SIOC_OK, or anything else to refuse its CONNECT with "Namespace limit
     * reached") or was freed (open = false; the return value is ignored). May be NULL. */
    int (*on_namespace)(void *ctx, const char *nsp, size_t len, bool open);
    void *ctx;
};

/* Creates the Socket.IO layer and its Engine.IO server (configured by `eio`, whose callbacks
 * this layer takes over). NULL when out of memory or the namespaces list is invalid. */
struct sio_server *sio_server_new(struct event_base *base, const struct sio_server_config *cfg,
                                  const struct eio_server_config *eio);
/* Closes everything (on_disconnect runs for every socket, inside this call: the loop will not
 * run again) and frees. NULL is a no-op. */
void sio_server_free(struct sio_server *srv);
/* Routes an HTTP request to Engine.IO; false when the path is not ours. */
bool sio_server_handle(struct sio_server *srv, struct http_conn *conn,
                       struct http_server_request *req);
/* Drain: closes every Engine.IO session (clients reconnect elsewhere). */
void sio_server_close_all(struct sio_server *srv, const char *reason);
struct eio_server *sio_server_eio(struct sio_server *srv);
/* The plain WebSocket connections (heartbeat hold, counts). */
struct plain_ws *sio_server_plain(struct sio_server *srv);

/* A plain WebSocket client (ws-routes, docs/contracts.md "Plain WebSocket routes") on `conn`,
 * whose request `req` the caller matched to a route and checked (a GET with a valid WebSocket
 * upgrade, ws_link_request_valid; auth). Answers 101 and makes one socket in namespace `nsp`
 * (nsp_len bytes; an accepted namespace) for the connection, pending as after a CONNECT with
 * auth {}: the caller accepts it (sio_socket_accept; a NULL uid takes `user`) or refuses it
 * (sio_socket_reject closes the connection with 1008 and the message), now or later. `user`
 * (NULL = none) is the user the route's {user} segment named: sio_socket_uid returns it from
 * now on. Each text or binary message then reaches on_event as the event "message" with one
 * argument (string or bytes); what is emitted to the socket goes out as its first argument
 * (ws_routes_message_frame); the socket's disconnect closes the connection (1000). Returns the
 * socket, or NULL when the namespace cannot be had here (limit) or out of memory: the request
 * was then answered with 503 and logged. */
struct sio_socket *sio_server_open_plain(struct sio_server *srv, struct http_conn *conn,
                                         const struct http_server_request *req, const char *nsp,
                                         size_t nsp_len, const char *user);

/* The socket with this id in namespace nsp, or NULL. Pointers stay valid until the socket's
 * on_disconnect returns. */
struct sio_socket *sio_server_find(struct sio_server *srv, const char *nsp, size_t nsp_len,
                                   const char *sid, size_t sid_len);
/* The socket with this id in any namespace (socket ids are unique across namespaces), or NULL.
 * Same validity. */
struct sio_socket *sio_server_find_id(struct sio_server *srv, const char *sid, size_t sid_len);

/* ---- connection state recovery (gateway/recovery.h) ---- */

/* The socket's pid (NUL-terminated), NULL when recovery is off or for protocol v4. */
const char *sio_socket_pid(const struct sio_socket *sock);
/* Before the accept: the socket takes the id `sid` (20 characters) and the pid of a recovered
 * session. SIOC_ENOTSUP when a socket with that id is still on this gateway, SIOC_EINVAL when
 * accepted already, without a pid, or `sid` is not 20 characters; SIOC_ENOMEM. */
int sio_socket_adopt(struct sio_socket *sock, const char *sid, const char *pid);
/* From now on broadcasts that select this socket are kept (at most MAX_HELD_PACKETS, volatile
 * ones dropped) instead of sent, until sio_socket_release. Direct emits still go out. */
void sio_socket_hold(struct sio_socket *sock);
/* Stops holding (connection state recovery): the kept broadcasts are emitted in arrival order,
 * except, when `after` (a stream id "<ms>-<seq>") is given, those whose offset (last argument, a
 * string of that form) is not after it: the stream read delivered them. The same filter then
 * applies to live broadcasts until one with an offset after `after` arrives (the pub/sub
 * message of a packet the read returned may still be on its way). `drop`: discard them all.
 * A hold that overflowed closes the connection (reason "forced close", logged
 * `recovery.hold_overflow`) instead: the socket may be gone when this returns. */
void sio_socket_release(struct sio_socket *sock, const char *after, bool drop);
/* Offsets: true when `a` and `b` are stream ids and a > b. */
bool sio_offset_after(const char *a, size_t alen, const char *b);
/* Copies a data array's offset (its last argument, when it is a stream id) into out; false
 * when it has none. */
bool sio_offset_of(struct slice data, char out[48]);
/* 20 base64url characters from 15 random bytes. */
void sio_pid_random(const uint8_t random15[15], char out[SIO_SOCKET_ID_LEN + 1]);

/* ---- broadcast (encode once, send to many: DESIGN.md §4) ---- */

struct sio_broadcast {
    const char *nsp; /* namespace name (NUL-terminated) */
    size_t nsp_len;
    struct slice data;         /* MessagePack array [event, args...] */
    const struct slice *rooms; /* union of these rooms; all sockets when nrooms == 0 */
    size_t nrooms;
    const struct slice *except; /* minus sockets in any of these rooms */
    size_t nexcept;
    bool is_volatile; /* skip sockets that cannot take it right now */
};

/* Delivers an EVENT (BINARY_EVENT when data holds bin) to the selected local sockets. Returns
 * the number of sockets it was sent to, or a negative error when data cannot be encoded. */
int sio_server_broadcast(struct sio_server *srv, const struct sio_broadcast *b);

/* A broadcast whose recipients must acknowledge (PROTOCOL.md 3.6): one ack id is taken from
 * the namespace counter and the same frames go to every selected socket; each client's ACK is
 * reported through `on_ack(ctx, sock, args)`, at most once per socket. Returns the number of
 * sockets it was sent to (>= 0) or a negative error. The ack id is stored in *ack_id. Sockets
 * that go away before answering are simply never reported. `ctx` must outlive every socket
 * (use a long-lived object and look the request up by namespace and ack id). */
int sio_server_broadcast_with_ack(struct sio_server *srv, const struct sio_broadcast *b,
                                  uint64_t *ack_id,
                                  void (*on_ack)(void *ctx, struct sio_socket *sock,
                                                 uint64_t ack_id, struct slice args),
                                  void *ctx);

/* Calls `cb` for each accepted socket of the selection (same rules as broadcast, no volatile).
 * The callback must not change rooms or disconnect sockets: collect, then act. */
void sio_server_select(struct sio_server *srv, const char *nsp, size_t nsp_len,
                       const struct slice *rooms, size_t nrooms, const struct slice *except,
                       size_t nexcept, void (*cb)(void *ctx, struct sio_socket *sock), void *ctx);
/* Calls `cb` with every room name of a namespace and its local size (ALL_ROOMS). */
void sio_server_each_room(struct sio_server *srv, const char *nsp, size_t nsp_len,
                          void (*cb)(void *ctx, const uint8_t *room, size_t len, size_t size),
                          void *ctx);
size_t sio_server_socket_count(const struct sio_server *srv);
/* Calls `cb` for every accepted socket of every namespace (registry snapshots). The callback
 * must not change rooms or disconnect sockets. */
void sio_server_each_socket(struct sio_server *srv, void (*cb)(void *ctx, struct sio_socket *sock),
                            void *ctx);

/* ---- one socket ---- */

/* Accepts a pending CONNECT: sends `40<nsp,>{"sid":…}` (nothing to a plain client), joins the
 * socket's own-id room and, when uid is given, the room `user_room` (NULL = none), then
 * delivers queued events. `uid` is copied; NULL or "" keeps the user a plain route named
 * (sio_server_open_plain), if any. */
void sio_socket_accept(struct sio_socket *sock, const char *uid, const char *user_room);
/* Refuses a pending CONNECT with `44<nsp,>{"message":…,"data":…}`: `message` is text, `data`
 * an optional MessagePack value (NULL = omitted). The connection stays open (§2.4). */
void sio_socket_reject(struct sio_socket *sock, const char *message, const uint8_t *data,
                       size_t data_len);
bool sio_socket_accepted(const struct sio_socket *sock);

/* Room membership. Join returns SIOC_OK or an error (name too long, out of memory). */
int sio_socket_join(struct sio_socket *sock, const void *room, size_t len);
bool sio_socket_leave(struct sio_socket *sock, const void *room, size_t len);
/* Calls cb for each room the socket is in (its own id included). */
void sio_socket_each_room(const struct sio_socket *sock,
                          void (*cb)(void *ctx, const uint8_t *room, size_t len, size_t size),
                          void *ctx);

/* Sends an EVENT (data = MessagePack array [event, args...]). Returns SIOC_OK or an error
 * when data is not a valid array. */
int sio_socket_emit(struct sio_socket *sock, struct slice data);
/* Same with an ack id allocated from the socket's namespace counter; the client's ACK comes
 * back through on_ack with that id (never for a plain client, which cannot acknowledge).
 * Returns the id (>= 0) or a negative error. */
int64_t sio_socket_emit_with_ack(struct sio_socket *sock, struct slice data);
/* Answers a client's event ack: ACK (BINARY_ACK when args holds bin). args = MessagePack
 * array. Only the first answer per id is sent (later ones are ignored, §2.4). */
int sio_socket_ack(struct sio_socket *sock, uint64_t ack_id, struct slice args);
/* How a socket ends (the one close protocol of sioc, as libuv's uv_close; http_server.h,
 * ws_link.h, eio_server.h and plain_ws.h say the same): sio_socket_disconnect may be called at
 * any time, more than once (later calls do nothing), inside any callback. on_disconnect then
 * ALWAYS runs, exactly once, LATER, from the event loop: never inside the sio_socket_disconnect
 * call nor inside another callback of the socket, whether the server asked for it or the client
 * ("41", its transport going away), a timeout or an error caused it (the reason says which).
 * Memory is freed only right after on_disconnect returns, never in the middle of a callback:
 * until then the pointer stays valid, the socket is out of service (no packet in or out, not
 * found by sio_server_find) and calls on it do nothing. Two paths, one rule: the sockets of a
 * client that goes end from its transport's on_close (Engine.IO's or the plain connection's,
 * already deferred and once), and a socket that leaves alone (the client's "41", a server
 * disconnect, a refused CONNECT) ends from one deferred event, in the order they left. */

/* Server-side disconnect (a plain client: its connection closes with 1000, either way): sends
 * DISCONNECT for this namespace and ends the socket (on_disconnect follows from the loop with
 * "server namespace disconnect"); with close_transport every namespace of the client gets its
 * DISCONNECT, in the order they connected (Node's client._disconnect), and the whole Engine.IO
 * connection closes. */
void sio_socket_disconnect(struct sio_socket *sock, bool close_transport);

/* The Socket.IO id (NUL-terminated): 20 characters, except for protocol v4 clients (PROTOCOL.md
 * 2.7) outside "/", "<nsp>#<engine sid>". sio_server_find and sio_server_find_id take it. */
const char *sio_socket_id(const struct sio_socket *sock);
/* The socket's 20-character key, unique on this gateway (the id itself, but for those v4
 * sockets a random one); sio_server_find and sio_server_find_id take it too. */
const char *sio_socket_key(const struct sio_socket *sock);
/* NUL-terminated; valid while the socket is (a namespace of "*" is freed some time after its
 * last socket went). */
const char *sio_socket_nsp(const struct sio_socket *sock);
const char *sio_socket_uid(const struct sio_socket *sock); /* "" when anonymous */
const struct sio_handshake *sio_socket_handshake(const struct sio_socket *sock);
/* The CONNECT payload the client sent (one MessagePack value; {} when it sent none), as the
 * `auth` of fetchSockets' handshake. Valid while the socket is. */
struct slice sio_socket_auth(const struct sio_socket *sock);
/* True for a socket of a socket.io-client 2.x connection (Engine.IO v3, Socket.IO protocol v4,
 * PROTOCOL.md 2.7). */
bool sio_socket_protocol_v4(const struct sio_socket *sock);
/* True for the socket of a plain WebSocket client (sio_server_open_plain). */
bool sio_socket_is_plain(const struct sio_socket *sock);
/* Application data slot (e.g. the pending backend-auth request). */
void *sio_socket_get_data(const struct sio_socket *sock);
void sio_socket_set_data(struct sio_socket *sock, void *data);

#endif
