/* test_counted_list.c: the counted list (common/counted_list.h): order and counts after pushes
 * at both ends, removal, pops, moving a whole list in front of another (the Redis queues'
 * "retries go first"), and a random workload checked against an array model. */
#include <stdbool.h>

#include "common/counted_list.h"
#include "tests/unit/test.h"

struct entry {
    int pad;
    struct counted_node node; /* not first: list_entry finds the entry */
    int id;
};

/* The ids on `l` in order, written to out[0..n); returns n (at most max). */
static size_t ids(const struct counted_list *l, int *out, size_t max)
{
    size_t n = 0;
    for (const struct list_node *p = l->head.next; p != &l->head && n < max; p = p->next)
        out[n++] = list_entry(p, struct entry, node.link)->id;
    return n;
}

static int id_of(struct counted_node *n)
{
    return n != NULL ? container_of(n, struct entry, node)->id : -1;
}

static void test_push_remove_pop(void)
{
    struct counted_list l;
    counted_list_init(&l);
    struct entry e[3] = {
        {.id = 0, .node.bytes = 10}, {.id = 1, .node.bytes = 20}, {.id = 2, .node.bytes = 300}};
    CHECK(counted_list_first(&l) == NULL && counted_list_pop_head(&l) == NULL);
    CHECK(l.count == 0 && l.bytes == 0);
    counted_list_push_tail(&l, &e[1].node);
    counted_list_push_tail(&l, &e[2].node);
    counted_list_push_head(&l, &e[0].node);
    int got[8];
    CHECK(ids(&l, got, 8) == 3 && got[0] == 0 && got[1] == 1 && got[2] == 2);
    CHECK(l.count == 3 && l.bytes == 330 && id_of(counted_list_first(&l)) == 0);
    counted_list_remove(&l, &e[1].node); /* the middle */
    CHECK(l.count == 2 && l.bytes == 310 && !list_linked(&e[1].node.link));
    CHECK(id_of(counted_list_pop_head(&l)) == 0 && l.count == 1 && l.bytes == 300);
    CHECK(!list_linked(&e[0].node.link) && id_of(counted_list_first(&l)) == 2);
    CHECK(id_of(counted_list_pop_head(&l)) == 2 && l.count == 0 && l.bytes == 0);
    CHECK(counted_list_pop_head(&l) == NULL && list_empty(&l.head));
}

static void test_splice_head(void)
{
    struct counted_list dst, src;
    counted_list_init(&dst);
    counted_list_init(&src);
    struct entry e[5];
    for (int i = 0; i < 5; i++)
        e[i] = (struct entry){.id = i, .node.bytes = (size_t)1 << i};
    counted_list_splice_head(&dst, &src); /* both empty */
    CHECK(list_empty(&dst.head) && list_empty(&src.head) && dst.count == 0 && src.count == 0);
    counted_list_push_tail(&src, &e[0].node);
    counted_list_push_tail(&src, &e[1].node);
    counted_list_splice_head(&dst, &src); /* into an empty list */
    int got[8];
    CHECK(ids(&dst, got, 8) == 2 && got[0] == 0 && got[1] == 1 && dst.count == 2 && dst.bytes == 3);
    CHECK(list_empty(&src.head) && src.count == 0 && src.bytes == 0);
    counted_list_splice_head(&dst, &src); /* an empty one in front: nothing changes */
    CHECK(ids(&dst, got, 8) == 2 && got[0] == 0 && got[1] == 1 && dst.count == 2);
    counted_list_push_tail(&src, &e[2].node);
    counted_list_push_tail(&src, &e[3].node);
    counted_list_push_tail(&src, &e[4].node);
    counted_list_splice_head(&dst, &src); /* both non-empty: src's in front, in order */
    CHECK(ids(&dst, got, 8) == 5 && got[0] == 2 && got[1] == 3 && got[2] == 4 && got[3] == 0 &&
          got[4] == 1);
    CHECK(dst.count == 5 && dst.bytes == 31 && src.count == 0 && src.bytes == 0);
    CHECK(list_empty(&src.head) && dst.head.prev == &e[1].node.link &&
          e[1].node.link.next == &dst.head && e[4].node.link.next == &e[0].node.link);
}

/* Random pushes at both ends, removals, pops and splices over two lists, each step checked
 * against two arrays: order, count and bytes. */
static void test_against_model(void)
{
    enum { N = 48 };
    struct entry e[N];
    memset(e, 0, sizeof e);
    int model[2][N], len[2] = {0, 0}, where[N], bad = 0;
    struct counted_list l[2];
    counted_list_init(&l[0]);
    counted_list_init(&l[1]);
    srand(11);
    for (int i = 0; i < N; i++) {
        e[i].id = i;
        e[i].node.bytes = (size_t)(i * 7 + 1);
        where[i] = -1;
    }
    for (int step = 0; step < 20000; step++) {
        int k = rand() % N, op = rand() % 5, w = rand() % 2;
        if (op <= 1 && where[k] < 0) { /* push at the tail (0) or head (1) of l[w] */
            if (op == 0) {
                counted_list_push_tail(&l[w], &e[k].node);
                model[w][len[w]++] = k;
            } else {
                counted_list_push_head(&l[w], &e[k].node);
                memmove(model[w] + 1, model[w], (size_t)len[w] * sizeof(int));
                model[w][0] = k;
                len[w]++;
            }
            where[k] = w;
        } else if (op == 2 && where[k] >= 0) {
            int v = where[k], at = 0;
            while (model[v][at] != k)
                at++;
            counted_list_remove(&l[v], &e[k].node);
            memmove(model[v] + at, model[v] + at + 1, (size_t)(len[v] - at - 1) * sizeof(int));
            len[v]--;
            where[k] = -1;
        } else if (op == 3) {
            int want = len[w] > 0 ? model[w][0] : -1;
            if (id_of(counted_list_pop_head(&l[w])) != want)
                bad++;
            if (want >= 0) {
                memmove(model[w], model[w] + 1, (size_t)(len[w] - 1) * sizeof(int));
                len[w]--;
                where[want] = -1;
            }
        } else if (op == 4 && rand() % 8 == 0) { /* l[!w] in front of l[w] */
            int v = !w;
            memmove(model[w] + len[v], model[w], (size_t)len[w] * sizeof(int));
            memcpy(model[w], model[v], (size_t)len[v] * sizeof(int));
            for (int j = 0; j < len[v]; j++)
                where[model[v][j]] = w;
            len[w] += len[v];
            len[v] = 0;
            counted_list_splice_head(&l[w], &l[v]);
        }
        for (int v = 0; v < 2; v++) {
            int got[N];
            size_t bytes = 0, n = ids(&l[v], got, N);
            for (int j = 0; j < len[v]; j++)
                bytes += e[model[v][j]].node.bytes;
            if (n != (size_t)len[v] || memcmp(got, model[v], n * sizeof(int)) != 0 ||
                l[v].count != (size_t)len[v] || l[v].bytes != bytes)
                bad++;
        }
    }
    CHECK(bad == 0);
}

int main(void)
{
    RUN(test_push_remove_pop);
    RUN(test_splice_head);
    RUN(test_against_model);
    return test_summary("test_counted_list");
}
