/* process.c: option loading and small-file reading for sioc programs (see process.h). */
#include "common/net/process.h"

#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"

extern char **environ;

char *process_read_file(const char *path, size_t max, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *data = malloc(max + 1);
    *len = data != NULL ? fread(data, 1, max, f) : 0;
    fclose(f);
    if (data != NULL)
        data[*len] = '\0';
    return data;
}

bool process_write_port_file(const char *path, unsigned port)
{
    if (path == NULL)
        return true;
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return false;
    bool ok = fprintf(f, "%u\n", port) > 0;
    return fclose(f) == 0 && ok;
}

enum process_start process_load_config(struct config *cfg, const struct config_option *options,
                                       size_t count, const char *program, int argc, char **argv)
{
    char err[512] = "";
    if (config_init(cfg, options, count) != SIOC_OK) {
        fprintf(stderr, "%s: invalid option table\n", program);
        return PROCESS_FAIL;
    }
    const char *path = config_file_path(argc, argv, environ);
    size_t len = 0;
    char *file = path != NULL ? process_read_file(path, 1 << 20, &len) : NULL;
    if (path != NULL && file == NULL) {
        fprintf(stderr, "%s: cannot read config file %s\n", program, path);
        config_deinit(cfg);
        return PROCESS_FAIL;
    }
    int rc = config_load(cfg, file, len, environ, argc, argv, err, sizeof err);
    free(file);
    if (rc != SIOC_OK) {
        fprintf(stderr, "%s: %s\n", program, err);
        config_deinit(cfg);
        return PROCESS_FAIL;
    }
    if (config_get_bool(cfg, "help")) {
        size_t need = config_help(cfg, program, NULL, 0) + 1;
        char *help = malloc(need);
        if (help != NULL) {
            config_help(cfg, program, help, need);
            fputs(help, stdout);
            free(help);
        }
        config_deinit(cfg);
        return PROCESS_EXIT;
    }
    return PROCESS_RUN;
}

size_t process_fd_limit(size_t want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return SIZE_MAX;
    if (want != 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        struct rlimit raised = rl;
        raised.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
            rl = raised;
    }
    return rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > SIZE_MAX ? SIZE_MAX : (size_t)rl.rlim_cur;
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdu;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53u;
    x ^= x >> 33;
    return x;
}

void process_random_bytes(void *buf, size_t n, const void *salt)
{
    uint8_t *out = buf;
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(out + got, n - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    if (got == n)
        return;
    struct timespec mono, wall;
    clock_gettime(CLOCK_MONOTONIC, &mono);
    clock_gettime(CLOCK_REALTIME, &wall);
    uint64_t state = (uint64_t)mono.tv_nsec ^ ((uint64_t)wall.tv_sec << 20) ^
                     ((uint64_t)getpid() << 40) ^ (uint64_t)(uintptr_t)salt;
    for (size_t i = got; i < n; i++) {
        state = mix64(state + 0x9e3779b97f4a7c15u);
        out[i] = (uint8_t)state;
    }
}

uint64_t process_random_u64(const void *salt)
{
    uint64_t v = 0;
    while (v == 0)
        process_random_bytes(&v, sizeof v, salt);
    return v;
}
