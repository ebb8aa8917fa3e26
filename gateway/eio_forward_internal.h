/* eio_forward_internal.h: what the requester (eio_forward.c) and the owner
 * (eio_forward_host.c) halves of the forwarder share. Not a public header. */
#ifndef SIOC_GATEWAY_EIO_FORWARD_INTERNAL_H
#define SIOC_GATEWAY_EIO_FORWARD_INTERNAL_H

#include <stdint.h>

#include "common/deadline.h"
#include "common/eio.h"
#include "common/hashtab.h"
#include "common/list.h"
#include "common/net/deadline_timer.h"
#include "common/net/redis_link.h"
#include "gateway/eio_forward.h"
#include "gateway/eio_forward_msg.h"
#include "gateway/eio_server.h"

struct fwd_pending;
struct fwd_host;

struct eio_forward {
    struct event_base *base;
    struct eio_server *eio;
    struct http_server *http;
    struct log *log;
    struct redis_link *cmd;
    char *prefix;
    char tag[EIO_SID_TAG_LEN + 1];
    char *channel; /* P:eio:<tag> */
    unsigned timeout_ms;
    size_t max_inflight;
    /* requester: parked client requests by id */
    struct hashtab pending;
    struct list_node pending_list; /* the fwd_pendings, newest first */
    size_t pending_count;
    uint64_t next_id;
    struct deadline_list short_wait, get_wait, tunnel_wait;
    struct deadline_timer timer;
    struct event *liveness; /* every second while requests are parked: PUBSUB NUMSUB */
    bool liveness_pending;
    bool limit_logged;
    /* owner: replays by (requester tag, id) */
    struct hashtab hosts;
    struct list_node host_list; /* the fwd_hosts, newest first */
    size_t host_count;
    struct deadline_list host_wait;
    bool host_limit_logged;
    uint64_t *m_forwarded, *m_served, *m_failed, *m_invalid;
    uint64_t unused_counters[4]; /* where they point without metrics */
};

/* eio_forward_pub.c: used by both halves. */
/* Publishes `m` on `P:eio:<tag>` (tag: tag_len bytes). Returns SIOC_OK or the link's error. */
int fwd_publish(struct eio_forward *f, const uint8_t *tag, size_t tag_len, const struct fwd_msg *m);
/* The same with a reply callback (PUBLISH's answer: how many nodes got it). */
int fwd_publish_cb(struct eio_forward *f, const uint8_t *tag, size_t tag_len,
                   const struct fwd_msg *m, redis_link_reply_cb *cb, void *ctx);
/* Arms the forwarder's one timer for the earliest deadline of its four lists. */
void fwd_arm_timer(struct eio_forward *f);

/* eio_forward_host.c: the owner's half. */
void fwd_host_on_message(struct eio_forward *f, const struct fwd_msg *m);
void fwd_host_expired(struct eio_forward *f, struct deadline_node *n);
void fwd_host_free_all(struct eio_forward *f);

#endif
