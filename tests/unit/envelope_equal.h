/* envelope_equal.h: field-by-field equality of decoded envelopes (header-only), shared by the
 * envelope unit test and its fuzzer: a decode(encode(x)) round trip must give back x. */
#ifndef SIOC_TEST_ENVELOPE_EQUAL_H
#define SIOC_TEST_ENVELOPE_EQUAL_H

#include <stdbool.h>
#include <string.h>

#include "common/envelope.h"

static inline bool slice_eq(struct slice a, struct slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static inline bool list_eq(const struct envelope_list *a, const struct envelope_list *b)
{
    return slice_eq(a->raw, b->raw) && a->count == b->count;
}

static inline bool up_equal(const struct envelope_up *a, const struct envelope_up *b)
{
    return a->type == b->type && slice_eq(a->nsp, b->nsp) && slice_eq(a->sid, b->sid) &&
           slice_eq(a->node, b->node) && slice_eq(a->uid, b->uid) && a->ts == b->ts &&
           slice_eq(a->event, b->event) && slice_eq(a->args, b->args) && a->has_ack == b->has_ack &&
           a->ack == b->ack && slice_eq(a->auth, b->auth) && slice_eq(a->hs, b->hs) &&
           a->has_rid == b->has_rid && slice_eq(a->rid, b->rid) && slice_eq(a->reason, b->reason);
}

static inline bool reply_equal(const struct envelope_reply *a, const struct envelope_reply *b)
{
    return a->t == b->t && slice_eq(a->nsp, b->nsp) && slice_eq(a->sid, b->sid) &&
           a->has_ack == b->has_ack && a->ack_id == b->ack_id &&
           slice_eq(a->ack_args, b->ack_args) && list_eq(&a->emit, &b->emit) &&
           list_eq(&a->join, &b->join) && list_eq(&a->leave, &b->leave) &&
           a->disconnect == b->disconnect && slice_eq(a->rid, b->rid) && a->ok == b->ok &&
           a->has_uid == b->has_uid && slice_eq(a->uid, b->uid) && list_eq(&a->rooms, &b->rooms) &&
           a->has_data == b->has_data && slice_eq(a->data, b->data) &&
           a->has_error == b->has_error && slice_eq(a->error_message, b->error_message) &&
           a->has_error_data == b->has_error_data && slice_eq(a->error_data, b->error_data) &&
           a->has_call == b->has_call && slice_eq(a->call_id, b->call_id) &&
           slice_eq(a->call_to, b->call_to) && slice_eq(a->call_emit, b->call_emit);
}

static inline bool reg_equal(const struct envelope_reg *a, const struct envelope_reg *b)
{
    return slice_eq(a->node, b->node) && slice_eq(a->epoch, b->epoch) && a->seq == b->seq &&
           a->op == b->op && slice_eq(a->nsp, b->nsp) && slice_eq(a->sid, b->sid) &&
           slice_eq(a->uid, b->uid) && list_eq(&a->rooms, &b->rooms);
}

#endif
