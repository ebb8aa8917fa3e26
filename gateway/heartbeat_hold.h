/* heartbeat_hold.h: what both heartbeat owners (eio_server.c for Engine.IO sessions, plain_ws.c
 * for plain WebSocket connections) keep while the gateway has paused reading from clients for
 * upstream back-pressure (DESIGN.md §3.2): the clients' pongs cannot be read then, so an overdue
 * pong is waived (the client gets its next ping as if it had been read) for up to max_ms from
 * the start of the hold; after that the owner closes whom it waits for, saying so once per hold.
 * Header-only; times are deadline_clock_ms() milliseconds. */
#ifndef SIOC_GATEWAY_HEARTBEAT_HOLD_H
#define SIOC_GATEWAY_HEARTBEAT_HOLD_H

#include <stdbool.h>
#include <stdint.h>

struct heartbeat_hold {
    uint64_t max_ms;   /* the owner's heartbeat_hold_max_ms */
    uint64_t since_ms; /* when the current hold started */
    bool held;
    bool expired; /* the current hold passed max_ms (and the owner logged it) */
};

/* Starts (hold) or ends a hold. Returns true when that changed the state; the owner then
 * re-pings, on the end of a hold, every client whose pong waited unread. */
static inline bool heartbeat_hold_set(struct heartbeat_hold *h, bool hold, uint64_t now_ms)
{
    if (h->held == hold)
        return false;
    h->held = hold;
    if (hold) {
        h->since_ms = now_ms;
        h->expired = false;
    }
    return true;
}

/* True while an overdue pong is our pause, not the client's silence. */
static inline bool heartbeat_hold_waives(const struct heartbeat_hold *h, uint64_t now_ms)
{
    return h->held && now_ms - h->since_ms < h->max_ms;
}

/* For an overdue pong that is not waived: true the first time in a hold that passed max_ms (the
 * owner logs it once), false otherwise (also when there is no hold: a plain ping timeout). */
static inline bool heartbeat_hold_expire_once(struct heartbeat_hold *h)
{
    if (!h->held || h->expired)
        return false;
    h->expired = true;
    return true;
}

#endif
