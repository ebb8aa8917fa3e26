/* test_redis_conn.c: the Redis transport (common/net/redis_conn, redis_tls) under redis_link,
 * plain and TLS (issue 16), against real redis-servers on random ports: pipelined commands answer
 * in FIFO order (also with replies and values larger than a TLS record), commands chained from
 * reply callbacks leave in the same loop iteration, a socket filled while Redis is stopped (TLS:
 * SSL_write wanting to write) drains in order, a command cancelled from another's LOST callback
 * is never called, pub/sub, the outage
 * queue and resubscription across a Redis restart; over TLS also a wrong CA (refused with the
 * verification error, retried with backoff, connected once the server's certificate is fixed),
 * the server name (redis-tls-server-name), redis-tls-insecure, client certificates
 * (tls-auth-clients yes) and an ACL user (AUTH user password). Certificates are made with the
 * openssl CLI in a temporary directory, removed at the end. Every wait is bounded. */
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <signal.h>

#include "common/error.h"
#include "common/net/redis_link.h"
#include "common/net/redis_tls.h"
#include "tests/net/loop_test.h"
#include "tests/net/redis_test_server.h"
#include "tests/unit/test.h"

static struct event_base *base;
static char dir[64]; /* the certificates */
static char path_buf[16][160];
static int path_count;

/* dir/name, valid for the next 15 calls. */
static const char *file(const char *name)
{
    char *p = path_buf[path_count++ % 16];
    snprintf(p, sizeof(path_buf[0]), "%s/%s", dir, name);
    return p;
}

/* CA "a" and CA "b"; a server certificate from each (SAN localhost and 127.0.0.1), one from CA a
 * for the name redis.test only, and a client certificate from CA a. */
static bool make_certificates(void)
{
    if (mkdtemp(strcpy(dir, "/tmp/sioc-redis-tls-XXXXXX")) == NULL)
        return false;
    char cmd[4096];
    snprintf(
        cmd, sizeof(cmd),
        "cd %s && exec >openssl.log 2>&1 && "
        "key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out $1; } && "
        "for ca in a b; do key ca-$ca.key && openssl req -x509 -new -key ca-$ca.key "
        "-out ca-$ca.crt -days 2 -subj \"/CN=test CA $ca\" || exit 1; done && "
        "cert() { key $1.key && openssl req -new -key $1.key -out $1.csr -subj /CN=$1 && "
        "printf \"subjectAltName=$3\\n\" >$1.ext && openssl x509 -req -in $1.csr "
        "-CA ca-$2.crt -CAkey ca-$2.key -CAcreateserial -days 2 -extfile $1.ext -out $1.crt; } && "
        "cert server-a a DNS:localhost,IP:127.0.0.1 && cert server-b b DNS:localhost,IP:127.0.0.1 "
        "&& "
        "cert named a DNS:redis.test && cert client a DNS:client",
        dir);
    return system(cmd) == 0;
}

