/* mp_nav.h: reading the golden captures files in the adapter codec tests (test_adapter.c,
 * test_cluster_msg.c): each file is JSON turned into MessagePack once with json_to_msgpack, then
 * walked with these. Every slice points into the MessagePack bytes it was given. (Plain static:
 * inlined, gcc -O2 reports slices a short-circuited CHECK left unset as maybe-uninitialized.) */
#ifndef SIOC_TESTS_MP_NAV_H
#define SIOC_TESTS_MP_NAV_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "common/mp.h"

/* The value of `key` in the map `map` in *val; false ({NULL, 0} in *val) when map is not a map
 * or lacks the key. */
static bool mp_find(struct slice map, const char *key, struct slice *val)
{
    struct mp_reader r;
    struct mp_item it;
    *val = (struct slice){NULL, 0};
    mp_reader_init(&r, map.p, map.len);
    if (mp_read(&r, &it) != SIOC_OK || it.kind != MP_MAP)
        return false;
    for (uint32_t i = 0; i < it.len; i++) {
        struct mp_item k;
        if (mp_read(&r, &k) != SIOC_OK)
            return false;
        size_t start = r.pos;
        if (mp_skip(&r) != SIOC_OK)
            return false;
        if (mp_item_is_str(&k, key)) {
            *val = (struct slice){map.p + start, r.pos - start};
            return true;
        }
    }
    return false;
}

/* Element `idx` of the array `arr` in *val; false ({NULL, 0} in *val) when out of range or not
 * an array. */
static bool mp_at(struct slice arr, uint32_t idx, struct slice *val)
{
    struct mp_reader r;
    struct mp_item it;
    *val = (struct slice){NULL, 0};
    mp_reader_init(&r, arr.p, arr.len);
    if (mp_read(&r, &it) != SIOC_OK || it.kind != MP_ARRAY || idx >= it.len)
        return false;
    for (uint32_t i = 0; i < idx; i++)
        if (mp_skip(&r) != SIOC_OK)
            return false;
    size_t start = r.pos;
    if (mp_skip(&r) != SIOC_OK)
        return false;
    *val = (struct slice){arr.p + start, r.pos - start};
    return true;
}

/* An array's element count or a map's pair count (0 for anything else). */
static uint32_t mp_count(struct slice v)
{
    struct mp_reader r;
    struct mp_item it;
    mp_reader_init(&r, v.p, v.len);
    return mp_read(&r, &it) == SIOC_OK ? it.len : 0;
}

/* A string's bytes; {NULL, 0} for any other kind. */
static struct slice mp_str(struct slice v)
{
    struct mp_reader r;
    struct mp_item it;
    mp_reader_init(&r, v.p, v.len);
    if (mp_read(&r, &it) == SIOC_OK && it.kind == MP_STR)
        return (struct slice){it.data, it.len};
    return (struct slice){NULL, 0};
}

/* An integer's value; -999 for anything that is not one. */
static int64_t mp_int(struct slice v)
{
    struct mp_reader r;
    struct mp_item it;
    int64_t x = -999;
    mp_reader_init(&r, v.p, v.len);
    if (mp_read(&r, &it) == SIOC_OK)
        mp_item_to_i64(&it, &x);
    return x;
}

#endif
