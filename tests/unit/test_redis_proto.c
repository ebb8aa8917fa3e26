/* test_redis_proto.c: redis:// URLs (DESIGN.md §2) and RESP command encoding, byte for byte,
 * with every input ending at a guard page. */
#include "common/redis_proto.h"

#include <stdlib.h>

#include "common/error.h"
#include "tests/unit/test.h"

/* Parses a copy of `url` that ends at a guard page. */
static int parse(const char *url, struct redis_url *u)
{
    size_t n = strlen(url), map_len;
    uint8_t *g = test_guard_copy(url, n + 1, &map_len);
    int rc = redis_url_parse((const char *)g, u);
    test_guard_free(g, n + 1, map_len);
    return rc;
}

static void test_urls(void)
{
    struct redis_url u;
    CHECK(parse("redis://127.0.0.1:6380", &u) == SIOC_OK);
    CHECK(strcmp(u.host, "127.0.0.1") == 0 && u.port == 6380 && u.db == 0);
    CHECK(u.user == NULL && u.password == NULL);
    CHECK(parse("redis://redis", &u) == SIOC_OK);
    CHECK(strcmp(u.host, "redis") == 0 && u.port == 6379);
    CHECK(parse("redis://:p%40ss@h:1/15", &u) == SIOC_OK);
    CHECK(u.user == NULL && strcmp(u.password, "p@ss") == 0 && u.db == 15 && u.port == 1);
    CHECK(parse("redis://alice:s3cret@h/", &u) == SIOC_OK);
    CHECK(strcmp(u.user, "alice") == 0 && strcmp(u.password, "s3cret") == 0 && u.db == 0);
    CHECK(parse("redis://a%3Ab:c%2Fd@h", &u) == SIOC_OK); /* user and password %-decoded */
    CHECK(strcmp(u.user, "a:b") == 0 && strcmp(u.password, "c/d") == 0);
    CHECK(parse("redis://:pw@h@x:9", &u) == SIOC_OK); /* the last '@' ends the credentials */
    CHECK(strcmp(u.password, "pw@h") == 0 && strcmp(u.host, "x") == 0 && u.port == 9);
    CHECK(parse("redis://[::1]:7000/2", &u) == SIOC_OK);
    CHECK(strcmp(u.host, "::1") == 0 && u.port == 7000 && u.db == 2);
    CHECK(parse("redis://h:65535/1000000", &u) == SIOC_OK);
    CHECK(u.port == 65535 && u.db == 1000000);
    CHECK(!u.tls);
    /* rediss:// (issue 16): the same grammar, TLS on, same default port */
    CHECK(parse("rediss://h", &u) == SIOC_OK);
    CHECK(u.tls && strcmp(u.host, "h") == 0 && u.port == 6379 && u.user == NULL && u.db == 0);
    CHECK(parse("rediss://alice:p%40ss@cache.example.com:6380/3", &u) == SIOC_OK);
    CHECK(u.tls && strcmp(u.user, "alice") == 0 && strcmp(u.password, "p@ss") == 0);
    CHECK(strcmp(u.host, "cache.example.com") == 0 && u.port == 6380 && u.db == 3);
    CHECK(parse("rediss://[::1]:7000", &u) == SIOC_OK);
    CHECK(u.tls && strcmp(u.host, "::1") == 0 && u.port == 7000);
    static const char *const bad[] = {
        "redisss://h",       "rediss:/h",          "rediss://",        "rediss://h:0",
        "REDISS://h",        "rediss://h?ssl_cert_reqs=none",          "redis-cluster://h:1",
        "http://h",          "redis://",           "redis://h:0",      "redis://h:65536",
        "redis://h:12x",     "redis://h:",         "redis://h/x",      "redis://h/1000001",
        "redis://h?db=1",    "redis://h#f",        "redis://secret@h", "redis://:bad%4@h",
        "redis://:nul%00@h", "redis://[::1",       "redis://[]:1",     "REDIS://h",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(parse(bad[i], &u) == SIOC_EINVAL);
    CHECK(redis_url_parse(NULL, &u) == SIOC_EINVAL);
    /* longer than the storage: refused, not truncated */
    char long_url[700] = "redis://:";
    memset(long_url + 9, 'p', 600);
    strcpy(long_url + 609, "@h");
    CHECK(parse(long_url, &u) == SIOC_EINVAL);
}

static void test_commands(void)
{
    const char *argv[] = {"SET", "k", "a\0b\r\n"};
    const size_t lens[] = {3, 1, 5};
    size_t bound = redis_command_bound(3, lens);
    char *out = malloc(bound);
    size_t n = redis_command_encode(out, 3, argv, lens);
    CHECK(n <= bound);
    static const char want[] = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\na\0b\r\n\r\n";
    CHECK_MEM(out, n, want, sizeof want - 1);
    free(out);
    /* empty argument and a long one (multi-digit length header) */
    char big[12345];
    memset(big, 'x', sizeof big);
    const char *argv2[] = {"PING", "", big};
    const size_t lens2[] = {4, 0, sizeof big};
    bound = redis_command_bound(3, lens2);
    out = malloc(bound);
    n = redis_command_encode(out, 3, argv2, lens2);
    CHECK(n <= bound && n == 4 + 10 + 6 + 8 + sizeof big + 2);
    static const char head[] = "*3\r\n$4\r\nPING\r\n$0\r\n\r\n$12345\r\nxx";
    CHECK(memcmp(out, head, sizeof head - 1) == 0);
    free(out);
    const size_t huge[] = {SIZE_MAX / 2};
    CHECK(redis_command_bound(1, huge) == 0);
}

int main(void)
{
    RUN(test_urls);
    RUN(test_commands);
    return test_summary("test_redis_proto");
}
