/* adapter.h: the @socket.io/redis-adapter 8.x / @socket.io/redis-emitter 5.x message codec
 * (PROTOCOL.md 3.2-3.9): broadcast triples, requests and responses decoded zero-copy into
 * structs, and encoded byte for byte as Node writes them, plus channel names and uid2 ids.
 * No I/O, no allocation on the broadcast path; deciding what to do with a message (own uid,
 * local rooms, pending requestIds) is left to the gateway. */
#ifndef SIOC_ADAPTER_H
#define SIOC_ADAPTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* Most room names one rooms/except list may hold; more is SIOC_ETOOBIG. */
#define ADAPTER_MAX_ROOMS 256
/* Largest message the decoders accept (Redis' own proto-max-bulk-len default is 512 MiB). */
#define ADAPTER_MAX_MESSAGE (64u * 1024u * 1024u)
/* Length of a uid2 adapter uid / requestId (PROTOCOL.md 3.2). */
#define ADAPTER_UID_LEN 6

/* Request types (PROTOCOL.md 3.5); BROADCAST_CLIENT_COUNT and BROADCAST_ACK are response types. */
enum adapter_type {
    ADAPTER_SOCKETS = 0,
    ADAPTER_ALL_ROOMS = 1,
    ADAPTER_REMOTE_JOIN = 2,
    ADAPTER_REMOTE_LEAVE = 3,
    ADAPTER_REMOTE_DISCONNECT = 4,
    ADAPTER_REMOTE_FETCH = 5,
    ADAPTER_SERVER_SIDE_EMIT = 6,
    ADAPTER_BROADCAST = 7,
    ADAPTER_BROADCAST_CLIENT_COUNT = 8,
    ADAPTER_BROADCAST_ACK = 9,
};

/* A list of room names; each slice points into the decoded input (or is caller-owned when
 * the struct is built for an encoder). */
struct adapter_rooms {
    size_t count;
    struct slice names[ADAPTER_MAX_ROOMS];
};

/* opts.flags. Unknown flags (old emitter `json`, ...) are ignored on decode. */
struct adapter_flags {
    bool is_volatile;
    bool has_compress;
    bool compress;
    bool broadcast; /* old emitters */
    bool expect_single_response;
    bool has_timeout;
    double timeout; /* ms, a JavaScript number */
};

/* The `opts` map: {rooms, except[, flags]}. */
struct adapter_opts {
    struct adapter_rooms rooms;
    struct adapter_rooms except;
    bool has_flags; /* encoders write `flags` only when set (broadcasts always write it) */
    struct adapter_flags flags;
};

/* The Socket.IO packet carried by a broadcast: {type, data, nsp}. */
struct adapter_packet {
    int type;          /* 2 EVENT, 3 ACK; 5 and 6 accepted on decode (PROTOCOL.md 3.13 #3) */
    struct slice data; /* the MessagePack bytes of the data array ([event, ...args]) */
    struct slice nsp;  /* "/" (static storage) when the key is absent */
};

/* A broadcast message [uid, packet, opts] (PROTOCOL.md 3.3). */
struct adapter_broadcast {
    struct slice uid; /* sender adapter uid, or "emitter" */
    struct adapter_packet packet;
    struct adapter_opts opts; /* decode: has_flags tells whether `flags` was present */
};

/* ---- channels ---- */

/* PROTOCOL.md 3.3 step 1: if `channel` starts with `<prefix>#<nsp>#`, stores in *room the rest
 * minus its last character (empty for the main channel) and returns SIOC_OK; otherwise returns
 * SIOC_EPROTO. Does not look at the message. *room points into `channel`. */
int adapter_channel_room(struct slice channel, struct slice prefix, struct slice nsp,
                         struct slice *room);
/* Appends the broadcast channel for `rooms`: `<prefix>#<nsp>#<room>#` when it holds exactly one
 * room, else `<prefix>#<nsp>#` (PROTOCOL.md 3.3). Errors land in out->err. */
void adapter_broadcast_channel(struct buf *out, struct slice prefix, struct slice nsp,
                               const struct adapter_rooms *rooms);
