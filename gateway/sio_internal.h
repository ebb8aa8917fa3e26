/* sio_internal.h: the Socket.IO layer's structures, shared by its modules (sio_server.c: clients,
 * sockets, packets; sio_broadcast.c: broadcasts and selections; sio_hold.c: recovery holds).
 * Not for other modules: they use sio_server.h. */
#ifndef SIOC_GATEWAY_SIO_INTERNAL_H
#define SIOC_GATEWAY_SIO_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/buf.h"
#include "common/deadline.h"
#include "common/idmap.h"
#include "common/list.h"
#include "common/namemap.h"
#include "common/net/deadline_timer.h"
#include "common/rooms.h"
#include "common/sio.h"
#include "gateway/eio_server.h"
#include "gateway/plain_ws.h"
#include "gateway/random_pool.h"
#include "gateway/sio_server.h"

#define MAX_TRACKED_ACKS 1024 /* outstanding ack ids remembered per socket and direction */
#define MAX_NAMESPACE 256
#define DEFAULT_MAX_PENDING_EVENTS 64
#define DEFAULT_MAX_NAMESPACES_PER_CLIENT 64
#define DEFAULT_EMPTY_NAMESPACE_MS 30000

struct sio_nsp {
    struct namemap_node node;   /* in srv->nsp_map, keyed by name */
    struct list_node all;       /* in srv->nsps */
    struct deadline_node empty; /* in empty_wait while a dynamic namespace has no socket */
    size_t sockets;             /* sockets in it, pending CONNECTs included */
    bool dynamic;               /* created under "*" (and not "/"): freed once empty */
    struct rooms *rooms;
    struct sio_server *srv; /* for the room watch (on_room_change) */
    uint64_t ack_counter;   /* PROTOCOL.md 2.2: per namespace, from 0 */
    size_t len;
    char name[];
};

struct pending_event {
    struct pending_event *next;
    bool has_ack;
    uint64_t ack_id;
    size_t event_len, args_len;
    uint8_t bytes[]; /* event name, then args */
};

struct id_list {
    uint64_t *ids;
    uint32_t len, cap; /* len <= MAX_TRACKED_ACKS */
};

/* A broadcast-with-ack this socket received: who hears its ACK. */
struct group_ack {
    uint64_t id;
    void (*cb)(void *ctx, struct sio_socket *sock, uint64_t ack_id, struct slice args);
    void *ctx;
};

struct sio_client;

struct sio_socket {
    struct idmap_node node; /* in the id table (container_of finds the socket) */
    struct sio_client *client;
    struct sio_nsp *nsp;
    struct sio_socket *next_in_client;
    struct rooms_member member;
    bool accepted;
    bool in_rooms;
    bool ending;     /* sio_socket_end: out of service, removed from the loop (srv->ending) */
    char *public_id; /* protocol v4 outside "/": "<nsp>#<engine sid>" (2.7); NULL: node.id */
    char *uid;
    uint8_t *auth; /* copy of the CONNECT payload (MessagePack; fetchSockets' handshake.auth) */
    size_t auth_len;
    void *data;
    struct pending_event *pending, **pending_tail;
    uint32_t pending_count; /* bounded by the pending limit */
    uint32_t group_len, group_cap;
    struct id_list client_acks;   /* ids the client asked us to answer */
    struct id_list server_acks;   /* ids of our emits awaiting the client's ACK */
    struct group_ack *group_acks; /* broadcast-with-ack ids awaiting the client's ACK */
    char *pid; /* recovery on (cfg.pid_suffix), protocol v5: the private session id */
    /* sio_socket_hold: broadcasts to this socket are kept (their data arrays) until released */
    bool holding;
    struct held_packet *held, **held_tail;
    uint32_t held_count;
    char *floor; /* after a release: broadcasts with an offset not after it are dropped */
};

/* A broadcast kept for a holding socket (sio_socket_hold). */
struct held_packet {
    struct held_packet *next;
    size_t len;
    uint8_t data[]; /* MessagePack array [event, args...] */
};
#define MAX_HELD_PACKETS 1024 /* more closes the held socket's connection (it cannot catch up) */

/* Frees what a socket holds, unsent (the socket is going away; sio_hold.c). */
static inline void sio_held_free(struct sio_socket *s)
{
    while (s->held != NULL) {
        struct held_packet *h = s->held;
        s->held = h->next;
        free(h);
    }
    s->held_tail = &s->held;
    s->held_count = 0;
}

struct sio_client {
    struct sio_server *srv;
    struct eio_session *session; /* NULL for a plain client */
    struct plain_ws_conn *plain; /* ws-routes: the client's plain connection, else NULL */
    struct sio_socket *sockets;
    struct sio_assembler *assembler; /* allocated while a binary packet is being reassembled */
    struct deadline_node connect_deadline; /* in connect_wait until a namespace is joined */
    size_t socket_count;                   /* namespaces joined (bounded per client) */
    bool nsp_cap_logged;                   /* the per-client cap was logged (once each) */
    uint8_t *hs_bytes; /* one block: headers map, query map, url and its NUL (hs points in) */
    struct sio_handshake hs;
    bool closing;
    bool v4; /* Socket.IO protocol v4 over Engine.IO v3 (PROTOCOL.md 2.7) */
};

