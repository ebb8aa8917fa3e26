/* sio.h: the Socket.IO packet codec (PROTOCOL.md 2), protocol v5 (EIO=4) and v4 (EIO=3, 2.7).
 * Text packets (the Engine.IO message data, without its leading '4') decode to a header plus the
 * payload as MessagePack, and encode back from MessagePack; binary attachments are reassembled
 * into msgpack `bin` values (2.3 step 6) and split out again as placeholders (2.2). The decoder
 * reproduces the accept/reject decisions of Node's socket.io-parser 4.2.7 (2.3), except as noted
 * under sio_packet_decode. Namespace membership, ack counters and the CONNECT/close policy of
 * 2.4 belong to the gateway. */
#ifndef SIOC_SIO_H
#define SIOC_SIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* socket.io-parser's maxAttachments default: more is "too many attachments". */
#define SIO_MAX_ATTACHMENTS 10
/* Number.MAX_SAFE_INTEGER: the largest ack id accepted, so every accepted id is exactly the
 * number Node would hold and echo back. */
#define SIO_MAX_ACK_ID 9007199254740991ULL

enum sio_version {
    SIO_V4 = 4, /* Engine.IO 3 clients (socket.io-client 2.x): namespace may carry "?query" */
    SIO_V5 = 5, /* Engine.IO 4 clients */
};

enum sio_type {
    SIO_CONNECT = 0,
    SIO_DISCONNECT = 1,
    SIO_EVENT = 2,
    SIO_ACK = 3,
    SIO_CONNECT_ERROR = 4, /* "ERROR" in v4 */
    SIO_BINARY_EVENT = 5,
    SIO_BINARY_ACK = 6,
};

/* Why a peer's packet was refused; the strings are Node's error messages where Node has one. */
enum sio_reason {
    SIO_REASON_NONE = 0,
    SIO_REASON_EMPTY,                /* no Socket.IO packet at all (Engine.IO message "4") */
    SIO_REASON_UNKNOWN_TYPE,         /* "unknown packet type" */
    SIO_REASON_ILLEGAL_ATTACHMENTS,  /* "Illegal attachments": count not digits + '-', or 0 */
    SIO_REASON_TOO_MANY_ATTACHMENTS, /* "too many attachments": count > SIO_MAX_ATTACHMENTS */
    SIO_REASON_INVALID_ACK_ID,       /* ack id > SIO_MAX_ACK_ID (sioc only) */
    SIO_REASON_INVALID_PAYLOAD,      /* "invalid payload": bad JSON or wrong shape for the type */
    SIO_REASON_PAYLOAD_LIMIT,        /* payload nested too deep, too big or out of memory */
    SIO_REASON_ILLEGAL_PLACEHOLDER,  /* "illegal attachments": placeholder num not an attachment */
    SIO_REASON_UNEXPECTED_TEXT,      /* "got plaintext data when reconstructing a packet" */
    SIO_REASON_UNEXPECTED_BINARY,    /* "got binary data when not reconstructing a packet" */
};

/* Returns a static, never-NULL description of `r` for log lines. */
const char *sio_reason_string(enum sio_reason r);

/* One Socket.IO packet: the output of the decoder and of the assembler, the input of the
 * encoder. Every pointer is borrowed; the functions below say what it points into. */
struct sio_packet {
    enum sio_type type;
    struct slice nsp;       /* namespace, always starts with '/' ("/" when the packet had none) */
    struct slice query;     /* v4 decode only: raw bytes after '?' in the namespace, undecoded */
    bool has_query;         /* the namespace had a '?' (query may still be empty) */
    bool has_id;            /* an ack id was present */
    uint64_t id;            /* the ack id, <= SIO_MAX_ACK_ID */
    unsigned attachments;   /* BINARY_*: number of binary messages that follow, 1..10 */
    bool has_data;          /* a payload was present; false for e.g. "40" (auth {}) or "42" */
    struct slice data;      /* the payload as one MessagePack value (len 0 when !has_data) */
    enum sio_reason reason; /* decode: why the packet was refused, SIO_REASON_NONE on success */
};

/* Decodes the text packet p[0..len) (not NUL-terminated) and appends its payload, transcoded to
 * MessagePack by json_to_msgpack, to `out`. Fills *pkt:
 *   nsp/query point into p (or at a static "/"), valid as long as p;
 *   data points into out, valid until out is next modified;
 *   type is as on the wire: BINARY_EVENT/BINARY_ACK stay binary (attachments >= 1) and their
 *   data still holds the placeholder maps; hand them to sio_assembler_start.
 * v5: the namespace is literal ("/custom?foo=bar" is one name). v4: it is split at the first
 * '?' (path in nsp, the rest up to any '#' in query) and a '#' ends the path, as url.parse does.
 * Returns SIOC_OK; SIOC_EPROTO (pkt->reason says why); SIOC_ETOOBIG for more than 10
 * attachments or when `out` hits its limit; SIOC_EDEPTH; SIOC_ENOMEM. On error out is
 * truncated back to its length at entry.
 * Deliberate differences from Node 4.2.7 (all on inputs no real client produces):
 *   - the type must be an ASCII digit 0..6 (Node's Number(" ") makes a space CONNECT);
 *   - the attachment count must be ASCII digits (Node's Number() also takes " 1", "1.0",
 *     "0x1", "1e0");
 *   - the ack id is ASCII digits only: a space is not a digit here, so it starts the payload
 *     (JSON allows leading whitespace): "42 [\"a\"]" is an EVENT with no ack id, where Node
 *     sets id 0; ids above SIO_MAX_ACK_ID are refused, where Node keeps a rounded double;
 *   - JSON nesting is limited to JSON_MAX_DEPTH.
 * Like Node, a packet with no payload characters ("42", "43", "451-") is accepted unchecked
 * (has_data false): the spec makes EVENT payloads mandatory, so the gateway may refuse it. */
