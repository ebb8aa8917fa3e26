/* test_rooms.c: the room index against a naive model (a membership matrix) under tens of
 * thousands of random joins, leaves, member removals and selections, plus the delivery-set
 * cases of PROTOCOL.md 3.3 written out (union, except, all, socket-id rooms). */
#include "common/error.h"
#include "common/rooms.h"
#include "tests/unit/test.h"

#define MEMBERS 40
#define NAMES 12

struct model {
    bool present[MEMBERS];
    bool in[MEMBERS][NAMES];
};

struct visit_log {
    int count[MEMBERS];
    struct rooms_member *base;
};

static void record_cb(void *ctx, struct rooms_member *m)
{
    struct visit_log *log = ctx;
    log->count[(int)(intptr_t)m->owner]++;
}

static struct slice name_of(int k, char (*store)[8])
{
    int n = snprintf(store[k], sizeof store[k], "room%d", k);
    return (struct slice){(const uint8_t *)store[k], (size_t)n};
}

static uint32_t next_rand(uint32_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    return *state;
}

static void test_against_model(void)
{
    struct rooms *idx = rooms_new(0x1234);
    struct rooms_member members[MEMBERS];
    struct model model;
    char names[NAMES][8];
    memset(&model, 0, sizeof model);
    uint32_t rng = 2463534242u;
    for (int step = 0; step < 40000; step++) {
        int m = (int)(next_rand(&rng) % MEMBERS);
        int k = (int)(next_rand(&rng) % NAMES);
        struct slice name = name_of(k, names);
        switch (next_rand(&rng) % 6) {
        case 0:
            if (!model.present[m]) {
                CHECK(rooms_add_member(idx, &members[m], (void *)(intptr_t)m) == SIOC_OK);
                model.present[m] = true;
            }
            break;
        case 1:
            if (model.present[m] && next_rand(&rng) % 4 == 0) {
                rooms_remove_member(idx, &members[m]);
                model.present[m] = false;
                memset(model.in[m], 0, sizeof model.in[m]);
            }
            break;
        case 2:
        case 3:
            if (model.present[m]) {
                CHECK(rooms_join(idx, &members[m], name.p, name.len) == SIOC_OK);
                model.in[m][k] = true;
            }
            break;
        case 4:
            if (model.present[m]) {
                CHECK(rooms_leave(idx, &members[m], name.p, name.len) == model.in[m][k]);
                model.in[m][k] = false;
            }
            break;
        case 5: {
            struct slice sel[3], exc[2];
            size_t nsel = next_rand(&rng) % 4, nexc = next_rand(&rng) % 3;
            char store[5][NAMES][8];
            int selk[3], exck[2];
            for (size_t i = 0; i < nsel; i++)
                sel[i] = name_of(selk[i] = (int)(next_rand(&rng) % NAMES), store[i]);
            for (size_t i = 0; i < nexc; i++)
                exc[i] = name_of(exck[i] = (int)(next_rand(&rng) % NAMES), store[3 + i]);
            struct visit_log log;
            memset(&log, 0, sizeof log);
            size_t visited = rooms_select(idx, sel, nsel, exc, nexc, record_cb, &log);
            size_t expected_total = 0;
            for (int x = 0; x < MEMBERS; x++) {
                bool want = model.present[x];
                if (want && nsel > 0) {
                    want = false;
                    for (size_t i = 0; i < nsel; i++)
                        want = want || model.in[x][selk[i]];
                }
                for (size_t i = 0; want && i < nexc; i++)
                    want = !model.in[x][exck[i]];
                CHECK(log.count[x] == (want ? 1 : 0));
                expected_total += want;
            }
            CHECK(visited == expected_total);
            break;
        }
        }
        if (step % 1000 == 0) {
            size_t present = 0, rooms_used = 0;
            for (int x = 0; x < MEMBERS; x++)
                present += model.present[x];
            for (int kk = 0; kk < NAMES; kk++) {
                size_t size = 0;
                for (int x = 0; x < MEMBERS; x++)
                    size += model.in[x][kk];
                struct slice nm = name_of(kk, names);
                CHECK(rooms_size(idx, nm.p, nm.len) == size);
                rooms_used += size > 0;
            }
            CHECK(rooms_member_count(idx) == present);
            CHECK(rooms_room_count(idx) == rooms_used);
        }
    }
    for (int x = 0; x < MEMBERS; x++) {
        if (model.present[x])
            rooms_remove_member(idx, &members[x]);
    }
    CHECK(rooms_room_count(idx) == 0);
    rooms_free(idx);
}

