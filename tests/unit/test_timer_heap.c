/* test_timer_heap.c: the intrusive timer min-heap: order, ties in push order, expiry at the
 * exact deadline, removal from the root, the middle and the end, rescheduling, a zeroed heap,
 * the array shrinking back, and a long random workload checked against the obvious model (a
 * linear scan) with the heap's invariants checked after every step. */
#include "common/container.h"
#include "common/error.h"
#include "common/timer_heap.h"
#include "tests/unit/test.h"

struct waiter {
    int pad;
    struct timer_heap_node node; /* not first: container_of finds the waiter */
    int id;
};

static int id_of(struct timer_heap_node *n)
{
    return n != NULL ? container_of(n, struct waiter, node)->id : -1;
}

/* Every parent is earlier than its children and every node knows its index. */
static bool heap_valid(const struct timer_heap *h)
{
    for (size_t i = 0; i < h->len; i++) {
        const struct timer_heap_node *n = h->nodes[i];
        if (n->position != i + 1)
            return false;
        if (i == 0)
            continue;
        const struct timer_heap_node *p = h->nodes[(i - 1) / 2];
        if (n->at_ms < p->at_ms || (n->at_ms == p->at_ms && n->seq < p->seq))
            return false;
    }
    return h->len <= h->cap;
}

static void test_order_and_expiry(void)
{
    struct timer_heap h = {0}; /* zeroed is empty */
    struct waiter w[5] = {{.id = 0}, {.id = 1}, {.id = 2}, {.id = 3}, {.id = 4}};
    CHECK(timer_heap_next(&h) == UINT64_MAX && timer_heap_len(&h) == 0);
    CHECK(timer_heap_pop_expired(&h, UINT64_MAX - 1) == NULL);
    CHECK(!timer_heap_linked(&w[0].node));
    static const uint64_t at[5] = {300, 100, 200, 100, 50};
    for (int i = 0; i < 5; i++)
        CHECK(timer_heap_push(&h, &w[i].node, at[i]) == SIOC_OK);
    CHECK(heap_valid(&h) && timer_heap_len(&h) == 5 && timer_heap_linked(&w[2].node));
    CHECK(timer_heap_next(&h) == 50);
    CHECK(timer_heap_pop_expired(&h, 49) == NULL);     /* not yet */
    CHECK(id_of(timer_heap_pop_expired(&h, 50)) == 4); /* exactly at the deadline */
    CHECK(!timer_heap_linked(&w[4].node));
    CHECK(id_of(timer_heap_pop_expired(&h, 150)) == 1); /* a tie: in push order */
    CHECK(id_of(timer_heap_pop_expired(&h, 150)) == 3);
    CHECK(timer_heap_pop_expired(&h, 150) == NULL);
    CHECK(id_of(timer_heap_pop_expired(&h, 1000)) == 2);
    CHECK(id_of(timer_heap_pop_expired(&h, 1000)) == 0);
    CHECK(timer_heap_pop_expired(&h, 1000) == NULL && timer_heap_next(&h) == UINT64_MAX);
    timer_heap_deinit(&h);
    CHECK(h.nodes == NULL && h.len == 0 && h.cap == 0);
}

static void test_remove_and_reschedule(void)
{
    struct timer_heap h;
    timer_heap_init(&h);
    struct waiter w[7];
    for (int i = 0; i < 7; i++) {
        w[i] = (struct waiter){.id = i};
        timer_heap_push(&h, &w[i].node, (uint64_t)(10 * (i + 1)));
    }
    timer_heap_remove(&h, &w[0].node); /* the root */
    CHECK(heap_valid(&h) && timer_heap_next(&h) == 20 && !timer_heap_linked(&w[0].node));
    timer_heap_remove(&h, &w[0].node); /* twice: a no-op */
    CHECK(timer_heap_len(&h) == 6);
    timer_heap_remove(&h, &w[3].node); /* the middle */
    CHECK(heap_valid(&h) && timer_heap_len(&h) == 5);
    int gone = id_of(h.nodes[h.len - 1]);
    timer_heap_remove(&h, h.nodes[h.len - 1]); /* the last slot */
    CHECK(heap_valid(&h) && timer_heap_len(&h) == 4 && !timer_heap_linked(&w[gone].node));
    /* reschedule: one later than everything, another earlier; nothing allocated or duplicated */
    int early = gone == 6 ? 5 : 6;
    size_t cap = h.cap;
    CHECK(timer_heap_push(&h, &w[1].node, 1000) == SIOC_OK);
    CHECK(heap_valid(&h) && timer_heap_len(&h) == 4 && timer_heap_next(&h) == 30);
    CHECK(timer_heap_push(&h, &w[early].node, 5) == SIOC_OK);
    CHECK(heap_valid(&h) && timer_heap_len(&h) == 4 && timer_heap_next(&h) == 5 && h.cap == cap);
    int order[5], n = 0;
    struct timer_heap_node *x;
    while (n < 5 && (x = timer_heap_pop_expired(&h, 5000)) != NULL)
        order[n++] = id_of(x);
    CHECK(n == 4 && order[0] == early && order[3] == 1);
    for (int k = 1; k + 1 < n - 1; k++)
        CHECK(order[k] < order[k + 1]); /* the rest keep their deadlines: 10 * (id + 1) */
    timer_heap_deinit(&h);
}

