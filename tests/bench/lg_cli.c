/* lg_cli.c: the load generator's command line (options, usage) and its JSON report. */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/bench/lg.h"
#include "tests/bench/lg_proc.h"

int64_t lg_pids_cpu(const pid_t *pids, unsigned n)
{
    int64_t sum = 0;
    for (unsigned i = 0; i < n; i++) {
        int64_t v = lg_proc_cpu_us(pids[i]);
        if (v > 0)
            sum += v;
    }
    return sum;
}

int64_t lg_pids_rss(const pid_t *pids, unsigned n)
{
    int64_t sum = 0;
    for (unsigned i = 0; i < n; i++) {
        int64_t v = lg_proc_rss_bytes(pids[i]);
        if (v > 0)
            sum += v;
    }
    return sum;
}

/* ---- output ---- */

static void print_hist(const char *name, const struct lg_hist *h)
{
    printf("\"%s\":{\"n\":%" PRIu64 ",\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,"
           "\"max_us\":%.1f}",
           name, h->count, (double)lg_hist_quantile(h, 0.5) / 1e3,
           (double)lg_hist_quantile(h, 0.99) / 1e3, (double)lg_hist_quantile(h, 0.999) / 1e3,
           (double)h->max / 1e3);
}

void lg_report(const struct lg_ctx *ctx)
{
    static const char *const names[] = {"connect", "echo", "fanout"};
    static const char *const trs[] = {"websocket", "polling", "upgrade"};
    printf("{\"scenario\":\"%s\",\"transport\":\"%s\",\"conns\":%u,\"connected\":%u,"
           "\"failed\":%u,\"disconnects\":%u,",
           names[ctx->scenario], trs[ctx->transport], ctx->conns, ctx->connected, ctx->failed,
           ctx->disconnects);
    if (ctx->tls)
        printf("\"tls\":true,\"tls_resumed\":%u,", ctx->tls_resumed);
    if (ctx->error)
        printf("\"error\":\"%s\",", ctx->error);
    double connect_s = (double)(ctx->connect_t1 - ctx->connect_t0 - ctx->paused_ns) / 1e9;
    unsigned nc = ctx->connected ? ctx->connected : 1;
    printf("\"connect_s\":%.3f,\"connects_per_s\":%.1f,\"cpu_us_per_connect\":%.2f", connect_s,
           connect_s > 0 ? ctx->connected / connect_s : 0, (double)ctx->cpu_connect / nc);
    if (ctx->scenario == SC_CONNECT) {
        int64_t rss = lg_pids_rss(ctx->pids, ctx->npids);
        int64_t slab = lg_proc_slab_bytes();
        printf(",\"rss_before\":%" PRId64 ",\"rss_after\":%" PRId64 ",\"rss_per_conn\":%.1f,"
               "\"slab_per_conn\":%.1f,\"total_per_conn\":%.1f",
               ctx->rss0, rss, (double)(rss - ctx->rss0) / nc, (double)(slab - ctx->slab0) / nc,
               (double)(rss - ctx->rss0 + slab - ctx->slab0) / nc);
        if (ctx->warm_at > 0 && ctx->warm_done && ctx->connected > ctx->warm_at)
            printf(",\"rss_warm\":%" PRId64 ",\"rss_marginal_per_conn\":%.1f", ctx->rss_warm,
                   (double)(rss - ctx->rss_warm) / (ctx->connected - ctx->warm_at));
    } else if (ctx->scenario == SC_ECHO) {
        uint64_t measured = ctx->hist.count ? ctx->hist.count : 1;
        printf(",\"rate\":%.0f,\"duration_s\":%.1f,\"sent\":%" PRIu64 ",\"acked\":%" PRIu64
               ",\"lost\":%" PRIu64 ",\"cpu_us_per_echo\":%.2f,\"aux_cpu_us_per_echo\":%.2f,",
               ctx->rate, ctx->duration, ctx->sent, ctx->acked,
               ctx->sent > ctx->acked ? ctx->sent - ctx->acked : 0,
               (double)(ctx->cpu1 - ctx->cpu0) / (double)measured,
               (double)(ctx->aux1 - ctx->aux0) / (double)measured);
        print_hist("rtt", &ctx->hist);
        printf(",");
        print_hist("send_lag", &ctx->send_lag);
    } else {
        printf(",\"payload\":%zu,\"room\":\"%s\",\"steps\":[", ctx->payload, ctx->room);
        for (unsigned i = 0; i < ctx->nsteps; i++) {
            const struct lg_step *s = &ctx->steps[i];
            printf("%s{\"rate\":%.0f,\"published\":%" PRIu64 ",\"expected\":%" PRIu64
                   ",\"delivered\":%" PRIu64 ",\"lost\":%" PRIu64 ",\"disconnects\":%" PRIu64
                   ",\"elapsed_s\":%.3f,\"deliveries_per_s\":%.0f,\"cpu_us_per_delivery\":%.3f,"
                   "\"aux_cpu_us_per_delivery\":%.3f,\"p50_us\":%.1f,\"p99_us\":%.1f,"
                   "\"p999_us\":%.1f,\"max_us\":%.1f}",
                   i ? "," : "", s->rate, s->published, s->expected, s->delivered,
                   s->expected > s->delivered ? s->expected - s->delivered : 0, s->disconnects,
                   s->elapsed_s, s->deliveries_per_s, s->cpu_us_per_delivery,
                   s->aux_cpu_us_per_delivery, (double)s->p50 / 1e3, (double)s->p99 / 1e3,
                   (double)s->p999 / 1e3, (double)s->max / 1e3);
        }
        printf("]");
    }
    printf("}\n");
    fflush(stdout);
}

