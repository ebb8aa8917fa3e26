/* eio_forward_pub.c: what both halves of the forwarder (eio_forward.c, the requester, and
 * eio_forward_host.c, the owner) send through: one message published on P:eio:<tag>, and the
 * one timer over every deadline list of the forwarder. Neither half calls the other's file
 * for these (eio_forward.c calls eio_forward_host.c; not the other way round). */
#include "gateway/eio_forward_internal.h"

#include "common/buf.h"
#include "common/error.h"
#include "common/net/redis_link.h"

int fwd_publish(struct eio_forward *f, const uint8_t *tag, size_t tag_len, const struct fwd_msg *m)
{
    return fwd_publish_cb(f, tag, tag_len, m, NULL, NULL);
}

int fwd_publish_cb(struct eio_forward *f, const uint8_t *tag, size_t tag_len,
                   const struct fwd_msg *m, redis_link_reply_cb *cb, void *ctx)
{
    struct buf channel, body;
    buf_init(&channel, 0);
    buf_init(&body, 0);
    buf_append_cstr(&channel, f->prefix);
    buf_append_cstr(&channel, ":eio:");
    buf_append(&channel, tag, tag_len);
    int rc = fwd_msg_encode(&body, m);
    if (rc == SIOC_OK)
        rc = channel.err;
    if (rc == SIOC_OK) {
        const char *argv[] = {"PUBLISH", (const char *)channel.data, (const char *)body.data};
        const size_t lens[] = {7, channel.len, body.len};
        rc = redis_link_command_argv(f->cmd, 3, argv, lens, 0, cb, ctx);
    }
    buf_deinit(&channel);
    buf_deinit(&body);
    return rc;
}

void fwd_arm_timer(struct eio_forward *f)
{
    struct deadline_list *lists[] = {&f->short_wait, &f->get_wait, &f->tunnel_wait, &f->host_wait};
    deadline_timer_arm(&f->timer, lists, sizeof lists / sizeof lists[0]);
}
