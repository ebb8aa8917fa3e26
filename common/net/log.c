/* log.c: the process logger (see log.h): text or JSON lines, level filter, one write(2) per
 * line, reopen for log rotation. JSON escaping is common/json.c's (JSON.stringify's rules);
 * deciding what to log and when to reopen is left to the gateway and broker. */
#include "common/net/log.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/json.h"

struct log {
    int fd;
    bool owns_fd; /* false for stderr */
    char *path;   /* owned; NULL for stderr */
    char process[LOG_MAX_PROCESS + 1];
    enum log_format format;
    enum log_level min;
    uint64_t write_errors;
    struct buf line;        /* reused for every line */
    char msg[LOG_MAX_LINE]; /* the formatted message, before escaping */
};

static const char *const level_names[] = {"debug", "info", "warn", "error"};
static const char *const level_upper[] = {"DEBUG", "INFO", "WARN", "ERROR"};

static int open_path(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

struct log *log_new(const char *process, enum log_format format, enum log_level min,
                    const char *path)
{
    size_t plen = process != NULL ? strnlen(process, LOG_MAX_PROCESS + 1) : 0;
    if (plen == 0 || plen > LOG_MAX_PROCESS || (format != LOG_TEXT && format != LOG_JSON) ||
        (unsigned)min > LOG_LEVEL_ERROR) {
        errno = EINVAL;
        return NULL;
    }
    struct log *log = calloc(1, sizeof(*log));
    if (log == NULL)
        return NULL;
    memcpy(log->process, process, plen + 1);
    log->format = format;
    log->min = min;
    buf_init(&log->line, 0);
    log->fd = STDERR_FILENO;
    if (path != NULL) {
        log->path = strdup(path);
        if (log->path == NULL) {
            free(log);
            return NULL;
        }
        log->fd = open_path(path);
        if (log->fd < 0) {
            int saved = errno;
            free(log->path);
            free(log);
            errno = saved;
            return NULL;
        }
        log->owns_fd = true;
    }
    return log;
}

/* libevent's log callback has no context argument: the one process-wide logger it writes to. */
static struct log *libevent_log;

static void libevent_log_cb(int severity, const char *msg)
{
    if (libevent_log == NULL)
        return;
    enum log_level level = severity >= EVENT_LOG_ERR    ? LOG_LEVEL_ERROR
                           : severity >= EVENT_LOG_WARN ? LOG_LEVEL_WARN
                                                        : LOG_LEVEL_DEBUG;
    log_write(libevent_log, level, "libevent", "%s", msg);
}

void log_route_libevent(struct log *log)
{
    libevent_log = log;
    event_set_log_callback(log != NULL ? libevent_log_cb : NULL);
}

void log_free(struct log *log)
{
    if (log == NULL)
        return;
    if (libevent_log == log)
        log_route_libevent(NULL);
    if (log->owns_fd)
        close(log->fd);
    buf_deinit(&log->line);
    free(log->path);
    free(log);
}

int log_reopen(struct log *log)
{
    if (log->path == NULL)
        return 0;
    /* Open the new file before closing the old one, so a failure leaves logging working. */
    int fd = open_path(log->path);
    if (fd < 0)
        return -1;
    close(log->fd);
    log->fd = fd;
    return 0;
}

bool log_enabled(const struct log *log, enum log_level level)
{
    return log != NULL && level >= log->min;
}

uint64_t log_write_errors(const struct log *log)
{
    return log->write_errors;
}

/* Text lines escape control characters so that no peer-supplied byte can end a line early or
 * drive the terminal; everything else (UTF-8 included) is copied as is. */
static void append_text_escaped(struct buf *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != 0x7f)
            continue;
        buf_append(out, s + run, i - run);
        run = i + 1;
        if (c == '\n') {
            buf_append(out, "\\n", 2);
        } else if (c == '\r') {
            buf_append(out, "\\r", 2);
        } else if (c == '\t') {
            buf_append(out, "\\t", 2);
        } else {
            char esc[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
            buf_append(out, esc, 4);
        }
    }
    buf_append(out, s + run, n - run);
}

/* Appends the message part and what closes the line, in the logger's format; a cut message
 * (its first n bytes) ends in "...", inside the JSON string. */
static void append_message(struct log *log, const char *msg, size_t n, bool cut)
{
    struct buf *b = &log->line;
    if (log->format == LOG_JSON) {
        json_write_string(b, (const uint8_t *)msg, n);
        if (cut && b->err == SIOC_OK) {
            buf_truncate(b, b->len - 1); /* reopen the string: its closing quote */
            buf_append(b, "...\"", 4);
        }
        buf_append(b, "}\n", 2);
    } else {
        if (n > 0 || cut) {
            buf_append(b, ": ", 2);
            append_text_escaped(b, msg, n);
        }
        if (cut)
            buf_append(b, "...", 3);
        buf_append_byte(b, '\n');
    }
}