/* ---- options ---- */

void lg_usage(void)
{
    fputs("usage: loadgen --scenario connect|echo|fanout --url HOST:PORT[,HOST:PORT...]\n"
          "  [--transport websocket|polling|upgrade] [--conns N] [--concurrency N]\n"
          "  [--rate R] [--rate-max R] [--duration S] [--warmup S] [--hold S] [--drain S]\n"
          "  [--payload BYTES] [--room NAME] [--source redis:HOST:PORT|client]\n"
          "  [--recovery yes] (with a redis source: store and publish as the Python SDK does\n"
          "   with recovery-window on, docs/contracts.md)\n"
          "  [--server-pid PID[,PID]] [--aux-pid PID[,PID]] [--timeout S]\n"
          "  [--tls] [--tls-ca FILE] [--tls-resume]   https/wss (verified against FILE when\n"
          "  given; --tls-resume: each connection offers the latest session ticket)\n"
          "connect: open and hold N clients (memory, CPU per connect, connects/s)\n"
          "echo:    emit \"ack\" with an ack at R/s in total for S seconds (RTT)\n"
          "fanout:  N receivers, broadcasts of BYTES at R/s doubling up to --rate-max\n",
          stderr);
}

static bool parse_addr(const char *s, struct sockaddr_in *sa, char host[64])
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon - s >= 63)
        return false;
    char ip[64];
    memcpy(ip, s, (size_t)(colon - s));
    ip[colon - s] = '\0';
    if (strcmp(ip, "localhost") == 0)
        strcpy(ip, "127.0.0.1");
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, ip, &sa->sin_addr) != 1)
        return false;
    snprintf(host, 64, "%s", s);
    return true;
}

static unsigned parse_pids(const char *s, pid_t *out)
{
    unsigned n = 0;
    while (*s && n < LG_MAX_PIDS) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s)
            break;
        out[n++] = (pid_t)v;
        s = *end == ',' ? end + 1 : end;
    }
    return n;
}

