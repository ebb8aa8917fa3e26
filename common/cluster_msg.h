/* cluster_msg.h: the message codec of socket.io-adapter's ClusterAdapter as
 * @socket.io/redis-adapter 8.3's createShardedAdapter carries it over Redis 7 sharded pub/sub
 * (SPUBLISH/SSUBSCRIBE; docs/contracts.md "Sharded adapter", DESIGN.md §2 `adapter sharded`):
 * every message is one object {type, data, uid, nsp} (that key order), written as compact JSON
 * unless it is a type that may carry binary (BROADCAST, BROADCAST_ACK, FETCH_SOCKETS_RESPONSE,
 * SERVER_SIDE_EMIT, SERVER_SIDE_EMIT_RESPONSE) and does, then as MessagePack (notepack); a reader
 * tells them apart by the first byte ('{' is JSON). Also the channel names and the rules of the
 * three subscription modes. Golden captures of real Node peers: tests/data/sharded-golden/.
 * Pure: no I/O; decoding hands out slices into the input (or into `scratch` for JSON). */
#ifndef SIOC_CLUSTER_MSG_H
#define SIOC_CLUSTER_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/adapter.h"
#include "common/buf.h"

/* socket.io-adapter's MessageType (cluster-adapter.js). */
enum cluster_msg_type {
    CLUSTER_MSG_INITIAL_HEARTBEAT = 1,
    CLUSTER_MSG_HEARTBEAT = 2,
    CLUSTER_MSG_BROADCAST = 3,
    CLUSTER_MSG_SOCKETS_JOIN = 4,
    CLUSTER_MSG_SOCKETS_LEAVE = 5,
    CLUSTER_MSG_DISCONNECT_SOCKETS = 6,
    CLUSTER_MSG_FETCH_SOCKETS = 7,
    CLUSTER_MSG_FETCH_SOCKETS_RESPONSE = 8,
    CLUSTER_MSG_SERVER_SIDE_EMIT = 9,
    CLUSTER_MSG_SERVER_SIDE_EMIT_RESPONSE = 10,
    CLUSTER_MSG_BROADCAST_CLIENT_COUNT = 11,
    CLUSTER_MSG_BROADCAST_ACK = 12,
    CLUSTER_MSG_ADAPTER_CLOSE = 13,
};
#define CLUSTER_MSG_TYPE_MAX 13

/* The `subscriptionMode` option of createShardedAdapter. */
enum cluster_sub_mode {
    CLUSTER_SUB_DYNAMIC = 0,         /* default: a channel per public room (not a socket id) */
    CLUSTER_SUB_STATIC = 1,          /* only the namespace channel and the response channel */
    CLUSTER_SUB_DYNAMIC_PRIVATE = 2, /* a channel per room, socket-id rooms included */
};

/* Every field a message can carry; has_* says whether the key was present (non-null). */
struct cluster_msg {
    int type;         /* enum cluster_msg_type */
    struct slice uid; /* sender's adapter uid (16 hex chars for Node; any string accepted) */
    struct slice nsp;
    bool has_request_id;
    struct slice request_id;
    bool has_opts; /* BROADCAST, SOCKETS_JOIN/LEAVE, DISCONNECT_SOCKETS, FETCH_SOCKETS */
    struct adapter_opts opts;
    struct adapter_packet event; /* BROADCAST: data.packet {type, data} (nsp: see `nsp`) */
    bool has_packet;             /* BROADCAST; SERVER_SIDE_EMIT: the [event, ...args] array; the two
                                  * responses: the single argument (absent when undefined) */
    struct slice packet;         /* MessagePack of data.packet, whatever it is */
    bool has_rooms;              /* SOCKETS_JOIN/LEAVE: the rooms to add or remove */
    struct adapter_rooms rooms;
    bool close; /* DISCONNECT_SOCKETS */
    bool has_client_count;
    uint64_t client_count; /* BROADCAST_CLIENT_COUNT */
    bool has_sockets;
    struct slice sockets; /* FETCH_SOCKETS_RESPONSE: MessagePack array of socket maps */
};

