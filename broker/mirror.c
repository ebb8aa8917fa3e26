/* mirror.c: the P:registry consumer (DESIGN.md §3.4). One batch at a time: XREADGROUP on the
 * reader link, then one EVAL of the apply script per entry and one XACK for the batch on the
 * command link (Redis runs them in that order), then the next read. Entries left unacknowledged
 * by a lost connection or a crash are re-read from the group's pending list; re-applying them
 * is a no-op. The script semantics (stale epochs, seq, snapshot markers) live in scripts.c. */
#include "broker/mirror.h"

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/liveness.h"
#include "broker/scripts.h"
#include "common/buf.h"
#include "common/envelope.h"
#include "common/error.h"
#include "common/metrics.h"
#include "common/net/log.h"
#include "common/net/redis_link.h"

#define MIRROR_GROUP "broker"
#define MIRROR_CONSUMER "broker"
#define MIRROR_BATCH 256      /* entries per XREADGROUP */
#define MIRROR_BLOCK_MS "2000" /* XREADGROUP BLOCK */
#define MIRROR_MAX_KV 64      /* field/value slices accepted in one entry (unknown fields included) */

/* What the apply callbacks need to log an entry; replies arrive in the order sent. */
struct mirror_slot {
    char node[64];
    char seq[24];
};

struct bk_mirror {
    struct broker *b;
    struct event *retry;
    char key[512]; /* P:registry */
    bool reading;  /* XGROUP or XREADGROUP in flight on the reader link */
    bool group_ok; /* the consumer group exists (as far as we know) */
    bool pending;  /* next read: our own delivered-but-unacknowledged entries ("0") */
    unsigned inflight; /* EVALs + XACK of the current batch still unanswered */
    bool batch_failed;
    size_t slot_next, slot_count;
    struct mirror_slot slots[MIRROR_BATCH];
    uint64_t *applied, *gaps, *dups, *stale, *unknown, *invalid, *failed;
};

static void step(struct bk_mirror *m);

static void arm_retry(struct bk_mirror *m, unsigned ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(m->retry, &tv);
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    step(arg);
}

static bool reply_error_has(const redisReply *r, const char *word)
{
    return r != NULL && r->type == REDIS_REPLY_ERROR && r->str != NULL && strstr(r->str, word) != NULL;
}

static void group_cb(void *ctx, const redisReply *reply, enum redis_link_result result)
{
    struct bk_mirror *m = ctx;
    m->reading = false;
    if (result == REDIS_LINK_REPLY &&
        (reply->type != REDIS_REPLY_ERROR || reply_error_has(reply, "BUSYGROUP"))) {
        m->group_ok = true;
        m->pending = true; /* a restarted broker first finishes what it had been handed */
        step(m);
        return;
    }
    if (result == REDIS_LINK_REPLY)
        log_write(m->b->log, LOG_LEVEL_ERROR, "registry.group", "XGROUP CREATE %s: %s", m->key,
                  reply->str ? reply->str : "?");
    arm_retry(m, 1000);
}

static void batch_done(struct bk_mirror *m)
{
    if (m->batch_failed) {
        m->batch_failed = false;
        m->pending = true; /* the unacknowledged entries come back from the pending list */
        arm_retry(m, 200);
        return;
    }
    step(m);
}

static void apply_cb(void *ctx, const redisReply *reply, enum redis_link_result result)
{
    struct bk_mirror *m = ctx;
    struct broker *b = m->b;
    struct mirror_slot *slot = m->slot_next < m->slot_count ? &m->slots[m->slot_next++] : NULL;
    const char *node = slot ? slot->node : "?", *seq = slot ? slot->seq : "?";
    m->inflight--;
    if (result != REDIS_LINK_REPLY) {
        m->batch_failed = true;
    } else if (reply->type == REDIS_REPLY_ERROR) {
        /* Not retryable (a script error or a foreign key of the wrong type): skip the entry. */
        (*m->failed)++;
        log_write(b->log, LOG_LEVEL_ERROR, "registry.apply", "node=%s seq=%s: %s", node, seq,
                  reply->str ? reply->str : "?");
    } else if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
               reply->element[0]->type == REDIS_REPLY_STRING) {
        const char *status = reply->element[0]->str;
        long long lost = reply->element[1]->type == REDIS_REPLY_INTEGER ? reply->element[1]->integer : 0;
        if (strcmp(status, "ok") == 0) {
            (*m->applied)++;
        } else if (strcmp(status, "gap") == 0) {
            (*m->applied)++;
            (*m->gaps)++;
            log_write(b->log, LOG_LEVEL_WARN, "registry.gap", "node=%s seq=%s: entries missing before it",
                      node, seq);
        } else if (strcmp(status, "dup") == 0) {
            (*m->dups)++;
        } else if (strcmp(status, "stale") == 0) {
            (*m->stale)++;
            log_write(b->log, LOG_LEVEL_INFO, "registry.stale", "node=%s seq=%s: retired epoch, refused",
                      node, seq);
        } else {
            (*m->unknown)++;
            log_write(b->log, LOG_LEVEL_INFO, "registry.unknown", "node=%s seq=%s: join/leave of an unknown sid",
                      node, seq);
        }
        if (lost > 0) {
            log_write(b->log, LOG_LEVEL_WARN, "node.lost", "node=%s sockets=%lld why=new epoch or snapshot",
                      node, lost);
            bk_liveness_drain(b->liveness);
        }
    }
    if (m->inflight == 0)
        batch_done(m);
}

