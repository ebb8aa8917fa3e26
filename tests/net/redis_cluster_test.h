/* redis_cluster_test.h: a real Redis Cluster for net tests (header-only): six
 * `redis-server --cluster-enabled yes` on free loopback ports (each port + 10000, its cluster bus,
 * free too) with their nodes.conf in a temp dir, joined by `redis-cli --cluster create
 * --cluster-replicas 1 --cluster-yes` (three masters, three replicas), ready once every node
 * reports cluster_state:ok. Servers are stopped by pid (SIGKILL) and die with the test
 * (redis_test_server.h). Control commands (CLUSTER SETSLOT, MIGRATE, CLUSTER FAILOVER) go
 * through redis-cli. Every wait is bounded. */
#ifndef SIOC_REDIS_CLUSTER_TEST_H
#define SIOC_REDIS_CLUSTER_TEST_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "tests/net/redis_test_server.h"

#define RCT_NODES 6
#define RCT_NODE_TIMEOUT                                                                           \
    "1000" /* cluster-node-timeout (ms): how soon a dead master is failed over */

struct redis_cluster_test {
    struct redis_test_server nodes[RCT_NODES];
    char dir[64];
    char conf[RCT_NODES][128];
    const char *args[RCT_NODES][16];
};

/* Runs a shell command; its stdout (up to n-1 bytes) in out. Returns the exit status or -1. */
static inline int rct_sh(char *out, size_t n, const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return -1;
    size_t used = 0;
    char buf[4096];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, p)) > 0) {
        if (out != NULL && used + 1 < n) {
            size_t take = got < n - 1 - used ? got : n - 1 - used;
            memcpy(out + used, buf, take);
            used += take;
        }
    }
    if (out != NULL && n > 0)
        out[used] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A port whose cluster bus port (+10000) is free too. */
static inline int rct_free_port(void)
{
    for (int i = 0; i < 50; i++) {
        int p = redis_test_free_port();
        if (p <= 0 || p + 10000 > 65535)
            continue;
        int fd = redis_test_connect(p + 10000, 50);
        if (fd >= 0) {
            close(fd);
            continue;
        }
        return p;
    }
    return 0;
}

/* cluster_state:ok, and a replica's link to its master is up */
static inline bool rct_node_ok(int port)
{
    char out[4096];
    if (rct_sh(out, sizeof out, "redis-cli -p %d cluster info 2>/dev/null", port) != 0 ||
        strstr(out, "cluster_state:ok") == NULL)
        return false;
    return rct_sh(out, sizeof out, "redis-cli -p %d info replication 2>/dev/null", port) == 0 &&
           (strstr(out, "role:slave") == NULL || strstr(out, "master_link_status:up") != NULL);
}

/* Every running node reports cluster_state:ok and the same view of slot 0..16383 coverage. */
static inline bool rct_wait_ok(struct redis_cluster_test *t, int timeout_ms)
{
    long long deadline = redis_test_now_ms() + timeout_ms;
    while (redis_test_now_ms() < deadline) {
        bool all = true;
        for (int i = 0; i < RCT_NODES && all; i++)
            if (t->nodes[i].pid > 0 && !rct_node_ok(t->nodes[i].port))
                all = false;
        if (all)
            return true;
        redis_test_sleep_ms(100);
    }
    return false;
}

static inline void redis_cluster_test_stop(struct redis_cluster_test *t)
{
    for (int i = 0; i < RCT_NODES; i++)
        redis_test_server_stop(&t->nodes[i]);
    if (t->dir[0] != '\0')
        rct_sh(NULL, 0, "rm -rf '%s'", t->dir);
    t->dir[0] = '\0';
}

/* Starts the six nodes and creates the cluster. Returns 0, or -1 (everything stopped). */
static inline int redis_cluster_test_start(struct redis_cluster_test *t)
{
    memset(t, 0, sizeof *t);
    snprintf(t->dir, sizeof t->dir, "/tmp/sioc-rct-XXXXXX");
    if (mkdtemp(t->dir) == NULL)
        return -1;
    char hosts[RCT_NODES * 24] = "";
    for (int i = 0; i < RCT_NODES; i++) {
        struct redis_test_server *s = &t->nodes[i];
        snprintf(t->conf[i], sizeof t->conf[i], "%s/nodes-%d.conf", t->dir, i);
        const char *a[] = {"--cluster-enabled", "yes", "--cluster-config-file", t->conf[i],
                           "--cluster-node-timeout", RCT_NODE_TIMEOUT, "--dir", t->dir,
                           "--cluster-require-full-coverage", "yes",
                           /* replicas sync at once: one that never synced cannot fail over */
                           "--repl-diskless-sync-delay", "0", NULL};
        memcpy(t->args[i], a, sizeof a);
        s->extra_args = t->args[i];
        int started = -1;
        for (int attempt = 0; attempt < 3 && started != 0; attempt++) {
            s->port = rct_free_port();
            started = s->port > 0 ? redis_test_server_spawn(s) : -1;
        }
        if (started != 0) {
            redis_cluster_test_stop(t);
            return -1;
        }
        snprintf(hosts + strlen(hosts), sizeof hosts - strlen(hosts), " 127.0.0.1:%d", s->port);
    }
    char out[8192];
    if (rct_sh(out, sizeof out,
               "redis-cli --cluster create%s --cluster-replicas 1 --cluster-yes 2>&1",
               hosts) != 0 ||
        !rct_wait_ok(t, 20000)) {
        fprintf(stderr, "redis cluster create failed: %s\n", out);
        redis_cluster_test_stop(t);
        return -1;
    }
    return 0;
}

