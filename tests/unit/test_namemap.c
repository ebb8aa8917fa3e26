/* test_namemap.c: inserts, finds and removes thousands of names of every length (empty, with
 * NUL bytes, prefixes of each other) through table growth. */
#include "common/error.h"
#include "common/namemap.h"
#include "tests/unit/test.h"

struct entry {
    struct namemap_node node;
    char name[32];
    size_t len;
};

static void test_insert_find_remove(void)
{
    enum { N = 3000 };
    static struct entry entries[N];
    struct namemap m;
    CHECK(namemap_init(&m, 7) == SIOC_OK);
    for (int i = 0; i < N; i++) {
        /* "/n<i>" with a NUL in the middle for every third one; the first is the empty name */
        entries[i].len =
            i == 0 ? 0 : (size_t)snprintf(entries[i].name, sizeof entries[i].name, "/n%d", i);
        if (i % 3 == 0 && i > 0)
            entries[i].name[1] = '\0';
        namemap_insert(&m, &entries[i].node, entries[i].name, entries[i].len);
    }
    CHECK(m.table.count == N && m.table.bucket_count >= N);
    for (int i = 0; i < N; i++) {
        struct namemap_node *n = namemap_find(&m, entries[i].name, entries[i].len);
        CHECK(n == &entries[i].node);
    }
    CHECK(namemap_find(&m, "/n1", 2) == NULL); /* a prefix is another name */
    CHECK(namemap_find(&m, "/n10", 3) == &entries[1].node);
    CHECK(namemap_find(&m, "/n1\0", 4) == NULL); /* so is a longer one */
    for (int i = 0; i < N; i += 2)
        namemap_remove(&m, &entries[i].node);
    CHECK(m.table.count == N / 2);
    for (int i = 0; i < N; i++) {
        struct namemap_node *n = namemap_find(&m, entries[i].name, entries[i].len);
        CHECK(i % 2 == 0 ? n == NULL : n == &entries[i].node);
    }
    namemap_deinit(&m);
}

int main(void)
{
    RUN(test_insert_find_remove);
    return test_summary("test_namemap");
}
