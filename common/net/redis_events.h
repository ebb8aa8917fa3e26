/* redis_events.h: attaches a hiredis async connection to a libevent loop, as hiredis's
 * adapters/libevent.h does, but cheaper per round trip (see redis_events.c). This is the only
 * place that knows how hiredis's bytes reach the socket: the transport under a redis_link. */
#ifndef SIOC_NET_REDIS_EVENTS_H
#define SIOC_NET_REDIS_EVENTS_H

#include <stdbool.h>

#include <event2/event.h>
#include <hiredis/async.h>

/* Attaches `ac` (just created, connecting) to `base`. hiredis owns the attachment from then on
 * and frees it with the context. Returns false (nothing attached) when out of memory. */
bool redis_events_attach(redisAsyncContext *ac, struct event_base *base);

#endif
