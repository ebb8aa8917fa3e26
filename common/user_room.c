/* user_room.c: the user room's name from the `user-room` pattern (user_room.h). */
#include "common/user_room.h"

#include <string.h>

bool user_room_valid(const char *pattern)
{
    if (pattern == NULL)
        return false;
    const char *mark = strstr(pattern, "%s");
    return mark != NULL && strchr(pattern, '%') == mark && strchr(mark + 2, '%') == NULL;
}

size_t user_room_append(struct buf *b, const char *pattern, struct slice uid)
{
    if (!user_room_valid(pattern))
        return 0;
    const char *mark = strstr(pattern, "%s");
    size_t pre = (size_t)(mark - pattern), post = strlen(mark + 2);
    buf_append(b, pattern, pre);
    buf_append(b, uid.p, uid.len);
    buf_append(b, mark + 2, post);
    return pre + uid.len + post;
}

size_t user_room_format(char *out, size_t cap, const char *pattern, struct slice uid)
{
    if (!user_room_valid(pattern))
        return 0;
    const char *mark = strstr(pattern, "%s");
    size_t pre = (size_t)(mark - pattern), post = strlen(mark + 2);
    if (uid.len > cap || pre + post > cap - uid.len)
        return 0;
    memcpy(out, pattern, pre);
    if (uid.len > 0)
        memcpy(out + pre, uid.p, uid.len);
    memcpy(out + pre + uid.len, mark + 2, post);
    return pre + uid.len + post;
}
