/* config.c: option tables, precedence (flag > env > file > default) and validation (config.h). */
#include "common/config.h"

#include <assert.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/error.h"

static int find(const struct config *cfg, const char *key, size_t keylen)
{
    for (size_t i = 0; i < cfg->count; i++) {
        if (strlen(cfg->options[i].key) == keylen && memcmp(cfg->options[i].key, key, keylen) == 0)
            return (int)i;
    }
    return -1;
}

static int index_of(const struct config *cfg, const char *key)
{
    int i = find(cfg, key, strlen(key));
    assert(i >= 0 && "config key not in the option table");
    return i;
}

__attribute__((format(printf, 3, 4))) static void set_error(char *err, size_t errlen,
                                                            const char *fmt, ...)
{
    if (errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap); // NOLINT(clang-analyzer-valist.Uninitialized): va_start above
    va_end(ap);
}

static bool parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

static bool parse_int(const char *v, int64_t *out)
{
    const char *s = v;
    bool negative = *s == '-';
    if (negative)
        s++;
    if (*s == '\0')
        return false;
    uint64_t acc = 0;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return false;
        uint64_t digit = (uint64_t)(*s - '0');
        if (acc > (UINT64_MAX - digit) / 10)
            return false;
        acc = acc * 10 + digit;
    }
    if (acc > (uint64_t)INT64_MAX)
        return false;
    *out = negative ? -(int64_t)acc : (int64_t)acc;
    return true;
}

/* Validates `value` for option i and stores a copy. `where` names the source for messages. */
static int set_value(struct config *cfg, size_t i, const char *value, size_t len,
                     enum config_source source, const char *where, char *err, size_t errlen)
{
    const struct config_option *opt = &cfg->options[i];
    if (len > CONFIG_MAX_VALUE) {
        set_error(err, errlen, "%s: value too long (%zu bytes, at most %d)", where, len,
                  CONFIG_MAX_VALUE);
        return SIOC_EINVAL;
    }
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return SIOC_ENOMEM;
    memcpy(copy, value, len);
    copy[len] = '\0';
    bool flag_value;
    int64_t number;
    switch (opt->type) {
    case CONFIG_STRING: break;
    case CONFIG_FLAG:
    case CONFIG_BOOL:
        if (!parse_bool(copy, &flag_value)) {
            set_error(err, errlen, "%s: expected yes or no, got '%s'", where, copy);
            free(copy);
            return SIOC_EINVAL;
        }
        break;
    case CONFIG_INT:
    case CONFIG_MS:
        if (!parse_int(copy, &number)) {
            set_error(err, errlen, "%s: not a number: '%s'", where, copy);
            free(copy);
            return SIOC_EINVAL;
        }
        if (number < opt->min || number > opt->max) {
            set_error(err, errlen, "%s: %lld is outside [%lld, %lld]", where, (long long)number,
                      (long long)opt->min, (long long)opt->max);
            free(copy);
            return SIOC_EINVAL;
        }
        break;
    }
    free(cfg->values[i]);
    cfg->values[i] = copy;
    cfg->sources[i] = source;
    return SIOC_OK;
}

int config_init(struct config *cfg, const struct config_option *options, size_t count)
{
    memset(cfg, 0, sizeof *cfg);
    if (count > CONFIG_MAX_OPTIONS)
        return SIOC_EINVAL;
    cfg->options = options;
    cfg->count = count;
    for (size_t i = 0; i < count; i++) {
        if (find(cfg, options[i].key, strlen(options[i].key)) != (int)i)
            return SIOC_EINVAL; /* duplicate key in the table */
        if (options[i].default_value == NULL)
            continue;
        char err[128];
        int rc = set_value(cfg, i, options[i].default_value, strlen(options[i].default_value),
                           CONFIG_FROM_DEFAULT, "default", err, sizeof err);
        if (rc != SIOC_OK) {
            config_deinit(cfg);
            return rc;
        }
    }
    return SIOC_OK;
}

void config_deinit(struct config *cfg)
{
    for (size_t i = 0; i < CONFIG_MAX_OPTIONS; i++) {
        free(cfg->values[i]);
        cfg->values[i] = NULL;
    }
}

