/* test_metrics.c: the metric registry and its Prometheus text exposition (0.0.4): exact rendered
 * text, label-set grouping, escaping, name/label validation, duplicates and limits. */
#include <math.h>
#include <stdio.h>

#include "common/error.h"
#include "common/metrics.h"
#include "tests/unit/test.h"

static double fixed_value(void *ctx)
{
    return *(const double *)ctx;
}

/* Renders m into a fresh buffer and compares with want. */
static void check_render(const struct metrics *m, const char *want)
{
    struct buf out;
    buf_init(&out, 0);
    metrics_render(m, &out);
    CHECK(out.err == SIOC_OK);
    CHECK_STR(out.data, out.len, want);
    buf_deinit(&out);
}

static void test_exposition(void)
{
    struct metrics *m = metrics_new();
    CHECK(m != NULL);
    uint64_t *ws =
        metrics_counter(m, "sioc_packets_in_total", "Packets received.", "transport=\"websocket\"");
    int64_t *conns = metrics_gauge(m, "sioc_connections", "Open connections.", NULL);
    uint64_t *poll =
        metrics_counter(m, "sioc_packets_in_total", "Packets received.", "transport=\"polling\"");
    double depth = 42;
    CHECK(metrics_gauge_fn(m, "sioc_upstream_queue_depth", "Queued upstream messages.", "",
                           fixed_value, &depth) == SIOC_OK);
    CHECK(ws != NULL && conns != NULL && poll != NULL);
    if (ws == NULL || conns == NULL || poll == NULL) {
        metrics_free(m);
        return;
    }
    CHECK(metrics_last_error(m) == SIOC_OK);
    check_render(m, "# HELP sioc_packets_in_total Packets received.\n"
                    "# TYPE sioc_packets_in_total counter\n"
                    "sioc_packets_in_total{transport=\"websocket\"} 0\n"
                    "sioc_packets_in_total{transport=\"polling\"} 0\n"
                    "# HELP sioc_connections Open connections.\n"
                    "# TYPE sioc_connections gauge\n"
                    "sioc_connections 0\n"
                    "# HELP sioc_upstream_queue_depth Queued upstream messages.\n"
                    "# TYPE sioc_upstream_queue_depth gauge\n"
                    "sioc_upstream_queue_depth 42\n");
    *ws += 18446744073709551615u;
    (*poll)++;
    *conns = -3;
    depth = 0.1;
    check_render(m, "# HELP sioc_packets_in_total Packets received.\n"
                    "# TYPE sioc_packets_in_total counter\n"
                    "sioc_packets_in_total{transport=\"websocket\"} 18446744073709551615\n"
                    "sioc_packets_in_total{transport=\"polling\"} 1\n"
                    "# HELP sioc_connections Open connections.\n"
                    "# TYPE sioc_connections gauge\n"
                    "sioc_connections -3\n"
                    "# HELP sioc_upstream_queue_depth Queued upstream messages.\n"
                    "# TYPE sioc_upstream_queue_depth gauge\n"
                    "sioc_upstream_queue_depth 0.1\n");
    metrics_free(m);
    metrics_free(NULL);
}

static void test_no_help_and_multi_labels(void)
{
    struct metrics *m = metrics_new();
    int64_t *g = metrics_gauge(m, "redis:state", NULL, "role=\"sub\",url=\"redis://h:1\"");
    CHECK(g != NULL);
    *g = 1;
    /* Same name, different help (here: none vs some) is rejected. */
    CHECK(metrics_gauge(m, "redis:state", "x", "role=\"pub\"") == NULL);
    CHECK(metrics_last_error(m) == SIOC_EINVAL);
    CHECK(metrics_gauge(m, "redis:state", NULL, "role=\"pub\"") != NULL);
    check_render(m, "# TYPE redis:state gauge\n"
                    "redis:state{role=\"sub\",url=\"redis://h:1\"} 1\n"
                    "redis:state{role=\"pub\"} 0\n");
    metrics_free(m);
}