static void ack_cb(void *ctx, const redisReply *reply, enum redis_link_result result)
{
    struct bk_mirror *m = ctx;
    m->inflight--;
    if (result != REDIS_LINK_REPLY || reply->type == REDIS_REPLY_ERROR)
        m->batch_failed = true;
    if (m->inflight == 0)
        batch_done(m);
}

/* Sends the apply script for one decoded entry. Returns false if the link refused it. */
static bool send_apply(struct bk_mirror *m, const struct envelope_reg *e, const redisReply *id)
{
    static const char *const ops[] = {"connect", "disconnect", "join", "leave", "snapshot"};
    char seq[24];
    snprintf(seq, sizeof seq, "%llu", (unsigned long long)e->seq);
    /* since = the ms part of the stream id: when the gateway appended the entry */
    const char *dash = memchr(id->str, '-', id->len);
    size_t since_len = dash ? (size_t)(dash - id->str) : id->len;
    const char *script = bk_script_apply();
    /* KEYS[1] = P: a key of the mirror's slot, so a cluster runs it on that master */
    const char *argv[14] = {"EVAL", script, "1", m->b->prefix, m->b->prefix, (const char *)e->node.p,
                            (const char *)e->epoch.p, seq, ops[e->op], (const char *)e->nsp.p,
                            (const char *)e->sid.p, (const char *)e->uid.p,
                            (const char *)e->rooms.raw.p, id->str};
    size_t lens[14] = {4, strlen(script), 1, strlen(m->b->prefix), strlen(m->b->prefix), e->node.len, e->epoch.len,
                       strlen(seq), strlen(ops[e->op]), e->nsp.len, e->sid.len, e->uid.len,
                       e->rooms.raw.len, since_len};
    for (size_t i = 0; i < 14; i++)
        if (argv[i] == NULL)
            argv[i] = ""; /* an empty slice may have no pointer */
    if (redis_link_command_argv(m->b->cmd, 14, argv, lens, 0, apply_cb, m) != SIOC_OK)
        return false;
    struct mirror_slot *slot = &m->slots[m->slot_count++];
    snprintf(slot->node, sizeof slot->node, "%.*s", (int)(e->node.len < 60 ? e->node.len : 60),
             (const char *)e->node.p);
    memcpy(slot->seq, seq, sizeof seq);
    m->inflight++;
    return true;
}

/* entries: the array of [id, [field, value, ...]] of one stream. */
static void apply_batch(struct bk_mirror *m, const redisReply *entries)
{
    struct broker *b = m->b;
    size_t n = entries->elements;
    const char **argv = malloc((n + 3) * sizeof *argv);
    size_t *lens = malloc((n + 3) * sizeof *lens);
    if (argv == NULL || lens == NULL) {
        free(argv);
        free(lens);
        arm_retry(m, 1000);
        return;
    }
    argv[0] = "XACK";
    argv[1] = m->key;
    argv[2] = MIRROR_GROUP;
    lens[0] = 4;
    lens[1] = strlen(m->key);
    lens[2] = strlen(MIRROR_GROUP);
    size_t nack = 3;
    m->slot_next = m->slot_count = 0;
    m->batch_failed = false;
    for (size_t i = 0; i < n; i++) {
        const redisReply *en = entries->element[i];
        if (en->type != REDIS_REPLY_ARRAY || en->elements != 2 || en->element[0]->type != REDIS_REPLY_STRING)
            continue;
        const redisReply *id = en->element[0], *fields = en->element[1];
        if (fields->type == REDIS_REPLY_ARRAY) {
            struct slice kv[MIRROR_MAX_KV];
            struct envelope_reg e;
            int rc = fields->elements <= MIRROR_MAX_KV ? SIOC_OK : SIOC_ETOOBIG;
            for (size_t k = 0; rc == SIOC_OK && k < fields->elements; k++) {
                const redisReply *f = fields->element[k];
                if (f->type != REDIS_REPLY_STRING)
                    rc = SIOC_EPROTO;
                else
                    kv[k] = (struct slice){(const uint8_t *)f->str, f->len};
            }
            if (rc == SIOC_OK)
                rc = envelope_reg_from_fields(kv, fields->elements, &e);
            if (rc != SIOC_OK) {
                /* SIOC_ENOTSUP is a newer peer's op: skipped like a malformed entry, but quieter */
                (*m->invalid)++;
                log_write(b->log, rc == SIOC_ENOTSUP ? LOG_LEVEL_INFO : LOG_LEVEL_WARN, "registry.invalid",
                          "entry %s skipped: %s", id->str, sioc_strerror(rc));
            } else if (!send_apply(m, &e, id)) {
                m->batch_failed = true;
                break;
            }
        }
        argv[nack] = id->str;
        lens[nack++] = id->len;
    }
    if (!m->batch_failed) {
        if (redis_link_command_argv(b->cmd, (int)nack, argv, lens, 0, ack_cb, m) == SIOC_OK)
            m->inflight++;
        else
            m->batch_failed = true;
    }
    free(argv);
    free(lens);
    if (m->inflight == 0)
        batch_done(m);
}

