/* envelope.h: the sioc envelopes carried through Redis (DESIGN.md 3.2-3.4): upstream entries
 * (stream field/value pairs or one MessagePack map), directed replies on P:node:<node>, registry
 * entries and node info, the upstream shard hash and the P:* key names. Pure codecs: Redis I/O,
 * the Socket.IO encoding of args and what to do with a decoded message are left to callers. */
#ifndef SIOC_ENVELOPE_H
#define SIOC_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* Conventions for every decoder below:
 * - Every returned slice points into the decoder's input (the field/value slices, or the map
 *   bytes) and is valid exactly as long as that input. Decoders never allocate.
 * - Unknown fields or keys are ignored (forward compatibility); a known one given twice, a wrong
 *   value type, a missing required one or trailing bytes after a map is SIOC_EPROTO; an unknown
 *   version, entry type or op is SIOC_ENOTSUP (a newer peer: skip it); a list longer than its
 *   limit is SIOC_ETOOBIG; identifier text (nsp, sid, node, uid, event, rooms, ...) that is not
 *   UTF-8 is SIOC_EUTF8. On error the output struct is unspecified.
 * - A map decoder takes one whole pub/sub message: it returns the bytes consumed (== len).
 * Encoders validate the struct as the decoder would (SIOC_EINVAL if it would not decode). */

#define ENVELOPE_DEFAULT_PREFIX "sioc" /* key-prefix default (DESIGN.md 2) */
#define ENVELOPE_MAX_ROOMS 1024        /* entries in join, leave, rooms lists */
#define ENVELOPE_MAX_EMITS 1024        /* events in one reply's emit list */
#define ENVELOPE_MAX_CALL_ID 128       /* bytes of a worker call's id */
#define ENVELOPE_MAX_CALL_TO 256       /* bytes of the channel a call's result goes to */
#define ENVELOPE_EPOCH_LEN 16 /* a boot epoch is 16 lowercase hex digits (64 random bits) */

/* ---- stream entries as field/value slices (what XADD takes and XREADGROUP returns) ---- */

#define ENVELOPE_MAX_FIELDS 12 /* field/value pairs in the largest entry sioc writes */

/* The output of the stream encoders: kv[0], kv[1] are the first field and its value, and so on.
 * Field names point at static strings, values into the encoded struct's slices or into `digits`
 * (decimal numbers), so the fields are valid while both this struct (which must not be moved or
 * copied) and the encoded struct's data are. hiredis: argv[i] = kv[i].p, argvlen[i] = kv[i].len. */
struct envelope_fields {
    struct slice kv[2 * ENVELOPE_MAX_FIELDS];
    size_t n; /* slices used (always even) */
    uint8_t digits[2][20];
};

/* ---- lists inside MessagePack values (rooms, join, leave, emit) ---- */

/* A validated MessagePack array kept as its encoding. `raw` is empty when the list is absent.
 * Decoders fill `count`; encoders copy `raw` verbatim and ignore `count`. */
struct envelope_list {
    struct slice raw;
    uint32_t count;
};

struct envelope_iter {
    const uint8_t *p;
    size_t len;
    size_t pos;
    uint32_t left;
};

/* Starts walking a list that a decoder returned (or that the encoder accepted). */
void envelope_iter_init(struct envelope_iter *it, const struct envelope_list *list);
/* Stores the next element in *out and returns true, or returns false at the end. A string
 * element yields its bytes; any other element (an emit item) yields its whole MessagePack
 * encoding. Elements point into list->raw. Never reads outside raw, whatever it holds. */
bool envelope_iter_next(struct envelope_iter *it, struct slice *out);

/* ---- 3.2 upstream entries ---- */

enum envelope_up_type {
    ENVELOPE_UP_CONNECT,
    ENVELOPE_UP_EVENT,
    ENVELOPE_UP_DISCONNECT,
};

/* One upstream entry; v is always 1 (encoders write it, decoders require it). */
struct envelope_up {
    enum envelope_up_type type;
    struct slice nsp;  /* starts with '/' */
    struct slice sid;  /* non-empty */
    struct slice node; /* non-empty */
    struct slice uid;  /* empty when anonymous */
    uint64_t ts;       /* ms since the Unix epoch */
    /* ENVELOPE_UP_EVENT */
    struct slice event;
    struct slice args; /* exactly one MessagePack array */
    bool has_ack;
    uint64_t ack;
    /* ENVELOPE_UP_CONNECT */
    struct slice auth; /* exactly one MessagePack value (any kind) */
    struct slice hs; /* exactly one MessagePack map (address, headers, query, url, time, secure) */
    bool has_rid;
    struct slice rid; /* non-empty; only with auth backend (3.3) */
    /* a recovered socket continuing on this node (docs/contracts.md "Connection state
     * recovery"): field `recovered` = "1" (map: integer 1); encoded only when true. Not decoded. */
    bool recovered;
    /* ENVELOPE_UP_DISCONNECT */
    struct slice reason;
};

