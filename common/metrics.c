/* metrics.c: metric registry and Prometheus text exposition 0.0.4 (see metrics.h). Families keep
 * registration order; each series is its own allocation so the pointers handed out never move.
 * Serving the text over HTTP is left to the gateway and broker. */
#include "common/metrics.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

enum metrics_type { METRICS_COUNTER, METRICS_GAUGE };

enum metrics_kind { METRICS_KIND_COUNTER, METRICS_KIND_GAUGE, METRICS_KIND_GAUGE_FN };

struct metrics_series {
    struct metrics_series *next; /* next series of the same family */
    char *labels;                /* owned; NULL when the series has no labels */
    enum metrics_kind kind;
    union {
        uint64_t counter;
        int64_t gauge;
        struct {
            double (*fn)(void *ctx);
            void *ctx;
        } computed;
    } value;
};

struct metrics_family {
    char *name; /* owned */
    char *help; /* owned; NULL = no HELP line */
    enum metrics_type type;
    struct metrics_series *first, *last;
};

struct metrics {
    struct metrics_family **families; /* registration order */
    size_t nfamilies, cap;
    size_t nseries;
    int last_error;
};

struct metrics *metrics_new(void)
{
    return calloc(1, sizeof(struct metrics));
}

void metrics_free(struct metrics *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->nfamilies; i++) {
        struct metrics_family *f = m->families[i];
        struct metrics_series *s = f->first;
        while (s != NULL) {
            struct metrics_series *next = s->next;
            free(s->labels);
            free(s);
            s = next;
        }
        free(f->name);
        free(f->help);
        free(f);
    }
    free(m->families);
    free(m);
}

int metrics_last_error(const struct metrics *m)
{
    return m->last_error;
}

static bool is_alpha_(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Prometheus data model: metric names match [a-zA-Z_:][a-zA-Z0-9_:]*. */
static int check_name(const char *name)
{
    if (name == NULL || name[0] == '\0')
        return SIOC_EINVAL;
    size_t len = strnlen(name, METRICS_MAX_NAME + 1);
    if (len > METRICS_MAX_NAME)
        return SIOC_ETOOBIG;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!(is_alpha_(c) || c == ':' || (i > 0 && is_digit(c))))
            return SIOC_EINVAL;
    }
    return SIOC_OK;
}

/* Validates a preformatted label string: name="value" pairs joined by ','. Label names match
 * [a-zA-Z_][a-zA-Z0-9_]* and "__" prefixes are reserved (data model); values may hold any byte
 * but a raw newline, with '\' only in the escapes \\ \" \n (exposition format 0.0.4). */
static int check_labels(const char *labels)
{
    size_t len = strnlen(labels, METRICS_MAX_LABELS + 1);
    if (len > METRICS_MAX_LABELS)
        return SIOC_ETOOBIG;
    size_t i = 0;
    while (i < len) {
        size_t name_start = i;
        if (!is_alpha_(labels[i]))
            return SIOC_EINVAL;
        while (i < len && (is_alpha_(labels[i]) || is_digit(labels[i])))
            i++;
        size_t name_len = i - name_start;
        if (name_len >= 2 && labels[name_start] == '_' && labels[name_start + 1] == '_')
            return SIOC_EINVAL;
        /* A repeated label name makes the whole scrape invalid: compare with the earlier ones. */
        for (size_t j = 0; j < name_start;) {
            size_t k = j;
            while (labels[k] != '=')
                k++;
            if (k - j == name_len && memcmp(labels + j, labels + name_start, name_len) == 0)
                return SIOC_EINVAL;
            k += 2; /* skip =" */
            while (labels[k] != '"')
                k += labels[k] == '\\' ? 2 : 1;
            j = k + 2; /* skip the closing quote and the ',' */
        }
        if (i + 1 >= len || labels[i] != '=' || labels[i + 1] != '"')
            return SIOC_EINVAL;
        i += 2;
        for (;;) {
            if (i >= len || labels[i] == '\n')
                return SIOC_EINVAL;
            if (labels[i] == '"')
                break;
            if (labels[i] == '\\') {
                char e = labels[i + 1]; /* at worst the terminating NUL */
                if (e != '\\' && e != '"' && e != 'n')
                    return SIOC_EINVAL;
                i++;
            }
            i++;
        }
        i++; /* closing quote */
        if (i < len) {
            if (labels[i] != ',' || i + 1 == len)
                return SIOC_EINVAL; /* no trailing ',' so the text is canonical */
            i++;
        }
    }
    return SIOC_OK;
}

