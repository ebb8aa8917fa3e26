/* config.h: the options of a sioc process (DESIGN.md §2): every option is a long flag
 * (`--key value` or `--key=value`), the same key in a config file (`key value` per line, `#`
 * comments), and an environment variable SIOC_<KEY> (upper case, '-' -> '_').
 * Precedence: flag > env > file > default. Pure: the caller passes argv, the environment and
 * the file's bytes, so nothing here touches the process state. */
#ifndef SIOC_CONFIG_H
#define SIOC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum config_type {
    CONFIG_STRING,
    CONFIG_INT,  /* decimal integer within [min, max] */
    CONFIG_MS,   /* milliseconds: a decimal integer within [min, max] */
    CONFIG_BOOL, /* yes/no, true/false, on/off, 1/0 */
    CONFIG_FLAG, /* a flag without a value (--help, --check-config); "yes" when given */
};

/* One option of a process, declared in a static const table by the process. */
struct config_option {
    const char *key; /* "ping-interval" */
    enum config_type type;
    const char *default_value; /* NULL: unset unless given */
    int64_t min, max;          /* for CONFIG_INT and CONFIG_MS */
    const char *help;          /* one line for --help */
};

#define CONFIG_MAX_OPTIONS 64
#define CONFIG_MAX_VALUE 4096

enum config_source { CONFIG_FROM_DEFAULT, CONFIG_FROM_FILE, CONFIG_FROM_ENV, CONFIG_FROM_FLAG };

struct config {
    const struct config_option *options; /* borrowed: the process's static table */
    size_t count;
    char *values[CONFIG_MAX_OPTIONS]; /* owned copies; NULL = unset */
    enum config_source sources[CONFIG_MAX_OPTIONS];
};

/* Initialises `cfg` from the option table (count <= CONFIG_MAX_OPTIONS) with the defaults.
 * Returns SIOC_OK, SIOC_EINVAL for a bad table, or SIOC_ENOMEM. */
int config_init(struct config *cfg, const struct config_option *options, size_t count);
void config_deinit(struct config *cfg);

/* The value of `--config` among the flags, else of SIOC_CONFIG in envp, else NULL. Returned
 * pointers point into argv/envp. */
const char *config_file_path(int argc, char *const argv[], char *const envp[]);

/* Applies, in precedence order, the file text (may be NULL), then envp (NULL-terminated
 * "NAME=value" strings, may be NULL), then the flags argv[1..argc). `--config FILE` is accepted
 * and skipped. Every value is validated against its option's type and range.
 * Returns SIOC_OK, or SIOC_EINVAL with a one-line message in err[0..errlen) naming the source
 * ("line 3: unknown option 'pingg'", "--ping-interval: not a number: 'x'"). */
int config_load(struct config *cfg, const char *file_text, size_t file_len, char *const envp[],
                int argc, char *const argv[], char *err, size_t errlen);

/* Getters: the key must be in the table (asserted: a programmer error otherwise).
 * config_get returns NULL when unset; the string stays valid until config_deinit. */
const char *config_get(const struct config *cfg, const char *key);
int64_t config_get_int(const struct config *cfg, const char *key); /* 0 when unset */
bool config_get_bool(const struct config *cfg, const char *key);   /* false when unset */
enum config_source config_source_of(const struct config *cfg, const char *key);

/* Writes the --help text (usage line, then one line per option with its default) to
 * out[0..outlen) NUL-terminated; returns the length it needed (like snprintf). out may be NULL
 * when outlen is 0, to measure. */
size_t config_help(const struct config *cfg, const char *program, char *out, size_t outlen);

/* Comma lists in option values (`namespaces`, `cors-origin`, ...): "a,b, c". Each item is
 * trimmed of spaces; empty items are skipped. The one reading of such lists, so every option
 * that takes one agrees. config_list_next moves *cursor past the next item and stores it in
 * *item (pointing into the list); false at the end. */
bool config_list_next(const char **cursor, const char **item, size_t *len);
/* True when the list holds an item equal to the len bytes at `item`. */
bool config_list_has(const char *list, const char *item, size_t len);

#endif
