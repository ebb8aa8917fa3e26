/* test_log.c: the process logger: exact text and JSON line shapes (the timestamp parsed and
 * checked against the clock), JSON lines read back with json_to_msgpack, level filtering,
 * reopen after a logrotate-style rename, stderr, truncation and write failures. */
#define _GNU_SOURCE /* timegm */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include "common/error.h"
#include "common/json.h"
#include "common/mp.h"
#include "common/net/log.h"
#include "tests/unit/test.h"

static char tmp_dir[64];

/* A path inside the test's temporary directory (static storage, one at a time per slot). */
static const char *tmp_path(int slot, const char *name)
{
    static char paths[4][128];
    snprintf(paths[slot], sizeof(paths[slot]), "%s/%s", tmp_dir, name);
    return paths[slot];
}

/* Reads the file as a NUL-terminated string ("" if missing); caller frees. */
static char *slurp(const char *path, size_t *len)
{
    uint8_t *data = test_read_file(path, len);
    if (data == NULL) {
        *len = 0;
        return calloc(1, 1);
    }
    char *s = realloc(data, *len + 1);
    if (s == NULL) {
        free(data);
        exit(2);
    }
    s[*len] = '\0';
    return s;
}

/* Checks that p starts with a timestamp "YYYY-MM-DDTHH:MM:SS.mmmZ" within 5 s of now. */
static void check_timestamp(const char *p)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    for (size_t i = 0; i < sizeof(shape) - 1; i++) {
        bool ok = shape[i] == 'd' ? (p[i] >= '0' && p[i] <= '9') : p[i] == shape[i];
        if (!ok) {
            CHECK_STR(p, sizeof(shape) - 1, shape);
            return;
        }
    }
    struct tm tm = {0};
    tm.tm_year = atoi(p) - 1900;
    tm.tm_mon = atoi(p + 5) - 1;
    tm.tm_mday = atoi(p + 8);
    tm.tm_hour = atoi(p + 11);
    tm.tm_min = atoi(p + 14);
    tm.tm_sec = atoi(p + 17);
    time_t t = timegm(&tm);
    time_t now = time(NULL);
    CHECK(t <= now && now - t <= 5);
}

static void test_text_line(void)
{
    const char *path = tmp_path(0, "text.log");
    struct log *log = log_new("gateway", LOG_TEXT, LOG_LEVEL_DEBUG, path);
    CHECK(log != NULL);
    log_write(log, LOG_LEVEL_INFO, "ws.close", "sid=%s code=%d reason=\"%s\"", "abc", 1002,
              "bad\nframe\x01\t\r\x7f é");
    log_write(log, LOG_LEVEL_DEBUG, "eio.open", "sid=%s", "x");
    log_write(log, LOG_LEVEL_WARN, "redis.down", "%s", "");
    log_write(log, LOG_LEVEL_ERROR, "ev\nent", "n=%d", -1);
    CHECK(log_write_errors(log) == 0);
    log_free(log);

    size_t len;
    char *s = slurp(path, &len);
    static const char *rest[] = {
        " INFO gateway ws.close: sid=abc code=1002 reason=\"bad\\nframe\\x01\\t\\r\\x7f é\"\n",
        " DEBUG gateway eio.open: sid=x\n",
        " WARN gateway redis.down\n",
        " ERROR gateway ev\\nent: n=-1\n",
    };
    char *p = s;
    for (size_t i = 0; i < sizeof(rest) / sizeof(rest[0]); i++) {
        char *nl = strchr(p, '\n');
        CHECK(nl != NULL && nl - p > 24);
        if (nl == NULL || nl - p <= 24)
            break;
        check_timestamp(p);
        CHECK_STR(p + 24, (size_t)(nl + 1 - (p + 24)), rest[i]);
        p = nl + 1;
    }
    CHECK(*p == '\0');
    free(s);
}

/* Parses one JSON line back and checks its fields; returns the msg (malloc'd, NUL-terminated)
 * or NULL. */
