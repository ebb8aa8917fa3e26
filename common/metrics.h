/* metrics.h: a registry of counters, gauges and computed gauges rendered in the Prometheus text
 * exposition format 0.0.4 (DESIGN.md 2, GET /metrics). Pure: no I/O, no clock, no threads; the
 * owner bumps the values through the pointers registration hands out, and the HTTP layer serves
 * what metrics_render appends. */
#ifndef SIOC_METRICS_H
#define SIOC_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* Named limits, checked at registration (SIOC_ETOOBIG beyond them). */
#define METRICS_MAX_SERIES 1024 /* series (name + label set) per registry */
#define METRICS_MAX_NAME 128    /* bytes in a metric name */
#define METRICS_MAX_LABELS 1024 /* bytes in a preformatted label string */
#define METRICS_MAX_HELP 1024   /* bytes in a HELP text (before escaping) */

/* The Content-Type a /metrics response carries for this format. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct metrics;

/* Returns an empty registry, or NULL if out of memory. Free with metrics_free. */
struct metrics *metrics_new(void);
/* Frees the registry; every pointer it handed out becomes invalid. NULL is a no-op. */
void metrics_free(struct metrics *m);

/* Registering. Common arguments (all borrowed; the registry copies what it keeps):
 *   name    [a-zA-Z_:][a-zA-Z0-9_:]*, at most METRICS_MAX_NAME bytes.
 *   help    HELP text (any bytes but NUL; escaped at render), or NULL for no HELP line. Every
 *           series of one name must pass the same help (NULL included) and the same type.
 *   labels  NULL or "" for none; else the inside of the braces, preformatted and already
 *           escaped: key="value" pairs joined by ',' (build it with metrics_label_append).
 *           Checked strictly: label names [a-zA-Z_][a-zA-Z0-9_]* not starting with "__",
 *           unique within the set; values with no raw newline and only the escapes \\ \" \n.
 *           A name registered with several label sets renders as one family (one HELP/TYPE).
 *           Two label strings are the same series only if byte-identical.
 * Failures return NULL (or the code, for metrics_gauge_fn) and leave the registry unchanged;
 * metrics_last_error then says why: SIOC_EINVAL (bad name or labels; the same series twice;
 * same name with another type or help), SIOC_ETOOBIG (a limit above), SIOC_ENOMEM. */

/* A counter, starting at 0. Returns a pointer the owner increments directly; it stays valid
 * until metrics_free. Rendered as "counter", as an unsigned integer. */
uint64_t *metrics_counter(struct metrics *m, const char *name, const char *help,
                          const char *labels);
/* A gauge, starting at 0, that the owner sets or adjusts through the returned pointer (valid
 * until metrics_free). Rendered as "gauge", as a signed integer. */
int64_t *metrics_gauge(struct metrics *m, const char *name, const char *help, const char *labels);
/* A gauge computed at render time by fn(ctx) (e.g. a queue depth or a connection state; ctx is
 * borrowed and must stay valid for as long as the registry may be rendered). Rendered as "gauge"
 * with the shortest text that reads back as the same double ("NaN", "+Inf", "-Inf" when so).
 * Returns SIOC_OK or a negative code as above. */
int metrics_gauge_fn(struct metrics *m, const char *name, const char *help, const char *labels,
                     double (*fn)(void *ctx), void *ctx);

/* The code of the last failed registration (SIOC_OK if none failed yet). */
int metrics_last_error(const struct metrics *m);

/* Appends `key="value"` to a label string being built in `labels` (after a ',' when labels is
 * not empty), escaping value as the format requires (\ -> \\, " -> \", newline -> \n). The key
 * is copied as is (registration validates it). The caller appends a NUL before passing
 * labels->data to a registration function. Errors are the buffer's (labels->err). */
void metrics_label_append(struct buf *labels, const char *key, const char *value);

/* Appends the whole exposition to `out`: per family, in registration order, "# HELP name text"
 * (if help was given), "# TYPE name counter|gauge", then one "name{labels} value" line per
 * series in registration order; every line ends in '\n'. Calls each computed gauge's fn once.
 * Errors are the buffer's (out->err). Values are read without synchronisation: render on the
 * thread that updates them. */
void metrics_render(const struct metrics *m, struct buf *out);

#endif