/* Renders the line with the message cut to its first `keep` bytes; returns whether it fits. */
static bool render_cut(struct log *log, size_t prefix_len, size_t keep)
{
    buf_truncate(&log->line, prefix_len);
    append_message(log, log->msg, keep, true);
    return log->line.len <= LOG_MAX_LINE;
}

static void append_prefix(struct log *log, enum log_level level, const char *event)
{
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    char ts[40];
    int tslen = snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                         (int)(now.tv_nsec / 1000000));
    size_t event_len = strnlen(event, LOG_MAX_EVENT);
    struct buf *b = &log->line;
    if (log->format == LOG_JSON) {
        buf_append_cstr(b, "{\"ts\":\"");
        buf_append(b, ts, (size_t)tslen);
        buf_append_cstr(b, "\",\"level\":\"");
        buf_append_cstr(b, level_names[level]);
        buf_append_cstr(b, "\",\"proc\":");
        json_write_string(b, (const uint8_t *)log->process, strlen(log->process));
        buf_append_cstr(b, ",\"event\":");
        json_write_string(b, (const uint8_t *)event, event_len);
        buf_append_cstr(b, ",\"msg\":");
    } else {
        buf_append(b, ts, (size_t)tslen);
        buf_append_byte(b, ' ');
        buf_append_cstr(b, level_upper[level]);
        buf_append_byte(b, ' ');
        append_text_escaped(b, log->process, strlen(log->process));
        buf_append_byte(b, ' ');
        append_text_escaped(b, event, event_len);
    }
}

static void write_line(struct log *log)
{
    const uint8_t *p = log->line.data;
    size_t left = log->line.len;
    while (left > 0) {
        ssize_t w = write(log->fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            log->write_errors++;
            return;
        }
        /* A short write (full pipe, signal) still finishes the line rather than dropping it. */
        p += w;
        left -= (size_t)w;
    }
}

void log_write(struct log *log, enum log_level level, const char *event, const char *fmt, ...)
{
    if (!log_enabled(log, level) || (unsigned)level > LOG_LEVEL_ERROR)
        return;
    int saved_errno = errno; /* callers log strerror(errno) after a failure, then look again */
    va_list ap;
    va_start(ap, fmt);
    // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): va_start above
    int n = vsnprintf(log->msg, sizeof(log->msg), fmt, ap);
    va_end(ap);
    size_t msg_len = n < 0 ? 0 : (size_t)n;

    buf_reset(&log->line);
    append_prefix(log, level, event != NULL ? event : "-");
    size_t prefix_len = log->line.len;
    bool fits = false;
    if (msg_len < sizeof(log->msg)) {
        append_message(log, log->msg, msg_len, false);
        fits = log->line.len <= LOG_MAX_LINE;
    } else {
        msg_len = sizeof(log->msg) - 1; /* vsnprintf cut it already */
    }
    if (!fits && log->line.err == SIOC_OK) {
        /* Too long: find the longest cut that fits (escaping makes the size non-linear, so
         * search); a cut to 0 fits because the prefix is bounded by the name limits. */
        size_t lo = 0, hi = msg_len;
        while (lo < hi) {
            size_t mid = lo + (hi - lo + 1) / 2;
            if (render_cut(log, prefix_len, mid))
                lo = mid;
            else
                hi = mid - 1;
        }
        /* Cut on a UTF-8 character boundary (a partial character would only grow the text). */
        while (lo > 0 && ((unsigned char)log->msg[lo] & 0xc0) == 0x80)
            lo--;
        render_cut(log, prefix_len, lo);
    }
    if (log->line.err != SIOC_OK)
        log->write_errors++;
    else
        write_line(log);
    errno = saved_errno;
}

int log_level_parse(const char *s, enum log_level *out)
{
    for (int i = LOG_LEVEL_DEBUG; s != NULL && i <= LOG_LEVEL_ERROR; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return SIOC_OK;
        }
    }
    return SIOC_EINVAL;
}

int log_format_parse(const char *s, enum log_format *out)
{
    if (s != NULL && strcmp(s, "text") == 0)
        *out = LOG_TEXT;
    else if (s != NULL && strcmp(s, "json") == 0)
        *out = LOG_JSON;
    else
        return SIOC_EINVAL;
    return SIOC_OK;
}

const char *log_level_name(enum log_level level)
{
    return (unsigned)level <= LOG_LEVEL_ERROR ? level_names[level] : "unknown";
}
