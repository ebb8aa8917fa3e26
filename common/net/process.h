/* process.h: what every sioc program does first: load its options from --config FILE (or
 * SIOC_CONFIG), the SIOC_* environment and the flags (common/config.h precedence), print
 * --help, and read small files (keys, configs) whole. */
#ifndef SIOC_NET_PROCESS_H
#define SIOC_NET_PROCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"

enum process_start {
    PROCESS_RUN,  /* options loaded: carry on */
    PROCESS_EXIT, /* --help was printed: exit 0 */
    PROCESS_FAIL, /* a message went to stderr: exit 2 */
};

/* Initialises *cfg from the option table and loads it. The table must have "config" and
 * "help" entries. `program` names the process in messages. On PROCESS_RUN the caller owns cfg
 * (config_deinit); otherwise it is already released. */
enum process_start process_load_config(struct config *cfg, const struct config_option *options,
                                       size_t count, const char *program, int argc, char **argv);

/* Writes "<port>\n" to `path` (tests start programs on port 0 and read the bound port here).
 * NULL path: nothing. Returns false when the file cannot be written. */
bool process_write_port_file(const char *path, unsigned port);

/* Reads at most `max` bytes of a file, NUL-terminated (the NUL is not counted in *len).
 * Returns NULL if it cannot be opened or memory runs out; the caller frees. */
char *process_read_file(const char *path, size_t max, size_t *len);

/* The number of file descriptors this process may have open (RLIMIT_NOFILE's soft limit), after
 * raising the soft limit towards the hard limit when it is below `want` (0: no raise).
 * Returns SIZE_MAX when the limit is infinite. */
size_t process_fd_limit(size_t want);

/* Fills buf with n bytes from the kernel's random source (getrandom). If that fails (an old
 * kernel, a seccomp filter), the bytes are mixed from the clocks, the pid and `salt`'s address
 * instead: good enough for seeds, jitter and node ids, never for secrets (session ids come from
 * gateway/random_pool, TLS keys from OpenSSL). The one place a sioc program asks for a seed. */
void process_random_bytes(void *buf, size_t n, const void *salt);
/* The same, as one 64-bit value (never 0). */
uint64_t process_random_u64(const void *salt);

#endif