/* Fills *out with the field/value list in the fixed order v, type, nsp, sid, node, uid, ts, then
 * event, args, [ack] | auth, hs, [rid] | reason. Stream values are text ("1", decimal ts and ack)
 * except args, auth and hs, which are raw MessagePack. Returns SIOC_OK or SIOC_EINVAL. */
int envelope_up_to_fields(const struct envelope_up *up, struct envelope_fields *out);
/* Decodes n slices (field, value, field, value, ...; n odd is SIOC_EPROTO). ts and ack must be
 * canonical decimal u64 (digits only, no leading zero, no overflow); v must be "1". Fields of
 * another entry type are ignored. Returns SIOC_OK or a negative sioc_error. */
int envelope_up_from_fields(const struct slice *kv, size_t n, struct envelope_up *out);
/* Appends the same fields as one MessagePack map (upstream pubsub, 3.2 last bullet), keys in the
 * order above: strings as str, v, ts and ack as integers, args/auth/hs embedded as values.
 * Returns SIOC_OK, SIOC_EINVAL, or b->err. */
int envelope_up_encode_map(const struct envelope_up *up, struct buf *b);
/* Decodes one map message. Returns len, or a negative sioc_error. */
long envelope_up_decode_map(const uint8_t *p, size_t len, struct envelope_up *out);

/* ---- 3.3 directed replies on P:node:<node> ---- */

enum envelope_reply_type {
    ENVELOPE_REPLY,         /* "t":"reply" */
    ENVELOPE_REPLY_CONNECT, /* "t":"connect" */
    /* "t":"snapshot": the broker asks the node for a registry snapshot (its anti-entropy,
     * DESIGN.md §3.4); no other key. Other keys are ignored on decode (forward compatible). */
    ENVELOPE_SNAPSHOT_REQUEST,
};

struct envelope_reply {
    enum envelope_reply_type t;
    /* ENVELOPE_REPLY */
    struct slice nsp; /* starts with '/' */
    struct slice sid; /* non-empty */
    bool has_ack;
    uint64_t ack_id;
    struct slice ack_args;     /* exactly one MessagePack array */
    struct envelope_list emit; /* <= ENVELOPE_MAX_EMITS items, each [event(str), arg...] */
    struct envelope_list join; /* <= ENVELOPE_MAX_ROOMS strings */
    struct envelope_list leave;
    bool disconnect; /* absent means false; encoded only when true */
    /* "call": {"id","to","emit"}: emit `call_emit` ([event, arg...]) asking the client for an
     * ack, and publish the answer (struct envelope_call_result) on channel `call_to`. */
    bool has_call;
    struct slice call_id; /* non-empty text, <= ENVELOPE_MAX_CALL_ID bytes, the worker's */
    struct slice call_to; /* non-empty text, <= ENVELOPE_MAX_CALL_TO bytes */
    struct slice call_emit;
    /* ENVELOPE_REPLY_CONNECT */
    struct slice rid; /* non-empty */
    bool ok;
    bool has_uid;
    struct slice uid;
    struct envelope_list rooms; /* <= ENVELOPE_MAX_ROOMS strings */
    bool has_data;
    struct slice data; /* exactly one MessagePack value */
    bool has_error;
    struct slice error_message; /* error.message, required in an error */
    bool has_error_data;
    struct slice error_data; /* error.data, one MessagePack value */
};

/* Appends one reply map; keys in the order t, nsp, sid, ack{id,args}, emit, join, leave,
 * disconnect, call{id,to,emit}, or t, rid, ok, uid, rooms, data, error{message,data}; absent
 * optionals are omitted. Returns SIOC_OK, SIOC_EINVAL, or b->err. */
int envelope_reply_encode(const struct envelope_reply *r, struct buf *b);
/* Decodes one reply map (keys in any order; keys of the other type are ignored). Returns len, or
 * a negative sioc_error (SIOC_ENOTSUP for an unknown "t"). */
long envelope_reply_decode(const uint8_t *p, size_t len, struct envelope_reply *out);

/* The answer to a worker's call (docs/contracts.md, "Calls"), published on the call's `to`:
 * {"t":"ack","id","nsp","sid","args":[...]} when the client acknowledged, or
 * {"t":"ack","id","nsp","sid","error":"..."} when it cannot (disconnected, too many calls). */
struct envelope_call_result {
    struct slice id, nsp, sid;
    bool has_args;
    struct slice args;  /* one MessagePack array, when has_args */
    struct slice error; /* non-empty text, otherwise */
};
/* Appends one call result map (keys in the order t, id, nsp, sid, args|error). Returns SIOC_OK,
 * SIOC_EINVAL (also for an id over ENVELOPE_MAX_CALL_ID bytes), or b->err. */
