/* rooms.h: the room index of one namespace on one node: which local sockets are in which rooms,
 * and the broadcast delivery set of PROTOCOL.md 3.3 step 3 (the union of the rooms, or every
 * socket when no room is named, minus every socket in an except room), computed in one pass
 * with per-member marks instead of temporary sets. A socket embeds its struct rooms_member, whose
 * first membership (its own id room) needs no allocation; a one-member room keeps its member
 * array inline. */
#ifndef SIOC_ROOMS_H
#define SIOC_ROOMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

struct rooms;      /* the index; opaque */
struct rooms_room; /* one room; opaque */

/* One membership. Fields are the index's. */
struct rooms_link {
    struct rooms_room *room; /* NULL: an unused `first` slot */
    struct rooms_member *member;
    struct rooms_link *next_of_member;
    uint32_t index_in_room;
};

/* Embedded in the owner's socket struct. Fields are the index's: read none but `owner`. */
struct rooms_member {
    void *owner;              /* what visit callbacks receive */
    struct rooms_link *links; /* this member's memberships */
    struct rooms_link first;  /* storage of one membership, so the first join allocates none */
    uint64_t mark;            /* selection epoch marks */
    uint32_t all_index;       /* position in the namespace-wide member array */
    uint32_t room_count;
};

/* Longest room name accepted (Socket.IO has no limit; we bound memory). */
#define ROOMS_MAX_NAME 1024

/* A new, empty index. `seed` keys the room-name hash (pass random bits). NULL on ENOMEM. */
struct rooms *rooms_new(uint64_t seed);
/* Frees the index. Every member must have been removed first (asserted). NULL is a no-op. */
void rooms_free(struct rooms *idx);

/* Room lifecycle: `cb(ctx, name, len, true)` right after a room got its first member (the
 * join is complete), `cb(ctx, name, len, false)` just before an emptied room is deleted (by a
 * leave or a member's removal). The callback must not change the index. NULL cb = none. */
typedef void (*rooms_watch_cb)(void *ctx, const uint8_t *name, size_t len, bool created);
void rooms_set_watch(struct rooms *idx, rooms_watch_cb cb, void *ctx);

/* Adds a member (in no room yet) that `owner` identifies. Returns SIOC_OK or SIOC_ENOMEM. */
int rooms_add_member(struct rooms *idx, struct rooms_member *m, void *owner);
/* Removes a member from every room and from the index. */
void rooms_remove_member(struct rooms *idx, struct rooms_member *m);

/* Joins room name[0..len). Joining a room twice is a no-op. Returns SIOC_OK, SIOC_ETOOBIG
 * (name longer than ROOMS_MAX_NAME) or SIOC_ENOMEM. */
int rooms_join(struct rooms *idx, struct rooms_member *m, const void *name, size_t len);
/* Leaves a room; returns true if the member was in it. An emptied room is deleted. */
bool rooms_leave(struct rooms *idx, struct rooms_member *m, const void *name, size_t len);
bool rooms_is_member(const struct rooms *idx, const struct rooms_member *m, const void *name,
                     size_t len);

/* Number of local members of a room (0 when it does not exist), and whether it exists. */
size_t rooms_size(const struct rooms *idx, const void *name, size_t len);
size_t rooms_member_count(const struct rooms *idx);
size_t rooms_room_count(const struct rooms *idx);

typedef void (*rooms_visit_cb)(void *ctx, struct rooms_member *m);

/* Visits, once each, the members of the union of rooms[0..nrooms) (all members when nrooms
 * is 0) that are in none of except[0..nexcept). Returns how many were visited. The callback
 * must not change the index (join, leave, add, remove): queue such work for later. */
size_t rooms_select(struct rooms *idx, const struct slice *rooms, size_t nrooms,
                    const struct slice *except, size_t nexcept, rooms_visit_cb visit, void *ctx);

typedef void (*rooms_name_cb)(void *ctx, const uint8_t *name, size_t len, size_t size);
/* Calls `cb` with each room name of the index (ALL_ROOMS) and its member count. */
void rooms_each_room(const struct rooms *idx, rooms_name_cb cb, void *ctx);
/* Calls `cb` with each room a member is in (size is that room's member count). */
void rooms_each_of_member(const struct rooms_member *m, rooms_name_cb cb, void *ctx);

#endif