static char *check_json_line(const char *line, size_t len, const char *level, const char *event)
{
    static const char *keys[] = {"ts", "level", "proc", "event", "msg"};
    struct buf mp;
    buf_init(&mp, 0);
    CHECK(len > 0 && line[len - 1] == '\n');
    CHECK(json_to_msgpack((const uint8_t *)line, len, &mp) == SIOC_OK);
    struct mp_reader r;
    struct mp_item it;
    char *msg = NULL;
    mp_reader_init(&r, mp.data, mp.len);
    CHECK(mp_read(&r, &it) == SIOC_OK && it.kind == MP_MAP && it.len == 5);
    for (size_t i = 0; i < 5 && it.kind == MP_MAP; i++) {
        struct mp_item key, value;
        CHECK(mp_read(&r, &key) == SIOC_OK && mp_item_is_str(&key, keys[i]));
        CHECK(mp_read(&r, &value) == SIOC_OK && value.kind == MP_STR);
        if (value.kind != MP_STR)
            break;
        if (i == 0) {
            char ts[32] = {0};
            CHECK(value.len == 24);
            memcpy(ts, value.data, value.len < 31 ? value.len : 31);
            check_timestamp(ts);
        }
        if (i == 1)
            CHECK(mp_item_is_str(&value, level));
        if (i == 2)
            CHECK(mp_item_is_str(&value, "broker"));
        if (i == 3)
            CHECK(mp_item_is_str(&value, event));
        if (i == 4) {
            msg = malloc(value.len + 1);
            memcpy(msg, value.data, value.len);
            msg[value.len] = '\0';
        }
    }
    buf_deinit(&mp);
    return msg;
}

static void test_json_line(void)
{
    const char *path = tmp_path(0, "json.log");
    struct log *log = log_new("broker", LOG_JSON, LOG_LEVEL_INFO, path);
    CHECK(log != NULL);
    log_write(log, LOG_LEVEL_INFO, "ws.close", "sid=%s code=%d", "abc", 1002);
    log_write(log, LOG_LEVEL_WARN, "http.bad", "q=\"%s\" \\ nl=\n c=\x01 u=é bad=\xff", "x");
    log_write(log, LOG_LEVEL_ERROR, "e", "%s", "");
    log_free(log);

    size_t len;
    char *s = slurp(path, &len);
    char *l1 = s, *l2 = strchr(l1, '\n') + 1, *l3 = strchr(l2, '\n') + 1,
         *end = strchr(l3, '\n') + 1;
    CHECK(*end == '\0');
    /* Exact shape around the timestamp. */
    CHECK_STR(l1, 7, "{\"ts\":\"");
    check_timestamp(l1 + 7);
    CHECK_STR(l1 + 31, (size_t)(l2 - l1 - 31),
              "\",\"level\":\"info\",\"proc\":\"broker\",\"event\":\"ws.close\","
              "\"msg\":\"sid=abc code=1002\"}\n");
    CHECK_STR(l2 + 31, (size_t)(l3 - l2 - 31),
              "\",\"level\":\"warn\",\"proc\":\"broker\",\"event\":\"http.bad\","
              "\"msg\":\"q=\\\"x\\\" \\\\ nl=\\n c=\\u0001 u=é bad=\xef\xbf\xbd\"}\n");
    CHECK_STR(l3 + 31, (size_t)(end - l3 - 31),
              "\",\"level\":\"error\",\"proc\":\"broker\",\"event\":\"e\",\"msg\":\"\"}\n");
    /* And they parse back to the same strings. */
    char *msg = check_json_line(l1, (size_t)(l2 - l1), "info", "ws.close");
    CHECK(msg != NULL && strcmp(msg, "sid=abc code=1002") == 0);
    free(msg);
    msg = check_json_line(l2, (size_t)(l3 - l2), "warn", "http.bad");
    CHECK(msg != NULL && strcmp(msg, "q=\"x\" \\ nl=\n c=\x01 u=é bad=\xef\xbf\xbd") == 0);
    free(msg);
    msg = check_json_line(l3, (size_t)(end - l3), "error", "e");
    CHECK(msg != NULL && strcmp(msg, "") == 0);
    free(msg);
    free(s);
}