const char *config_file_path(int argc, char *const argv[], char *const envp[])
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            return argv[i + 1];
        if (strncmp(argv[i], "--config=", 9) == 0)
            return argv[i] + 9;
    }
    for (size_t i = 0; envp != NULL && envp[i] != NULL; i++) {
        if (strncmp(envp[i], "SIOC_CONFIG=", 12) == 0)
            return envp[i] + 12;
    }
    return NULL;
}

/* File lines: `key value`, `key` alone for a flag; blank lines and `#` comments (at the start
 * of a line or after whitespace) are skipped. */
static int load_file(struct config *cfg, const char *text, size_t len, char *err, size_t errlen)
{
    size_t pos = 0;
    for (int line = 1; pos < len; line++) {
        const char *start = text + pos;
        const char *nl = memchr(start, '\n', len - pos);
        size_t n = nl != NULL ? (size_t)(nl - start) : len - pos;
        pos += n + (nl != NULL);
        /* cut a comment: '#' at the start or after whitespace */
        for (size_t k = 0; k < n; k++) {
            if (start[k] == '#' && (k == 0 || isspace((unsigned char)start[k - 1]))) {
                n = k;
                break;
            }
        }
        size_t a = 0;
        while (a < n && isspace((unsigned char)start[a]))
            a++;
        while (n > a && isspace((unsigned char)start[n - 1]))
            n--;
        if (a == n)
            continue;
        size_t keyend = a;
        while (keyend < n && !isspace((unsigned char)start[keyend]))
            keyend++;
        size_t v = keyend;
        while (v < n && isspace((unsigned char)start[v]))
            v++;
        char where[48];
        snprintf(where, sizeof where, "config line %d", line);
        int i = find(cfg, start + a, keyend - a);
        if (i < 0 || strcmp(cfg->options[i].key, "config") == 0) {
            set_error(err, errlen, "%s: unknown option '%.*s'", where, (int)(keyend - a),
                      start + a);
            return SIOC_EINVAL;
        }
        const char *value = start + v;
        size_t value_len = n - v;
        if (cfg->options[i].type == CONFIG_FLAG && value_len == 0) {
            value = "yes";
            value_len = 3;
        }
        int rc = set_value(cfg, (size_t)i, value, value_len, CONFIG_FROM_FILE, where, err, errlen);
        if (rc != SIOC_OK)
            return rc;
    }
    return SIOC_OK;
}

static int load_env(struct config *cfg, char *const envp[], char *err, size_t errlen)
{
    for (size_t i = 0; i < cfg->count; i++) {
        char name[96] = "SIOC_";
        size_t k = 5;
        for (const char *s = cfg->options[i].key; *s != '\0' && k < sizeof name - 2; s++)
            name[k++] = *s == '-' ? '_' : (char)toupper((unsigned char)*s);
        name[k++] = '=';
        name[k] = '\0';
        for (size_t e = 0; envp != NULL && envp[e] != NULL; e++) {
            if (strncmp(envp[e], name, k) != 0)
                continue;
            name[k - 1] = '\0';
            int rc = set_value(cfg, i, envp[e] + k, strlen(envp[e] + k), CONFIG_FROM_ENV, name, err,
                               errlen);
            if (rc != SIOC_OK)
                return rc;
            break;
        }
    }
    return SIOC_OK;
}

static int load_flags(struct config *cfg, int argc, char *const argv[], char *err, size_t errlen)
{
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        if (strncmp(arg, "--", 2) != 0) {
            set_error(err, errlen, "unexpected argument '%s' (options are --key value)", arg);
            return SIOC_EINVAL;
        }
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t name_len = eq != NULL ? (size_t)(eq - name) : strlen(name);
        if (name_len == 6 && memcmp(name, "config", 6) == 0) {
            if (eq == NULL)
                a++; /* its value was read by config_file_path */
            continue;
        }
        int i = find(cfg, name, name_len);
        if (i < 0) {
            set_error(err, errlen, "unknown option '--%.*s' (see --help)", (int)name_len, name);
            return SIOC_EINVAL;
        }
        const char *value;
        if (eq != NULL) {
            value = eq + 1;
        } else if (cfg->options[i].type == CONFIG_FLAG) {
            value = "yes";
        } else if (a + 1 < argc) {
            value = argv[++a];
        } else {
            set_error(err, errlen, "--%s needs a value", cfg->options[i].key);
            return SIOC_EINVAL;
        }
        char where[80];
        snprintf(where, sizeof where, "--%s", cfg->options[i].key);
        int rc =
            set_value(cfg, (size_t)i, value, strlen(value), CONFIG_FROM_FLAG, where, err, errlen);
        if (rc != SIOC_OK)
            return rc;
    }
    return SIOC_OK;
}

