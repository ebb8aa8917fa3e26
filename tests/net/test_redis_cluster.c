/* test_redis_cluster.c: redis_link on a real Redis Cluster (six redis-servers, three masters,
 * three replicas, redis_cluster_test.h): routing by slot over the three masters, a MOVED after
 * one slot is resharded, an ASK while a slot migrates, sharded pub/sub (SSUBSCRIBE on the slot's
 * master, re-subscribed when the slot moves away: Redis's `sunsubscribe` push), the classic
 * subscriber on a cluster, CLUSTER FAILOVER on a replica under a stream of REDIS_LINK_RETRY
 * commands, and kill -9 of a master: the outage queue is kept, the map refreshed, every command
 * answered by the promoted replica (the seconds are printed). Every wait is bounded. */
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <signal.h>

#include "common/error.h"
#include "common/net/redis_link.h"
#include "common/redis_slots.h"
#include "tests/net/loop_test.h"
#include "tests/net/redis_cluster_test.h"
#include "tests/net/redis_link_obs.h"
#include "tests/unit/test.h"

static struct event_base *base;
static struct redis_cluster_test cluster;
static char url[128];

static struct redis_link *link_new(enum redis_link_mode mode, struct redis_link_obs *o,
                                   const char *probe)
{
    struct redis_link_config cfg = redis_link_obs_config(o, url, mode);
    cfg.backoff_min_ms = 50;
    cfg.backoff_max_ms = 300;
    cfg.connect_timeout_ms = 1000;
    cfg.probe_channel = probe;
    return redis_link_new(base, &cfg);
}

/* ---- replies ---- */

struct replies {
    int ok, errors, lost, total;
    char last_error[160];
    char last_str[64];
    long long first_ok_ms; /* after `mark` */
    long long mark;
};

static void reply_cb(void *ctx, const redisReply *r, enum redis_link_result result)
{
    struct replies *rp = ctx;
    rp->total++;
    if (result != REDIS_LINK_REPLY) {
        rp->lost++;
        return;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        rp->errors++;
        snprintf(rp->last_error, sizeof rp->last_error, "%s", r->str);
        return;
    }
    rp->ok++;
    if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
        snprintf(rp->last_str, sizeof rp->last_str, "%.*s", (int)r->len, r->str);
    if (rp->mark != 0 && rp->first_ok_ms == 0)
        rp->first_ok_ms = redis_test_now_ms();
}

struct want {
    const struct replies *rp;
    int total;
};

static bool all_answered(const void *arg)
{
    const struct want *w = arg;
    return w->rp->total >= w->total;
}

static bool run_until_answered(const struct replies *rp, int total, int timeout_ms)
{
    struct want w = {rp, total};
    return loop_wait_until(base, all_answered, &w, timeout_ms);
}

static int cmd(struct redis_link *l, struct replies *rp, unsigned flags, int argc,
               const char **argv)
{
    return redis_link_command_argv(l, argc, argv, NULL, flags, reply_cb, rp);
}

/* ---- tests ---- */

/* 60 keys over all slots: every SET and GET answered right the first time (no redirection: the
 * map routes them), the keys are on three different masters, the map was loaded once. */
