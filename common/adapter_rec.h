/* adapter_rec.h: recoverable broadcasts as their publishers write them (docs/contracts.md
 * "Connection state recovery, cluster-wide", extends DESIGN.md §3.1): the emitter-format
 * broadcast split around the place of its offset, the Lua call that stores it in the stream
 * P:rec:<nsp> and publishes it with the stream id spliced in as the last element of `data`, and
 * that splice itself. Byte for byte what the Python SDK (sdk/python/sioc/emitter.py
 * encode_recoverable, RECOVERY_SCRIPT) writes. Pure: no I/O. */
#ifndef SIOC_ADAPTER_REC_H
#define SIOC_ADAPTER_REC_H

#include <stddef.h>

#include "common/adapter.h"
#include "common/buf.h"

/* Approximate MAXLEN publishers give P:rec:<nsp> (the SDK: sioc/emitter.py RECOVERY_STREAM_MAXLEN).
 */
#define ADAPTER_REC_STREAM_MAXLEN 100000
/* The stream's PEXPIRE, and the gateways' recovery keys' lifetime, is the window plus this
 * (the SDK: sioc/emitter.py RECOVERY_GRACE_MS). */
#define ADAPTER_REC_GRACE_MS 5000
/* Longest stream id the splice accepts ("<ms>-<seq>", two uint64: at most 41 characters). */
#define ADAPTER_REC_MAX_ID 64

/* The Lua script: KEYS[1] = P:rec:<nsp>; ARGV = channel, pre, post, maxlen, pexpire. XADDs
 * {a = pre, b = post}, PEXPIREs the stream, PUBLISHes pre .. msgpack-str(id) .. post and
 * returns PUBLISH's count. Static storage. */
const char *adapter_rec_script(void);

/* Appends the broadcast as adapter_broadcast_encode_emitter writes it, with one more element
 * (the offset) at the end of packet.data, but without that element: *split is set to the
 * offset's place (an index into out->data, so out[..split) is `pre`, out[split..) is `post`).
 * msg->packet.data must be exactly one msgpack array of fewer than 2^32 - 1 elements; the flags
 * must be empty (volatile broadcasts are not stored): SIOC_EINVAL otherwise, out unchanged.
 * Returns SIOC_OK or out->err (out truncated back). */
int adapter_rec_encode(struct buf *out, const struct adapter_broadcast *msg, size_t *split);

/* Appends pre, the stream id as a msgpack string, then post: what the script publishes.
 * SIOC_EINVAL for an id longer than ADAPTER_REC_MAX_ID; else SIOC_OK or out->err. */
int adapter_rec_splice(struct buf *out, struct slice pre, struct slice post, struct slice id);

#endif
