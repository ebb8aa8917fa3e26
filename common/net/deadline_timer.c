/* deadline_timer.c: see deadline_timer.h. */
#include "common/net/deadline_timer.h"

#include <event2/event.h>

void deadline_timer_arm_at(struct deadline_timer *t, uint64_t at_ms, uint64_t now_ms)
{
    if (at_ms == UINT64_MAX || (evtimer_pending(t->ev, NULL) && t->at <= at_ms))
        return;
    uint64_t ms = at_ms > now_ms ? at_ms - now_ms : 0;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    t->at = at_ms;
    evtimer_add(t->ev, &tv);
}

void deadline_timer_arm(struct deadline_timer *t, struct deadline_list *const *lists, size_t n)
{
    uint64_t next = UINT64_MAX;
    for (size_t i = 0; i < n; i++)
        if (deadline_next(lists[i]) < next)
            next = deadline_next(lists[i]);
    if (next == UINT64_MAX || (evtimer_pending(t->ev, NULL) && t->at <= next))
        return;
    deadline_timer_arm_at(t, next, deadline_clock_ms());
}
