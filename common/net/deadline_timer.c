/* deadline_timer.c: see deadline_timer.h. */
#include "common/net/deadline_timer.h"

#include <event2/event.h>

void deadline_timer_arm(struct deadline_timer *t, struct deadline_list *const *lists, size_t n)
{
    uint64_t next = UINT64_MAX;
    for (size_t i = 0; i < n; i++)
        if (deadline_next(lists[i]) < next)
            next = deadline_next(lists[i]);
    if (next == UINT64_MAX || (evtimer_pending(t->ev, NULL) && t->at <= next))
        return;
    uint64_t now = deadline_clock_ms();
    uint64_t ms = next > now ? next - now : 0;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    t->at = next;
    evtimer_add(t->ev, &tv);
}