static void remove_certificates(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (dir[0] != '\0' && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

/* A TLS-only redis-server with `cert` (server-a, server-b, named) and its key; extra arguments
 * after the TLS ones. The argument array is static: restarts reuse it. */
struct tls_server {
    struct redis_test_server s;
    const char *args[REDIS_TEST_SERVER_MAX_EXTRA + 1];
    char crt[160], key[160], ca[160];
};

static void tls_server_setup(struct tls_server *t, const char *cert, bool auth_clients,
                             const char *const *extra)
{
    snprintf(t->crt, sizeof(t->crt), "%s/%s.crt", dir, cert);
    snprintf(t->key, sizeof(t->key), "%s/%s.key", dir, cert);
    snprintf(t->ca, sizeof(t->ca), "%s/ca-a.crt", dir);
    size_t n = 0;
    t->args[n++] = "--tls-cert-file";
    t->args[n++] = t->crt;
    t->args[n++] = "--tls-key-file";
    t->args[n++] = t->key;
    t->args[n++] = "--tls-ca-cert-file";
    t->args[n++] = t->ca;
    t->args[n++] = "--tls-auth-clients";
    t->args[n++] = auth_clients ? "yes" : "no";
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++)
        t->args[n++] = extra[i];
    t->args[n] = NULL;
    t->s.extra_args = t->args;
    t->s.tls = true;
}

/* ---- a link observer ---- */

struct obs {
    struct redis_link *link;
    bool connected;
    int ups;
    int events[REDIS_LINK_EV_QUEUE_FULL + 1];
    char last_failure[256];
    int messages;
    char last[64][32]; /* channel:payload of the last 64 messages, in order */
};

static void obs_state_cb(void *ctx, bool up)
{
    struct obs *o = ctx;
    o->connected = up;
    o->ups += up;
}

static void obs_event_cb(void *ctx, enum redis_link_event ev, const char *detail)
{
    struct obs *o = ctx;
    o->events[ev]++;
    if (ev == REDIS_LINK_EV_CONNECT_FAILED || ev == REDIS_LINK_EV_HANDSHAKE_ERROR ||
        ev == REDIS_LINK_EV_CONNECT_TIMEOUT)
        snprintf(o->last_failure, sizeof(o->last_failure), "%s", detail);
}

static void obs_message_cb(void *ctx, struct slice pattern, struct slice channel,
                           struct slice payload)
{
    (void)pattern;
    struct obs *o = ctx;
    snprintf(o->last[o->messages++ % 64], sizeof(o->last[0]), "%.*s:%.*s", (int)channel.len,
             (const char *)channel.p, (int)payload.len, (const char *)payload.p);
}

static bool is_connected(const void *arg)
{
    return ((const struct obs *)arg)->connected;
}

static bool is_disconnected(const void *arg)
{
    return !((const struct obs *)arg)->connected;
}

static unsigned connect_timeout_ms; /* 0: the link's default */

static struct redis_link *open_link(struct obs *o, enum redis_link_mode mode, const char *url,
                                    struct redis_tls *tls)
{
    memset(o, 0, sizeof(*o));
    struct redis_link_config cfg = {
        .url = url,
        .tls = tls,
        .mode = mode,
        .connect_timeout_ms = connect_timeout_ms,
        .backoff_min_ms = 20,
        .backoff_max_ms = 200,
        .jitter_seed = 7,
        .ctx = o,
        .on_state_cb = obs_state_cb,
        .on_message_cb = obs_message_cb,
        .on_event_cb = obs_event_cb,
    };
    o->link = redis_link_new(base, &cfg);
    return o->link;
}

static struct redis_tls *tls_new(const char *ca, const char *cert, const char *server_name,
                                 bool insecure)
{
    char crt[64], key[64], err[256];
    snprintf(crt, sizeof(crt), "%s.crt", cert ? cert : "");
    snprintf(key, sizeof(key), "%s.key", cert ? cert : "");
    struct redis_tls_config tc = {
        .ca_file = ca ? file(ca) : NULL,
        .cert_file = cert ? file(crt) : NULL,
        .key_file = cert ? file(key) : NULL,
        .server_name = server_name,
        .insecure = insecure,
    };
    struct redis_tls *t = redis_tls_new(&tc, err, sizeof(err));
    if (t == NULL)
        fprintf(stderr, "redis_tls_new: %s\n", err);
    return t;
}

/* ---- replies ---- */

struct fifo {
    int replies, errors;
    long long next; /* the INCR value expected next */
    bool in_order;
    size_t big_len; /* length of the last bulk string reply */
};

static void incr_cb(void *ctx, const struct redisReply *r, enum redis_link_result result)
{
    struct fifo *f = ctx;
    f->replies++;
    if (result != REDIS_LINK_REPLY) {
        f->errors++;
        return;
    }
    if (r->type == REDIS_REPLY_INTEGER) {
        if (r->integer != f->next)
            f->in_order = false;
        f->next++;
    } else if (r->type == REDIS_REPLY_STRING) {
        f->big_len = r->len;
    } else if (r->type != REDIS_REPLY_STATUS) {
        f->errors++;
    }
}

static int wanted_replies;

static bool fifo_done(const void *arg)
{
    return ((const struct fifo *)arg)->replies >= wanted_replies;
}

struct one {
    int calls;
    int type;
    char str[128];
};

static void one_cb(void *ctx, const struct redisReply *r, enum redis_link_result result)
{
    struct one *o = ctx;
    o->calls++;
    o->type = result == REDIS_LINK_REPLY ? r->type : -1;
    if (result == REDIS_LINK_REPLY && r->str != NULL)
        snprintf(o->str, sizeof(o->str), "%.*s", (int)r->len, r->str);
}

static bool one_done(const void *arg)
{
    return ((const struct one *)arg)->calls > 0;
}

static bool command_wait(struct redis_link *link, struct one *out, int argc,
                         const char *const *argv)
{
    memset(out, 0, sizeof(*out));
    return redis_link_command_argv(link, argc, argv, NULL, 0, one_cb, out) == SIOC_OK &&
           loop_wait_until(base, one_done, out, 3000);
}

/* ---- the same checks over each transport ---- */

/* 2,000 INCRs issued in one loop iteration, with a 1 MiB SET and GET in the middle (larger than
 * a socket write and many TLS records): every reply pairs with its command, in order. */
static void check_fifo(const char *url, struct redis_tls *tls)
{
    struct obs o;
    CHECK(open_link(&o, REDIS_LINK_COMMAND, url, tls) != NULL);
    CHECK(loop_wait_until(base, is_connected, &o, 5000));
    struct one r;
    CHECK(command_wait(o.link, &r, 2, (const char *[]){"DEL", "fifo"}));
    static char big[1 << 20];
    memset(big, 'v', sizeof(big));
    struct fifo f = {.next = 1, .in_order = true};
    for (int i = 0; i < 2000; i++) {
        if (i == 1000) {
            const char *set[3] = {"SET", "big", big};
            const size_t lens[3] = {3, 3, sizeof(big)};
            CHECK(redis_link_command_argv(o.link, 3, set, lens, 0, incr_cb, &f) == SIOC_OK);
            CHECK(redis_link_command_argv(o.link, 2, (const char *[]){"GET", "big"}, NULL, 0,
                                          incr_cb, &f) == SIOC_OK);
        }
        CHECK(redis_link_command_argv(o.link, 2, (const char *[]){"INCR", "fifo"}, NULL, 0, incr_cb,
                                      &f) == SIOC_OK);
    }
    wanted_replies = 2002;
    CHECK(loop_wait_until(base, fifo_done, &f, 10000));
    CHECK(f.replies == 2002 && f.errors == 0 && f.in_order && f.next == 2001);
    CHECK(f.big_len == sizeof(big));
    redis_link_free(o.link);
}

static bool messages_100(const void *arg)
{
    return ((const struct obs *)arg)->messages >= 100;
}

/* Subscriber and command links; a Redis restart in the middle: commands issued while it is down
 * are queued and written in order on reconnect, the subscriber subscribes again. */
static void check_pubsub_restart(const char *url, struct redis_tls *tls,
                                 struct redis_test_server *server)
{
    struct obs cmd, sub;
    struct one r;
    CHECK(open_link(&cmd, REDIS_LINK_COMMAND, url, tls) != NULL);
    CHECK(open_link(&sub, REDIS_LINK_SUBSCRIBER, url, tls) != NULL);
    CHECK(redis_link_subscribe(sub.link, "news") == SIOC_OK);
    CHECK(redis_link_psubscribe(sub.link, "ev:*") == SIOC_OK);
    CHECK(loop_wait_until(base, is_connected, &cmd, 5000));
    CHECK(loop_wait_until(base, is_connected, &sub, 5000));
    for (int i = 0; i < 100; i++) {
        char n[16];
        snprintf(n, sizeof(n), "%d", i);
        CHECK(redis_link_command_argv(cmd.link, 3,
                                      (const char *[]){"PUBLISH", i % 2 ? "ev:x" : "news", n}, NULL,
                                      0, NULL, NULL) == SIOC_OK);
    }
    CHECK(loop_wait_until(base, messages_100, &sub, 5000));
    for (int i = 36; i < 100; i++) { /* the last 64, in publishing order */
        char want[32];
        snprintf(want, sizeof(want), "%s:%d", i % 2 ? "ev:x" : "news", i);
        CHECK(strcmp(sub.last[i % 64], want) == 0);
    }

    redis_test_server_stop(server);
    CHECK(loop_wait_until(base, is_disconnected, &cmd, 5000));
    CHECK(loop_wait_until(base, is_disconnected, &sub, 5000));
    struct fifo f = {.next = 1, .in_order = true};
    for (int i = 0; i < 50; i++)
        CHECK(redis_link_command_argv(cmd.link, 2, (const char *[]){"INCR", "queued"}, NULL, 0,
                                      incr_cb, &f) == SIOC_OK);
    struct redis_link_stats st;
    redis_link_get_stats(cmd.link, &st);
    CHECK(st.queue_commands == 50 && f.replies == 0);
    CHECK(redis_test_server_restart(server) == 0);
    wanted_replies = 50;
    CHECK(loop_wait_until(base, fifo_done, &f, 5000));
    CHECK(f.errors == 0 && f.in_order && f.next == 51);
    CHECK(loop_wait_until(base, is_connected, &sub, 5000));
    CHECK(cmd.ups == 2 && sub.ups == 2);
    sub.messages = 0;
    CHECK(command_wait(cmd.link, &r, 3, (const char *[]){"PUBLISH", "ev:after", "x"}));
    CHECK(r.type == REDIS_REPLY_INTEGER);
    CHECK(loop_wait_until(base, messages_100, &sub, 300) == false && sub.messages == 1);
    CHECK(strcmp(sub.last[0], "ev:after:x") == 0);
    redis_link_free(cmd.link);
    redis_link_free(sub.link);
}

struct chain {
    struct redis_link *link;
    int left, done, errors;
};

static void chain_cb(void *ctx, const struct redisReply *r, enum redis_link_result result)
{
    struct chain *c = ctx;
    c->left--;
    if (result != REDIS_LINK_REPLY || r->type != REDIS_REPLY_INTEGER || r->integer != ++c->done)
        c->errors++;
    if (c->left > 0 && redis_link_command_argv(c->link, 2, (const char *[]){"INCR", "chain"}, NULL,
                                               0, chain_cb, c) != SIOC_OK)
        c->errors++;
}

/* A command issued from a reply callback leaves in the same loop iteration (the end-of-iteration
 * flush), TLS included: 200 chained round trips take about 200 iterations. */
static void check_chained(const char *url, struct redis_tls *tls)
{
    struct obs o;
    struct one r;
    CHECK(open_link(&o, REDIS_LINK_COMMAND, url, tls) != NULL);
    CHECK(loop_wait_until(base, is_connected, &o, 5000));
    CHECK(command_wait(o.link, &r, 2, (const char *[]){"DEL", "chain"}));
    struct chain c = {.link = o.link, .left = 200};
    CHECK(redis_link_command_argv(o.link, 2, (const char *[]){"INCR", "chain"}, NULL, 0, chain_cb,
                                  &c) == SIOC_OK);
    int iterations = 0;
    long long deadline = redis_test_now_ms() + 5000;
    while (c.left > 0 && redis_test_now_ms() < deadline) {
        event_base_loop(base, EVLOOP_ONCE);
        iterations++;
    }
    printf("%s: 200 chained round trips in %d loop iterations\n", tls ? "TLS" : "plain",
           iterations);
    CHECK(c.done == 200 && c.errors == 0 && iterations <= 210);
    redis_link_free(o.link);
}

/* 16 MiB written while Redis is stopped (SIGSTOP): the socket fills (TLS: SSL_write wants to
 * write), nothing is lost or reordered, and everything is answered once Redis resumes. */
static void check_full_socket(const char *url, struct redis_tls *tls,
                              struct redis_test_server *server)
{
    struct obs o;
    CHECK(open_link(&o, REDIS_LINK_COMMAND, url, tls) != NULL);
    CHECK(loop_wait_until(base, is_connected, &o, 5000));
    struct one r;
    CHECK(command_wait(o.link, &r, 2, (const char *[]){"DEL", "full:n"}));
    static char v[256 * 1024];
    memset(v, 'x', sizeof(v));
    struct fifo f = {.next = 1, .in_order = true};
    kill(server->pid, SIGSTOP);
    for (int i = 0; i < 64; i++) {
        const char *set[3] = {"SET", "full", v};
        const size_t lens[3] = {3, 4, sizeof(v)};
        CHECK(redis_link_command_argv(o.link, 3, set, lens, 0, incr_cb, &f) == SIOC_OK);
        CHECK(redis_link_command_argv(o.link, 2, (const char *[]){"INCR", "full:n"}, NULL, 0,
                                      incr_cb, &f) == SIOC_OK);
    }
    CHECK(redis_link_command_argv(o.link, 2, (const char *[]){"GET", "full"}, NULL, 0, incr_cb,
                                  &f) == SIOC_OK);
    loop_run_for(base, 200);
    CHECK(f.replies == 0);
    kill(server->pid, SIGCONT);
    wanted_replies = 129;
    CHECK(loop_wait_until(base, fifo_done, &f, 10000));
    CHECK(f.errors == 0 && f.in_order && f.next == 65 && f.big_len == sizeof(v));
    struct redis_link_stats st;
    redis_link_get_stats(o.link, &st);
    CHECK(st.disconnects == 0);
    redis_link_free(o.link);
}

struct owner {
    struct redis_link *link;
    struct one *other; /* cancelled from this owner's LOST callback */
    int lost;
};

static void lost_cb(void *ctx, const struct redisReply *r, enum redis_link_result result)
{
    (void)r;
    struct owner *o = ctx;
    o->lost += result == REDIS_LINK_LOST;
    if (o->other != NULL)
        redis_link_cancel(o->link, o->other); /* e.g. the socket that owned it is gone */
}

/* A connection dropped with commands in flight: each gets REDIS_LINK_LOST in order, and one
 * cancelled from an earlier one's LOST callback gets nothing (its owner may be freed). */
static void check_cancel_while_lost(const char *url, struct redis_tls *tls,
                                    struct redis_test_server *server)
{
    struct obs o;
    CHECK(open_link(&o, REDIS_LINK_COMMAND, url, tls) != NULL);
    CHECK(loop_wait_until(base, is_connected, &o, 5000));
    struct one later = {0};
    struct owner first = {.link = o.link, .other = &later};
    kill(server->pid, SIGSTOP); /* the commands stay in flight */
    CHECK(redis_link_command_argv(o.link, 1, (const char *[]){"PING"}, NULL, 0, lost_cb, &first) ==
          SIOC_OK);
    CHECK(redis_link_command_argv(o.link, 1, (const char *[]){"PING"}, NULL, 0, one_cb, &later) ==
          SIOC_OK);
    loop_run_for(base, 100); /* written */
    redis_link_disconnect_now(o.link);
    kill(server->pid, SIGCONT);
    CHECK(first.lost == 1 && later.calls == 0);
    loop_run_for(base, 200);
    CHECK(later.calls == 0);
    redis_link_free(o.link);
}

static struct redis_test_server plain;
static struct tls_server tls_a;

static void test_plain_fifo(void)
{
    char url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", plain.port);
    check_fifo(url, NULL);
}

static void test_plain_pubsub_restart(void)
{
    char url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", plain.port);
    check_pubsub_restart(url, NULL, &plain);
}

static void test_plain_chained_full_lost(void)
{
    char url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", plain.port);
    check_chained(url, NULL);
    check_full_socket(url, NULL, &plain);
    check_cancel_while_lost(url, NULL, &plain);
}

static void test_tls_chained_full_lost(void)
{
    struct redis_tls *tls = tls_new("ca-a.crt", NULL, NULL, false);
    char url[64];
    snprintf(url, sizeof(url), "rediss://127.0.0.1:%d", tls_a.s.port);
    check_chained(url, tls);
    check_full_socket(url, tls, &tls_a.s);
    check_cancel_while_lost(url, tls, &tls_a.s);
    redis_tls_free(tls);
}

static void test_tls_fifo(void)
{
    struct redis_tls *tls = tls_new("ca-a.crt", NULL, NULL, false);
    CHECK(tls != NULL);
    char url[64];
    snprintf(url, sizeof(url), "rediss://127.0.0.1:%d", tls_a.s.port);
    check_fifo(url, tls);
    snprintf(url, sizeof(url), "rediss://localhost:%d/2", tls_a.s.port); /* a name, db 2 */
    check_fifo(url, tls);
    /* a rediss:// URL without TLS settings is refused up front */
    struct obs o;
    CHECK(open_link(&o, REDIS_LINK_COMMAND, url, NULL) == NULL);
    redis_tls_free(tls);
}

static void test_tls_pubsub_restart(void)
{
    struct redis_tls *tls = tls_new("ca-a.crt", NULL, NULL, false);
    char url[64];
    snprintf(url, sizeof(url), "rediss://127.0.0.1:%d", tls_a.s.port);
    check_pubsub_restart(url, tls, &tls_a.s);
    redis_tls_free(tls);
}

static bool failed_3(const void *arg)
{
    return ((const struct obs *)arg)->events[REDIS_LINK_EV_CONNECT_FAILED] >= 3;
}

/* The server's certificate is from CA b, the link trusts CA a: every attempt fails with the
 * verification error and is retried; once the server has a CA a certificate the link connects. */
static void test_tls_wrong_ca(void)
{
    struct tls_server b = {0};
    tls_server_setup(&b, "server-b", false, NULL);
    CHECK(redis_test_server_start(&b.s) == 0);
    struct redis_tls *tls = tls_new("ca-a.crt", NULL, NULL, false);
    char url[64];
    snprintf(url, sizeof(url), "rediss://127.0.0.1:%d", b.s.port);
    struct obs o;
    CHECK(open_link(&o, REDIS_LINK_COMMAND, url, tls) != NULL);
    struct one r = {0};
    CHECK(redis_link_command_argv(o.link, 3, (const char *[]){"SET", "after", "fix"}, NULL, 0,
                                  one_cb, &r) == SIOC_OK);
    CHECK(loop_wait_until(base, failed_3, &o, 5000));
    printf("wrong CA: %s\n", o.last_failure);
    CHECK(strstr(o.last_failure, "certificate verify failed") != NULL);
    CHECK(o.ups == 0 && r.calls == 0);
    struct redis_link_stats st;
    redis_link_get_stats(o.link, &st);
    CHECK(st.connects == 0 && st.connect_failures >= 3 && st.queue_commands == 1);
    /* fixed on the server side: same port, a certificate the link trusts */
    tls_server_setup(&b, "server-a", false, NULL);
    CHECK(redis_test_server_restart(&b.s) == 0);
    CHECK(loop_wait_until(base, is_connected, &o, 5000));
    CHECK(loop_wait_until(base, one_done, &r, 3000) && r.type == REDIS_REPLY_STATUS);
    redis_link_free(o.link);
    /* redis-tls-insecure connects to the CA b server without verifying anything */
    tls_server_setup(&b, "server-b", false, NULL);
    CHECK(redis_test_server_restart(&b.s) == 0);
    struct redis_tls *insecure = tls_new("ca-a.crt", NULL, NULL, true);
    CHECK(insecure != NULL && redis_tls_insecure(insecure));
    CHECK(open_link(&o, REDIS_LINK_COMMAND, url, insecure) != NULL);
    CHECK(loop_wait_until(base, is_connected, &o, 5000));
    redis_link_free(o.link);
    redis_tls_free(insecure);
    redis_tls_free(tls);
    redis_test_server_stop(&b.s);
}

/* A certificate for redis.test only: connecting to 127.0.0.1 fails the name check unless
 * redis-tls-server-name says redis.test. */
static void test_tls_server_name(void)
{
    struct tls_server n = {0};
    tls_server_setup(&n, "named", false, NULL);
    CHECK(redis_test_server_start(&n.s) == 0);
    char url[64];
    snprintf(url, sizeof(url), "rediss://127.0.0.1:%d", n.s.port);
    struct redis_tls *by_host = tls_new("ca-a.crt", NULL, NULL, false);
    struct redis_tls *by_name = tls_new("ca-a.crt", NULL, "redis.test", false);
    struct redis_tls *wrong_name = tls_new("ca-a.crt", NULL, "other.test", false);
    struct obs a, b, c;
    CHECK(open_link(&a, REDIS_LINK_COMMAND, url, by_host) != NULL);
    CHECK(open_link(&b, REDIS_LINK_COMMAND, url, by_name) != NULL);
    CHECK(open_link(&c, REDIS_LINK_COMMAND, url, wrong_name) != NULL);
    CHECK(loop_wait_until(base, is_connected, &b, 5000));
    CHECK(loop_wait_until(base, failed_3, &a, 5000) && loop_wait_until(base, failed_3, &c, 5000));
    printf("IP not in the certificate: %s\n", a.last_failure);
    printf("other name: %s\n", c.last_failure);
    CHECK(strstr(a.last_failure, "mismatch") != NULL && strstr(c.last_failure, "mismatch") != NULL);
    CHECK(a.ups == 0 && c.ups == 0);
    redis_link_free(a.link);
    redis_link_free(b.link);
    redis_link_free(c.link);
    redis_tls_free(by_host);
    redis_tls_free(by_name);
    redis_tls_free(wrong_name);
    redis_test_server_stop(&n.s);
}

/* tls-auth-clients yes and an ACL user: a client certificate and AUTH alice <password> both on
 * the command and the subscriber link; no certificate or a wrong password is refused. */
static void test_tls_client_cert_acl(void)
{
    static const char *const acl[] = {"--user", "alice", "on",    ">wonder",
                                      "~*",     "&*",    "+@all", NULL};
    struct tls_server m = {0};
    tls_server_setup(&m, "server-a", true, acl);
    CHECK(redis_test_server_start(&m.s) == 0);
    char url[96], bad[96];
    snprintf(url, sizeof(url), "rediss://alice:wonder@127.0.0.1:%d", m.s.port);
    snprintf(bad, sizeof(bad), "rediss://alice:wrong@127.0.0.1:%d", m.s.port);
    struct redis_tls *with_cert = tls_new("ca-a.crt", "client", NULL, false);
    struct redis_tls *without = tls_new("ca-a.crt", NULL, NULL, false);
    CHECK(with_cert != NULL && without != NULL);
    struct obs cmd, sub, nocert, badpw;
    CHECK(open_link(&cmd, REDIS_LINK_COMMAND, url, with_cert) != NULL);
    CHECK(open_link(&sub, REDIS_LINK_SUBSCRIBER, url, with_cert) != NULL);
    CHECK(open_link(&nocert, REDIS_LINK_COMMAND, url, without) != NULL);
    CHECK(open_link(&badpw, REDIS_LINK_COMMAND, bad, with_cert) != NULL);
    CHECK(redis_link_subscribe(sub.link, "acl") == SIOC_OK);
    CHECK(loop_wait_until(base, is_connected, &cmd, 5000));
    CHECK(loop_wait_until(base, is_connected, &sub, 5000));
    struct one r;
    CHECK(command_wait(cmd.link, &r, 2, (const char *[]){"ACL", "WHOAMI"}));
    CHECK(r.type == REDIS_REPLY_STRING && strcmp(r.str, "alice") == 0);
    CHECK(command_wait(cmd.link, &r, 3, (const char *[]){"PUBLISH", "acl", "hi"}));
    CHECK(r.type == REDIS_REPLY_INTEGER);
    CHECK(loop_wait_until(base, messages_100, &sub, 300) == false && sub.messages == 1);
    loop_run_for(base, 300);
    printf("no client certificate: %s\n", nocert.last_failure);
    printf("wrong password: %s\n", badpw.last_failure);
    CHECK(nocert.ups == 0 && nocert.events[REDIS_LINK_EV_CONNECT_FAILED] >= 2);
    CHECK(badpw.ups == 0 && badpw.events[REDIS_LINK_EV_HANDSHAKE_ERROR] >= 2);
    CHECK(strstr(badpw.last_failure, "WRONGPASS") != NULL);
    redis_link_free(cmd.link);
    redis_link_free(sub.link);
    redis_link_free(nocert.link);
    redis_link_free(badpw.link);
    redis_tls_free(with_cert);
    redis_tls_free(without);
    redis_test_server_stop(&m.s);
}

static bool timed_out_2(const void *arg)
{
    return ((const struct obs *)arg)->events[REDIS_LINK_EV_CONNECT_TIMEOUT] >= 2;
}

/* The wrong scheme for a port: rediss:// to a plain port stalls in the handshake (Redis waits
 * for the end of a line), bounded by the connect timeout; redis:// to a TLS port is closed at
 * the first command. Both say which mistake is likely. */
static void test_wrong_scheme(void)
{
    struct redis_tls *tls = tls_new("ca-a.crt", NULL, NULL, false);
    char to_plain[64], to_tls[64];
    snprintf(to_plain, sizeof(to_plain), "rediss://127.0.0.1:%d", plain.port);
    snprintf(to_tls, sizeof(to_tls), "redis://127.0.0.1:%d", tls_a.s.port);
    struct obs a, b;
    connect_timeout_ms = 300;
    CHECK(open_link(&a, REDIS_LINK_COMMAND, to_plain, tls) != NULL);
    CHECK(open_link(&b, REDIS_LINK_COMMAND, to_tls, NULL) != NULL);
    connect_timeout_ms = 0;
    CHECK(loop_wait_until(base, timed_out_2, &a, 5000));
    CHECK(loop_wait_until(base, failed_3, &b, 5000));
    printf("rediss:// to a plain port: %s\n", a.last_failure);
    printf("redis:// to a TLS port: %s\n", b.last_failure);
    CHECK(strstr(a.last_failure, "a plain Redis port?") != NULL);
    CHECK(strstr(b.last_failure, "a TLS port? use rediss://") != NULL);
    CHECK(a.ups == 0 && b.ups == 0);
    redis_link_free(a.link);
    redis_link_free(b.link);
    redis_tls_free(tls);
}

/* Configuration errors name the option and the file. */
static void test_tls_config_errors(void)
{
    char err[256];
    struct redis_tls_config missing = {.ca_file = "/nonexistent/ca.pem"};
    CHECK(redis_tls_new(&missing, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "redis-tls-ca /nonexistent/ca.pem") != NULL);
    struct redis_tls_config half = {.ca_file = file("ca-a.crt"), .cert_file = file("client.crt")};
    CHECK(redis_tls_new(&half, err, sizeof(err)) == NULL);
    struct redis_tls_config mismatch = {.ca_file = file("ca-a.crt"),
                                        .cert_file = file("client.crt"),
                                        .key_file = file("server-a.key")};
    CHECK(redis_tls_new(&mismatch, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "redis-tls-key") != NULL);
    redis_tls_free(NULL);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    base = event_base_new();
    if (base == NULL || !make_certificates()) {
        fprintf(stderr, "test_redis_conn: cannot make certificates (openssl CLI) in %s\n", dir);
        printf("test_redis_conn: 0 passed, 1 failed\n");
        return 1;
    }
    tls_server_setup(&tls_a, "server-a", false, NULL);
    if (redis_test_server_start(&plain) != 0 || redis_test_server_start(&tls_a.s) != 0) {
        fprintf(stderr, "test_redis_conn: cannot start redis-server (plain and --tls-port)\n");
        printf("test_redis_conn: 0 passed, 1 failed\n");
        return 1;
    }
    RUN(test_plain_fifo);
    RUN(test_plain_pubsub_restart);
    RUN(test_plain_chained_full_lost);
    RUN(test_tls_fifo);
    RUN(test_tls_chained_full_lost);
    RUN(test_tls_pubsub_restart);
    RUN(test_tls_wrong_ca);
    RUN(test_tls_server_name);
    RUN(test_tls_client_cert_acl);
    RUN(test_wrong_scheme);
    RUN(test_tls_config_errors);
    redis_test_server_stop(&plain);
    redis_test_server_stop(&tls_a.s);
    event_base_free(base);
    remove_certificates();
    return test_summary("test_redis_conn");
}