/* "redis-cluster://127.0.0.1:p1,127.0.0.1:p2" (the first two nodes as seeds). */
static inline void redis_cluster_test_url(const struct redis_cluster_test *t, char *out, size_t n)
{
    snprintf(out, n, "redis-cluster://127.0.0.1:%d,127.0.0.1:%d", t->nodes[0].port,
             t->nodes[1].port);
}

/* redis-cli -p port <args> (args is a shell-quoted string); its output in out. */
static inline int rct_cli(int port, char *out, size_t n, const char *args)
{
    return rct_sh(out, n, "redis-cli -p %d %s 2>&1", port, args);
}

/* The node id of 127.0.0.1:port ("CLUSTER MYID"), in id[41]. */
static inline bool rct_myid(int port, char id[41])
{
    char out[128];
    if (rct_cli(port, out, sizeof out, "cluster myid") != 0 || strlen(out) < 40)
        return false;
    memcpy(id, out, 40);
    id[40] = '\0';
    return true;
}

/* From the view of a running node: the port of the master that serves `slot` and (when
 * replica_port != NULL) of one of its connected replicas, or 0. Parses CLUSTER NODES. */
static inline int rct_slot_master(struct redis_cluster_test *t, unsigned slot, int *replica_port)
{
    char out[8192];
    int from = 0;
    for (int i = 0; i < RCT_NODES && from == 0; i++)
        if (t->nodes[i].pid > 0)
            from = t->nodes[i].port;
    if (replica_port != NULL)
        *replica_port = 0;
    if (from == 0 || rct_cli(from, out, sizeof out, "cluster nodes") != 0)
        return 0;
    char master_id[41] = "";
    int master_port = 0;
    for (char *line = strtok(out, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        char id[64], addr[128], flags[128];
        if (sscanf(line, "%63s %127s %127s", id, addr, flags) != 3 ||
            strstr(flags, "master") == NULL || strstr(flags, "fail") != NULL)
            continue;
        /* fields 9.. are slot ranges "a-b" or "a" */
        char *p = line;
        for (int f = 0; f < 8 && p != NULL; f++)
            p = strchr(p + 1, ' ');
        for (; p != NULL; p = strchr(p + 1, ' ')) {
            unsigned a, b;
            int k = sscanf(p + 1, "%u-%u", &a, &b);
            if (k == 1)
                b = a;
            if (k >= 1 && slot >= a && slot <= b) {
                snprintf(master_id, sizeof master_id, "%.40s", id);
                master_port = atoi(strchr(addr, ':') + 1);
            }
        }
    }
    if (master_port == 0 || replica_port == NULL)
        return master_port;
    if (rct_cli(from, out, sizeof out, "cluster nodes") != 0)
        return master_port;
    for (char *line = strtok(out, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        char id[64], addr[128], flags[128], master[64];
        if (sscanf(line, "%63s %127s %127s %63s", id, addr, flags, master) == 4 &&
            strstr(flags, "slave") != NULL && strstr(flags, "fail") == NULL &&
            strcmp(master, master_id) == 0)
            *replica_port = atoi(strchr(addr, ':') + 1);
    }
    return master_port;
}

/* The test server struct of the node on `port`, or NULL. */
static inline struct redis_test_server *rct_node(struct redis_cluster_test *t, int port)
{
    for (int i = 0; i < RCT_NODES; i++)
        if (t->nodes[i].port == port)
            return &t->nodes[i];
    return NULL;
}

/* Moves `slot` (and its keys) from the master on `from` to the master on `to`, as
 * redis-cli --cluster reshard does: IMPORTING/MIGRATING, MIGRATE of every key, SETSLOT NODE on
 * both and on every other master. `keys_only`: stop after MIGRATE (the slot stays MIGRATING: an
 * ASK window). Returns true when every step said OK. */
static inline bool rct_move_slot(struct redis_cluster_test *t, unsigned slot, int from, int to,
                                 bool keys_only)
{
    char from_id[41], to_id[41], out[4096], args[512];
    if (!rct_myid(from, from_id) || !rct_myid(to, to_id))
        return false;
    snprintf(args, sizeof args, "cluster setslot %u importing %s", slot, from_id);
    if (rct_cli(to, out, sizeof out, args) != 0 || strncmp(out, "OK", 2) != 0)
        return false;
    snprintf(args, sizeof args, "cluster setslot %u migrating %s", slot, to_id);
    if (rct_cli(from, out, sizeof out, args) != 0 || strncmp(out, "OK", 2) != 0)
        return false;
    for (;;) {
        char keys[4096];
        snprintf(args, sizeof args, "cluster getkeysinslot %u 100", slot);
        if (rct_cli(from, keys, sizeof keys, args) != 0)
            return false;
        if (keys[0] == '\0' || keys[0] == '\n')
            break;
        for (char *k = strtok(keys, "\n"); k != NULL; k = strtok(NULL, "\n")) {
            snprintf(args, sizeof args, "migrate 127.0.0.1 %d '%s' 0 5000", to, k);
            if (rct_cli(from, out, sizeof out, args) != 0 || strncmp(out, "OK", 2) != 0)
                return false;
        }
    }
    if (keys_only)
        return true;
    snprintf(args, sizeof args, "cluster setslot %u node %s", slot, to_id);
    if (rct_cli(to, out, sizeof out, args) != 0 || rct_cli(from, out, sizeof out, args) != 0)
        return false;
    for (int i = 0; i < RCT_NODES; i++)
        if (t->nodes[i].pid > 0 && t->nodes[i].port != from && t->nodes[i].port != to)
            rct_cli(t->nodes[i].port, out, sizeof out, args); /* replicas refuse: harmless */
    return true;
}

#endif