struct names_seen {
    char text[256];
};

static void name_cb(void *ctx, const uint8_t *name, size_t len, size_t size)
{
    struct names_seen *seen = ctx;
    size_t used = strlen(seen->text);
    snprintf(seen->text + used, sizeof seen->text - used, "%.*s=%zu;", (int)len, name, size);
}

/* socket.to("room1").emit: rooms [room1], except [own id] (PROTOCOL.md 3.3) */
static void test_broadcast_shapes(void)
{
    struct rooms *idx = rooms_new(7);
    struct rooms_member a, b, c;
    rooms_add_member(idx, &a, (void *)(intptr_t)0);
    rooms_add_member(idx, &b, (void *)(intptr_t)1);
    rooms_add_member(idx, &c, (void *)(intptr_t)2);
    rooms_join(idx, &a, "AAAAAAAAAAAAAAAAAAAA", 20);
    rooms_join(idx, &b, "BBBBBBBBBBBBBBBBBBBB", 20);
    rooms_join(idx, &c, "CCCCCCCCCCCCCCCCCCCC", 20);
    rooms_join(idx, &a, "room1", 5);
    rooms_join(idx, &b, "room1", 5);
    rooms_join(idx, &b, "room1", 5); /* idempotent */
    rooms_join(idx, &c, "room2", 5);
    CHECK(rooms_size(idx, "room1", 5) == 2);
    CHECK(a.room_count == 2 && b.room_count == 2);

    struct visit_log log;
    struct slice room1 = {(const uint8_t *)"room1", 5}, room2 = {(const uint8_t *)"room2", 5};
    struct slice a_id = {(const uint8_t *)"AAAAAAAAAAAAAAAAAAAA", 20};
    struct slice both[2] = {room1, room2};
    memset(&log, 0, sizeof log);
    CHECK(rooms_select(idx, &room1, 1, &a_id, 1, record_cb, &log) == 1 && log.count[1] == 1);
    memset(&log, 0, sizeof log);
    CHECK(rooms_select(idx, both, 2, NULL, 0, record_cb, &log) == 3);
    memset(&log, 0, sizeof log);
    CHECK(rooms_select(idx, NULL, 0, &room1, 1, record_cb, &log) == 1 && log.count[2] == 1);
    memset(&log, 0, sizeof log);
    CHECK(rooms_select(idx, NULL, 0, NULL, 0, record_cb, &log) == 3);
    struct slice nowhere = {(const uint8_t *)"nowhere", 7};
    CHECK(rooms_select(idx, &nowhere, 1, NULL, 0, record_cb, &log) == 0);

    CHECK(rooms_is_member(idx, &a, "room1", 5) && !rooms_is_member(idx, &c, "room1", 5));
    CHECK(rooms_leave(idx, &c, "room2", 5) && !rooms_leave(idx, &c, "room2", 5));
    CHECK(rooms_size(idx, "room2", 5) == 0 && rooms_room_count(idx) == 4);

    struct names_seen seen = {""};
    rooms_each_of_member(&b, name_cb, &seen);
    CHECK(strstr(seen.text, "room1=2;") != NULL &&
          strstr(seen.text, "BBBBBBBBBBBBBBBBBBBB=1;") != NULL);
    memset(&seen, 0, sizeof seen);
    rooms_each_room(idx, name_cb, &seen);
    CHECK(strlen(seen.text) == strlen("room1=2;") + 3 * strlen("AAAAAAAAAAAAAAAAAAAA=1;"));

    static char long_name[ROOMS_MAX_NAME + 1];
    CHECK(rooms_join(idx, &a, long_name, sizeof long_name) == SIOC_ETOOBIG);
    CHECK(rooms_join(idx, &a, "", 0) == SIOC_OK && rooms_size(idx, "", 0) == 1);
    rooms_remove_member(idx, &a);
    rooms_remove_member(idx, &b);
    rooms_remove_member(idx, &c);
    rooms_free(idx);
    rooms_free(NULL);
}

