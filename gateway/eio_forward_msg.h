/* eio_forward_msg.h: the messages two gateways exchange on `P:eio:<tag>` to serve a polling
 * request (or a WebSocket) of a session that lives on the other one (docs/contracts.md "Polling
 * without sticky sessions", an addition to DESIGN.md §3): one MessagePack map each, written and
 * read here without I/O. Who sends what, and what it means, is eio_forward.h's. */
#ifndef SIOC_GATEWAY_EIO_FORWARD_MSG_H
#define SIOC_GATEWAY_EIO_FORWARD_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define FWD_TAG_MAX 16     /* bytes of a `from` tag (gateways use EIO_SID_TAG_LEN) */
#define FWD_MAX_HEADERS 32 /* fields of a forwarded answer */

enum fwd_type {
    FWD_REQ,    /* to the owner: `id`, `from`, `sid`, `ws`, `req` (the HTTP request bytes) */
    FWD_UP,     /* to the owner: `id`, `from`, `data` (client bytes of a tunnelled WebSocket) */
    FWD_CANCEL, /* to the owner: `id`, `from` (the client went away, or the requester gave up) */
    FWD_RES,    /* to the requester: `id`, `status`, `headers` [name, value, ...], `body` */
    FWD_MISS,   /* to the requester: `id` (no such session here) */
    FWD_DOWN,   /* to the requester: `id`, `data` (owner bytes of a tunnel: the 101 and frames) */
    FWD_END,    /* to the requester: `id` (the owner's side of the request or tunnel closed) */
};

/* A decoded message; every slice points into the decoded input (valid as long as it is). */
struct fwd_msg {
    enum fwd_type type;
    uint64_t id;
    const uint8_t *from;
    size_t from_len;
    const uint8_t *sid;
    size_t sid_len;
    bool ws;
    int status;
    const uint8_t *data; /* req, data or body */
    size_t data_len;
    size_t header_count;
    struct {
        const uint8_t *name, *value;
        size_t name_len, value_len;
    } headers[FWD_MAX_HEADERS];
};

/* Appends the encoding of `m` (the fields its type uses) to `out`. Returns out->err. */
int fwd_msg_encode(struct buf *out, const struct fwd_msg *m);
/* Decodes p[0..len) into *m. Returns SIOC_OK; SIOC_ENOTSUP for an unknown `t` (skip it, as
 * docs/contracts.md's forward-compatibility rule says); SIOC_EPROTO for anything malformed: not
 * one map, a missing or mistyped field of the type, a `from` over FWD_TAG_MAX, a status outside
 * 100..599, more than FWD_MAX_HEADERS fields. Unknown keys are ignored. */
int fwd_msg_decode(const uint8_t *p, size_t len, struct fwd_msg *m);

#endif