/* The array grows for 1000 waiters and gives the memory back as they leave. */
static void test_shrinks(void)
{
    enum { N = 1000 };
    static struct waiter w[N];
    struct timer_heap h;
    timer_heap_init(&h);
    for (int i = 0; i < N; i++) {
        w[i] = (struct waiter){.id = i};
        CHECK(timer_heap_push(&h, &w[i].node, (uint64_t)(N - i)) == SIOC_OK);
    }
    CHECK(heap_valid(&h) && h.cap >= N);
    for (int i = 0; i < N - 3; i++)
        timer_heap_remove(&h, &w[i].node);
    CHECK(heap_valid(&h) && timer_heap_len(&h) == 3 && h.cap <= 16);
    CHECK(id_of(timer_heap_pop_expired(&h, UINT64_MAX)) == N - 1);
    timer_heap_deinit(&h);
}

/* Pseudo-random pushes, reschedules, removals and pops over 300 waiters with deadlines that
 * collide often; every pop must return the waiter with the smallest (deadline, push order), as
 * a linear scan of the model says, and the invariants must hold after every step. */
static void test_against_model(void)
{
    enum { N = 300 };
    static struct waiter w[N];
    static uint64_t at[N], seq[N];
    static bool in[N];
    struct timer_heap h;
    timer_heap_init(&h);
    uint64_t rng = 99, now = 0, order = 0;
    int bad = 0, invalid = 0;
    size_t count = 0;
    for (int i = 0; i < N; i++)
        w[i].id = i;
    for (int step = 0; step < 50000; step++) {
        rng = rng * 6364136223846793005u + 1442695040888963407u;
        int i = (int)((rng >> 33) % N);
        unsigned op = (unsigned)(rng >> 20) % 5;
        now += (rng >> 40) % 3;
        if (op <= 1) {
            uint64_t when = now + (rng >> 45) % 40;
            if (timer_heap_push(&h, &w[i].node, when) != SIOC_OK)
                bad++;
            count += !in[i];
            in[i] = true;
            at[i] = when;
            seq[i] = ++order;
        } else if (op == 2) {
            timer_heap_remove(&h, &w[i].node);
            count -= in[i];
            in[i] = false;
        } else {
            int want = -1;
            for (int k = 0; k < N; k++)
                if (in[k] && at[k] <= now &&
                    (want < 0 || at[k] < at[want] || (at[k] == at[want] && seq[k] < seq[want])))
                    want = k;
            if (id_of(timer_heap_pop_expired(&h, now)) != want)
                bad++;
            if (want >= 0) {
                in[want] = false;
                count--;
            }
        }
        uint64_t next = UINT64_MAX;
        for (int k = 0; k < N; k++)
            if (in[k] && at[k] < next)
                next = at[k];
        if (timer_heap_next(&h) != next || timer_heap_len(&h) != count)
            bad++;
        if (!heap_valid(&h))
            invalid++;
    }
    CHECK(bad == 0);
    CHECK(invalid == 0);
    timer_heap_deinit(&h);
}

int main(void)
{
    RUN(test_order_and_expiry);
    RUN(test_remove_and_reschedule);
    RUN(test_shrinks);
    RUN(test_against_model);
    return test_summary("test_timer_heap");
}
