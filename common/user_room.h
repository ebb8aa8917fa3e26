/* user_room.h: the room of an authenticated user, named by the `user-room` option's pattern
 * (DESIGN.md §2, e.g. "user:%s": exactly one %s and no other '%'). The gateway (at CONNECT, at
 * recovery, in the bridge) and the broker (the `users` selectors of its API) name it with these
 * two functions, so they cannot disagree. The pattern is data, never a format string.
 * Pure: no I/O, no allocation beyond the caller's buffer. */
#ifndef SIOC_USER_ROOM_H
#define SIOC_USER_ROOM_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"

/* True when pattern holds exactly one "%s" and no other '%'. */
bool user_room_valid(const char *pattern);

/* Appends the pattern with its %s replaced by uid to b (b->err says whether memory ran out).
 * Returns the number of bytes appended, 0 when the pattern is not valid (nothing appended). */
size_t user_room_append(struct buf *b, const char *pattern, struct slice uid);

/* Writes the same into out (cap bytes, no NUL). Returns its length, or 0 when the pattern is not
 * valid or the name does not fit in cap bytes. */
size_t user_room_format(char *out, size_t cap, const char *pattern, struct slice uid);

#endif
