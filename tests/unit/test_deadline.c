/* test_deadline.c: FIFO deadline lists: order, removal from any position, re-pushing, moving
 * between lists, expiry at the exact deadline, and a large interleaved workload checked
 * against the obvious model. */
#include "common/container.h"
#include "common/deadline.h"
#include "tests/unit/test.h"

struct waiter {
    int pad;
    struct deadline_node node; /* not first: container_of finds the waiter */
    int id;
};

static int id_of(struct deadline_node *n)
{
    return n != NULL ? container_of(n, struct waiter, node)->id : -1;
}

static void test_order_and_expiry(void)
{
    struct deadline_list l;
    deadline_list_init(&l, 100);
    struct waiter w[4] = {{.id = 0}, {.id = 1}, {.id = 2}, {.id = 3}};
    CHECK(deadline_next(&l) == UINT64_MAX);
    CHECK(deadline_pop_expired(&l, 1000000) == NULL);
    CHECK(!deadline_linked(&w[0].node));
    CHECK(deadline_push(&l, &w[0].node, 10) == 110);
    deadline_push(&l, &w[1].node, 20);
    deadline_push(&l, &w[2].node, 30);
    CHECK(deadline_linked(&w[1].node));
    CHECK(deadline_next(&l) == 110);
    CHECK(deadline_pop_expired(&l, 109) == NULL);     /* not yet */
    CHECK(id_of(deadline_pop_expired(&l, 110)) == 0); /* exactly at the deadline */
    CHECK(!deadline_linked(&w[0].node));
    deadline_push(&l, &w[1].node, 40); /* re-pushing moves it to the tail: 2 then 1 */
    CHECK(deadline_next(&l) == 130);
    CHECK(id_of(deadline_pop_expired(&l, 1000)) == 2);
    CHECK(id_of(deadline_pop_expired(&l, 1000)) == 1);
    CHECK(deadline_pop_expired(&l, 1000) == NULL && deadline_first(&l) == NULL &&
          deadline_count(&l) == 0);
}

static void test_remove_and_move(void)
{
    struct deadline_list a, b;
    deadline_list_init(&a, 10);
    deadline_list_init(&b, 1000);
    struct waiter w[3] = {{.id = 0}, {.id = 1}, {.id = 2}};
    for (int i = 0; i < 3; i++)
        deadline_push(&a, &w[i].node, (uint64_t)i);
    deadline_remove(&w[1].node); /* middle */
    deadline_remove(&w[1].node); /* twice: a no-op */
    CHECK(deadline_count(&a) == 2 && deadline_first(&a) == &w[0].node &&
          !deadline_linked(&w[1].node));
    deadline_push(&b, &w[0].node, 5); /* moves from a to b */
    CHECK(deadline_count(&a) == 1 && deadline_first(&a) == &w[2].node);
    CHECK(deadline_count(&b) == 1 && deadline_first(&b) == &w[0].node);
    CHECK(deadline_next(&b) == 1005 && deadline_next(&a) == 12);
    deadline_remove(&w[2].node); /* the last one: a is empty */
    CHECK(deadline_first(&a) == NULL && deadline_count(&a) == 0 && deadline_next(&a) == UINT64_MAX);
    deadline_remove(&w[0].node);
    CHECK(deadline_first(&b) == NULL && deadline_count(&b) == 0 && !deadline_linked(&w[0].node));
}

/* Pseudo-random pushes, removals and pops over 200 waiters; every pop must return the waiter
 * with the smallest (deadline, push order), and the list must hold exactly the waiters the model
 * says are waiting. */
static void test_against_model(void)
{
    enum { N = 200 };
    static struct waiter w[N];
    static uint64_t seq[N], at[N];
    static bool waiting[N];
    struct deadline_list l;
    deadline_list_init(&l, 50);
    uint64_t rng = 12345, now = 0, order = 0;
    int bad = 0;
    for (int i = 0; i < N; i++)
        w[i].id = i;
    for (int step = 0; step < 20000; step++) {
        rng = rng * 6364136223846793005u + 1442695040888963407u;
        int i = (int)((rng >> 33) % N);
        unsigned op = (unsigned)(rng >> 20) % 4;
        now += (rng >> 40) % 3;
        if (op <= 1) {
            if (deadline_push(&l, &w[i].node, now) != now + 50)
                bad++;
            seq[i] = ++order;
            at[i] = now + 50;
            waiting[i] = true;
        } else if (op == 2) {
            deadline_remove(&w[i].node);
            waiting[i] = false;
        } else {
            int want = -1;
            size_t count = 0;
            for (int k = 0; k < N; k++) {
                count += waiting[k];
                if (waiting[k] && at[k] <= now && (want < 0 || seq[k] < seq[want]))
                    want = k;
            }
            if (deadline_count(&l) != count)
                bad++;
            if (id_of(deadline_pop_expired(&l, now)) != want)
                bad++;
            if (want >= 0)
                waiting[want] = false;
        }
        if (deadline_linked(&w[i].node) != waiting[i])
            bad++;
    }
    CHECK(bad == 0);
}

int main(void)
{
    RUN(test_order_and_expiry);
    RUN(test_remove_and_move);
    RUN(test_against_model);
    return test_summary("test_deadline");
}