static void test_levels(void)
{
    const char *path = tmp_path(0, "levels.log");
    struct log *log = log_new("gateway", LOG_TEXT, LOG_LEVEL_WARN, path);
    CHECK(!log_enabled(log, LOG_LEVEL_DEBUG));
    CHECK(!log_enabled(log, LOG_LEVEL_INFO));
    CHECK(log_enabled(log, LOG_LEVEL_WARN));
    CHECK(log_enabled(log, LOG_LEVEL_ERROR));
    CHECK(!log_enabled(NULL, LOG_LEVEL_ERROR));
    log_write(NULL, LOG_LEVEL_ERROR, "nothing", "x"); /* a no-op, not a crash */
    log_write(log, LOG_LEVEL_DEBUG, "a", "1");
    log_write(log, LOG_LEVEL_INFO, "b", "2");
    log_write(log, LOG_LEVEL_WARN, "c", "3");
    log_write(log, LOG_LEVEL_ERROR, "d", "4");
    log_free(log);
    size_t len;
    char *s = slurp(path, &len);
    CHECK(strstr(s, " a: 1") == NULL && strstr(s, " b: 2") == NULL);
    CHECK(strstr(s, " WARN gateway c: 3\n") != NULL && strstr(s, " ERROR gateway d: 4\n") != NULL);
    CHECK(len == 2 * 24 + strlen(" WARN gateway c: 3\n") + strlen(" ERROR gateway d: 4\n"));
    free(s);

    enum log_level level = LOG_LEVEL_INFO;
    enum log_format format = LOG_TEXT;
    CHECK(log_level_parse("debug", &level) == SIOC_OK && level == LOG_LEVEL_DEBUG);
    CHECK(log_level_parse("warn", &level) == SIOC_OK && level == LOG_LEVEL_WARN);
    CHECK(log_level_parse("error", &level) == SIOC_OK && level == LOG_LEVEL_ERROR);
    CHECK(log_level_parse("info", &level) == SIOC_OK && level == LOG_LEVEL_INFO);
    CHECK(log_level_parse("INFO", &level) == SIOC_EINVAL && level == LOG_LEVEL_INFO);
    CHECK(log_level_parse("", &level) == SIOC_EINVAL);
    CHECK(log_level_parse(NULL, &level) == SIOC_EINVAL);
    CHECK(log_format_parse("json", &format) == SIOC_OK && format == LOG_JSON);
    CHECK(log_format_parse("text", &format) == SIOC_OK && format == LOG_TEXT);
    CHECK(log_format_parse("xml", &format) == SIOC_EINVAL && format == LOG_TEXT);
    CHECK(log_format_parse(NULL, &format) == SIOC_EINVAL);
    CHECK(strcmp(log_level_name(LOG_LEVEL_WARN), "warn") == 0);
}