static void test_doubles(void)
{
    static const struct {
        double v;
        const char *text;
    } cases[] = {
        {0.0, "0"},
        {-0.0, "-0"},
        {1.0, "1"},
        {-2.5, "-2.5"},
        {1e21, "1e+21"},
        {123456789012345678.0, "1.2345678901234568e+17"},
        {0.1 + 0.2, "0.30000000000000004"},
        {5e-324, "5e-324"},
        {1.7976931348623157e308, "1.7976931348623157e+308"},
        {INFINITY, "+Inf"},
        {-INFINITY, "-Inf"},
        {NAN, "NaN"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct metrics *m = metrics_new();
        double v = cases[i].v;
        CHECK(metrics_gauge_fn(m, "g", NULL, NULL, fixed_value, &v) == SIOC_OK);
        char want[128];
        snprintf(want, sizeof(want), "# TYPE g gauge\ng %s\n", cases[i].text);
        check_render(m, want);
        metrics_free(m);
    }
}

static void test_escaping(void)
{
    struct metrics *m = metrics_new();
    struct buf labels;
    buf_init(&labels, 0);
    metrics_label_append(&labels, "path", "C:\\dir \"q\"\nx");
    metrics_label_append(&labels, "nsp", "/");
    buf_append_byte(&labels, 0);
    CHECK(labels.err == SIOC_OK);
    CHECK_STR(labels.data, labels.len - 1, "path=\"C:\\\\dir \\\"q\\\"\\nx\",nsp=\"/\"");
    uint64_t *c = metrics_counter(m, "c_total", "Back\\slash, \"quotes\"\nand newline.",
                                  (const char *)labels.data);
    CHECK(c != NULL);
    check_render(m, "# HELP c_total Back\\\\slash, \"quotes\"\\nand newline.\n"
                    "# TYPE c_total counter\n"
                    "c_total{path=\"C:\\\\dir \\\"q\\\"\\nx\",nsp=\"/\"} 0\n");
    buf_deinit(&labels);
    metrics_free(m);
}

static void test_invalid_names(void)
{
    static const char *bad_names[] = {"", "1abc", "a-b", "a b", "é", "a.b", "a{"};
    static const char *good_names[] = {"a", "_", ":", "a1", "A_b:c9", "__x"};
    struct metrics *m = metrics_new();
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        CHECK(metrics_counter(m, bad_names[i], NULL, NULL) == NULL);
        CHECK(metrics_last_error(m) == SIOC_EINVAL);
    }
    CHECK(metrics_counter(m, NULL, NULL, NULL) == NULL);
    for (size_t i = 0; i < sizeof(good_names) / sizeof(good_names[0]); i++)
        CHECK(metrics_counter(m, good_names[i], NULL, NULL) != NULL);

    static const char *bad_labels[] = {
        "a",         "a=",        "a=\"x",           "a=x",
        "1a=\"x\"",  "a:b=\"x\"", "__a=\"x\"",       "a=\"x\",",
        ",a=\"x\"",  "a=\"x\" ",  "a=\"x\"b=\"y\"",  "a=\"\n\"",
        "a=\"\\t\"", "a=\"\\\"",  "a=\"x\",a=\"y\"", "a=\"x\",b=\"\\\"\",a=\"z\"",
        "a =\"x\"",
    };
    for (size_t i = 0; i < sizeof(bad_labels) / sizeof(bad_labels[0]); i++) {
        if (metrics_gauge(m, "g", NULL, bad_labels[i]) != NULL)
            fprintf(stderr, "accepted bad labels: %s\n", bad_labels[i]);
        CHECK(metrics_last_error(m) == SIOC_EINVAL);
    }
    static const char *good_labels[] = {
        "a=\"\"",
        "_a=\"x\"",
        "a=\"x\",b=\"y\"",
        "a=\"\\\\\\\"\\n\"",
        "a=\"x\",ab=\"y\",b=\"z\"",
        "a_1=\"{}=,\"",
    };
    for (size_t i = 0; i < sizeof(good_labels) / sizeof(good_labels[0]); i++)
        CHECK(metrics_gauge(m, "g", NULL, good_labels[i]) != NULL);
    /* Nothing invalid was registered: only the good series render. */
    struct buf out;
    buf_init(&out, 0);
    metrics_render(m, &out);
    size_t lines = 0;
    for (size_t i = 0; i < out.len; i++)
        lines += out.data[i] == '\n';
    CHECK(lines == 6 * 2 + 1 + 6);
    buf_deinit(&out);
    metrics_free(m);
}

static void test_conflicts(void)
{
    struct metrics *m = metrics_new();
    uint64_t *a = metrics_counter(m, "x", "h", "k=\"1\"");
    CHECK(a != NULL);
    /* The same series twice. */
    CHECK(metrics_counter(m, "x", "h", "k=\"1\"") == NULL);
    CHECK(metrics_last_error(m) == SIOC_EINVAL);
    /* Same name, another type. */
    CHECK(metrics_gauge(m, "x", "h", "k=\"2\"") == NULL);
    CHECK(metrics_last_error(m) == SIOC_EINVAL);
    /* Same name, another help. */
    CHECK(metrics_counter(m, "x", "other", "k=\"2\"") == NULL);
    CHECK(metrics_last_error(m) == SIOC_EINVAL);
    /* No labels vs "" are the same series. */
    CHECK(metrics_gauge(m, "y", NULL, NULL) != NULL);
    CHECK(metrics_gauge(m, "y", NULL, "") == NULL);
    /* A computed gauge needs a function, and may share a family with plain gauges. */
    CHECK(metrics_gauge_fn(m, "y", NULL, "k=\"1\"", NULL, NULL) == SIOC_EINVAL);
    double v = 1.5;
    CHECK(metrics_gauge_fn(m, "y", NULL, "k=\"1\"", fixed_value, &v) == SIOC_OK);
    CHECK(metrics_gauge_fn(m, "x", "h", "k=\"3\"", fixed_value, &v) == SIOC_EINVAL);
    *a = 7;
    check_render(m, "# HELP x h\n# TYPE x counter\nx{k=\"1\"} 7\n"
                    "# TYPE y gauge\ny 0\ny{k=\"1\"} 1.5\n");
    metrics_free(m);
}

