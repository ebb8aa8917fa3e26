/* redis_test_server.h: a private redis-server for tests (header-only): a random free port on
 * 127.0.0.1, no persistence, started as a child process, stopped by pid (SIGKILL, like a crash)
 * and restartable on the same port. Every wait is bounded. The child dies with the test
 * (PR_SET_PDEATHSIG), so a crashed test leaves no server behind. */
#ifndef SIOC_REDIS_TEST_SERVER_H
#define SIOC_REDIS_TEST_SERVER_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define REDIS_TEST_SERVER_START_TIMEOUT_MS 5000
#define REDIS_TEST_SERVER_MAX_EXTRA 16

struct redis_test_server {
    pid_t pid; /* 0 while stopped */
    int port;  /* chosen by the first start (when 0), kept by restarts */
    /* Extra redis-server arguments (e.g. "--requirepass", "secret"), NULL-terminated; borrowed:
     * they must stay valid across restarts. May be NULL. */
    const char *const *extra_args;
    /* TLS only (--port 0 --tls-port <port>; the TLS files go in extra_args): readiness is then
     * a TCP connection being accepted, since a plain PING gets no answer. */
    bool tls;
};

static inline long long redis_test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void redis_test_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* A port that was free a moment ago (bind 127.0.0.1:0); 0 on failure. */
static inline int redis_test_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof(sa);
    int port = 0;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

/* A non-blocking TCP connection to 127.0.0.1:port, established within timeout_ms: its fd, or
 * -1 (closed) when refused or late. */
static inline int redis_test_connect(int port, int timeout_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct pollfd pfd = {.fd = fd, .events = POLLOUT};
    int err = 0;
    socklen_t el = sizeof(err);
    if ((connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno == EINPROGRESS) &&
        poll(&pfd, 1, timeout_ms) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 &&
        err == 0)
        return fd;
    close(fd);
    return -1;
}

/* One blocking PING with a deadline: true if something answered with a RESP status or error
 * ("+PONG", or "-NOAUTH" under requirepass: either way the server is serving). */
static inline bool redis_test_ping_once(int port, int timeout_ms)
{
    int fd = redis_test_connect(port, timeout_ms);
    if (fd < 0)
        return false;
    bool ok = false;
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    char c;
    if (write(fd, "PING\r\n", 6) == 6 && poll(&pfd, 1, timeout_ms) == 1 && read(fd, &c, 1) == 1)
        ok = c == '+' || c == '-';
    close(fd);
    return ok;
}

/* A TCP connection to 127.0.0.1:port is accepted within timeout_ms (a TLS-only server, which a
 * plain PING cannot ask). */
static inline bool redis_test_accepts(int port, int timeout_ms)
{
    int fd = redis_test_connect(port, timeout_ms);
    if (fd >= 0)
        close(fd);
    return fd >= 0;
}

/* Polls PING (TLS: a connect) until it answers, the child exits (port taken, bad argument), or
 * timeout_ms passes. */
static inline bool redis_test_server_wait_ready(struct redis_test_server *s, int timeout_ms)
{
    long long deadline = redis_test_now_ms() + timeout_ms;
    while (redis_test_now_ms() < deadline) {
        if (s->tls ? redis_test_accepts(s->port, 200) : redis_test_ping_once(s->port, 200))
            return true;
        if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
            s->pid = 0;
            return false;
        }
        redis_test_sleep_ms(10);
    }
    return false;
}

/* One attempt on s->port; see redis_test_server_start. */
static inline int redis_test_server_spawn(struct redis_test_server *s)
{
    char port[16];
    snprintf(port, sizeof(port), "%d", s->port);
    const char *bin = getenv("REDIS_SERVER") != NULL ? getenv("REDIS_SERVER") : "redis-server";
    const char *argv[18 + REDIS_TEST_SERVER_MAX_EXTRA] = {
        bin,  "--port",      port, "--bind",     "127.0.0.1", "--save", "", "--appendonly",
        "no", "--daemonize", "no", "--loglevel", "warning"};
    size_t n = 13;
    if (s->tls) {
        argv[2] = "0";
        argv[n++] = "--tls-port";
        argv[n++] = port;
    }
    for (size_t i = 0; s->extra_args != NULL && s->extra_args[i] != NULL; i++) {
        if (i == REDIS_TEST_SERVER_MAX_EXTRA)
            return -1;
        argv[n++] = s->extra_args[i];
    }
    argv[n] = NULL;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        /* The server must not outlive a crashed or killed test. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, STDIN_FILENO);
            dup2(devnull, STDOUT_FILENO);
            dup2(devnull, STDERR_FILENO);
        }
        execvp(bin, (char *const *)argv);
        _exit(127);
    }
    s->pid = pid;
    if (!redis_test_server_wait_ready(s, REDIS_TEST_SERVER_START_TIMEOUT_MS)) {
        if (s->pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
        }
        s->pid = 0;
        return -1;
    }
    return 0;
}

/* Starts redis-server (or $REDIS_SERVER) on s->port and waits until it answers PING. With
 * s->port == 0 it picks a free port, and picks another if that one was taken in the meantime.
 * Returns 0, or -1 (nothing left running). */
static inline int redis_test_server_start(struct redis_test_server *s)
{
    bool pick = s->port == 0;
    for (int attempt = 0; attempt < 3; attempt++) {
        if (pick && (s->port = redis_test_free_port()) == 0)
            return -1;
        if (redis_test_server_spawn(s) == 0)
            return 0;
    }
    return -1;
}

/* Kills the server (SIGKILL: like a crash, no goodbye to the clients) and reaps it. */
static inline void redis_test_server_stop(struct redis_test_server *s)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGKILL);
    while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR)
        ;
    s->pid = 0;
}

/* Stops (if running) and starts again on the same port. Returns 0 or -1. */
static inline int redis_test_server_restart(struct redis_test_server *s)
{
    redis_test_server_stop(s);
    /* SIGKILL may leave the port busy for an instant; start retries within its own bound. */
    for (int attempt = 0; attempt < 3; attempt++) {
        if (redis_test_server_start(s) == 0)
            return 0;
        redis_test_sleep_ms(50);
    }
    return -1;
}

#endif