static void test_reopen(void)
{
    const char *path = tmp_path(0, "rotate.log");
    const char *rotated = tmp_path(1, "rotate.log.1");
    struct log *log = log_new("gateway", LOG_TEXT, LOG_LEVEL_INFO, path);
    log_write(log, LOG_LEVEL_INFO, "one", "1");
    CHECK(rename(path, rotated) == 0);
    log_write(log, LOG_LEVEL_INFO, "two", "2"); /* still the old (renamed) file */
    CHECK(log_reopen(log) == 0);
    log_write(log, LOG_LEVEL_INFO, "three", "3");
    size_t len;
    char *old = slurp(rotated, &len);
    char *cur = slurp(path, &len);
    CHECK(strstr(old, " one: 1\n") != NULL && strstr(old, " two: 2\n") != NULL);
    CHECK(strstr(old, "three") == NULL);
    CHECK(len == 24 + strlen(" INFO gateway three: 3\n") && strstr(cur, " three: 3\n") != NULL);
    free(old);
    free(cur);

    /* A reopen that fails (directory gone) keeps writing to the open file. */
    char dir[128];
    snprintf(dir, sizeof(dir), "%s/sub", tmp_dir);
    CHECK(mkdir(dir, 0700) == 0);
    char sub[160];
    snprintf(sub, sizeof(sub), "%s/sub.log", dir);
    struct log *log2 = log_new("gateway", LOG_TEXT, LOG_LEVEL_INFO, sub);
    CHECK(log2 != NULL);
    CHECK(unlink(sub) == 0 && rmdir(dir) == 0);
    errno = 0;
    CHECK(log_reopen(log2) == -1 && errno == ENOENT);
    log_write(log2, LOG_LEVEL_INFO, "still", "ok");
    CHECK(log_write_errors(log2) == 0);
    log_free(log2);
    log_free(log);
}

static void test_stderr(void)
{
    const char *path = tmp_path(0, "stderr.log");
    int file = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int saved = dup(STDERR_FILENO);
    CHECK(file >= 0 && saved >= 0);
    fflush(stderr);
    dup2(file, STDERR_FILENO);
    struct log *log = log_new("broker", LOG_TEXT, LOG_LEVEL_INFO, NULL);
    log_write(log, LOG_LEVEL_INFO, "a", "1");
    CHECK(log_reopen(log) == 0); /* no file to reopen */
    log_write(log, LOG_LEVEL_INFO, "b", "2");
    log_free(log); /* must not close stderr */
    CHECK(write(STDERR_FILENO, "x\n", 2) == 2);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(file);
    size_t len;
    char *s = slurp(path, &len);
    CHECK(len == 2 * 24 + strlen(" INFO broker a: 1\n INFO broker b: 2\nx\n"));
    CHECK(strstr(s, " INFO broker a: 1\n") != NULL && strstr(s, " INFO broker b: 2\n") != NULL);
    free(s);
}

/* The file's only line; checks it ends with want_end and its length is in [min, LOG_MAX_LINE]. */
static char *check_single_line(const char *path, size_t min, const char *want_end, size_t *len)
{
    char *s = slurp(path, len);
    CHECK(*len >= min && *len <= LOG_MAX_LINE);
    CHECK(strchr(s, '\n') == s + *len - 1);
    size_t n = strlen(want_end);
    CHECK(*len >= n && strcmp(s + *len - n, want_end) == 0);
    return s;
}