/* Appends `<prefix>-request#<nsp>#`. */
void adapter_request_channel(struct buf *out, struct slice prefix, struct slice nsp);
/* Appends the channel a response to `request_type` goes to (PROTOCOL.md 3.8): the specific
 * `<prefix>-response#<nsp>#<uid>#` when `specific` (publishOnSpecificResponseChannel) is set,
 * the requester's uid is known (uid.len > 0) and the type is not SERVER_SIDE_EMIT (its ack
 * always uses the shared channel); otherwise the shared `<prefix>-response#<nsp>#`. */
void adapter_response_channel(struct buf *out, struct slice prefix, struct slice nsp,
                              int request_type, struct slice requester_uid, bool specific);

/* ---- broadcasts (always MessagePack) ---- */

/* Decodes one broadcast message p[0..len) (exactly one msgpack value, nothing after it).
 * Keys may come in any order; unknown keys are skipped; a repeated key's last value wins
 * (as in JS). Missing nsp -> "/", missing rooms/except/flags -> empty. No allocation.
 * Returns len (all consumed) or SIOC_EPROTO (malformed, truncated, wrong field types, packet
 * type other than 2/3/5/6, trailing bytes), SIOC_ETOOBIG (more than ADAPTER_MAX_ROOMS in a list,
 * or len > ADAPTER_MAX_MESSAGE). Slices in *out point into p and live as long as it; *out is
 * unspecified on error. */
int adapter_broadcast_decode(const uint8_t *p, size_t len, struct adapter_broadcast *out);
/* Appends the broadcast as the Node adapter writes it: [uid, {type,data,nsp}, {rooms,except,
 * flags}], where flags holds only what is set (volatile, compress, broadcast, timeout,
 * expectSingleResponse, in that order). packet.data must be one msgpack value (copied as is).
 * Errors land in out->err. */
void adapter_broadcast_encode(struct buf *out, const struct adapter_broadcast *msg);
/* The emitter's variant (PROTOCOL.md 3.9): uid "emitter" (msg->uid is ignored) and opts in the
 * order {rooms, flags, except}. */
void adapter_broadcast_encode_emitter(struct buf *out, const struct adapter_broadcast *msg);

/* ---- parts of a message, for the sharded format's codec (common/cluster_msg.h) ---- */

struct mp_reader;
/* Read one value at r's position (same rules and errors as the decoders above; slices point
 * into r's input): opts {rooms, except, flags}; a rooms/except list; a packet {type, data[,
 * nsp]} (nsp "/" when absent). */
/* Opens a message for reading: JSON text (first byte '{') is transcoded into scratch (reset
 * first) and r reads that; MessagePack is read in place from p. Returns SIOC_OK, SIOC_ETOOBIG
 * (len > ADAPTER_MAX_MESSAGE) or a json_to_msgpack error. */
int adapter_open_reader(const uint8_t *p, size_t len, struct buf *scratch, struct mp_reader *r);
int adapter_read_opts(struct mp_reader *r, struct adapter_opts *opts);
int adapter_read_rooms(struct mp_reader *r, struct adapter_rooms *rooms);
int adapter_read_event(struct mp_reader *r, struct adapter_packet *packet);
/* Append opts as {rooms, except, flags} (flags as adapter_broadcast_encode writes them) and a
 * rooms list as an array of strings. Errors land in out->err. */
void adapter_write_opts(struct buf *out, const struct adapter_opts *opts);
void adapter_write_rooms(struct buf *out, const struct adapter_rooms *rooms);

/* ---- requests (channel <prefix>-request#<nsp>#) ---- */