static char *dup_cstr(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

static bool same_help(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

static bool same_labels(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

/* Finds or creates the family and appends a new zeroed series of `kind`. Returns it or NULL
 * with m->last_error set; on failure the registry is as before. */
static struct metrics_series *add_series(struct metrics *m, const char *name, const char *help,
                                         const char *labels, enum metrics_kind kind)
{
    enum metrics_type type = kind == METRICS_KIND_COUNTER ? METRICS_COUNTER : METRICS_GAUGE;
    if (labels != NULL && labels[0] == '\0')
        labels = NULL;
    int err = check_name(name);
    if (err == SIOC_OK && labels != NULL)
        err = check_labels(labels);
    if (err == SIOC_OK && help != NULL && strnlen(help, METRICS_MAX_HELP + 1) > METRICS_MAX_HELP)
        err = SIOC_ETOOBIG;
    if (err != SIOC_OK) {
        m->last_error = err;
        return NULL;
    }

    struct metrics_family *f = NULL;
    for (size_t i = 0; i < m->nfamilies; i++) {
        if (strcmp(m->families[i]->name, name) == 0) {
            f = m->families[i];
            break;
        }
    }
    if (f != NULL) {
        if (f->type != type || !same_help(f->help, help)) {
            m->last_error = SIOC_EINVAL;
            return NULL;
        }
        for (struct metrics_series *s = f->first; s != NULL; s = s->next) {
            if (same_labels(s->labels, labels)) {
                m->last_error = SIOC_EINVAL;
                return NULL;
            }
        }
    }
    if (m->nseries >= METRICS_MAX_SERIES) {
        m->last_error = SIOC_ETOOBIG;
        return NULL;
    }

    struct metrics_series *s = calloc(1, sizeof(*s));
    if (s == NULL)
        goto nomem;
    s->kind = kind;
    if (labels != NULL && (s->labels = dup_cstr(labels)) == NULL)
        goto nomem;
    if (f == NULL) {
        if (m->nfamilies == m->cap) {
            size_t cap = m->cap == 0 ? 16 : m->cap * 2;
            struct metrics_family **grown = realloc(m->families, cap * sizeof(*grown));
            if (grown == NULL)
                goto nomem;
            m->families = grown;
            m->cap = cap;
        }
        f = calloc(1, sizeof(*f));
        if (f == NULL)
            goto nomem;
        f->type = type;
        f->name = dup_cstr(name);
        f->help = help != NULL ? dup_cstr(help) : NULL;
        if (f->name == NULL || (help != NULL && f->help == NULL)) {
            free(f->name);
            free(f->help);
            free(f);
            goto nomem;
        }
        m->families[m->nfamilies++] = f;
    }
    if (f->last != NULL)
        f->last->next = s;
    else
        f->first = s;
    f->last = s;
    m->nseries++;
    return s;

nomem:
    if (s != NULL)
        free(s->labels);
    free(s);
    m->last_error = SIOC_ENOMEM;
    return NULL;
}

uint64_t *metrics_counter(struct metrics *m, const char *name, const char *help, const char *labels)
{
    struct metrics_series *s = add_series(m, name, help, labels, METRICS_KIND_COUNTER);
    return s != NULL ? &s->value.counter : NULL;
}

int64_t *metrics_gauge(struct metrics *m, const char *name, const char *help, const char *labels)
{
    struct metrics_series *s = add_series(m, name, help, labels, METRICS_KIND_GAUGE);
    return s != NULL ? &s->value.gauge : NULL;
}

int metrics_gauge_fn(struct metrics *m, const char *name, const char *help, const char *labels,
                     double (*fn)(void *ctx), void *ctx)
{
    if (fn == NULL) {
        m->last_error = SIOC_EINVAL;
        return SIOC_EINVAL;
    }
    struct metrics_series *s = add_series(m, name, help, labels, METRICS_KIND_GAUGE_FN);
    if (s == NULL)
        return m->last_error;
    s->value.computed.fn = fn;
    s->value.computed.ctx = ctx;
    return SIOC_OK;
}

/* Exposition format 0.0.4: label values escape \, " and newline; HELP escapes \ and newline
 * only (a '"' in HELP stays as is). */
static void append_escaped(struct buf *out, const char *s, bool escape_quote)
{
    size_t run = 0;
    for (size_t i = 0;; i++) {
        char c = s[i];
        const char *esc = NULL;
        if (c == '\\')
            esc = "\\\\";
        else if (c == '\n')
            esc = "\\n";
        else if (c == '"' && escape_quote)
            esc = "\\\"";
        else if (c != '\0')
            continue;
        buf_append(out, s + run, i - run);
        if (esc == NULL)
            return;
        buf_append(out, esc, 2);
        run = i + 1;
    }
}

void metrics_label_append(struct buf *labels, const char *key, const char *value)
{
    if (labels->len > 0)
        buf_append_byte(labels, ',');
    buf_append_cstr(labels, key);
    buf_append(labels, "=\"", 2);
    append_escaped(labels, value, true);
    buf_append_byte(labels, '"');
}

/* Shortest "%.*g" text that strtod reads back as exactly v (Go's ParseFloat, which Prometheus
 * uses, reads the same text to the same double); the spellings Prometheus gives the specials. */
static void append_double(struct buf *out, double v)
{
    if (isnan(v)) {
        buf_append_cstr(out, "NaN");
        return;
    }
    if (isinf(v)) {
        buf_append_cstr(out, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    char text[40];
    int n = 0;
    for (int prec = 1; prec <= 17; prec++) {
        n = snprintf(text, sizeof(text), "%.*g", prec, v);
        if (strtod(text, NULL) == v)
            break;
    }
    buf_append(out, text, (size_t)n);
}

void metrics_render(const struct metrics *m, struct buf *out)
{
    for (size_t i = 0; i < m->nfamilies; i++) {
        const struct metrics_family *f = m->families[i];
        if (f->help != NULL) {
            buf_append_cstr(out, "# HELP ");
            buf_append_cstr(out, f->name);
            buf_append_byte(out, ' ');
            append_escaped(out, f->help, false);
            buf_append_byte(out, '\n');
        }
        buf_append_cstr(out, "# TYPE ");
        buf_append_cstr(out, f->name);
        buf_append_cstr(out, f->type == METRICS_COUNTER ? " counter\n" : " gauge\n");
        for (const struct metrics_series *s = f->first; s != NULL; s = s->next) {
            buf_append_cstr(out, f->name);
            if (s->labels != NULL) {
                buf_append_byte(out, '{');
                buf_append_cstr(out, s->labels);
                buf_append_byte(out, '}');
            }
            buf_append_byte(out, ' ');
            switch (s->kind) {
            case METRICS_KIND_COUNTER: buf_append_u64(out, s->value.counter); break;
            case METRICS_KIND_GAUGE: buf_append_i64(out, s->value.gauge); break;
            case METRICS_KIND_GAUGE_FN:
                append_double(out, s->value.computed.fn(s->value.computed.ctx));
                break;
            }
            buf_append_byte(out, '\n');
        }
    }
}