static void test_truncation(void)
{
    char *big = malloc(3 * LOG_MAX_LINE);
    /* ASCII text: the cut fills the line exactly. */
    memset(big, 'a', 3 * LOG_MAX_LINE - 1);
    big[3 * LOG_MAX_LINE - 1] = '\0';
    const char *path = tmp_path(0, "trunc-text.log");
    struct log *log = log_new("gateway", LOG_TEXT, LOG_LEVEL_INFO, path);
    log_write(log, LOG_LEVEL_INFO, "big", "%s", big);
    log_free(log);
    size_t len;
    char *s = check_single_line(path, LOG_MAX_LINE, "aaa...\n", &len);
    CHECK_STR(s + 24, 18, " INFO gateway big:");
    free(s);

    /* A message that fits exactly is not cut. */
    size_t room = LOG_MAX_LINE - 24 - strlen(" INFO gateway big: \n");
    big[room] = '\0';
    path = tmp_path(0, "exact-text.log");
    log = log_new("gateway", LOG_TEXT, LOG_LEVEL_INFO, path);
    log_write(log, LOG_LEVEL_INFO, "big", "%s", big);
    log_free(log);
    s = check_single_line(path, LOG_MAX_LINE, "aaa\n", &len);
    free(s);
    big[room] = 'a';

    /* JSON of control characters (6 bytes each once escaped): still bounded, still valid. */
    memset(big, '\x01', 3 * LOG_MAX_LINE - 1);
    path = tmp_path(0, "trunc-json.log");
    log = log_new("broker", LOG_JSON, LOG_LEVEL_INFO, path);
    log_write(log, LOG_LEVEL_ERROR, "big", "%s", big);
    log_free(log);
    s = check_single_line(path, LOG_MAX_LINE - 6, "\\u0001...\"}\n", &len);
    char *msg = check_json_line(s, len, "error", "big");
    CHECK(msg != NULL && strlen(msg) > (LOG_MAX_LINE - 100) / 6);
    free(msg);
    free(s);

    /* Two-byte characters are cut on a character boundary (no U+FFFD appears). */
    for (size_t i = 0; i + 1 < 3 * LOG_MAX_LINE; i += 2)
        memcpy(big + i, "\xc3\xa9", 2);
    big[3 * LOG_MAX_LINE - 2] = '\0';
    for (int format = LOG_TEXT; format <= LOG_JSON; format++) {
        path = tmp_path(0, format == LOG_TEXT ? "utf8-text.log" : "utf8-json.log");
        log = log_new("broker", (enum log_format)format, LOG_LEVEL_INFO, path);
        log_write(log, LOG_LEVEL_INFO, "big", "x%s", big); /* odd offset: cut lands mid-char */
        log_free(log);
        s = check_single_line(path, LOG_MAX_LINE - 3, format == LOG_TEXT ? "é...\n" : "é...\"}\n",
                              &len);
        CHECK(strstr(s, "\xef\xbf\xbd") == NULL);
        if (format == LOG_JSON) {
            msg = check_json_line(s, len, "info", "big");
            CHECK(msg != NULL && strstr(msg, "\xef\xbf\xbd") == NULL);
            free(msg);
        }
        free(s);
    }
    free(big);
}

static void test_errors(void)
{
    errno = 0;
    CHECK(log_new("", LOG_TEXT, LOG_LEVEL_INFO, NULL) == NULL && errno == EINVAL);
    CHECK(log_new(NULL, LOG_TEXT, LOG_LEVEL_INFO, NULL) == NULL);
    char name[LOG_MAX_PROCESS + 2];
    memset(name, 'p', sizeof(name));
    name[LOG_MAX_PROCESS + 1] = '\0';
    CHECK(log_new(name, LOG_TEXT, LOG_LEVEL_INFO, NULL) == NULL);
    name[LOG_MAX_PROCESS] = '\0';
    struct log *log = log_new(name, LOG_TEXT, LOG_LEVEL_INFO, NULL);
    CHECK(log != NULL);
    log_free(log);
    errno = 0;
    CHECK(log_new("gateway", LOG_TEXT, LOG_LEVEL_INFO, tmp_path(0, "no/such/dir.log")) == NULL &&
          errno == ENOENT);
    log_free(NULL);

    /* Writes that fail are counted, not fatal; errno is left as the caller had it. */
    log = log_new("gateway", LOG_JSON, LOG_LEVEL_INFO, "/dev/full");
    CHECK(log != NULL);
    if (log == NULL)
        return;
    errno = EAGAIN;
    log_write(log, LOG_LEVEL_INFO, "x", "1");
    CHECK(errno == EAGAIN);
    log_write(log, LOG_LEVEL_INFO, "x", "2");
    log_write(log, LOG_LEVEL_DEBUG, "x", "filtered, not an error");
    CHECK(log_write_errors(log) == 2);
    log_free(log);
}

int main(void)
{
    snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/sioc-test-log-XXXXXX");
    if (mkdtemp(tmp_dir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    RUN(test_text_line);
    RUN(test_json_line);
    RUN(test_levels);
    RUN(test_reopen);
    RUN(test_stderr);
    RUN(test_truncation);
    RUN(test_errors);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmp_dir);
    return test_summary("test_log");
}
