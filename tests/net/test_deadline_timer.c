/* test_deadline_timer.c: one libevent timer for a timer heap (common/net/deadline_timer.h with
 * common/timer_heap.h), as expiry.c, cluster_requests.c and broker/calls.c use it: items with
 * different timeouts expire in deadline order through the one timer, an item removed before its
 * deadline never fires, arming only moves the timer earlier, an empty heap arms nothing. Asserts
 * order, not wall-clock bounds. */
#include <event2/event.h>

#include "common/clock.h"
#include "common/container.h"
#include "common/error.h"
#include "common/net/deadline_timer.h"
#include "common/timer_heap.h"
#include "tests/net/loop_test.h"
#include "tests/unit/test.h"

struct item {
    struct timer_heap_node node;
    int id;
};

struct owner {
    struct timer_heap heap;
    struct deadline_timer timer;
    int fired[8];
    int nfired, wakeups;
};

static void owner_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct owner *o = arg;
    o->wakeups++;
    uint64_t now = clock_mono_ms();
    struct timer_heap_node *n;
    while ((n = timer_heap_pop_expired(&o->heap, now)) != NULL)
        if (o->nfired < 8)
            o->fired[o->nfired++] = container_of(n, struct item, node)->id;
    deadline_timer_arm_at(&o->timer, timer_heap_next(&o->heap), clock_mono_ms());
}

static bool heap_empty(const void *arg)
{
    return timer_heap_len(&((const struct owner *)arg)->heap) == 0;
}

static void test_heap_under_one_timer(void)
{
    struct event_base *base = event_base_new();
    struct owner o = {0};
    timer_heap_init(&o.heap);
    o.timer.ev = evtimer_new(base, owner_timer_cb, &o);
    /* an empty heap arms nothing */
    deadline_timer_arm_at(&o.timer, timer_heap_next(&o.heap), clock_mono_ms());
    CHECK(!evtimer_pending(o.timer.ev, NULL));
    static const uint64_t after[5] = {240, 60, 180, 120, 300};
    struct item it[5];
    uint64_t now = clock_mono_ms();
    for (int i = 0; i < 5; i++) {
        it[i] = (struct item){.id = i};
        CHECK(timer_heap_push(&o.heap, &it[i].node, now + after[i]) == SIOC_OK);
        deadline_timer_arm_at(&o.timer, now + after[i], clock_mono_ms());
    }
    /* armed for the earliest, not moved later by the pushes after it */
    CHECK(evtimer_pending(o.timer.ev, NULL) && o.timer.at == now + 60);
    timer_heap_remove(&o.heap, &it[2].node); /* ends early: never fires */
    CHECK(loop_wait_until(base, heap_empty, &o, 10000));
    CHECK(o.nfired == 4 && o.fired[0] == 1 && o.fired[1] == 3 && o.fired[2] == 0 &&
          o.fired[3] == 4);
    CHECK(o.wakeups >= 1 && o.wakeups <= 8);
    /* the heap drained: the timer is not armed again */
    CHECK(!evtimer_pending(o.timer.ev, NULL));
    timer_heap_deinit(&o.heap);
    event_free(o.timer.ev);
    event_base_free(base);
}

int main(void)
{
    RUN(test_heap_under_one_timer);
    return test_summary("test_deadline_timer");
}
