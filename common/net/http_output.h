/* http_output.h: a connection's output queue, the data structure alone (http_server.c decides
 * what goes in and when it is written): segments in an array (written ones leave from its front)
 * that starts inline in the connection (INLINE_SEGS) and grows on the heap while more are queued; a
 * segment is a few bytes inside it (SEG_SMALL), an owned block (SEG_OWNED) or someone else's bytes
 * released once written (SEG_REF, shared broadcast frames). Inline: every write and flush goes
 * through it. */
#ifndef SIOC_NET_HTTP_OUTPUT_H
#define SIOC_NET_HTTP_OUTPUT_H

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/net/http_server_internal.h"

static inline void seg_release(struct out_seg *seg)
{
    if (seg->kind == SEG_REF)
        seg->u.ref.release(seg->u.ref.p, seg->len, seg->u.ref.arg);
    else if (seg->kind == SEG_OWNED)
        free((void *)seg->u.ref.p);
}

static inline const uint8_t *seg_bytes(const struct out_seg *seg)
{
    return seg->kind == SEG_SMALL ? seg->u.small : seg->u.ref.p;
}

/* Drops every queued segment (closing) and goes back to the inline array. */
static inline void out_clear(struct http_conn *conn)
{
    for (uint32_t i = 0; i < conn->out_count; i++)
        seg_release(&conn->out[conn->out_head + i]);
    if (conn->out != conn->seg_inline)
        free(conn->out);
    conn->out = conn->seg_inline;
    conn->out_head = conn->out_count = 0;
    conn->out_cap = INLINE_SEGS;
    conn->out_off = conn->out_bytes = 0;
}

/* A free segment slot at the end of the queue, or NULL when out of memory. */
static inline struct out_seg *out_push(struct http_conn *conn)
{
    assert(conn->out != NULL && conn->out_cap > 0);
    if (conn->out_head + conn->out_count == conn->out_cap) {
        if (conn->out_head > 0) {
            memmove(conn->out, conn->out + conn->out_head, conn->out_count * sizeof *conn->out);
            conn->out_head = 0;
        } else {
            uint32_t cap = conn->out_cap * 2;
            struct out_seg *grown = malloc(cap * sizeof *grown);
            if (grown == NULL)
                return NULL;
            memcpy(grown, conn->out, conn->out_count * sizeof *grown);
            if (conn->out != conn->seg_inline)
                free(conn->out);
            conn->out = grown;
            conn->out_cap = cap;
        }
    }
    return &conn->out[conn->out_head + conn->out_count++];
}

#endif
