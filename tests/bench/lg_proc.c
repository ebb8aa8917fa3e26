/* lg_proc.c: server CPU and memory from /proc (see lg_proc.h; proc(5)). */
#include "tests/bench/lg_proc.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

int64_t lg_proc_cpu_us(pid_t pid)
{
    char path[64], line[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    line[n] = '\0';
    /* proc(5): the command name (field 2) may hold spaces and ')': start after the last ')'. */
    const char *p = strrchr(line, ')');
    if (!p)
        return -1;
    unsigned long utime = 0, stime = 0;
    /* Fields 3..13 are skipped; 14 is utime, 15 stime (clock ticks). */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
        return -1;
    long hz = sysconf(_SC_CLK_TCK);
    return (int64_t)(utime + stime) * 1000000 / (hz > 0 ? hz : 100);
}

/* Returns the "kB" value of the line starting with `key` in file `path` as bytes, or -1. */
static int64_t kb_field(const char *path, const char *key)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[256];
    size_t klen = strlen(key);
    int64_t v = -1;
    while (fgets(line, sizeof line, f)) {
        long long kb;
        if (strncmp(line, key, klen) == 0 && sscanf(line + klen, " %lld", &kb) == 1) {
            v = (int64_t)kb * 1024;
            break;
        }
    }
    fclose(f);
    return v;
}

int64_t lg_proc_rss_bytes(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    return kb_field(path, "VmRSS:");
}

int64_t lg_proc_slab_bytes(void)
{
    return kb_field("/proc/meminfo", "Slab:");
}
