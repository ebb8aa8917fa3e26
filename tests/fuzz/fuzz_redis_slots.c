/* fuzz_redis_slots.c: libFuzzer target for common/redis_slots. The input is taken as a key (its
 * slot must be < 16384 and equal the slot of its hash tag when it has one), as a MOVED/ASK error
 * text (a success gives a slot < 16384, a port in 1..65535 and a NUL-free host that, printed
 * back with the slot, parses to the same result), as a command split on 0x00 bytes (a keyed
 * route names an argument that exists), and as slot-map assignments (the owner of every
 * assigned slot is the node named last for it). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/redis_slots.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_redis_slots: %s:%d: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void fuzz_slot(const uint8_t *data, size_t size)
{
    unsigned slot = redis_key_slot(data, size);
    REQUIRE(slot < REDIS_SLOTS);
    const uint8_t *open = memchr(data, '{', size);
    if (open == NULL)
        return;
    const uint8_t *close = memchr(open + 1, '}', size - (size_t)(open + 1 - data));
    if (close != NULL && close > open + 1)
        REQUIRE(slot == (redis_crc16(open + 1, (size_t)(close - open - 1)) & (REDIS_SLOTS - 1)));
}

static void fuzz_redirect(const uint8_t *data, size_t size)
{
    struct redis_redirect r, again;
    enum redis_redirect_kind k = redis_redirect_parse((const char *)data, size, &r);
    if (k == REDIS_REDIRECT_NONE)
        return;
    REQUIRE(r.slot < REDIS_SLOTS && r.port >= 1 && r.port <= 65535);
    REQUIRE(memchr(r.host, '\0', sizeof r.host) != NULL);
    char text[400];
    int n = snprintf(text, sizeof text, "%s %u %s:%d", k == REDIS_REDIRECT_MOVED ? "MOVED" : "ASK",
                     r.slot, r.host, r.port);
    REQUIRE(n > 0 && (size_t)n < sizeof text);
    REQUIRE(redis_redirect_parse(text, (size_t)n, &again) == k);
    REQUIRE(again.slot == r.slot && again.port == r.port && strcmp(again.host, r.host) == 0);
}

static void fuzz_route(const uint8_t *data, size_t size)
{
    const char *argv[32];
    size_t lens[32];
    int argc = 0;
    size_t start = 0;
    for (size_t i = 0; i <= size && argc < 32; i++) {
        if (i == size || data[i] == 0) {
            argv[argc] = (const char *)data + start;
            lens[argc++] = i - start;
            start = i + 1;
        }
    }
    int index = -1;
    enum redis_route_kind k = redis_command_route(argc, argv, lens, &index);
    if (k == REDIS_ROUTE_KEY)
        REQUIRE(index >= 1 && index < argc);
}

static void fuzz_map(const uint8_t *data, size_t size)
{
    static struct redis_slot_map map;
    static uint8_t want[REDIS_SLOTS];
    redis_slot_map_clear(&map);
    memset(want, 0, sizeof want);
    for (size_t i = 0; i + 5 <= size; i += 5) {
        unsigned first = ((unsigned)data[i] << 8 | data[i + 1]) & 0x7fff;
        unsigned last = ((unsigned)data[i + 2] << 8 | data[i + 3]) & 0x7fff;
        char host[8];
        snprintf(host, sizeof host, "n%u", data[i + 4] % 200u);
        int idx = redis_slot_map_assign(&map, first, last, host, 6379);
        if (idx < 0)
            continue;
        REQUIRE(first <= last && last < REDIS_SLOTS);
        memset(want + first, idx + 1, last - first + 1);
    }
    for (unsigned s = 0; s < REDIS_SLOTS; s++)
        REQUIRE(redis_slot_map_owner(&map, s) == (int)want[s] - 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_slot(data, size);
    fuzz_redirect(data, size);
    fuzz_route(data, size);
    fuzz_map(data, size);
    return 0;
}
