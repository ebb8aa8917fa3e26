/* lease.c: the active/standby lease of the brokers (lease.h; docs/contracts.md "Broker
 * failover"). One timer: every lease-timeout / 3 while active (renew), every poll interval while
 * standing by (try to take the key); one lease script in flight at a time. */
#include "broker/lease.h"

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/scripts.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/metrics.h"
#include "common/net/log.h"
#include "common/net/redis_link.h"

#define LEASE_TEXT_MAX 160
#define LEASE_POLL_MAX_MS 1000u

struct bk_lease {
    struct broker *b;
    char token[LEASE_TEXT_MAX];
    char holder[LEASE_TEXT_MAX]; /* last holder seen ("" none) */
    char logged[LEASE_TEXT_MAX]; /* holder named by the last "standing by" line */
    unsigned lease_ms, poll_ms;
    bk_lease_change_cb *cb;
    void *ctx;
    struct event *tick;
    bool held;            /* believed held (still subject to valid_until) */
    uint64_t valid_until; /* monotonic ms: last renewal sent + 0.9 x lease */
    bool busy;            /* a lease script awaits its reply */
    bool saw_other;       /* another holder was seen since this broker last held the lease */
    bool took_over;       /* the current term began after another holder's */
    uint64_t sent_at;
    void (*release_done)(void *ctx);
    void *release_ctx;
    int64_t *active_gauge;
    uint64_t *acquired, *lost;
};

static void arm(struct bk_lease *l)
{
    unsigned ms = l->held ? l->lease_ms / 3 : l->poll_ms;
    if (ms == 0)
        ms = 1;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(l->tick, &tv);
}

static void drop(struct bk_lease *l, const char *why)
{
    if (!l->held)
        return;
    l->held = false;
    *l->active_gauge = 0;
    (*l->lost)++;
    log_write(l->b->log, LOG_LEVEL_WARN, "broker.lease", "lost lease: %s; standing by", why);
    l->logged[0] = '\0'; /* the next poll names the active one */
    l->cb(l->ctx, false);
    arm(l);
}

static void copy_text(char *dst, const redisReply *r)
{
    if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
        snprintf(dst, LEASE_TEXT_MAX, "%.*s",
                 (int)(r->len < LEASE_TEXT_MAX - 1 ? r->len : LEASE_TEXT_MAX - 1), r->str);
    else
        dst[0] = '\0';
}

static void on_ours(struct bk_lease *l, bool acquired)
{
    uint64_t now = clock_mono_ms(), until = l->sent_at + l->lease_ms - l->lease_ms / 10;
    if (now >= until)
        return; /* answered too late to count (the process was paused): the next tick retries */
    l->valid_until = until;
    if (l->held)
        return;
    l->held = true;
    l->took_over = l->saw_other;
    l->saw_other = false;
    *l->active_gauge = 1;
    (*l->acquired)++;
    log_write(l->b->log, LOG_LEVEL_INFO, "broker.lease",
              "became active (token %s, %s, lease %u ms)", l->token,
              acquired ? "lease was free" : "lease still ours", l->lease_ms);
    l->logged[0] = '\0';
    evtimer_del(l->tick);
    arm(l);
    l->cb(l->ctx, true);
}

static void lease_cb(void *ctx, const redisReply *reply, enum redis_link_result result)
{
    struct bk_lease *l = ctx;
    l->busy = false;
    if (l->release_done != NULL)
        return; /* stopping: never active again */
    if (result != REDIS_LINK_REPLY)
        return; /* Redis away: valid_until runs out on its own */
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
        log_write(l->b->log, LOG_LEVEL_ERROR, "broker.lease", "lease script: %s",
                  reply->type == REDIS_REPLY_ERROR && reply->str ? reply->str : "unexpected reply");
        return;
    }
    char status[16];
    copy_text(status, reply->element[0]);
    copy_text(l->holder, reply->element[1]);
    if (strcmp(status, "ours") == 0 || strcmp(status, "acquired") == 0) {
        on_ours(l, status[0] == 'a');
        return;
    }
    l->saw_other = true;
    if (l->held) {
        char why[LEASE_TEXT_MAX + 32];
        snprintf(why, sizeof why, "active is %s", l->holder);
        drop(l, why);
    } else if (strcmp(l->logged, l->holder) != 0) {
        snprintf(l->logged, sizeof l->logged, "%s", l->holder);
        log_write(l->b->log, LOG_LEVEL_INFO, "broker.lease", "standing by (active is %s)",
                  l->holder);
    }
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct bk_lease *l = arg;
    if (l->release_done != NULL)
        return;
    if (l->held && clock_mono_ms() >= l->valid_until)
        drop(l, "not renewed within lease-timeout (Redis unreachable or this process paused)");
    arm(l);
    if (l->busy)
        return;
    char px[16];
    snprintf(px, sizeof px, "%u", l->lease_ms);
    /* KEYS[1] = P: a key of the broker state's slot, so a cluster runs it on that master */
    const char *argv[] = {"EVAL", bk_script_lease(), "1", l->b->prefix, l->b->prefix, l->token, px};
    uint64_t now = clock_mono_ms();
    if (redis_link_command_argv(l->b->cmd, 7, argv, NULL, 0, lease_cb, l) == SIOC_OK) {
        l->busy = true;
        l->sent_at = now;
    }
}

