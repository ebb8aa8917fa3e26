/* log.h: the process logger (DESIGN.md 2: log-format text|json, log-level, SIGHUP reopens logs).
 * One line per event, written with one write(2) so processes sharing a terminal never interleave
 * partial lines. Not thread-safe: one logger per event-loop thread. Signal handling is the
 * caller's (call log_reopen from the loop, not from the handler). */
#ifndef SIOC_LOG_H
#define SIOC_LOG_H

#include <stdbool.h>
#include <stdint.h>

/* Longest line written, newline included; a longer message is cut and ends in "...". */
#define LOG_MAX_LINE 8192
/* Longest process name log_new accepts, and longest event name written (cut beyond). */
#define LOG_MAX_PROCESS 64
#define LOG_MAX_EVENT 128

enum log_level { LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };

enum log_format {
    LOG_TEXT, /* 2026-11-22T07:00:00.123Z INFO gateway ws.close: sid=abc code=1002 */
    LOG_JSON, /* {"ts":"2026-11-22T07:00:00.123Z","level":"info","proc":"gateway",
                 "event":"ws.close","msg":"sid=abc code=1002"} */
};

struct log;

/* Creates a logger for `process` (copied; 1..LOG_MAX_PROCESS bytes) writing lines of `format`
 * at levels >= `min` to the file at `path` (opened for append, created 0644; the path is copied
 * for log_reopen), or to stderr when path is NULL. Returns NULL with errno set if the file
 * cannot be opened (or EINVAL for a bad process name, ENOMEM). Free with log_free. */
struct log *log_new(const char *process, enum log_format format, enum log_level min,
                    const char *path);
/* Closes the file (never stderr) and frees the logger. NULL is a no-op. */
void log_free(struct log *log);

/* Opens `path` again and switches to the new file (the logrotate pattern: the old file was
 * renamed, SIGHUP asks for a fresh one), closing the old descriptor. A logger on stderr is
 * unaffected. Returns 0, or -1 with errno set, in which case it keeps writing to the old file. */
int log_reopen(struct log *log);

/* True when a line at `level` would be written: check it before formatting something costly.
 * False for a NULL logger. */
bool log_enabled(const struct log *log, enum log_level level);

/* Writes one line: timestamp (ISO-8601 UTC, milliseconds), level, process, `event` (a short
 * dotted name such as "ws.close") and the printf-formatted message. In text format control
 * characters of event and message are escaped (\n, \r, \t, \xNN) so a line stays a line; in
 * JSON format they are JSON strings (invalid UTF-8 becomes U+FFFD). Lines longer than
 * LOG_MAX_LINE have the message cut to fit, ending in "..." (inside the JSON string).
 * Does nothing below the minimum level or for a NULL logger. A failed or short write is not
 * fatal: it is counted (log_write_errors). Writing to a closed pipe raises SIGPIPE unless the
 * process ignores it (the gateway and broker do). */
void log_write(struct log *log, enum log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Routes libevent's own messages (its warnings and errors; debug ones are dropped) into `log`
 * as event "libevent", instead of libevent printing them to stderr. libevent's callback is
 * process-wide and carries no context, so this keeps one process-wide pointer: the last logger
 * routed. log_free of that logger routes messages back to libevent's default. */
void log_route_libevent(struct log *log);

/* Lines that could not be written whole since log_new. */
uint64_t log_write_errors(const struct log *log);

/* Config strings: "debug" "info" "warn" "error"; "text" "json" (exact, lower case). Return
 * SIOC_OK and store the value, or SIOC_EINVAL (nothing stored) for anything else, NULL included. */
int log_level_parse(const char *s, enum log_level *out);
int log_format_parse(const char *s, enum log_format *out);
/* The lower-case name of a level ("info"), as the JSON format writes it. */
const char *log_level_name(enum log_level level);

#endif