int envelope_call_result_encode(const struct envelope_call_result *c, struct buf *b);
/* Decodes one call result map (keys in any order, unknown keys ignored): "t" must be "ack"
 * (another "t" is SIOC_ENOTSUP), id (non-empty, <= ENVELOPE_MAX_CALL_ID bytes, else
 * SIOC_ETOOBIG), nsp and sid are required, and exactly one of args (an array) and error
 * (non-empty text). Returns len, or a negative sioc_error. */
long envelope_call_result_decode(const uint8_t *p, size_t len, struct envelope_call_result *out);

/* ---- 3.4 registry ---- */

enum envelope_reg_op {
    ENVELOPE_REG_CONNECT,
    ENVELOPE_REG_DISCONNECT,
    ENVELOPE_REG_JOIN,
    ENVELOPE_REG_LEAVE,
    ENVELOPE_REG_SNAPSHOT,
};

/* One P:registry entry. Every op carries every field: connect/snapshot give the socket's full
 * room set, join/leave the rooms joined or left, disconnect the rooms it was in. */
struct envelope_reg {
    struct slice node;  /* non-empty */
    struct slice epoch; /* ENVELOPE_EPOCH_LEN lowercase hex digits */
    uint64_t seq;       /* per-epoch counter, canonical decimal in the stream */
    enum envelope_reg_op op;
    struct slice nsp;           /* starts with '/' */
    struct slice sid;           /* non-empty */
    struct slice uid;           /* empty when anonymous */
    struct envelope_list rooms; /* required; <= ENVELOPE_MAX_ROOMS strings (raw MessagePack) */
};

/* Field order node, epoch, seq, op, nsp, sid, uid, rooms. Returns SIOC_OK or SIOC_EINVAL. */
int envelope_reg_to_fields(const struct envelope_reg *e, struct envelope_fields *out);
/* Returns SIOC_OK or a negative sioc_error (see the conventions above). */
int envelope_reg_from_fields(const struct slice *kv, size_t n, struct envelope_reg *out);

/* Writes the epoch text of 64 random bits into out (no NUL). */
void envelope_epoch_format(uint64_t random_bits, uint8_t out[ENVELOPE_EPOCH_LEN]);

/* The P:nodes hash value: one MessagePack map {epoch, address, started, sockets}. */
struct envelope_node_info {
    struct slice epoch;   /* ENVELOPE_EPOCH_LEN lowercase hex digits */
    struct slice address; /* the gateway's listen address, non-empty */
    uint64_t started;     /* ms since the Unix epoch */
    uint64_t sockets;     /* sockets connected now */
};

/* Keys in the order epoch, address, started, sockets. Returns SIOC_OK, SIOC_EINVAL or b->err. */
int envelope_node_info_encode(const struct envelope_node_info *ni, struct buf *b);
/* Returns len, or a negative sioc_error. */
long envelope_node_info_decode(const uint8_t *p, size_t len, struct envelope_node_info *out);

/* ---- 3.2 shard selection ---- */

/* FNV-1a 32-bit (offset basis 2166136261, prime 16777619). */
uint32_t envelope_fnv1a32(const uint8_t *p, size_t len);
/* fnv1a32(sid) % shards; 0 when shards is 0. */
uint32_t envelope_shard(const uint8_t *sid, size_t len, uint32_t shards);

/* ---- key names: each appends to b (which is not reset); check b->err once at the end ---- */

/* P:up:<nsp>:<shard>, the upstream stream of one shard (shard from envelope_shard, of
 * `shards`). On a cluster (prefix "{P}", redis_cluster_prefix): P:up:<nsp>:{<tag>}, tag from
 * redis_spread_tag(shard, shards), so the shards spread over the masters (docs/contracts.md). */
void envelope_key_up_stream(struct buf *b, const char *prefix, struct slice nsp, uint32_t shard,
                            uint32_t shards);
void envelope_key_up_channel(struct buf *b, const char *prefix, struct slice nsp); /* P:up:<nsp> */
void envelope_key_node(struct buf *b, const char *prefix, struct slice node); /* P:node:<node> */
void envelope_key_hb(struct buf *b, const char *prefix, struct slice node);   /* P:hb:<node> */
void envelope_key_nodes(struct buf *b, const char *prefix);                   /* P:nodes */
void envelope_key_registry(struct buf *b, const char *prefix);                /* P:registry */
void envelope_key_sid(struct buf *b, const char *prefix, struct slice sid);   /* P:sid:<sid> */
void envelope_key_user(struct buf *b, const char *prefix, struct slice uid);  /* P:user:<uid> */
/* P:room:<nsp>:<room> */
void envelope_key_room(struct buf *b, const char *prefix, struct slice nsp, struct slice room);
/* P:node-sids:<node> */
void envelope_key_node_sids(struct buf *b, const char *prefix, struct slice node);

#endif
