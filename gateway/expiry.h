/* expiry.h: ends sessions whose credentials expire (DESIGN.md §2 `auth jwt`: "exp enforced,
 * also during the session"). Each token's `exp` is its own deadline, so the entries (expiry,
 * socket id) are in a timer heap (common/timer_heap.h) with one timer for all of them
 * (common/net/deadline_timer.h), on the wall clock (exp is seconds since the epoch). At expiry
 * the socket is looked up by id and, if still there, disconnected by the server. Sockets that
 * left earlier are simply not found, so nothing has to be cancelled: an entry lives until its
 * `exp` (one small allocation per socket whose token has an `exp`). */
#ifndef SIOC_GATEWAY_EXPIRY_H
#define SIOC_GATEWAY_EXPIRY_H

#include <stdint.h>

#include "gateway/sio_server.h"

struct event_base;
struct expiry;

/* `on_expire` runs just before the disconnect (for a log line); may be NULL. */
struct expiry *expiry_new(struct event_base *base, struct sio_server *srv,
                          void (*on_expire)(void *ctx, struct sio_socket *sock), void *ctx);
void expiry_free(struct expiry *e); /* NULL is a no-op */
/* Disconnects `sock` at `at_s` (seconds since the epoch). Returns SIOC_OK or SIOC_ENOMEM. */
int expiry_add(struct expiry *e, struct sio_socket *sock, int64_t at_s);

#endif
