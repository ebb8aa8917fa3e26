/* calls.h: the worker calls that wait for a client's ack on one socket (docs/contracts.md,
 * "Calls"): a worker's reply asked the gateway to emit an event with an ack id; when the client
 * acknowledges it, the gateway publishes the answer on the channel the worker named. This module
 * only keeps the list of {socket ack id, call id, reply channel}; bridge.c emits and publishes.
 * Bounded per socket; nothing is allocated while no call is pending. */
#ifndef SIOC_GATEWAY_CALLS_H
#define SIOC_GATEWAY_CALLS_H

#include <stdint.h>

#include "common/buf.h"

#define CALLS_MAX_PER_SOCKET 64 /* pending calls of one socket; more are answered at once */

/* One pending call. id and to are NUL-free text (envelope.h limits their length). */
struct call {
    struct call *next;
    uint64_t ack_id; /* the id the socket's EVENT carried */
    uint16_t id_len, to_len;
    uint8_t text[]; /* id bytes, then to bytes */
};

/* The call's id and reply channel; valid until the call is freed. */
struct slice call_id(const struct call *c);
struct slice call_to(const struct call *c);

/* Prepends a call (copies id and to). Returns SIOC_OK, SIOC_ETOOBIG when the list already holds
 * CALLS_MAX_PER_SOCKET, SIOC_EINVAL for an id or channel over 65535 bytes, or SIOC_ENOMEM. */
int calls_add(struct call **head, uint64_t ack_id, struct slice id, struct slice to);
/* Unlinks and returns the call with `ack_id` (the caller frees it with free()), or NULL. */
struct call *calls_take(struct call **head, uint64_t ack_id);
/* Unlinks and returns the first call (free() it), or NULL when the list is empty. */
struct call *calls_pop(struct call **head);

#endif