int sio_packet_decode(enum sio_version version, const uint8_t *p, size_t len,
                      struct sio_packet *pkt, struct buf *out);

/* Encodes pkt (type, nsp, has_id/id, has_data/data; other fields ignored) as a text packet
 * appended to `out`, exactly as socket.io-parser's Encoder writes it (PROTOCOL.md 2.2):
 * "<type>[<n>-][<nsp>,][<id>][<JSON>]", nsp omitted when empty or "/". The JSON is
 * json_from_msgpack of data. For EVENT and ACK (BINARY_EVENT/BINARY_ACK are taken as the same),
 * every msgpack bin becomes {"_placeholder":true,"num":K}, numbered in the order JSON.stringify
 * visits them, and bins[K] is set to that bin's bytes (pointing into pkt->data: no copy); the
 * type becomes BINARY_* only when there is at least one bin. Other types write bins as Node's
 * Buffer.toJSON. v5 checks that a CONNECT_ERROR payload is an object or a string (2.1); v4
 * allows any JSON (2.7). v4 CONNECT replies are simply encoded without data ("40", "40/x,").
 * Returns the number of attachments written to bins (0 for a plain packet); SIOC_EINVAL for a
 * bad type, an nsp not starting with '/', a DISCONNECT with data, a v5 CONNECT_ERROR payload of
 * another kind or data that is not exactly one value; SIOC_ETOOBIG when there are more than
 * bins_cap bins or out hits its limit; SIOC_EPROTO/SIOC_EAGAIN/SIOC_EDEPTH for malformed
 * msgpack; SIOC_ENOMEM. On error out is truncated back to its length at entry. */
int sio_packet_encode(enum sio_version version, const struct sio_packet *pkt, struct buf *out,
                      struct slice *bins, size_t bins_cap);

/* Reassembles a BINARY_EVENT/BINARY_ACK and its attachments (PROTOCOL.md 2.3 step 6). It keeps
 * its own copy of the packet and of each attachment in one reusable buffer, so the caller may
 * drop every input as soon as a call returns. Fields are private. */
struct sio_assembler {
    struct buf store; /* nsp | query | msgpack data | attachment bytes */
    struct sio_packet head;
    size_t nsp_len, query_len, data_len;
    unsigned received;
    size_t att_end[SIO_MAX_ATTACHMENTS]; /* end offset in store of each attachment */
    bool pending;
    enum sio_reason reason; /* why the last call failed, SIO_REASON_NONE otherwise */
};

/* Initialises an idle assembler whose copies (packet + attachments) may total at most `limit`
 * bytes (0 = unlimited; the caller should cap it). Allocates nothing. */
void sio_assembler_init(struct sio_assembler *a, size_t limit);
/* Frees the storage. */
void sio_assembler_deinit(struct sio_assembler *a);
/* Drops any pending packet, keeping the allocation. */
void sio_assembler_reset(struct sio_assembler *a);
/* True between sio_assembler_start and the sio_assembler_finish (or reset) of that packet.
 * A text packet arriving now is Node's "got plaintext data when reconstructing a packet"
 * (SIO_REASON_UNEXPECTED_TEXT): the caller decides, the Node server closes. */
bool sio_assembler_pending(const struct sio_assembler *a);
/* Why the last call failed (SIO_REASON_NONE after a success). */
enum sio_reason sio_assembler_reason(const struct sio_assembler *a);
/* Starts reassembling pkt, a successful decode of type BINARY_EVENT/BINARY_ACK, copying its
 * nsp, query and data. Returns SIOC_OK; SIOC_EINVAL if pkt is not binary or a packet is already
 * pending; SIOC_ETOOBIG/SIOC_ENOMEM (reason PAYLOAD_LIMIT). */
int sio_assembler_start(struct sio_assembler *a, const struct sio_packet *pkt);
/* Adds one binary message p[0..n) (copied). Returns the number of attachments still expected
 * (0: call sio_assembler_finish); SIOC_EPROTO with reason UNEXPECTED_BINARY when no packet is
 * pending or all attachments have arrived; SIOC_ETOOBIG/SIOC_ENOMEM (reason PAYLOAD_LIMIT),
 * after which the pending packet is dropped. */
int sio_assembler_add(struct sio_assembler *a, const uint8_t *p, size_t n);
/* Once every attachment arrived: appends the packet's payload to `out` with every placeholder
 * (any map whose last "_placeholder" value is true, other keys ignored) replaced by bin K, K
 * being its last "num" value, which must be an integer in [0, attachments), as Node does.
 * Fills *pkt with the type reported as EVENT/ACK (as Node does), attachments kept, data
 * pointing into out (valid until out is next modified), nsp/query pointing into the assembler
 * (valid until its next start, reset or deinit). The assembler is then idle.
 * Returns SIOC_OK; SIOC_EINVAL if attachments are still missing or none is pending;
 * SIOC_EPROTO with reason ILLEGAL_PLACEHOLDER; SIOC_ETOOBIG/SIOC_ENOMEM from out. After any
 * return but SIOC_EINVAL the assembler is idle. On error out is truncated back to its length
 * at entry.
 * Deviation: Node turns a fractional num in range (e.g. 0.5) into undefined; sioc refuses it. */
int sio_assembler_finish(struct sio_assembler *a, struct sio_packet *pkt, struct buf *out);

#endif