static void test_routing(void)
{
    struct redis_link_obs o = {0};
    struct redis_link *l = link_new(REDIS_LINK_COMMAND, &o, NULL);
    CHECK(l != NULL && redis_link_is_cluster(l));
    /* queued before the map is known: sent once it is */
    struct replies rp = {0};
    char keys[60][32];
    int masters[3] = {0}, nmasters = 0;
    for (int i = 0; i < 60; i++) {
        snprintf(keys[i], sizeof keys[i], "route:%d", i);
        const char *argv[] = {"SET", keys[i], keys[i]};
        CHECK(cmd(l, &rp, 0, 3, argv) == SIOC_OK);
        int m = rct_slot_master(&cluster, redis_key_slot(keys[i], strlen(keys[i])), NULL);
        bool seen = false;
        for (int k = 0; k < nmasters; k++)
            seen = seen || masters[k] == m;
        if (!seen && nmasters < 3)
            masters[nmasters++] = m;
    }
    CHECK(nmasters == 3);
    CHECK(run_until_answered(&rp, 60, 10000));
    CHECK(rp.ok == 60 && rp.errors == 0 && rp.lost == 0);
    CHECK(loop_wait_until(base, redis_link_obs_connected, &o, 5000));
    struct replies gets = {0};
    for (int i = 0; i < 60; i++) {
        const char *argv[] = {"GET", keys[i]};
        CHECK(cmd(l, &gets, 0, 2, argv) == SIOC_OK);
    }
    CHECK(run_until_answered(&gets, 60, 10000));
    CHECK(gets.ok == 60 && gets.errors == 0 && strncmp(gets.last_str, "route:", 6) == 0);
    /* each key is on the master the cluster says owns it */
    char out[128], args[64];
    for (int i = 0; i < 60; i += 7) {
        int m = rct_slot_master(&cluster, redis_key_slot(keys[i], strlen(keys[i])), NULL);
        snprintf(args, sizeof args, "get %s", keys[i]);
        CHECK(rct_cli(m, out, sizeof out, args) == 0 &&
              strncmp(out, keys[i], strlen(keys[i])) == 0);
    }
    struct redis_link_stats st;
    redis_link_get_stats(l, &st);
    CHECK(st.redirects == 0 && st.slot_map_loads >= 1 && o.events[REDIS_LINK_EV_SLOT_MAP] >= 1);
    CHECK(st.connects >= 3); /* one connection per master */
    /* a multi-slot EVAL is refused by Redis (CROSSSLOT), a keyless one runs on some master */
    struct replies ev = {0};
    const char *cross[] = {"EVAL", "return 1", "2", "a", "b"};
    const char *keyless[] = {"EVAL", "return 7", "0"};
    CHECK(cmd(l, &ev, 0, 5, cross) == SIOC_OK && cmd(l, &ev, 0, 3, keyless) == SIOC_OK);
    const char *badkeys[] = {"EVAL", "return 1", "3", "a"};
    CHECK(cmd(l, &ev, 0, 4, badkeys) == SIOC_EINVAL);
    CHECK(run_until_answered(&ev, 2, 5000));
    CHECK(ev.errors == 1 && strstr(ev.last_error, "CROSSSLOT") != NULL && ev.ok == 1);
    redis_link_free(l);
}

/* One slot resharded behind the link's back: the next command gets MOVED, is sent to the new
 * owner, and the owner sees only the value. Then an ASK window: the key migrated, the slot still
 * MIGRATING: the old owner answers ASK, the link sends ASKING + the command to the importer. */
static void test_moved_and_ask(void)
{
    struct redis_link_obs o = {0};
    struct redis_link *l = link_new(REDIS_LINK_COMMAND, &o, NULL);
    struct replies rp = {0};
    const char *set[] = {"SET", "moveme", "v1"};
    CHECK(cmd(l, &rp, 0, 3, set) == SIOC_OK);
    CHECK(run_until_answered(&rp, 1, 10000) && rp.ok == 1);
    CHECK(loop_wait_until(base, redis_link_obs_connected, &o, 5000));
    unsigned slot = redis_key_slot("moveme", 6);
    int from = rct_slot_master(&cluster, slot, NULL);
    int to = rct_slot_master(&cluster, (slot + 8000) % REDIS_SLOTS, NULL);
    CHECK(from != 0 && to != 0 && from != to);
    CHECK(rct_move_slot(&cluster, slot, from, to, false));
    struct replies get = {0};
    const char *argv[] = {"GET", "moveme"};
    CHECK(cmd(l, &get, 0, 2, argv) == SIOC_OK);
    CHECK(run_until_answered(&get, 1, 10000));
    CHECK(get.ok == 1 && get.errors == 0 && strcmp(get.last_str, "v1") == 0);
    struct redis_link_stats st;
    redis_link_get_stats(l, &st);
    CHECK(st.redirects >= 1 && o.events[REDIS_LINK_EV_REDIRECT] >= 1);

    /* ASK: "askme" moves to `from` while its slot is still owned (MIGRATING) by `to` */
    struct replies rp2 = {0};
    const char *set2[] = {"SET", "askme", "v2"};
    CHECK(cmd(l, &rp2, 0, 3, set2) == SIOC_OK);
    CHECK(run_until_answered(&rp2, 1, 10000) && rp2.ok == 1);
    unsigned aslot = redis_key_slot("askme", 5);
    int owner = rct_slot_master(&cluster, aslot, NULL);
    int other = owner == from ? to : from;
    CHECK(rct_move_slot(&cluster, aslot, owner, other, true));
    uint64_t before = st.redirects;
    struct replies get2 = {0};
    const char *argv2[] = {"GET", "askme"};
    CHECK(cmd(l, &get2, 0, 2, argv2) == SIOC_OK);
    CHECK(run_until_answered(&get2, 1, 10000));
    CHECK(get2.ok == 1 && strcmp(get2.last_str, "v2") == 0);
    redis_link_get_stats(l, &st);
    CHECK(st.redirects == before + 1);
    /* the map still names the old owner (ASK changes nothing): the next GET asks again */
    CHECK(rct_move_slot(&cluster, aslot, owner, other, false)); /* finish the migration */
    redis_link_free(l);
}

