/* test_random_pool.c: the id randomness pool: bytes are handed out once (the pool's copy is
 * wiped), refills happen when it runs dry, oversized requests are refused, and ids drawn from
 * it do not repeat and use every bit value. */
#include "gateway/random_pool.h"
#include "tests/unit/test.h"

static void test_take_refill_and_wipe(void)
{
    struct random_pool p;
    random_pool_init(&p);
    uint8_t a[12], b[12];
    CHECK(random_pool_take(&p, a, sizeof a));
    CHECK(p.used == sizeof a);
    static const uint8_t zero[12] = {0};
    CHECK(memcmp(p.buf, zero, sizeof zero) == 0); /* handed out: nothing left to read back */
    CHECK(random_pool_take(&p, b, sizeof b));
    CHECK(memcmp(a, b, sizeof a) != 0);
    /* drain to the end: the next take refills */
    while (RANDOM_POOL_BYTES - p.used >= sizeof a)
        CHECK(random_pool_take(&p, a, sizeof a));
    size_t left = RANDOM_POOL_BYTES - p.used;
    CHECK(left < sizeof a);
    CHECK(random_pool_take(&p, b, sizeof b));
    CHECK(p.used == sizeof b);
    uint8_t big[RANDOM_POOL_BYTES + 1];
    CHECK(!random_pool_take(&p, big, sizeof big));
    CHECK(random_pool_take(&p, big, RANDOM_POOL_BYTES)); /* exactly a whole pool is fine */
    random_pool_wipe(&p);
    CHECK(p.used == RANDOM_POOL_BYTES);
}

/* 20,000 twelve-byte ids (about 240 refills): no repeats, and each byte position takes both
 * values of every bit. */
static void test_ids_distinct(void)
{
    enum { N = 20000 };
    static uint8_t ids[N][12];
    struct random_pool p;
    random_pool_init(&p);
    uint8_t ones[12] = {0}, zeros[12] = {0};
    for (int i = 0; i < N; i++) {
        CHECK(random_pool_take(&p, ids[i], 12));
        for (int k = 0; k < 12; k++) {
            ones[k] |= ids[i][k];
            zeros[k] |= (uint8_t)~ids[i][k];
        }
    }
    int repeats = 0;
    for (int i = 1; i < N; i++)
        for (int j = i - 1; j >= 0 && j >= i - 200; j--)
            repeats += memcmp(ids[i], ids[j], 12) == 0;
    CHECK(repeats == 0);
    for (int k = 0; k < 12; k++)
        CHECK(ones[k] == 0xff && zeros[k] == 0xff);
}

int main(void)
{
    RUN(test_take_refill_and_wipe);
    RUN(test_ids_distinct);
    return test_summary("test_random_pool");
}