/* Many rooms force the hash table to grow; every room stays findable. */
static void test_many_rooms(void)
{
    struct rooms *idx = rooms_new(99);
    struct rooms_member m;
    rooms_add_member(idx, &m, NULL);
    char name[32];
    for (int i = 0; i < 5000; i++) {
        int n = snprintf(name, sizeof name, "r%d", i);
        CHECK(rooms_join(idx, &m, name, (size_t)n) == SIOC_OK);
    }
    CHECK(rooms_room_count(idx) == 5000 && m.room_count == 5000);
    for (int i = 0; i < 5000; i += 7) {
        int n = snprintf(name, sizeof name, "r%d", i);
        CHECK(rooms_size(idx, name, (size_t)n) == 1);
    }
    rooms_remove_member(idx, &m);
    CHECK(rooms_room_count(idx) == 0);
    rooms_free(idx);
}

/* rooms_set_watch: one "created" per room on its first member, one "deleted" when the last
 * goes, by leave or by removal; the index is consistent at each call. */
struct watch_log {
    struct rooms *idx;
    int created, deleted;
    char last[16];
    size_t size_at_call;
};

static void watch_cb(void *ctx, const uint8_t *name, size_t len, bool created)
{
    struct watch_log *w = ctx;
    *(created ? &w->created : &w->deleted) += 1;
    snprintf(w->last, sizeof w->last, "%.*s", (int)len, (const char *)name);
    w->size_at_call = rooms_size(w->idx, name, len);
}

static void test_watch(void)
{
    struct rooms *idx = rooms_new(7);
    struct watch_log w = {.idx = idx};
    rooms_set_watch(idx, watch_cb, &w);
    struct rooms_member a, b;
    rooms_add_member(idx, &a, NULL);
    rooms_add_member(idx, &b, NULL);
    CHECK(rooms_join(idx, &a, "x", 1) == SIOC_OK);
    CHECK(w.created == 1 && strcmp(w.last, "x") == 0 && w.size_at_call == 1);
    CHECK(rooms_join(idx, &b, "x", 1) == SIOC_OK && rooms_join(idx, &a, "x", 1) == SIOC_OK);
    CHECK(w.created == 1 && w.deleted == 0);
    CHECK(rooms_leave(idx, &a, "x", 1));
    CHECK(w.deleted == 0);
    CHECK(rooms_join(idx, &b, "yy", 2) == SIOC_OK && w.created == 2);
    rooms_remove_member(idx, &b); /* empties x and yy */
    CHECK(w.deleted == 2);
    CHECK(!rooms_leave(idx, &a, "x", 1) && w.deleted == 2);
    CHECK(rooms_join(idx, &a, "x", 1) == SIOC_OK && w.created == 3);
    rooms_set_watch(idx, NULL, NULL);
    CHECK(rooms_leave(idx, &a, "x", 1) && w.deleted == 2);
    rooms_remove_member(idx, &a);
    rooms_free(idx);
}

int main(void)
{
    RUN(test_watch);
    RUN(test_against_model);
    RUN(test_broadcast_shapes);
    RUN(test_many_rooms);
    return test_summary("test_rooms");
}