struct sio_server {
    struct event_base *base;
    struct sio_server_config cfg;
    struct eio_server *eio;
    struct list_node nsps;  /* every namespace (sio_nsp.all), for iteration */
    struct namemap nsp_map; /* the same, for lookup by name */
    size_t dynamic_count;   /* namespaces created under "*" (bounded by max_namespaces) */
    bool nsp_limit_logged;  /* max_namespaces was logged since a namespace was last freed */
    bool any_namespace;
    char *allowed; /* the namespaces list, comma-separated */
    struct idmap sockets;
    size_t socket_count;
    uint32_t id_counter;
    struct buf packet;         /* scratch: decoded payload */
    struct buf text;           /* scratch: encoded packet text */
    struct buf args;           /* scratch: event args */
    struct buf plain_text;     /* scratch: a plain message (ws-routes) */
    struct plain_ws *plain;    /* plain WebSocket connections (ws-routes; sio_plain.c) */
    struct random_pool random; /* socket ids */
    /* DESIGN.md §4: one timer for every client's connect timeout, not one each */
    struct deadline_list connect_wait;
    struct deadline_list empty_wait; /* dynamic namespaces without a socket */
    struct deadline_timer timer;
    /* Sockets ending from the loop (sio_socket_end), in order, by end_event. Only disconnects
     * use it: it grows with the disconnects of one loop iteration and is empty otherwise. */
    struct sio_ending {
        struct sio_socket *s; /* NULL: removed since (its client went first) */
        const char *reason;
    } * ending;
    size_t ending_len, ending_cap;
    struct event *end_event;
};

#define MAX_FRAMES (1 + SIO_MAX_ATTACHMENTS)

/* Keeps a broadcast's data for a holding socket (sio_hold.c). */
void sio_hold_packet(struct sio_socket *s, struct slice data);
/* A socket with a floor (sio_socket_release): true when this broadcast must be dropped (its
 * offset is not after the floor); the floor ends with the first broadcast after it. */
bool sio_floor_drops(struct sio_socket *s, struct slice data);

/* sio_transport.c. Encodes one packet into shared frames: the text packet, then one binary frame
 * per attachment (PROTOCOL.md 2.2). Returns the number of frames, each holding one reference, or a
 * negative error with none held. Every send and broadcast goes through here: one encoding, then a
 * reference per recipient (DESIGN.md §4). */
int sio_encode_frames(struct sio_server *srv, enum sio_version version,
                      const struct sio_packet *pkt, struct gw_frame *frames[MAX_FRAMES]);
void sio_unref_frames(struct gw_frame **frames, int n);
/* The namespace of that name, or NULL. */
struct sio_nsp *sio_nsp_find(struct sio_server *srv, const char *name, size_t len);

/* ---- shared by sio_server.c and sio_plain.c ---- */

/* Why sio_nsp_get found no namespace and made none. */
enum nsp_refusal { NSP_OK, NSP_LIMIT, NSP_NO_MEMORY };
/* The namespace of that name, created when it does not exist yet (under "*" within
 * max_namespaces and admitted by on_namespace); NULL with *why otherwise. */
struct sio_nsp *sio_nsp_get(struct sio_server *srv, const char *name, size_t len,
                            enum nsp_refusal *why);
/* A dynamic namespace without sockets starts its empty_namespace_ms wait (then it is freed). */
void sio_nsp_release(struct sio_server *srv, struct sio_nsp *n);
/* A new socket of client c in nsp (pending: not accepted, in no room), or NULL. */
struct sio_socket *sio_socket_new(struct sio_client *c, struct sio_nsp *nsp);
/* Unlinks and frees a socket after telling the application (on_disconnect with reason; an
 * ending socket's own reason). Only from the loop: the client's end (sio_client_free) or the
 * socket's (sio_socket_end's event). */
void sio_socket_remove(struct sio_socket *s, const char *reason);
/* The one way a socket leaves while its client stays (the client's "41", a server disconnect,
 * a refused CONNECT): it is out of service at once (no packet in or out, not found) and
 * sio_socket_remove runs from the loop (sio_server.h "How a socket ends"). Idempotent. */
void sio_socket_end(struct sio_socket *s, const char *reason);
/* An event from the client to the application (accepted socket), or queued until the accept. */
void sio_forward_client_event(struct sio_socket *s, struct slice event, struct slice args,
                              bool has_ack, uint64_t id);
void sio_queue_event(struct sio_socket *s, struct slice event, struct slice args, bool has_ack,
                     uint64_t id);
/* The client's connection is gone: its sockets are removed with `reason`, then it is freed. */
void sio_client_free(struct sio_client *c, const char *reason);

/* The client's transport, whichever it is (sio_transport.c): queue one frame (a plain client takes
 * plain frames only), writable now (volatile), close (Engine.IO: its close packet or frame;
 * plain: a close frame with ws_code and reason). */
static inline void sio_client_send(struct sio_client *c, struct gw_frame *f)
{
    if (c->plain == NULL) /* inline: the broadcast path calls it once per recipient */
        eio_session_send(c->session, f);
    else
        plain_ws_conn_send(c->plain, f);
}
static inline bool sio_client_writable(const struct sio_client *c)
{
    return c->plain != NULL ? plain_ws_conn_writable(c->plain) : eio_session_writable(c->session);
}
void sio_client_close(struct sio_client *c, unsigned ws_code, const char *reason);
/* The plain message (ws-routes, common/ws_routes.h) of the event `data` ([name, args...]) as a
 * frame with one reference; NULL with *rc 0 when the event has no argument (nothing to send),
 * or a negative error. */
struct gw_frame *sio_plain_frame(struct sio_server *srv, struct slice data, int *rc);
/* Sends the plain message of an event to a plain client. SIOC_OK (also when there was nothing
 * to send) or an error. */
int sio_plain_send_event(struct sio_client *c, struct slice data);

#endif
