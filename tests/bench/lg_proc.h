/* lg_proc.h: reads what a server process costs from /proc, so the load generator's own CPU and
 * memory never count: CPU time (utime + stime of /proc/<pid>/stat, all threads), resident set
 * (VmRSS of /proc/<pid>/status) and the kernel's slab (Slab of /proc/meminfo). */
#ifndef SIOC_LG_PROC_H
#define SIOC_LG_PROC_H

#include <stdint.h>
#include <sys/types.h>

/* Returns the CPU time (user + system, µs) pid has used so far, or -1 if it cannot be read.
 * Resolution is one clock tick (usually 10 ms): measure over long enough windows. */
int64_t lg_proc_cpu_us(pid_t pid);
/* Returns VmRSS of pid in bytes, or -1. */
int64_t lg_proc_rss_bytes(pid_t pid);
/* Returns the kernel's Slab total in bytes, or -1. */
int64_t lg_proc_slab_bytes(void);

#endif