bool lg_parse_args(struct lg_ctx *ctx, int argc, char **argv)
{
    ctx->conns = 100;
    ctx->concurrency = 200;
    ctx->rate = 100;
    ctx->rate_max = 0;
    ctx->duration = 5;
    ctx->warmup = 1;
    ctx->hold = 2;
    ctx->drain = 3;
    ctx->timeout = 60;
    ctx->payload = 64;
    ctx->redis_source = false;
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(k, "--tls") == 0 || strcmp(k, "--tls-resume") == 0) { /* no value */
            ctx->tls = true;
            ctx->tls_resume |= strcmp(k, "--tls-resume") == 0;
            continue;
        }
        if (!v || strncmp(k, "--", 2) != 0)
            return false;
        i++;
        k += 2;
        if (strcmp(k, "scenario") == 0) {
            if (strcmp(v, "connect") == 0)
                ctx->scenario = SC_CONNECT;
            else if (strcmp(v, "echo") == 0)
                ctx->scenario = SC_ECHO;
            else if (strcmp(v, "fanout") == 0)
                ctx->scenario = SC_FANOUT;
            else
                return false;
        } else if (strcmp(k, "transport") == 0) {
            if (strcmp(v, "websocket") == 0)
                ctx->transport = TR_WS;
            else if (strcmp(v, "polling") == 0)
                ctx->transport = TR_POLLING;
            else if (strcmp(v, "upgrade") == 0)
                ctx->transport = TR_UPGRADE;
            else
                return false;
        } else if (strcmp(k, "url") == 0) {
            char tmp[512];
            snprintf(tmp, sizeof tmp, "%s", v);
            for (char *save = NULL, *tok = strtok_r(tmp, ",", &save); tok;
                 tok = strtok_r(NULL, ",", &save)) {
                if (ctx->naddrs == LG_MAX_ADDRS ||
                    !parse_addr(tok, &ctx->addrs[ctx->naddrs], ctx->hosts[ctx->naddrs]))
                    return false;
                ctx->naddrs++;
            }
        } else if (strcmp(k, "source") == 0) {
            if (strncmp(v, "redis:", 6) == 0) {
                char host[64];
                if (!parse_addr(v + 6, &ctx->redis_addr, host))
                    return false;
                ctx->redis_source = true;
            } else if (strcmp(v, "client") != 0) {
                return false;
            }
        } else if (strcmp(k, "recovery") == 0) {
            ctx->recovery = strcmp(v, "yes") == 0;
        } else if (strcmp(k, "conns") == 0) {
            ctx->conns = (unsigned)atoi(v);
        } else if (strcmp(k, "concurrency") == 0) {
            ctx->concurrency = (unsigned)atoi(v);
        } else if (strcmp(k, "rate") == 0) {
            ctx->rate = atof(v);
        } else if (strcmp(k, "rate-max") == 0) {
            ctx->rate_max = atof(v);
        } else if (strcmp(k, "duration") == 0) {
            ctx->duration = atof(v);
        } else if (strcmp(k, "warmup") == 0) {
            ctx->warmup = atof(v);
        } else if (strcmp(k, "hold") == 0) {
            ctx->hold = atof(v);
        } else if (strcmp(k, "drain") == 0) {
            ctx->drain = atof(v);
        } else if (strcmp(k, "timeout") == 0) {
            ctx->timeout = atof(v);
        } else if (strcmp(k, "payload") == 0) {
            ctx->payload = (size_t)atol(v);
        } else if (strcmp(k, "room") == 0) {
            snprintf(ctx->room, sizeof ctx->room, "%s", v);
        } else if (strcmp(k, "server-pid") == 0) {
            ctx->npids = parse_pids(v, ctx->pids);
        } else if (strcmp(k, "aux-pid") == 0) {
            ctx->naux = parse_pids(v, ctx->aux);
        } else if (strcmp(k, "tls-ca") == 0) {
            ctx->tls_ca = v;
            ctx->tls = true;
        } else {
            return false;
        }
    }
    if (ctx->rate_max < ctx->rate)
        ctx->rate_max = ctx->rate;
    return ctx->naddrs > 0 && ctx->conns > 0 && ctx->concurrency > 0;
}
