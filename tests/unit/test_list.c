/* test_list.c: the intrusive list (common/list.h): order of pushes at both ends, removal from
 * any position and twice, removal while iterating, splicing, and a long random workload checked
 * against an array model. */
#include "common/list.h"
#include "tests/unit/test.h"

struct item {
    int pad;
    struct list_node node; /* not first: list_entry finds the item */
    int id;
};

/* The ids on `head` in order, written to out[0..n); returns n (at most max). */
static size_t ids(const struct list_node *head, int *out, size_t max)
{
    size_t n = 0;
    for (const struct list_node *p = head->next; p != head && n < max; p = p->next)
        out[n++] = list_entry(p, struct item, node)->id;
    return n;
}

static void test_push_and_remove(void)
{
    struct list_node head;
    list_init(&head);
    struct item it[4] = {{.id = 0}, {.id = 1}, {.id = 2}, {.id = 3}};
    CHECK(list_empty(&head) && list_first(&head) == NULL);
    CHECK(!list_linked(&it[0].node));
    list_remove(&it[0].node); /* in no list: a no-op */
    list_push_tail(&head, &it[1].node);
    list_push_tail(&head, &it[2].node);
    list_push_head(&head, &it[0].node);
    list_insert_before(&it[2].node, &it[3].node);
    int got[8];
    CHECK(ids(&head, got, 8) == 4 && got[0] == 0 && got[1] == 1 && got[2] == 3 && got[3] == 2);
    CHECK(list_entry(list_first(&head), struct item, node) == &it[0]);
    list_remove(&it[3].node); /* middle */
    list_remove(&it[3].node); /* twice */
    CHECK(!list_linked(&it[3].node) && it[3].node.prev == NULL);
    list_remove(&it[0].node); /* first */
    list_remove(&it[2].node); /* last */
    CHECK(ids(&head, got, 8) == 1 && got[0] == 1 && head.next == head.prev);
    list_remove(&it[1].node);
    CHECK(list_empty(&head) && head.next == &head && head.prev == &head);
}

static void test_iterate_and_free(void)
{
    struct list_node head, *pos, *tmp;
    list_init(&head);
    for (int i = 0; i < 10; i++) {
        struct item *x = calloc(1, sizeof *x);
        x->id = i;
        list_push_tail(&head, &x->node);
    }
    int seen = 0, sum = 0;
    list_for_each_safe(pos, tmp, &head)
    {
        struct item *x = list_entry(pos, struct item, node);
        seen++;
        if (x->id % 2 == 0) { /* remove and free while iterating */
            list_remove(pos);
            free(x);
        }
    }
    int got[16];
    size_t n = ids(&head, got, 16);
    for (size_t i = 0; i < n; i++)
        sum += got[i];
    CHECK(seen == 10 && n == 5 && got[0] == 1 && got[4] == 9 && sum == 25);
    list_for_each_safe(pos, tmp, &head)
    {
        list_remove(pos);
        free(list_entry(pos, struct item, node));
    }
    CHECK(list_empty(&head));
}

static void test_splice(void)
{
    struct list_node a, b;
    list_init(&a);
    list_init(&b);
    struct item it[5] = {{.id = 0}, {.id = 1}, {.id = 2}, {.id = 3}, {.id = 4}};
    list_splice_tail(&a, &b); /* both empty */
    CHECK(list_empty(&a) && list_empty(&b));
    list_push_tail(&a, &it[0].node);
    list_push_tail(&b, &it[1].node);
    list_push_tail(&b, &it[2].node);
    list_splice_tail(&a, &b);
    int got[8];
    CHECK(ids(&a, got, 8) == 3 && got[0] == 0 && got[1] == 1 && got[2] == 2 && list_empty(&b));
    CHECK(a.prev == &it[2].node && it[2].node.next == &a);
    list_push_tail(&b, &it[3].node);
    list_push_tail(&b, &it[4].node);
    struct list_node c;
    list_init(&c);
    list_splice_tail(&c, &b); /* into an empty list */
    CHECK(ids(&c, got, 8) == 2 && got[0] == 3 && got[1] == 4 && c.prev == &it[4].node);
}

static void test_against_model(void)
{
    enum { N = 64 };
    struct item it[N];
    memset(it, 0, sizeof it);
    int model[N], len = 0, bad = 0;
    struct list_node head;
    list_init(&head);
    srand(7);
    for (int i = 0; i < N; i++)
        it[i].id = i;
    for (int step = 0; step < 20000; step++) {
        int k = rand() % N, op = rand() % 3;
        int at = -1;
        for (int j = 0; j < len; j++)
            if (model[j] == k)
                at = j;
        if (op == 0 && at < 0) {
            list_push_tail(&head, &it[k].node);
            model[len++] = k;
        } else if (op == 1 && at < 0) {
            list_push_head(&head, &it[k].node);
            memmove(model + 1, model, (size_t)len * sizeof model[0]);
            model[0] = k;
            len++;
        } else if (op == 2) {
            list_remove(&it[k].node);
            if (at >= 0) {
                memmove(model + at, model + at + 1, (size_t)(len - at - 1) * sizeof model[0]);
                len--;
            }
        }
        bool in_model = false;
        for (int j = 0; j < len; j++)
            in_model |= model[j] == k;
        if (list_linked(&it[k].node) != in_model)
            bad++;
        int got[N];
        size_t n = ids(&head, got, N);
        if (n != (size_t)len || memcmp(got, model, n * sizeof got[0]) != 0)
            bad++;
    }
    CHECK(bad == 0);
}

int main(void)
{
    RUN(test_push_and_remove);
    RUN(test_iterate_and_free);
    RUN(test_splice);
    RUN(test_against_model);
    return test_summary("test_list");
}
