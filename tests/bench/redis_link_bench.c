/* redis_link_bench.c: throughput and CPU of common/net/redis_link against a running Redis, the
 * layer under every gateway and broker Redis call (issue 16: the plain path must not get slower
 * when TLS is added). Three runs, each for a fixed count:
 *   rtt       one PING at a time (latency-bound: a loop turn and two system calls per command)
 *   pipeline  PINGs kept 256 in flight (the upstream XADD path under load)
 *   pubsub    PUBLISHes from a command link, 256 in flight, received by a subscriber link (S4)
 * Prints one line per run: operations/s and process CPU (user+sys) microseconds per operation.
 *   redis_link_bench URL [count] (TLS: SIOC_REDIS_TLS_CA, _CERT, _KEY, _INSECURE in the
 * environment) */
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "common/error.h"
#include "common/net/redis_link.h"
#include "common/net/redis_tls.h"

struct bench {
    struct event_base *base;
    struct redis_link *cmd, *sub;
    long target, sent, done, received, window;
    bool publish;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void send_next(struct bench *b);

static void reply_cb(void *ctx, const struct redisReply *reply, enum redis_link_result result)
{
    struct bench *b = ctx;
    if (reply == NULL || result != REDIS_LINK_REPLY) {
        fprintf(stderr, "lost reply\n");
        exit(1);
    }
    b->done++;
    if (!b->publish && b->done == b->target)
        event_base_loopbreak(b->base);
    send_next(b);
}

static void send_next(struct bench *b)
{
    while (b->sent < b->target && b->sent - b->done < b->window) {
        const char *ping[] = {"PING"};
        const char *pub[] = {"PUBLISH", "bench", "0123456789abcdef0123456789abcdef"};
        if (redis_link_command_argv(b->cmd, b->publish ? 3 : 1, b->publish ? pub : ping, NULL, 0,
                                    reply_cb, b) != SIOC_OK) {
            fprintf(stderr, "command refused\n");
            exit(1);
        }
        b->sent++;
    }
}

static void message_cb(void *ctx, struct slice pattern, struct slice channel, struct slice payload)
{
    (void)pattern;
    (void)channel;
    (void)payload;
    struct bench *b = ctx;
    if (++b->received == b->target)
        event_base_loopbreak(b->base);
}

static void state_cb(void *ctx, bool up)
{
    struct bench *b = ctx;
    if (up && redis_link_connected(b->cmd) && (b->sub == NULL || redis_link_connected(b->sub)))
        event_base_loopbreak(b->base);
}

static void run(struct bench *b, const char *name, long count, long window, bool publish)
{
    b->target = count;
    b->sent = b->done = b->received = 0;
    b->window = window;
    b->publish = publish;
    double t0 = now_s(), c0 = cpu_s();
    send_next(b);
    event_base_dispatch(b->base);
    double t = now_s() - t0, c = cpu_s() - c0;
    printf("%-9s %8ld ops  %10.0f ops/s  %6.2f us CPU/op\n", name, count, (double)count / t,
           c * 1e6 / (double)count);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: redis_link_bench URL [count]\n");
        return 2;
    }
    long count = argc > 2 ? atol(argv[2]) : 200000;
    signal(SIGPIPE, SIG_IGN); /* TLS writes (redis_conn.h) */
    struct bench b = {.base = event_base_new()};
    struct redis_tls *tls = NULL;
    if (strncmp(argv[1], "rediss://", 9) == 0) {
        const char *insecure = getenv("SIOC_REDIS_TLS_INSECURE");
        struct redis_tls_config tc = {
            .ca_file = getenv("SIOC_REDIS_TLS_CA"),
            .cert_file = getenv("SIOC_REDIS_TLS_CERT"),
            .key_file = getenv("SIOC_REDIS_TLS_KEY"),
            .insecure = insecure != NULL && strcmp(insecure, "yes") == 0,
        };
        char err[256];
        tls = redis_tls_new(&tc, err, sizeof err);
        if (tls == NULL) {
            fprintf(stderr, "tls: %s\n", err);
            return 1;
        }
    }
    struct redis_link_config cc = {.url = argv[1], .tls = tls, .ctx = &b, .on_state_cb = state_cb};
    struct redis_link_config sc = {.url = argv[1],
                                   .tls = tls,
                                   .mode = REDIS_LINK_SUBSCRIBER,
                                   .ctx = &b,
                                   .on_state_cb = state_cb,
                                   .on_message_cb = message_cb};
    b.cmd = redis_link_new(b.base, &cc);
    b.sub = redis_link_new(b.base, &sc);
    if (b.cmd == NULL || b.sub == NULL || redis_link_subscribe(b.sub, "bench") != SIOC_OK)
        return 1;
    event_base_dispatch(b.base); /* until both are up */
    run(&b, "rtt", count / 10, 1, false);
    run(&b, "pipeline", count, 256, false);
    run(&b, "pubsub", count, 256, true);
    redis_link_free(b.cmd);
    redis_link_free(b.sub);
    redis_tls_free(tls);
    event_base_free(b.base);
    return 0;
}
