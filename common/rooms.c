/* rooms.c: room index with O(1) join/leave (swap-remove arrays), a chained hash of room names,
 * and mark-based delivery sets (see rooms.h). */
#include "common/rooms.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

struct rooms_room {
    struct rooms_room *next; /* hash chain */
    uint64_t hash;
    struct rooms_link **members; /* cache-friendly iteration for broadcasts; &one at first */
    struct rooms_link *one;      /* the array of a one-member room (every socket's own room) */
    uint32_t count;
    uint32_t cap;
    uint32_t name_len;
    uint8_t name[];
};

struct rooms {
    uint64_t seed;
    struct rooms_room **buckets;
    size_t bucket_count; /* a power of two */
    size_t room_count;
    struct rooms_member **all;
    uint32_t all_count;
    uint32_t all_cap;
    uint64_t epoch;
    rooms_watch_cb watch; /* rooms_set_watch */
    void *watch_ctx;
};

/* FNV-1a 64 keyed by the seed, then a final avalanche so the low bits used as bucket index
 * depend on every byte. Room names come from workers and emitters, not directly from clients. */
static uint64_t hash_name(uint64_t seed, const uint8_t *p, size_t n)
{
    uint64_t h = 14695981039346656037ull ^ seed;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

struct rooms *rooms_new(uint64_t seed)
{
    struct rooms *idx = calloc(1, sizeof *idx);
    if (idx == NULL)
        return NULL;
    idx->seed = seed;
    idx->bucket_count = 16;
    idx->buckets = calloc(idx->bucket_count, sizeof *idx->buckets);
    if (idx->buckets == NULL) {
        free(idx);
        return NULL;
    }
    return idx;
}

void rooms_free(struct rooms *idx)
{
    if (idx == NULL)
        return;
    assert(idx->all_count == 0 && idx->room_count == 0);
    free(idx->buckets);
    free(idx->all);
    free(idx);
}

static struct rooms_room *find_room(const struct rooms *idx, const void *name, size_t len,
                                    uint64_t hash)
{
    struct rooms_room *r = idx->buckets[hash & (idx->bucket_count - 1)];
    for (; r != NULL; r = r->next) {
        if (r->hash == hash && r->name_len == len && memcmp(r->name, name, len) == 0)
            return r;
    }
    return NULL;
}

static void grow_buckets(struct rooms *idx)
{
    size_t count = idx->bucket_count * 2;
    struct rooms_room **buckets = calloc(count, sizeof *buckets);
    if (buckets == NULL)
        return; /* keep the old table: longer chains, still correct */
    for (size_t i = 0; i < idx->bucket_count; i++) {
        struct rooms_room *r = idx->buckets[i];
        while (r != NULL) {
            struct rooms_room *next = r->next;
            r->next = buckets[r->hash & (count - 1)];
            buckets[r->hash & (count - 1)] = r;
            r = next;
        }
    }
    free(idx->buckets);
    idx->buckets = buckets;
    idx->bucket_count = count;
}

static void link_free(struct rooms_member *m, struct rooms_link *link)
{
    if (link == &m->first)
        link->room = NULL; /* free for the next join */
    else
        free(link);
}

void rooms_set_watch(struct rooms *idx, rooms_watch_cb cb, void *ctx)
{
    idx->watch = cb;
    idx->watch_ctx = ctx;
}

static void delete_room(struct rooms *idx, struct rooms_room *room)
{
    if (idx->watch != NULL)
        idx->watch(idx->watch_ctx, room->name, room->name_len, false);
    struct rooms_room **pp = &idx->buckets[room->hash & (idx->bucket_count - 1)];
    while (*pp != room)
        pp = &(*pp)->next;
    *pp = room->next;
    idx->room_count--;
    if (room->members != &room->one)
        free(room->members);
    free(room);
}

/* Takes `link` out of its room's member array (swap-remove) and deletes an emptied room. */
static void unlink_from_room(struct rooms *idx, struct rooms_link *link)
{
    struct rooms_room *room = link->room;
    struct rooms_link *last = room->members[--room->count];
    room->members[link->index_in_room] = last;
    last->index_in_room = link->index_in_room;
    if (room->count == 0)
        delete_room(idx, room);
}

int rooms_add_member(struct rooms *idx, struct rooms_member *m, void *owner)
{
    if (idx->all_count == idx->all_cap) {
        uint32_t cap = idx->all_cap ? idx->all_cap * 2 : 64;
        struct rooms_member **all = realloc(idx->all, cap * sizeof *all);
        if (all == NULL)
            return SIOC_ENOMEM;
        idx->all = all;
        idx->all_cap = cap;
    }
    memset(m, 0, sizeof *m);
    m->owner = owner;
    m->all_index = idx->all_count;
    idx->all[idx->all_count++] = m;
    return SIOC_OK;
}

void rooms_remove_member(struct rooms *idx, struct rooms_member *m)
{
    struct rooms_link *link = m->links;
    while (link != NULL) {
        struct rooms_link *next = link->next_of_member;
        unlink_from_room(idx, link);
        link_free(m, link);
        link = next;
    }
    m->links = NULL;
    m->room_count = 0;
    struct rooms_member *last = idx->all[--idx->all_count];
    idx->all[m->all_index] = last;
    last->all_index = m->all_index;
}

int rooms_join(struct rooms *idx, struct rooms_member *m, const void *name, size_t len)
{
    if (len > ROOMS_MAX_NAME)
        return SIOC_ETOOBIG;
    uint64_t hash = hash_name(idx->seed, name, len);
    struct rooms_room *room = find_room(idx, name, len, hash);
    if (room != NULL) {
        for (struct rooms_link *l = m->links; l != NULL; l = l->next_of_member) {
            if (l->room == room)
                return SIOC_OK; /* already a member: Socket.IO's join is idempotent */
        }
    }
    /* the member's first room (its own id room, for a socket) needs no allocation */
    struct rooms_link *link = m->first.room == NULL ? &m->first : malloc(sizeof *link);
    if (link == NULL)
        return SIOC_ENOMEM;
    bool created = false;
    if (room == NULL) {
        room = calloc(1, sizeof *room + (len ? len : 1));
        if (room == NULL) {
            link_free(m, link);
            return SIOC_ENOMEM;
        }
        room->members = &room->one;
        room->cap = 1;
        room->hash = hash;
        room->name_len = (uint32_t)len;
        memcpy(room->name, name, len);
        created = true;
    }
    if (room->count == room->cap) {
        uint32_t cap = room->cap * 2;
        struct rooms_link **members = room->members == &room->one
                                          ? malloc(cap * sizeof *members)
                                          : realloc(room->members, cap * sizeof *members);
        if (members != NULL && room->members == &room->one)
            members[0] = room->one;
        if (members == NULL) {
            link_free(m, link);
            if (created)
                free(room);
            return SIOC_ENOMEM;
        }
        room->members = members;
        room->cap = cap;
    }
    if (created) {
        struct rooms_room **bucket = &idx->buckets[hash & (idx->bucket_count - 1)];
        room->next = *bucket;
        *bucket = room;
        if (++idx->room_count > idx->bucket_count)
            grow_buckets(idx);
    }
    link->room = room;
    link->member = m;
    link->index_in_room = room->count;
    room->members[room->count++] = link;
    link->next_of_member = m->links;
    m->links = link;
    m->room_count++;
    if (created && idx->watch != NULL)
        idx->watch(idx->watch_ctx, room->name, len, true);
    return SIOC_OK;
}

bool rooms_leave(struct rooms *idx, struct rooms_member *m, const void *name, size_t len)
{
    struct rooms_room *room = find_room(idx, name, len, hash_name(idx->seed, name, len));
    if (room == NULL)
        return false;
    for (struct rooms_link **pp = &m->links; *pp != NULL; pp = &(*pp)->next_of_member) {
        struct rooms_link *link = *pp;
        if (link->room != room)
            continue;
        *pp = link->next_of_member;
        m->room_count--;
        unlink_from_room(idx, link);
        link_free(m, link);
        return true;
    }
    return false;
}

bool rooms_is_member(const struct rooms *idx, const struct rooms_member *m, const void *name,
                     size_t len)
{
    const struct rooms_room *room = find_room(idx, name, len, hash_name(idx->seed, name, len));
    for (const struct rooms_link *l = m->links; room != NULL && l != NULL; l = l->next_of_member) {
        if (l->room == room)
            return true;
    }
    return false;
}

size_t rooms_size(const struct rooms *idx, const void *name, size_t len)
{
    const struct rooms_room *room = find_room(idx, name, len, hash_name(idx->seed, name, len));
    return room != NULL ? room->count : 0;
}

size_t rooms_member_count(const struct rooms *idx)
{
    return idx->all_count;
}

size_t rooms_room_count(const struct rooms *idx)
{
    return idx->room_count;
}

size_t rooms_select(struct rooms *idx, const struct slice *rooms, size_t nrooms,
                    const struct slice *except, size_t nexcept, rooms_visit_cb visit, void *ctx)
{
    /* Two fresh epochs per selection: members of except rooms get the first, visited members
     * the second, so neither a set nor a reset pass is needed. */
    uint64_t except_mark = ++idx->epoch;
    uint64_t visit_mark = ++idx->epoch;
    for (size_t i = 0; i < nexcept; i++) {
        struct rooms_room *room = find_room(idx, except[i].p, except[i].len,
                                            hash_name(idx->seed, except[i].p, except[i].len));
        for (uint32_t k = 0; room != NULL && k < room->count; k++)
            room->members[k]->member->mark = except_mark;
    }
    size_t visited = 0;
    if (nrooms == 0) {
        for (uint32_t k = 0; k < idx->all_count; k++) {
            struct rooms_member *m = idx->all[k];
            if (m->mark == except_mark)
                continue;
            visit(ctx, m);
            visited++;
        }
        return visited;
    }
    for (size_t i = 0; i < nrooms; i++) {
        struct rooms_room *room = find_room(idx, rooms[i].p, rooms[i].len,
                                            hash_name(idx->seed, rooms[i].p, rooms[i].len));
        for (uint32_t k = 0; room != NULL && k < room->count; k++) {
            struct rooms_member *m = room->members[k]->member;
            if (m->mark == except_mark || m->mark == visit_mark)
                continue;
            m->mark = visit_mark;
            visit(ctx, m);
            visited++;
        }
    }
    return visited;
}

void rooms_each_room(const struct rooms *idx, rooms_name_cb cb, void *ctx)
{
    for (size_t i = 0; i < idx->bucket_count; i++) {
        for (const struct rooms_room *r = idx->buckets[i]; r != NULL; r = r->next)
            cb(ctx, r->name, r->name_len, r->count);
    }
}

void rooms_each_of_member(const struct rooms_member *m, rooms_name_cb cb, void *ctx)
{
    for (const struct rooms_link *l = m->links; l != NULL; l = l->next_of_member)
        cb(ctx, l->room->name, l->room->name_len, l->room->count);
}