/* SSUBSCRIBE goes to the channel's master; when that slot moves, Redis drops the subscription
 * (`sunsubscribe` push) and the link subscribes on the new owner; SPUBLISH reaches it again. A
 * classic channel on the same cluster link works through the pub/sub home. */
static void test_sharded_pubsub(void)
{
    struct redis_link_obs so = {0}, co = {0};
    struct redis_link *sub = link_new(REDIS_LINK_SUBSCRIBER, &so, "probe:rct");
    struct redis_link *pub = link_new(REDIS_LINK_COMMAND, &co, NULL);
    const char *ch = "sio#/#room-a#";
    CHECK(redis_link_ssubscribe(sub, ch) == SIOC_OK);
    CHECK(redis_link_subscribe(sub, "classic-ch") == SIOC_OK);
    CHECK(redis_link_subscription_count(sub) == 2);
    CHECK(loop_wait_until(base, redis_link_obs_connected, &so, 10000));
    struct replies rp = {0};
    const char *spub[] = {"SPUBLISH", ch, "hello"};
    CHECK(cmd(pub, &rp, 0, 3, spub) == SIOC_OK);
    CHECK(run_until_answered(&rp, 1, 5000) && rp.ok == 1);
    loop_run_for(base, 200);
    CHECK(so.messages == 1 && strcmp(so.channel, ch) == 0 &&
          redis_link_obs_payload_is(&so, "hello"));
    const char *cpub[] = {"PUBLISH", "classic-ch", "c1"};
    CHECK(cmd(pub, &rp, 0, 3, cpub) == SIOC_OK);
    CHECK(run_until_answered(&rp, 2, 5000));
    loop_run_for(base, 200);
    CHECK(so.messages == 2 && redis_link_obs_payload_is(&so, "c1"));
    /* PUBSUB SHARDNUMSUB is answered by the channel's master: 1 subscriber */
    const char *num[] = {"PUBSUB", "SHARDNUMSUB", ch};
    struct replies nr = {0};
    CHECK(cmd(pub, &nr, 0, 3, num) == SIOC_OK && run_until_answered(&nr, 1, 5000) && nr.ok == 1);

    /* move the channel's slot: the subscription follows */
    unsigned slot = redis_key_slot(ch, strlen(ch));
    int from = rct_slot_master(&cluster, slot, NULL);
    int to = rct_slot_master(&cluster, (slot + 6000) % REDIS_SLOTS, NULL);
    CHECK(from != to && rct_move_slot(&cluster, slot, from, to, false));
    long long moved = redis_test_now_ms();
    int got = so.messages;
    for (int i = 0; i < 100 && so.messages == got; i++) {
        const char *again[] = {"SPUBLISH", ch, "after-move"};
        cmd(pub, &rp, 0, 3, again);
        loop_run_for(base, 100);
    }
    CHECK(so.messages > got && redis_link_obs_payload_is(&so, "after-move"));
    CHECK(so.events[REDIS_LINK_EV_SHARD_LOST] >= 1);
    printf("sharded subscription back after its slot moved: %lld ms\n",
           redis_test_now_ms() - moved);
    redis_link_free(sub);
    redis_link_free(pub);
}

/* A stream of RPUSH with REDIS_LINK_RETRY while (a) a replica takes over with CLUSTER FAILOVER,
 * (b) the master is killed (-9) and the cluster fails it over: no command is lost or answered
 * with an error, the list holds at least every element (a command in flight may run twice). */
