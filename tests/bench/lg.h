/* lg.h: the load generator's state (tests/bench/loadgen.c drives it; lg_cli.c parses its
 * options and prints its JSON report). One struct lg_ctx per process; clients own two
 * connections (a WebSocket and a polling one), the broadcast source may own a Redis one. */
#ifndef SIOC_LG_H
#define SIOC_LG_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/buf.h"
#include "common/ws.h"
#include "tests/bench/lg_hist.h"

struct ssl_st;
struct ssl_ctx_st;

#define LG_MAX_ADDRS 8
#define LG_MAX_PIDS 8
#define LG_MAX_STEPS 16
#define LG_READ_CHUNK 65536
#define LG_HEAD_MAX 8192
#define LG_WS_KEY "dGhlIHNhbXBsZSBub25jZQ=="
/* echo: the sending loop wakes at most this often; above 1/LG_ECHO_WAKE_NS echoes per second,
 * the ones that fell due since the last wake leave together (each stamped when sent) */
#define LG_ECHO_WAKE_NS 200000u

enum lg_scenario { SC_CONNECT, SC_ECHO, SC_FANOUT };
enum lg_transport { TR_WS, TR_POLLING, TR_UPGRADE };
enum lg_conn_kind { CONN_WS, CONN_POLL, CONN_REDIS };
enum lg_phase { PH_CONNECT, PH_JOIN, PH_RUN, PH_DONE };
enum lg_client_state { CL_NEW, CL_OPENING, CL_CONNECTED, CL_FAILED };

struct lg_ctx;
struct lg_client;

struct lg_conn {
    int fd;
    enum lg_conn_kind kind;
    struct lg_client *client; /* NULL for the Redis connection */
    bool connecting;          /* TCP connect in progress */
    bool handshaken;          /* ws: 101 received */
    bool want_out;            /* EPOLLOUT registered */
    bool busy;                /* polling: a request is outstanding */
    bool tls_handshaking;     /* --tls: TCP is up, the TLS handshake is not done */
    struct ssl_st *ssl;       /* --tls (not the Redis connection), else NULL */
    size_t out_off;
    struct buf in;  /* HTTP response head (+ polling body) being collected */
    struct buf out; /* bytes not yet written */
    struct buf msg; /* ws message reassembly */
    struct buf ctl; /* ws control frame payload */
    struct ws_parser wp;
};

struct lg_client {
    struct lg_ctx *ctx;
    unsigned index;
    unsigned addr;
    enum lg_transport transport;
    enum lg_client_state state;
    bool upgraded; /* the WebSocket carries the session (ws, or upgrade finished) */
    bool joined;
    bool is_source;
    char sid[40];
    uint64_t next_ack_id;
    uint64_t received;
    struct buf poll_queue; /* polling: packets waiting for a POST, joined by 0x1e */
    struct lg_conn ws;
    struct lg_conn poll;
};

struct lg_step {
    double rate;
    uint64_t published, expected, delivered, disconnects;
    double elapsed_s, deliveries_per_s, cpu_us_per_delivery, aux_cpu_us_per_delivery;
    uint64_t p50, p99, p999, max;
};

struct lg_ctx {
    /* options */
    enum lg_scenario scenario;
    enum lg_transport transport;
    struct sockaddr_in addrs[LG_MAX_ADDRS];
    char hosts[LG_MAX_ADDRS][64];
    unsigned naddrs;
    struct sockaddr_in redis_addr;
    bool tls;             /* --tls: the clients speak https/wss */
    const char *tls_ca;   /* --tls-ca FILE: verify the server against it (else no check) */
    bool tls_resume;      /* --tls-resume: offer the latest session ticket */
    unsigned tls_resumed; /* handshakes that resumed a session */
    struct ssl_ctx_st *ssl_ctx;
    bool redis_source; /* fanout: publish emitter messages to Redis, else a source client */
    bool recovery;     /* fanout from Redis: publish as the SDK does with recovery on (EVAL) */
    unsigned conns, concurrency;
    double rate, rate_max, duration, warmup, hold, drain, timeout;
    size_t payload;
    char room[64];
    pid_t pids[LG_MAX_PIDS], aux[LG_MAX_PIDS];
    unsigned npids, naux;
    /* state */
    int ep;
    uint64_t t0;
    enum lg_phase phase;
    struct lg_client *clients; /* conns receivers (+ 1 source client when !redis_source) */
    unsigned nclients;
    unsigned opened, connected, failed, joined, disconnects;
    struct lg_conn redis;
    uint64_t phase_start;
    /* connect */
    int64_t rss0, slab0, cpu_connect0;
    /* connect: a pause at conns/10 for a second idle memory sample, so fixed costs (code pages
     * faulted in, first tables) are not spread over the connections: the marginal cost */
    unsigned warm_at;
    bool warm_done;
    uint64_t pause_start;
    uint64_t paused_ns;
    int64_t paused_cpu, pause_cpu0;
    int64_t rss_warm;
    uint64_t connect_t0, connect_t1;
    int64_t cpu_connect;
    bool held;
    /* echo */
    uint64_t sent, acked, run_start, measure_start, measure_end;
    uint64_t next_due;       /* when the next echo is due (0: none scheduled) */
    uint64_t woke_at;        /* rel_ns of the sending loop's last wake */
    struct lg_hist send_lag; /* actual minus scheduled send time, measured echoes */
    int64_t cpu0, aux0, cpu1, aux1;
    /* fanout */
    struct lg_step steps[LG_MAX_STEPS];
    unsigned nsteps;
    uint64_t published, delivered, step_start, publish_end, last_delivery;
    uint64_t step_delivered0, step_disconnects0;
    bool publishing;
    struct lg_hist hist;
    struct buf scratch;
    char *pad; /* ctx->payload filler bytes for broadcasts */
    const char *error;
};

/* Fills ctx's options from argv (defaults first); false on any unknown or malformed option. */
bool lg_parse_args(struct lg_ctx *ctx, int argc, char **argv);
/* Prints the usage text to stderr. */
void lg_usage(void);
/* Prints the run's results as one JSON object on stdout. */
void lg_report(const struct lg_ctx *ctx);
/* The sums over pids of CPU time used (µs) and of resident memory (bytes); unreadable: 0. */
int64_t lg_pids_cpu(const pid_t *pids, unsigned n);
int64_t lg_pids_rss(const pid_t *pids, unsigned n);

#endif