static void read_cb(void *ctx, const redisReply *reply, enum redis_link_result result)
{
    struct bk_mirror *m = ctx;
    m->reading = false;
    if (result != REDIS_LINK_REPLY) {
        m->pending = true;
        arm_retry(m, 200);
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        if (reply_error_has(reply, "NOGROUP")) {
            /* the stream or the group vanished (e.g. Redis restarted empty): create it again */
            log_write(m->b->log, LOG_LEVEL_WARN, "registry.group", "%s: group missing, recreating", m->key);
            m->group_ok = false;
            arm_retry(m, 100);
        } else {
            log_write(m->b->log, LOG_LEVEL_ERROR, "registry.read", "XREADGROUP: %s", reply->str ? reply->str : "?");
            arm_retry(m, 1000);
        }
        return;
    }
    const redisReply *entries = NULL;
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1) {
        const redisReply *stream = reply->element[0];
        if (stream->type == REDIS_REPLY_ARRAY && stream->elements == 2 &&
            stream->element[1]->type == REDIS_REPLY_ARRAY)
            entries = stream->element[1];
    }
    if (entries == NULL || entries->elements == 0) {
        m->pending = false; /* pending list drained (or the BLOCK timed out): read new entries */
        step(m);
        return;
    }
    apply_batch(m, entries);
}

static void step(struct bk_mirror *m)
{
    if (m->reading || m->inflight > 0)
        return;
    struct broker *b = m->b;
    int rc;
    if (!m->group_ok) {
        /* from 0: a first broker builds the mirror from the whole retained stream */
        const char *argv[] = {"XGROUP", "CREATE", m->key, MIRROR_GROUP, "0", "MKSTREAM"};
        rc = redis_link_command_argv(b->reader, 6, argv, NULL, 0, group_cb, m);
    } else if (m->pending) {
        const char *argv[] = {"XREADGROUP", "GROUP", MIRROR_GROUP, MIRROR_CONSUMER, "COUNT",
                              "256", "STREAMS", m->key, "0"};
        rc = redis_link_command_argv(b->reader, 9, argv, NULL, 0, read_cb, m);
    } else {
        const char *argv[] = {"XREADGROUP", "GROUP", MIRROR_GROUP, MIRROR_CONSUMER, "COUNT", "256",
                              "BLOCK", MIRROR_BLOCK_MS, "STREAMS", m->key, ">"};
        rc = redis_link_command_argv(b->reader, 11, argv, NULL, 0, read_cb, m);
    }
    if (rc == SIOC_OK)
        m->reading = true;
    else
        arm_retry(m, 500);
}

void bk_mirror_on_connected(struct bk_mirror *m)
{
    m->group_ok = false; /* cheap to re-check, and covers a Redis that restarted empty */
    arm_retry(m, 0);
}

struct bk_mirror *bk_mirror_new(struct broker *b)
{
    struct bk_mirror *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    m->b = b;
    struct buf key;
    buf_init(&key, sizeof m->key - 1);
    envelope_key_registry(&key, b->prefix);
    if (key.err != SIOC_OK) {
        buf_deinit(&key);
        free(m);
        return NULL;
    }
    memcpy(m->key, key.data, key.len);
    buf_deinit(&key);
    m->retry = evtimer_new(b->base, retry_cb, m);
    const char *help = "registry entries by result";
    const char *name = "sioc_broker_registry_entries_total";
    m->applied = metrics_counter(b->metrics, name, help, "result=\"applied\"");
    m->gaps = metrics_counter(b->metrics, name, help, "result=\"gap\"");
    m->dups = metrics_counter(b->metrics, name, help, "result=\"duplicate\"");
    m->stale = metrics_counter(b->metrics, name, help, "result=\"stale\"");
    m->unknown = metrics_counter(b->metrics, name, help, "result=\"unknown_sid\"");
    m->invalid = metrics_counter(b->metrics, name, help, "result=\"invalid\"");
    m->failed = metrics_counter(b->metrics, name, help, "result=\"failed\"");
    if (m->retry == NULL || m->applied == NULL || m->gaps == NULL || m->dups == NULL ||
        m->stale == NULL || m->unknown == NULL || m->invalid == NULL || m->failed == NULL) {
        bk_mirror_free(m);
        return NULL;
    }
    return m;
}

void bk_mirror_free(struct bk_mirror *m)
{
    if (m == NULL)
        return;
    redis_link_cancel(m->b->reader, m);
    redis_link_cancel(m->b->cmd, m);
    if (m->retry != NULL)
        event_free(m->retry);
    free(m);
}