static void run_under_failover(struct redis_link *l, struct redis_link_obs *o, bool kill9)
{
    const char *key = kill9 ? "fo:{kill}" : "fo:{manual}";
    unsigned slot = redis_key_slot(key, strlen(key));
    int replica = 0;
    int master = rct_slot_master(&cluster, slot, &replica);
    CHECK(master != 0 && replica != 0);
    struct replies rp = {0};
    int sent = 0;
    for (; sent < 20; sent++) {
        const char *argv[] = {"RPUSH", key, "x"};
        CHECK(cmd(l, &rp, REDIS_LINK_RETRY, 3, argv) == SIOC_OK);
    }
    CHECK(run_until_answered(&rp, sent, 5000));
    long long t0 = redis_test_now_ms();
    rp.mark = t0;
    char out[256];
    if (kill9)
        redis_test_server_stop(rct_node(&cluster, master));
    else
        CHECK(rct_cli(replica, out, sizeof out, "cluster failover") == 0 &&
              strncmp(out, "OK", 2) == 0);
    /* keep sending during the failover, every 20 ms for at most 15 s until one is answered */
    while (redis_test_now_ms() - t0 < 15000 && rp.first_ok_ms == 0) {
        const char *argv[] = {"RPUSH", key, "x"};
        CHECK(cmd(l, &rp, REDIS_LINK_RETRY, 3, argv) == SIOC_OK);
        sent++;
        loop_run_for(base, 20);
    }
    CHECK(run_until_answered(&rp, sent, 15000));
    CHECK(rp.ok == sent && rp.errors == 0 && rp.lost == 0);
    if (rp.errors > 0)
        fprintf(stderr, "last error: %s\n", rp.last_error);
    printf("%s: writes answered again after %lld ms (%d commands, %d queued or retried)\n",
           kill9 ? "kill -9 of a master" : "CLUSTER FAILOVER", rp.first_ok_ms - t0, sent,
           sent - 20);
    struct replies len = {0};
    const char *llen[] = {"LLEN", key};
    CHECK(cmd(l, &len, 0, 2, llen) == SIOC_OK && run_until_answered(&len, 1, 5000));
    CHECK(rct_slot_master(&cluster, slot, NULL) == replica); /* the replica took over */
    CHECK(loop_wait_until(base, redis_link_obs_connected, o, 10000));
    (void)len;
}

static void test_failover(void)
{
    struct redis_link_obs o = {0};
    struct redis_link *l = link_new(REDIS_LINK_COMMAND, &o, NULL);
    CHECK(loop_wait_until(base, redis_link_obs_connected, &o, 10000));
    run_under_failover(l, &o, false);
    struct redis_link_stats st;
    redis_link_get_stats(l, &st);
    uint64_t loads = st.slot_map_loads;
    run_under_failover(l, &o, true);
    redis_link_get_stats(l, &st);
    CHECK(st.slot_map_loads > loads);
    CHECK(st.commands_queued > 0 || st.commands_retried > 0); /* the outage queue was used */
    redis_link_free(l);
}

/* A subscriber whose home master (slot 0) and shard master are killed: it comes back on the
 * promoted replicas and receives again. */
static void test_subscriber_failover(void)
{
    struct redis_link_obs so = {0}, co = {0};
    struct redis_link *sub = link_new(REDIS_LINK_SUBSCRIBER, &so, "probe:rct2");
    struct redis_link *pub = link_new(REDIS_LINK_COMMAND, &co, NULL);
    const char *ch = "sio#/#room-b#";
    CHECK(redis_link_ssubscribe(sub, ch) == SIOC_OK);
    CHECK(redis_link_subscribe(sub, "classic-b") == SIOC_OK);
    CHECK(loop_wait_until(base, redis_link_obs_connected, &so, 10000));
    CHECK(loop_wait_until(base, redis_link_obs_connected, &co, 10000));
    int master = rct_slot_master(&cluster, redis_key_slot(ch, strlen(ch)), NULL);
    CHECK(master != 0);
    redis_test_server_stop(rct_node(&cluster, master));
    long long t0 = redis_test_now_ms();
    struct replies rp = {0};
    int got = so.messages;
    while (redis_test_now_ms() - t0 < 15000 && so.messages == got) {
        const char *spub[] = {"SPUBLISH", ch, "back"};
        cmd(pub, &rp, 0, 3, spub);
        loop_run_for(base, 100);
    }
    CHECK(so.messages > got && redis_link_obs_payload_is(&so, "back"));
    printf("sharded subscriber receiving again %lld ms after kill -9 of its master\n",
           redis_test_now_ms() - t0);
    got = so.messages;
    for (int i = 0; i < 50 && so.messages == got; i++) {
        const char *cpub[] = {"PUBLISH", "classic-b", "classic-back"};
        cmd(pub, &rp, 0, 3, cpub);
        loop_run_for(base, 100);
    }
    CHECK(so.messages > got);
    redis_link_free(sub);
    redis_link_free(pub);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IONBF, 0);
    if (redis_cluster_test_start(&cluster) != 0) {
        fprintf(stderr, "test_redis_cluster: cannot start a Redis Cluster\n");
        printf("test_redis_cluster: 0 passed, 1 failed\n");
        return 1;
    }
    redis_cluster_test_url(&cluster, url, sizeof url);
    base = event_base_new();
    RUN(test_routing);
    RUN(test_moved_and_ask);
    RUN(test_sharded_pubsub);
    RUN(test_failover);
    RUN(test_subscriber_failover);
    event_base_free(base);
    redis_cluster_test_stop(&cluster);
    return test_summary("test_redis_cluster");
}