int config_load(struct config *cfg, const char *file_text, size_t file_len, char *const envp[],
                int argc, char *const argv[], char *err, size_t errlen)
{
    int rc = SIOC_OK;
    if (file_text != NULL)
        rc = load_file(cfg, file_text, file_len, err, errlen);
    if (rc == SIOC_OK)
        rc = load_env(cfg, envp, err, errlen);
    if (rc == SIOC_OK)
        rc = load_flags(cfg, argc, argv, err, errlen);
    return rc;
}

const char *config_get(const struct config *cfg, const char *key)
{
    return cfg->values[index_of(cfg, key)];
}

int64_t config_get_int(const struct config *cfg, const char *key)
{
    const char *v = config_get(cfg, key);
    int64_t n = 0;
    if (v != NULL && !parse_int(v, &n))
        n = 0;
    return n;
}

bool config_get_bool(const struct config *cfg, const char *key)
{
    const char *v = config_get(cfg, key);
    bool b = false;
    if (v != NULL && !parse_bool(v, &b))
        b = false;
    return b;
}

enum config_source config_source_of(const struct config *cfg, const char *key)
{
    return cfg->sources[index_of(cfg, key)];
}

size_t config_help(const struct config *cfg, const char *program, char *out, size_t outlen)
{
    size_t need = 0;
    /* out may be NULL with outlen 0 (C11 7.21.6.5: nothing is written, the length is counted) */
    // cppcheck-suppress ctunullpointer
    int n = snprintf(out, outlen,
                     "Usage: %s [--key value]...\nEvery option is also SIOC_<KEY> in the "
                     "environment and 'key value' in --config FILE.\n\n",
                     program);
    need += n > 0 ? (size_t)n : 0;
    for (size_t i = 0; i < cfg->count; i++) {
        const struct config_option *o = &cfg->options[i];
        const char *arg = o->type == CONFIG_FLAG   ? ""
                          : o->type == CONFIG_MS   ? " MS"
                          : o->type == CONFIG_INT  ? " N"
                          : o->type == CONFIG_BOOL ? " yes|no"
                                                   : " VALUE";
        char left[64];
        snprintf(left, sizeof left, "--%s%s", o->key, arg);
        n = snprintf(need < outlen ? out + need : NULL, need < outlen ? outlen - need : 0,
                     "  %-28s %s%s%s%s\n", left, o->help, o->default_value ? " [" : "",
                     o->default_value ? o->default_value : "", o->default_value ? "]" : "");
        need += n > 0 ? (size_t)n : 0;
    }
    return need;
}

bool config_list_next(const char **cursor, const char **item, size_t *len)
{
    const char *s = *cursor;
    while (s != NULL && *s != '\0') {
        const char *end = strchr(s, ',');
        size_t n = end != NULL ? (size_t)(end - s) : strlen(s);
        size_t a = 0, b = n;
        while (a < b && s[a] == ' ')
            a++;
        while (b > a && s[b - 1] == ' ')
            b--;
        const char *start = s;
        s += n + (end != NULL);
        if (b > a) {
            *cursor = s;
            *item = start + a;
            *len = b - a;
            return true;
        }
    }
    *cursor = s;
    return false;
}

bool config_list_has(const char *list, const char *item, size_t len)
{
    const char *s, *cursor = list;
    size_t n;
    while (config_list_next(&cursor, &s, &n))
        if (n == len && memcmp(s, item, n) == 0)
            return true;
    return false;
}