/* Every field a request can carry; has_* says whether the key was present. */
struct adapter_request {
    int type; /* enum adapter_type, 0..7 */
    bool has_uid;
    struct slice uid; /* absent in emitter join/leave/disconnect */
    bool has_request_id;
    struct slice request_id;
    bool has_opts;
    struct adapter_opts opts; /* join/leave/disconnect/fetch/broadcast */
    bool has_rooms;
    struct adapter_rooms rooms; /* SOCKETS: rooms to list; JOIN/LEAVE: rooms to add/remove */
    bool has_close;
    bool close; /* REMOTE_DISCONNECT */
    bool has_data;
    struct slice data; /* SERVER_SIDE_EMIT: msgpack of the [event, ...args] array */
    bool has_packet;
    struct adapter_packet packet; /* BROADCAST */
    bool has_sid;                 /* legacy sid-targeted join/leave/disconnect */
    struct slice sid;
    bool has_room;
    struct slice room;
};

/* Decodes a request: JSON when p[0] == '{', else MessagePack (PROTOCOL.md 3.5). JSON is first
 * transcoded into `scratch` (reset first; its limit applies) and decoded from there.
 * Requires an integer type; requestId for SOCKETS, ALL_ROOMS, REMOTE_FETCH and BROADCAST;
 * packet for BROADCAST. Returns len, SIOC_ENOTSUP (well-formed, type outside 0..7), SIOC_EPROTO,
 * SIOC_ETOOBIG, SIOC_EDEPTH or the scratch buffer's error. Slices point into p (msgpack) or into
 * scratch->data (JSON): valid until p is freed or scratch is next modified; *out is
 * unspecified on error. */
int adapter_request_decode(const uint8_t *p, size_t len, struct buf *scratch,
                           struct adapter_request *out);
/* Appends the request with Node's key order: uid, requestId, type, packet, opts, rooms, sid,
 * room, close, data, each only when present (the opts form writes {rooms,except[,flags]}).
 * BROADCAST is MessagePack, every other type compact JSON (data rendered by
 * json_from_msgpack). Returns SIOC_OK, SIOC_EINVAL (type outside 0..7), a json_from_msgpack
 * error for malformed data, or out->err; on error out is truncated back to its entry length. */
int adapter_request_encode(struct buf *out, const struct adapter_request *req);

/* ---- responses (channel <prefix>-response#<nsp>#[<uid>#]) ---- */

struct adapter_response {
    bool has_type;
    int type; /* 6 (SSE ack), 8 (client count), 9 (broadcast ack); absent for the others */
    bool has_request_id;
    struct slice request_id;
    bool has_sockets;     /* SOCKETS ({requestId, sockets:[ids]}) or REMOTE_FETCH ([{id,...}]) */
    bool sockets_fetch;   /* elements are maps (fetch); false: strings (ids) or empty */
    struct slice sockets; /* msgpack array, validated: all strings or all maps */
    uint32_t sockets_count;
    bool has_rooms;     /* ALL_ROOMS */
    struct slice rooms; /* msgpack array of strings */
    uint32_t rooms_count;
    bool has_client_count;
    uint64_t client_count; /* type 8 */
    bool has_data;
    struct slice data; /* type 6: msgpack of the single ack argument */
    bool has_packet;
    struct slice packet; /* type 9: msgpack of the first ack argument; absent when none */
};

/* Decodes a response, JSON or MessagePack as adapter_request_decode (same scratch contract).
 * Requires requestId, clientCount (integer 0..2^53-1) for type 8. A `type` other than 6/8/9 is
 * SIOC_ENOTSUP. Returns len or a negative error as adapter_request_decode. */
int adapter_response_decode(const uint8_t *p, size_t len, struct buf *scratch,
                            struct adapter_response *out);
/* Appends the response in Node's form: type 9 as MessagePack {type,requestId[,packet]};
 * everything else compact JSON with keys type, requestId, sockets, rooms, clientCount, data,
 * each only when present. Returns as adapter_request_encode. */
int adapter_response_encode(struct buf *out, const struct adapter_response *res);

/* ---- ids ---- */

/* Writes uid2(n) (PROTOCOL.md 3.2): out[i] = "A-Za-z0-9-_"[random[i] % 64] for i < n, then a
 * NUL; out must hold n + 1 bytes. The caller supplies the n random bytes. Used for adapter
 * uids and requestIds (n = ADAPTER_UID_LEN). */
void adapter_uid2(char *out, const uint8_t *random, size_t n);

#endif