bool bk_lease_active(const struct bk_lease *l)
{
    return l != NULL && l->held && l->release_done == NULL && clock_mono_ms() < l->valid_until;
}

const char *bk_lease_token(const struct bk_lease *l)
{
    return l->token;
}

const char *bk_lease_holder(const struct bk_lease *l)
{
    return l->held ? l->token : l->holder;
}

bool bk_lease_took_over(const struct bk_lease *l)
{
    return l->took_over;
}

bool bk_lease_fenced(struct bk_lease *l, const char *reply_text)
{
    if (reply_text == NULL || strncmp(reply_text, "FENCED", 6) != 0)
        return false;
    if (l->held) {
        const char *who = reply_text[6] == ' ' ? reply_text + 7 : "?";
        snprintf(l->holder, sizeof l->holder, "%s", who);
        l->saw_other = true;
        char why[LEASE_TEXT_MAX + 48];
        snprintf(why, sizeof why, "a script was fenced off (active is %s)", who);
        drop(l, why);
    }
    return true;
}

static void release_cb(void *ctx, const redisReply *reply, enum redis_link_result result)
{
    (void)reply;
    (void)result;
    struct bk_lease *l = ctx;
    if (l->release_done != NULL)
        l->release_done(l->release_ctx);
}

void bk_lease_release(struct bk_lease *l, void (*done)(void *ctx), void *ctx)
{
    bool was_held = l->held;
    if (was_held) {
        l->held = false;
        *l->active_gauge = 0;
        l->cb(l->ctx, false);
    }
    l->release_done = done;
    l->release_ctx = ctx;
    evtimer_del(l->tick);
    const char *argv[] = {"EVAL",  bk_script_lease_release(), "1", l->b->prefix, l->b->prefix,
                          l->token};
    if (!was_held ||
        redis_link_command_argv(l->b->cmd, 6, argv, NULL, 0, release_cb, l) != SIOC_OK) {
        done(ctx);
        return;
    }
    log_write(l->b->log, LOG_LEVEL_INFO, "broker.lease", "releasing the lease (stopping)");
}

unsigned bk_lease_default_ms(unsigned node_timeout_ms)
{
    return node_timeout_ms / 2 > 0 ? node_timeout_ms / 2 : 1;
}

struct bk_lease *bk_lease_new(struct broker *b, const char *token, unsigned lease_ms,
                              bk_lease_change_cb *cb, void *ctx)
{
    struct bk_lease *l = calloc(1, sizeof *l);
    if (l == NULL)
        return NULL;
    *l = (struct bk_lease){.b = b, .lease_ms = lease_ms, .cb = cb, .ctx = ctx};
    snprintf(l->token, sizeof l->token, "%s", token);
    l->poll_ms = lease_ms / 4 < LEASE_POLL_MAX_MS ? lease_ms / 4 : LEASE_POLL_MAX_MS;
    l->tick = evtimer_new(b->base, tick_cb, l);
    l->active_gauge =
        metrics_gauge(b->metrics, "sioc_broker_active",
                      "1 while this broker holds the lease (active), 0 standing by", NULL);
    l->acquired = metrics_counter(b->metrics, "sioc_broker_lease_acquired_total",
                                  "times this broker became the active one", NULL);
    l->lost = metrics_counter(b->metrics, "sioc_broker_lease_lost_total",
                              "times this broker lost the lease while active", NULL);
    if (l->tick == NULL || l->active_gauge == NULL || l->acquired == NULL || l->lost == NULL) {
        bk_lease_free(l);
        return NULL;
    }
    struct timeval now = {0, 0};
    evtimer_add(l->tick, &now);
    return l;
}

void bk_lease_free(struct bk_lease *l)
{
    if (l == NULL)
        return;
    redis_link_cancel(l->b->cmd, l);
    if (l->tick != NULL)
        event_free(l->tick);
    free(l);
}
