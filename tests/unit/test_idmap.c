/* test_idmap.c: inserts, finds and removes thousands of ids through table growth. */
#include "common/error.h"
#include "common/idmap.h"
#include "tests/unit/test.h"

struct entry {
    struct idmap_node node;
    int value;
};

static void make_id(int i, char out[IDMAP_ID_LEN])
{
    char tmp[32];
    snprintf(tmp, sizeof tmp, "id%018d", i);
    memcpy(out, tmp, IDMAP_ID_LEN);
}

static void test_insert_find_remove(void)
{
    enum { N = 5000 };
    static struct entry entries[N];
    struct idmap m;
    CHECK(idmap_init(&m, 42) == SIOC_OK);
    char id[IDMAP_ID_LEN];
    for (int i = 0; i < N; i++) {
        make_id(i, id);
        entries[i].value = i;
        idmap_insert(&m, &entries[i].node, id);
    }
    CHECK(m.table.count == N && m.table.bucket_count >= N);
    for (int i = 0; i < N; i++) {
        make_id(i, id);
        struct idmap_node *n = idmap_find(&m, id, IDMAP_ID_LEN);
        CHECK(n != NULL && ((struct entry *)(void *)n)->value == i);
    }
    CHECK(idmap_find(&m, id, IDMAP_ID_LEN - 1) == NULL);
    for (int i = 0; i < N; i += 2)
        idmap_remove(&m, &entries[i].node);
    for (int i = 0; i < N; i++) {
        make_id(i, id);
        CHECK((idmap_find(&m, id, IDMAP_ID_LEN) != NULL) == (i % 2 == 1));
    }
    CHECK(m.table.count == N / 2);
    idmap_deinit(&m);
}

int main(void)
{
    RUN(test_insert_find_remove);
    return test_summary("test_idmap");
}
