/* expiry.c: socket expiries in a timer heap driven by one libevent timer (see expiry.h). */
#include "gateway/expiry.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/container.h"
#include "common/error.h"
#include "common/net/deadline_timer.h"
#include "common/timer_heap.h"

struct expiry_entry {
    struct timer_heap_node node; /* at_ms: exp in wall-clock milliseconds */
    char sid[SIO_SOCKET_ID_LEN]; /* the key: unique across namespaces, so the namespace is not kept
                                  * (it may be freed before the entry is due) */
};

struct expiry {
    struct sio_server *srv;
    struct deadline_timer timer;
    struct timer_heap heap;
    void (*on_expire)(void *ctx, struct sio_socket *sock);
    void *ctx;
};

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct expiry *e = arg;
    uint64_t now = clock_wall_ms();
    struct timer_heap_node *n;
    while ((n = timer_heap_pop_expired(&e->heap, now)) != NULL) {
        struct expiry_entry *x = container_of(n, struct expiry_entry, node);
        struct sio_socket *sock = sio_server_find_id(e->srv, x->sid, SIO_SOCKET_ID_LEN);
        free(x);
        if (sock == NULL)
            continue; /* it left before its credentials ran out */
        if (e->on_expire != NULL)
            e->on_expire(e->ctx, sock);
        sio_socket_disconnect(sock, false);
    }
    deadline_timer_arm_at(&e->timer, timer_heap_next(&e->heap), clock_wall_ms());
}

struct expiry *expiry_new(struct event_base *base, struct sio_server *srv,
                          void (*on_expire)(void *ctx, struct sio_socket *sock), void *ctx)
{
    struct expiry *e = calloc(1, sizeof *e);
    if (e == NULL)
        return NULL;
    e->srv = srv;
    e->on_expire = on_expire;
    e->ctx = ctx;
    timer_heap_init(&e->heap);
    e->timer.ev = evtimer_new(base, timer_cb, e);
    if (e->timer.ev == NULL) {
        free(e);
        return NULL;
    }
    return e;
}

void expiry_free(struct expiry *e)
{
    if (e == NULL)
        return;
    struct timer_heap_node *n;
    while ((n = timer_heap_pop_expired(&e->heap, UINT64_MAX)) != NULL)
        free(container_of(n, struct expiry_entry, node));
    timer_heap_deinit(&e->heap);
    event_free(e->timer.ev);
    free(e);
}

int expiry_add(struct expiry *e, struct sio_socket *sock, int64_t at_s)
{
    struct expiry_entry *x = calloc(1, sizeof *x);
    if (x == NULL)
        return SIOC_ENOMEM;
    memcpy(x->sid, sio_socket_key(sock), SIO_SOCKET_ID_LEN);
    /* a past exp is due at once; one too far to count in milliseconds never is */
    uint64_t at_ms = at_s <= 0                                 ? 0
                     : (uint64_t)at_s >= UINT64_MAX / 1000 - 1 ? UINT64_MAX - 1
                                                               : (uint64_t)at_s * 1000;
    if (timer_heap_push(&e->heap, &x->node, at_ms) != SIOC_OK) {
        free(x);
        return SIOC_ENOMEM;
    }
    deadline_timer_arm_at(&e->timer, at_ms, clock_wall_ms());
    return SIOC_OK;
}
