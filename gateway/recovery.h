/* recovery.h: connection state recovery across gateways (docs/contracts.md "Connection state
 * recovery, cluster-wide"; Socket.IO v5 as socket.io 4.6+ speaks it). Keeps each connected
 * socket's session (sid, uid, rooms) in Redis under its node, parks it with a TTL when the
 * socket goes away for a recoverable reason, and restores a socket whose CONNECT carries
 * {"pid","offset"}: same sid, uid and rooms, then the missed packets of the namespace's stream
 * P:rec:<nsp> (written by the publishers) that its rooms select, in order, without gap or
 * duplicate against live broadcasts (the socket holds them meanwhile, sio_socket_hold).
 * What cannot be restored ends in the normal connect path (on_fallback). Runs on the
 * event_base's thread; one COMMAND Redis link of its own. */
#ifndef SIOC_GATEWAY_RECOVERY_H
#define SIOC_GATEWAY_RECOVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/sio_server.h"

struct event_base;
struct log;
struct metrics;
struct redis_tls;
struct recovery;

#define RECOVERY_MAX_PACKETS 1000  /* missed packets one restore delivers; more: not recovered */
#define RECOVERY_MAX_ROOMS 1024    /* a socket in more rooms is not offered recovery */
#define RECOVERY_MAX_PARKED 100000 /* parked sessions this gateway follows at once */
/* The stream's MAXLEN and the keys' "window + grace" lifetime are the publishers' too: one
 * definition in common/adapter_rec.h (ADAPTER_REC_STREAM_MAXLEN, ADAPTER_REC_GRACE_MS); parked
 * keys live window + ADAPTER_REC_GRACE_MS, the owner ends them at +1 s. */

struct recovery_config {
    const char *redis_url;       /* required */
    struct redis_tls *redis_tls; /* borrowed, rediss:// only */
    const char *key_prefix;      /* P */
    const char *node_id;         /* N (also the pid suffix) */
    unsigned window_ms;          /* recovery-window, > 0 */
    const char *user_room;       /* pattern with one %s, or NULL */
    /* The restore failed before anything was changed: continue with the normal connect (auth,
     * accept, connect entry). Called from the loop, never from recovery_restore. */
    void (*on_fallback)(void *ctx, struct sio_socket *sock);
    /* The socket was accepted as the recovered one (its CONNECT reply is queued, rooms joined):
     * the caller writes the worker's `recovered` connect entry. */
    void (*on_recovered)(void *ctx, struct sio_socket *sock);
    /* A session parked here was not recovered within the window: write its disconnect entry. */
    void (*on_expired)(void *ctx, const char *nsp, const char *sid, const char *uid,
                       const char *reason);
    void *ctx;
};

/* NULL on a bad config or out of memory. Nothing connects before the loop runs. `srv` (the
 * sockets), `log`, `metrics` are borrowed and must outlive it. */
struct recovery *recovery_new(struct event_base *base, const struct recovery_config *cfg,
                              struct sio_server *srv, struct log *log, struct metrics *metrics);
/* Frees everything; no callback runs. NULL is a no-op. */
void recovery_free(struct recovery *r);

/* The on_connect hook's first step: when `auth` (the CONNECT payload, MessagePack) has string
 * `pid` and `offset` and the socket has a pid (v5), starts a restore and returns true: later
 * either the socket is recovered (on_recovered) or on_fallback runs. Otherwise false: the
 * caller connects the socket normally now. */
bool recovery_restore(struct recovery *r, struct sio_socket *sock, const uint8_t *auth,
                      size_t auth_len);
/* The socket was accepted / its rooms changed: (re)writes its session under this node. */
void recovery_on_accepted(struct recovery *r, struct sio_socket *sock);
void recovery_on_room(struct recovery *r, struct sio_socket *sock);
/* The socket goes away. Returns true when its session was parked for recovery (reason is one
 * of Node's recoverable ones): the caller then writes no disconnect entry (on_expired does it
 * if nobody recovers it). Forgets a restore still pending for it. */
bool recovery_on_disconnect(struct recovery *r, struct sio_socket *sock, const char *reason);

#endif
