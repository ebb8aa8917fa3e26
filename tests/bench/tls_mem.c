/* tls_mem.c: where an idle TLS server connection's memory goes (issue 16, `make bench`). The
 * parent is a server on common/net/tls.c, the forked child N blocking OpenSSL clients. Each
 * connection does the handshake (TLS 1.3 unless --tls12), one request and one answer, then idles.
 * The parent reports, per idle connection: the heap bytes live (glibc mallinfo2 uordblks, chunk
 * overhead included), the bytes OpenSSL holds (its allocations counted through
 * CRYPTO_set_mem_functions), and the RSS added (before and after malloc_trim), as one JSON line.
 *   build/bench/tls_mem CERT KEY CA [N] [--tls12]
 * Every wait is bounded (5 s a step); no socket buffers are counted (they are the kernel's). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/net/tls.h"
#include "tests/net/ossl_mem.h"

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[128];
    long kb = -1;
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    if (f != NULL)
        fclose(f);
    return kb;
}

static int wait_fd(int fd, short ev)
{
    struct pollfd p = {.fd = fd, .events = ev};
    return poll(&p, 1, 5000) == 1 ? 0 : -1;
}

/* ---- the clients (child) ---- */

static int client_run(uint16_t port, const char *ca, int n, int tls12, int done_fd)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL || SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1)
        return 1;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (tls12)
        SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < n; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct timeval tv = {5, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
            return 2;
        SSL *ssl = SSL_new(ctx);
        SSL_set_fd(ssl, fd);
        char buf[8];
        if (SSL_connect(ssl) != 1 || SSL_write(ssl, "ping", 4) != 4 || SSL_read(ssl, buf, 4) != 4)
            return 3;
        /* the connections stay open until the parent has measured */
    }
    char c;
    return read(done_fd, &c, 1) >= 0 ? 0 : 4;
}

/* ---- the server (parent) ---- */

/* Accepts one connection, does its handshake, reads "ping", answers "pong". */
static struct tls_conn *serve_one(struct tls_context *tls, int lfd, uint8_t *buf, uint8_t *stage)
{
    if (wait_fd(lfd, POLLIN) != 0)
        return NULL;
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0 || fcntl(fd, F_SETFL, O_NONBLOCK) != 0)
        return NULL;
    struct tls_conn *c = tls_conn_new(tls, fd);
    char why[160] = "";
    int rc;
    while (c != NULL && (rc = tls_conn_handshake(c, why, sizeof why)) != 1) {
        if ((rc != TLS_WANT_READ && rc != TLS_WANT_WRITE) ||
            wait_fd(fd, rc == TLS_WANT_READ ? POLLIN : POLLOUT) != 0) {
            fprintf(stderr, "tls_mem: handshake: %s\n", why);
            return NULL;
        }
    }
    ssize_t r;
    while ((r = tls_conn_read(c, buf, TLS_READ_MIN, why, sizeof why)) == TLS_WANT_READ)
        if (wait_fd(fd, POLLIN) != 0)
            return NULL;
    struct iovec iov = {.iov_base = (void *)"pong", .iov_len = 4};
    if (r != 4 || tls_conn_writev(c, &iov, 1, stage, 16384, why, sizeof why) != 4) {
        fprintf(stderr, "tls_mem: exchange: %s\n", why);
        return NULL;
    }
    return c;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: tls_mem CERT KEY CA [N] [--tls12]\n");
        return 2;
    }
    int n = argc > 4 && argv[4][0] != '-' ? atoi(argv[4]) : 1000;
    int tls12 = strcmp(argv[argc - 1], "--tls12") == 0;
    signal(SIGPIPE, SIG_IGN);
    ossl_mem_count_start();
    char err[512];
    struct tls_options o = {argv[1], argv[2], NULL, NULL};
    struct tls_context *tls = tls_context_new(&o, err, sizeof err);
    if (tls == NULL) {
        fprintf(stderr, "tls_mem: %s\n", err);
        return 1;
    }
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 1024) != 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &alen) != 0)
        return 1;
    int done[2];
    if (pipe(done) != 0)
        return 1;
    pid_t pid = fork();
    if (pid == 0) {
        close(done[1]);
        _exit(client_run(ntohs(a.sin_port), argv[3], n + 50, tls12, done[0]));
    }
    close(done[0]);
    uint8_t *buf = malloc(TLS_READ_MIN), *stage = malloc(16384);
    struct tls_conn **conns = calloc((size_t)n + 50, sizeof *conns);
    int ok = 1;
    for (int i = 0; i < 50 && ok; i++) /* warm-up: OpenSSL's lazily made tables, the arenas */
        ok = (conns[i] = serve_one(tls, lfd, buf, stage)) != NULL;
    malloc_trim(0);
    struct mallinfo2 m0 = mallinfo2();
    long long o0 = ossl_mem_live;
    long r0 = rss_kb();
    for (int i = 50; i < n + 50 && ok; i++)
        ok = (conns[i] = serve_one(tls, lfd, buf, stage)) != NULL;
    struct mallinfo2 m1 = mallinfo2();
    long long o1 = ossl_mem_live;
    long r1 = rss_kb();
    malloc_trim(0);
    long r2 = rss_kb();
    if (ok)
        printf("{\"tls\":\"%s\",\"conns\":%d,\"detached\":%s,\"heap_bytes_per_conn\":%.0f,"
               "\"openssl_bytes_per_conn\":%.0f,\"rss_bytes_per_conn\":%.0f,"
               "\"rss_bytes_per_conn_after_malloc_trim\":%.0f}\n",
               tls12 ? "1.2" : "1.3", n, tls_conn_detached(conns[50]) ? "true" : "false",
               (double)(m1.uordblks - m0.uordblks) / n, (double)(o1 - o0) / n,
               (double)(r1 - r0) * 1024 / n, (double)(r2 - r0) * 1024 / n);
    close(done[1]);
    int status = 0;
    waitpid(pid, &status, 0);
    for (int i = 0; i < n + 50; i++)
        tls_conn_free(conns[i], false);
    tls_context_free(tls);
    return ok && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