/* Decodes one message p[0..len): JSON when p[0] == '{' (transcoded into `scratch`, reset
 * first), else MessagePack (exactly one value). Requires a map with an integer `type`, string
 * `uid` and `nsp`; per type: BROADCAST data.packet (a packet map, type 2 or 3) and data.opts;
 * SOCKETS_JOIN/LEAVE opts and rooms; DISCONNECT_SOCKETS opts (close defaults to false);
 * FETCH_SOCKETS opts and requestId; SERVER_SIDE_EMIT a packet array with a string first;
 * the four response types requestId, plus clientCount (integer 0..2^53) for
 * BROADCAST_CLIENT_COUNT and a sockets array for FETCH_SOCKETS_RESPONSE. Unknown keys are
 * skipped. Returns len, SIOC_ENOTSUP (well-formed, unknown type: ignore it, as Node does),
 * SIOC_EPROTO, SIOC_ETOOBIG (over ADAPTER_MAX_MESSAGE or ADAPTER_MAX_ROOMS), SIOC_EDEPTH, or the
 * scratch buffer's error. *out is unspecified on error; its slices live as long as p (msgpack)
 * or until scratch is next modified (JSON). */
int cluster_msg_decode(const uint8_t *p, size_t len, struct buf *scratch, struct cluster_msg *out);

/* Appends the message as a Node peer writes it: {type[, data], uid, nsp} with data's keys in
 * Node's order (BROADCAST {packet{type,data}[,requestId],opts}; JOIN/LEAVE {opts,rooms};
 * DISCONNECT {opts,close}; FETCH {opts,requestId}; SERVER_SIDE_EMIT {[requestId,]packet};
 * FETCH_SOCKETS_RESPONSE {requestId,sockets}; SERVER_SIDE_EMIT_RESPONSE and BROADCAST_ACK
 * {requestId[,packet]}; BROADCAST_CLIENT_COUNT {requestId,clientCount}; no data for types 1, 2
 * and 13), as MessagePack when the type may carry binary and a `bin` is in it, else as compact
 * JSON (json_from_msgpack: JavaScript's JSON.stringify). The MessagePack form is built in
 * `scratch` (reset first). Slices (packet, sockets, event.data) must hold one MessagePack value
 * each. Returns SIOC_OK, SIOC_EINVAL (unknown type), a json_from_msgpack error, or a buffer's
 * error; on error out is truncated back to its length at entry. */
int cluster_msg_encode(struct buf *out, struct buf *scratch, const struct cluster_msg *msg);

/* ---- channels (sharded-adapter.js) ---- */

/* Appends the namespace channel `<prefix>#<nsp>#` (every gateway and Node peer SSUBSCRIBEs it;
 * PUBSUB SHARDNUMSUB on it is Node's serverCount()). */
void cluster_msg_channel(struct buf *out, struct slice prefix, struct slice nsp);
/* Appends `<prefix>#<nsp>#<name>#`: the dynamic channel of room `name`, or, with an adapter uid
 * for name, the channel that uid's responses go to. */
void cluster_msg_sub_channel(struct buf *out, struct slice prefix, struct slice nsp,
                             struct slice name);
/* True when a publisher in `mode` sends `msg` on the dynamic channel of its one room (Node's
 * computeChannel): a BROADCAST without requestId to exactly one room, in dynamic-private mode,
 * or in dynamic mode when the room does not look like a socket id (20 characters). */
bool cluster_msg_uses_room_channel(enum cluster_sub_mode mode, const struct cluster_msg *msg);
/* Appends the channel `msg` is published on in `mode` (the room's or the namespace's). */
void cluster_msg_publish_channel(struct buf *out, struct slice prefix, enum cluster_sub_mode mode,
                                 const struct cluster_msg *msg);
/* Whether a node with local members in room `room` must SSUBSCRIBE its dynamic channel:
 * never in static mode; always in dynamic-private; in dynamic mode unless it is the room of a
 * local socket's own id (`is_socket_id`) of 20 characters (Node's public-room rule; an id of
 * another length, e.g. a protocol v4 "<nsp>#<sid>", is published on its room channel by Node
 * peers, so it is subscribed too). */
bool cluster_msg_room_subscribed(enum cluster_sub_mode mode, struct slice room, bool is_socket_id);

/* Parses "dynamic" / "static" / "dynamic-private"; false for anything else. */
bool cluster_sub_mode_parse(const char *s, enum cluster_sub_mode *out);
/* The name of a mode ("dynamic", ...). */
const char *cluster_sub_mode_name(enum cluster_sub_mode mode);

#endif
