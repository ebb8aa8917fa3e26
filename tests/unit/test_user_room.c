/* test_user_room.c: the `user-room` pattern's check and the room names it gives
 * (common/user_room.h), as the gateway and the broker both use them. */
#include "common/error.h"
#include "common/user_room.h"
#include "tests/unit/test.h"

static struct slice S(const char *s) {
    return (struct slice){(const uint8_t *)s, strlen(s)};
}

static void
test_valid(void)
{
    CHECK(user_room_valid("user:%s"));
    CHECK(user_room_valid("%s"));
    CHECK(user_room_valid("u/%s/inbox"));
    CHECK(!user_room_valid(NULL));
    CHECK(!user_room_valid("user"));
    CHECK(!user_room_valid("user:%s:%s")); /* two */
    CHECK(!user_room_valid("%d:%s"));      /* another % before */
    CHECK(!user_room_valid("user:%s%"));   /* a % after */
    CHECK(!user_room_valid("100%%:%s"));   /* no escapes: % is not a format */
    CHECK(!user_room_valid("user:%"));
}

static void test_format(void)
{
    char out[16];
    size_t n = user_room_format(out, sizeof out, "user:%s", S("42"));
    CHECK(n == 7 && memcmp(out, "user:42", 7) == 0);
    n = user_room_format(out, sizeof out, "u/%s/in", S("%s%d")); /* the uid is data */
    CHECK(n == 9 && memcmp(out, "u/%s%d/in", 9) == 0);
    CHECK(user_room_format(out, 16, "user:%s", S("0123456789a")) == 16);
    CHECK(user_room_format(out, 16, "user:%s", S("0123456789ab")) == 0); /* one too many */
    CHECK(user_room_format(out, sizeof out, "user:%s:%s", S("1")) == 0);
    CHECK(user_room_format(out, 3, "%s", S("")) == 0); /* empty: nothing to name */
}

static void test_append(void)
{
    struct buf b;
    buf_init(&b, 0);
    CHECK(user_room_append(&b, "user:%s", S("ann")) == 8);
    CHECK(user_room_append(&b, "[%s]", S("bob")) == 5);
    CHECK(user_room_append(&b, "bad", S("x")) == 0);
    CHECK(b.err == SIOC_OK && b.len == 13 && memcmp(b.data, "user:ann[bob]", 13) == 0);
    buf_deinit(&b);
}

int main(void)
{
    RUN(test_valid);
    RUN(test_format);
    RUN(test_append);
    return test_summary("test_user_room");
}
