/* deadline_timer.h: the one libevent timer an owner of FIFO deadline lists (common/deadline.h)
 * keeps armed for the earliest deadline. Arming only ever moves it earlier; when it fires, the
 * owner pops what expired and arms it again for what is left. */
#ifndef SIOC_NET_DEADLINE_TIMER_H
#define SIOC_NET_DEADLINE_TIMER_H

#include <stddef.h>
#include <stdint.h>

#include "common/deadline.h"

struct event;

struct deadline_timer {
    struct event *ev; /* the owner's evtimer_new(...), freed by the owner */
    uint64_t at;      /* the deadline it is armed for, while pending */
};

/* Arms the timer for the earliest deadline of lists[0..n), unless it is already armed for that
 * or earlier. Nothing when every list is empty. */
void deadline_timer_arm(struct deadline_timer *t, struct deadline_list *const *lists, size_t n);

#endif