static void test_limits(void)
{
    struct metrics *m = metrics_new();
    char labels[32];
    uint64_t *first = NULL, *last = NULL;
    for (int i = 0; i < METRICS_MAX_SERIES; i++) {
        snprintf(labels, sizeof(labels), "i=\"%d\"", i);
        uint64_t *c = metrics_counter(m, i % 2 ? "odd_total" : "even_total", NULL, labels);
        CHECK(c != NULL);
        if (c != NULL)
            *c = (uint64_t)i;
        if (i == 0)
            first = c;
        last = c;
    }
    CHECK(metrics_counter(m, "more_total", NULL, NULL) == NULL);
    CHECK(metrics_last_error(m) == SIOC_ETOOBIG);
    CHECK(metrics_gauge_fn(m, "more", NULL, NULL, fixed_value, NULL) == SIOC_ETOOBIG);
    /* Pointers stay put while the registry grows. */
    CHECK(first != NULL && *first == 0);
    CHECK(last != NULL && *last == METRICS_MAX_SERIES - 1);
    struct buf out;
    buf_init(&out, 0);
    metrics_render(m, &out);
    buf_append_byte(&out, 0);
    CHECK(out.err == SIOC_OK);
    CHECK(strstr((const char *)out.data, "# TYPE even_total counter\neven_total{i=\"0\"} 0\n"
                                         "even_total{i=\"2\"} 2\n") != NULL);
    CHECK(strstr((const char *)out.data, "odd_total{i=\"1023\"} 1023\n") != NULL);
    /* A bounded output buffer reports the overflow instead of cutting silently. */
    struct buf small;
    buf_init(&small, 64);
    metrics_render(m, &small);
    CHECK(small.err == SIOC_ETOOBIG);
    buf_deinit(&small);
    buf_deinit(&out);
    metrics_free(m);

    m = metrics_new();
    char name[METRICS_MAX_NAME + 2];
    memset(name, 'n', sizeof(name));
    name[METRICS_MAX_NAME] = '\0';
    CHECK(metrics_counter(m, name, NULL, NULL) != NULL);
    name[METRICS_MAX_NAME] = 'n';
    name[METRICS_MAX_NAME + 1] = '\0';
    CHECK(metrics_counter(m, name, NULL, NULL) == NULL);
    CHECK(metrics_last_error(m) == SIOC_ETOOBIG);

    char big[METRICS_MAX_LABELS + 2];
    memset(big, 'v', sizeof(big));
    memcpy(big, "k=\"", 3);
    big[METRICS_MAX_LABELS - 1] = '"';
    big[METRICS_MAX_LABELS] = '\0';
    CHECK(metrics_counter(m, "l", NULL, big) != NULL);
    big[METRICS_MAX_LABELS - 1] = 'v';
    big[METRICS_MAX_LABELS] = '"';
    big[METRICS_MAX_LABELS + 1] = '\0';
    CHECK(metrics_counter(m, "l2", NULL, big) == NULL);
    CHECK(metrics_last_error(m) == SIOC_ETOOBIG);

    char help[METRICS_MAX_HELP + 2];
    memset(help, 'h', sizeof(help));
    help[METRICS_MAX_HELP] = '\0';
    CHECK(metrics_counter(m, "h1", help, NULL) != NULL);
    help[METRICS_MAX_HELP] = 'h';
    help[METRICS_MAX_HELP + 1] = '\0';
    CHECK(metrics_counter(m, "h2", help, NULL) == NULL);
    CHECK(metrics_last_error(m) == SIOC_ETOOBIG);
    metrics_free(m);
}

int main(void)
{
    RUN(test_exposition);
    RUN(test_no_help_and_multi_labels);
    RUN(test_doubles);
    RUN(test_escaping);
    RUN(test_invalid_names);
    RUN(test_conflicts);
    RUN(test_limits);
    return test_summary("test_metrics");
}
