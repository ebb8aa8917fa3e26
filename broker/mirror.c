/* mirror.c: the P:registry consumer (DESIGN.md §3.4), run only by the active broker (lease.h).
 * On becoming active: XGROUP CREATE, then claim every consumer's pending entries (a dead active's
 * batch), then read this consumer's pending list, then new entries. One batch at a time: the
 * fenced read script on the reader link, then one EVAL of the apply script per entry and one
 * fenced XACK for the batch on the command link (Redis runs them in that order), then the next
 * read; with nothing new, a plain XREAD BLOCK (no group: it delivers nothing to anyone) waits
 * for the next entry. Only a script holding the lease token reads for the group, so a broker
 * that lost the lease cannot take entries away from the active one. Entries left unacknowledged
 * are re-read; re-applying them is a no-op (per-node epoch and seq, scripts.c). */
#include "broker/mirror.h"

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/lease.h"
#include "broker/liveness.h"
#include "broker/scripts.h"
#include "common/buf.h"
#include "common/envelope.h"
#include "common/error.h"
#include "common/metrics.h"
#include "common/net/log.h"
#include "common/net/redis_link.h"

#define MIRROR_GROUP "broker" /* the consumer is the lease token */
#define MIRROR_BATCH 256      /* entries per XREADGROUP */
#define MIRROR_BATCH_TEXT "256"
#define MIRROR_BLOCK_MAX_MS 2000u /* XREAD BLOCK, at most lease-timeout / 2 */
#define MIRROR_MAX_KV 64 /* field/value slices accepted in one entry (unknown fields included) */

/* What the apply callbacks need to log an entry; replies arrive in the order sent. */
struct mirror_slot {
    char node[64];
    char seq[24];
};

/* What the next step does. */
enum mirror_state {
    MS_GROUP,   /* XGROUP CREATE (BUSYGROUP is fine) */
    MS_CLAIM,   /* claim every consumer's pending entries, from `cursor` */
    MS_PENDING, /* read this consumer's pending entries ("0") until none is left */
    MS_NEW,     /* read new entries (">") */
    MS_WAIT,    /* XREAD BLOCK after `top` */
};

struct bk_mirror {
    struct broker *b;
    struct event *retry;
    char key[512];       /* P:registry */
    char lease_key[512]; /* P:bk:lease */
    char block_ms[16];
    bool reading; /* a read, claim or wait in flight on the reader link */
    enum mirror_state state;
    char cursor[48]; /* MS_CLAIM */
    char top[48];    /* MS_WAIT */
    uint64_t claimed;
    unsigned inflight; /* EVALs + XACK of the current batch still unanswered */
    bool batch_failed;
    size_t slot_next, slot_count;
    struct mirror_slot slots[MIRROR_BATCH];
    uint64_t *applied, *gaps, *dups, *stale, *unknown, *invalid, *failed, *claimed_total;
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
    return r != NULL && r->type == REDIS_REPLY_ERROR && r->str != NULL &&
           strstr(r->str, word) != NULL;
}

/* A fencing refusal (the lease moved on): true, and the lease is dropped (mirror stops). */
static bool fenced(struct bk_mirror *m, const redisReply *reply)
{
    return reply->type == REDIS_REPLY_ERROR && bk_lease_fenced(m->b->lease, reply->str);
}

static void group_cb(void *ctx, const redisReply *reply, enum redis_link_result result)
{
    struct bk_mirror *m = ctx;
    m->reading = false;
    if (result == REDIS_LINK_REPLY &&
        (reply->type != REDIS_REPLY_ERROR || reply_error_has(reply, "BUSYGROUP"))) {
        /* a new active first finishes what any consumer had been handed */
        m->state = MS_CLAIM;
        snprintf(m->cursor, sizeof m->cursor, "0-0");
        m->claimed = 0;
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
        m->state = MS_PENDING; /* the unacknowledged entries come back from the pending list */
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
    if (result != REDIS_LINK_REPLY || fenced(m, reply)) {
        m->batch_failed = true; /* fenced: not applied; the active broker claims it */
    } else if (reply->type == REDIS_REPLY_ERROR) {
        /* Not retryable (a script error or a foreign key of the wrong type): skip the entry. */
        (*m->failed)++;
        log_write(b->log, LOG_LEVEL_ERROR, "registry.apply", "node=%s seq=%s: %s", node, seq,
                  reply->str ? reply->str : "?");
    } else if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
               reply->element[0]->type == REDIS_REPLY_STRING) {
        const char *status = reply->element[0]->str;
        long long lost =
            reply->element[1]->type == REDIS_REPLY_INTEGER ? reply->element[1]->integer : 0;
        if (strcmp(status, "ok") == 0) {
            (*m->applied)++;
        } else if (strcmp(status, "gap") == 0) {
            (*m->applied)++;
            (*m->gaps)++;
            log_write(b->log, LOG_LEVEL_WARN, "registry.gap",
                      "node=%s seq=%s: entries missing before it", node, seq);
        } else if (strcmp(status, "dup") == 0) {
            (*m->dups)++;
        } else if (strcmp(status, "stale") == 0) {
            (*m->stale)++;
            log_write(b->log, LOG_LEVEL_INFO, "registry.stale",
                      "node=%s seq=%s: retired epoch, refused", node, seq);
        } else {
            (*m->unknown)++;
            log_write(b->log, LOG_LEVEL_INFO, "registry.unknown",
                      "node=%s seq=%s: join/leave of an unknown sid", node, seq);
        }
        if (lost > 0) {
            log_write(b->log, LOG_LEVEL_WARN, "node.lost",
                      "node=%s sockets=%lld why=new epoch or snapshot", node, lost);
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
    if (result == REDIS_LINK_REPLY && !fenced(m, reply) && reply->type == REDIS_REPLY_ERROR)
        log_write(m->b->log, LOG_LEVEL_ERROR, "registry.ack", "%s", reply->str ? reply->str : "?");
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
    const char *token = bk_lease_token(m->b->lease);
    /* KEYS[1] = P: a key of the mirror's slot, so a cluster runs it on that master */
    const char *argv[15] = {"EVAL",
                            script,
                            "1",
                            m->b->prefix,
                            m->b->prefix,
                            (const char *)e->node.p,
                            (const char *)e->epoch.p,
                            seq,
                            ops[e->op],
                            (const char *)e->nsp.p,
                            (const char *)e->sid.p,
                            (const char *)e->uid.p,
                            (const char *)e->rooms.raw.p,
                            id->str,
                            token};
    size_t lens[15] = {4,
                       strlen(script),
                       1,
                       strlen(m->b->prefix),
                       strlen(m->b->prefix),
                       e->node.len,
                       e->epoch.len,
                       strlen(seq),
                       strlen(ops[e->op]),
                       e->nsp.len,
                       e->sid.len,
                       e->uid.len,
                       e->rooms.raw.len,
                       since_len,
                       strlen(token)};
    for (size_t i = 0; i < 15; i++)
        if (argv[i] == NULL)
            argv[i] = ""; /* an empty slice may have no pointer */
    if (redis_link_command_argv(m->b->cmd, 15, argv, lens, 0, apply_cb, m) != SIOC_OK)
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
    const char **argv = malloc((n + 6) * sizeof *argv);
    size_t *lens = malloc((n + 6) * sizeof *lens);
    if (argv == NULL || lens == NULL) {
        free(argv);
        free(lens);
        arm_retry(m, 1000);
        return;
    }
    const char *token = bk_lease_token(b->lease);
    argv[0] = "EVAL";
    argv[1] = bk_script_registry_ack();
    argv[2] = "2";
    argv[3] = m->key;
    argv[4] = m->lease_key;
    argv[5] = token;
    for (size_t i = 0; i < 6; i++)
        lens[i] = strlen(argv[i]);
    size_t nack = 6;
    m->slot_next = m->slot_count = 0;
    m->batch_failed = false;
    for (size_t i = 0; i < n; i++) {
        const redisReply *en = entries->element[i];
        if (en->type != REDIS_REPLY_ARRAY || en->elements != 2 ||
            en->element[0]->type != REDIS_REPLY_STRING)
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
                log_write(b->log, rc == SIOC_ENOTSUP ? LOG_LEVEL_INFO : LOG_LEVEL_WARN,
                          "registry.invalid", "entry %s skipped: %s", id->str, sioc_strerror(rc));
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

/* The answer of a read, a claim or a wait that is not what the step expected. True when it was
 * handled (retry armed, or fenced). */
static bool read_trouble(struct bk_mirror *m, const redisReply *reply,
                         enum redis_link_result result, const char *what)
{
    if (result != REDIS_LINK_REPLY) {
        if (m->state != MS_GROUP && m->state != MS_CLAIM)
            m->state = MS_PENDING;
        arm_retry(m, 200);
        return true;
    }
    if (reply->type != REDIS_REPLY_ERROR || fenced(m, reply))
        return reply->type == REDIS_REPLY_ERROR;
    if (reply_error_has(reply, "NOGROUP")) {
        /* the stream or the group vanished (e.g. Redis restarted empty): create it again */
        log_write(m->b->log, LOG_LEVEL_WARN, "registry.group", "%s: group missing, recreating",
                  m->key);
        m->state = MS_GROUP;
        arm_retry(m, 100);
    } else {
        log_write(m->b->log, LOG_LEVEL_ERROR, "registry.read", "%s: %s", what,
                  reply->str ? reply->str : "?");
        arm_retry(m, 1000);
    }
    return true;
}

static void claim_cb(void *ctx, const redisReply *reply, enum redis_link_result result)
{
    struct bk_mirror *m = ctx;
    m->reading = false;
    if (read_trouble(m, reply, result, "claim"))
        return;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_INTEGER) {
        log_write(m->b->log, LOG_LEVEL_ERROR, "registry.claim", "unexpected reply");
        arm_retry(m, 1000);
        return;
    }
    snprintf(m->cursor, sizeof m->cursor, "%s", reply->element[0]->str);
    m->claimed += (uint64_t)reply->element[1]->integer;
    *m->claimed_total += (uint64_t)reply->element[1]->integer;
    if (strcmp(m->cursor, "0-0") == 0) {
        log_write(m->b->log, LOG_LEVEL_INFO, "registry.claim",
                  "%llu pending entries taken over from other consumers",
                  (unsigned long long)m->claimed);
        m->state = MS_PENDING;
    }
    step(m);
}

static void wait_cb(void *ctx, const redisReply *reply, enum redis_link_result result)
{
    struct bk_mirror *m = ctx;
    m->reading = false;
    if (read_trouble(m, reply, result, "XREAD"))
        return;
    m->state = MS_NEW; /* an entry arrived, or the BLOCK timed out: read for the group */
    step(m);
}

static void read_cb(void *ctx, const redisReply *reply, enum redis_link_result result)
{
    struct bk_mirror *m = ctx;
    m->reading = false;
    if (read_trouble(m, reply, result, "XREADGROUP"))
        return;
    if (!bk_lease_active(m->b->lease))
        return; /* not applied, not acknowledged: the active broker claims them */
    if (reply->type == REDIS_REPLY_STRING) {
        /* nothing new: wait for an entry after the last one */
        snprintf(m->top, sizeof m->top, "%s", reply->str);
        m->state = MS_WAIT;
        step(m);
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
        m->state = MS_NEW; /* pending list drained: read new entries */
        step(m);
        return;
    }
    apply_batch(m, entries);
}

/* Sends the fenced read (id "0" or ">") or claim script on the reader link. */
static int send_script(struct bk_mirror *m, const char *script, const char *arg,
                       redis_link_reply_cb *cb)
{
    const char *argv[] = {"EVAL", script,           "2",
                          m->key, m->lease_key,     bk_lease_token(m->b->lease),
                          arg,    MIRROR_BATCH_TEXT};
    return redis_link_command_argv(m->b->reader, 8, argv, NULL, 0, cb, m);
}

static void step(struct bk_mirror *m)
{
    if (m->reading || m->inflight > 0 || !bk_lease_active(m->b->lease))
        return;
    struct broker *b = m->b;
    int rc;
    if (m->state == MS_GROUP) {
        /* from 0: a first broker builds the mirror from the whole retained stream */
        const char *argv[] = {"XGROUP", "CREATE", m->key, MIRROR_GROUP, "0", "MKSTREAM"};
        rc = redis_link_command_argv(b->reader, 6, argv, NULL, 0, group_cb, m);
    } else if (m->state == MS_CLAIM) {
        rc = send_script(m, bk_script_registry_claim(), m->cursor, claim_cb);
    } else if (m->state == MS_PENDING) {
        rc = send_script(m, bk_script_registry_read(), "0", read_cb);
    } else if (m->state == MS_NEW) {
        rc = send_script(m, bk_script_registry_read(), ">", read_cb);
    } else {
        const char *argv[] = {"XREAD",     "COUNT",   "1",    "BLOCK",
                              m->block_ms, "STREAMS", m->key, m->top};
        rc = redis_link_command_argv(b->reader, 8, argv, NULL, 0, wait_cb, m);
    }
    if (rc == SIOC_OK)
        m->reading = true;
    else
        arm_retry(m, 500);
}

void bk_mirror_on_connected(struct bk_mirror *m)
{
    m->state = MS_GROUP; /* cheap to re-check, and covers a Redis that restarted empty */
    arm_retry(m, 0);
}

void bk_mirror_set_active(struct bk_mirror *m, bool active)
{
    /* standing by: the callbacks still due see the lease gone and stop; becoming active starts
     * over with the claim of every consumer's pending entries */
    if (active)
        bk_mirror_on_connected(m);
}

static bool key_with(char *dst, size_t cap, const char *prefix, const char *suffix)
{
    struct buf key;
    buf_init(&key, cap - 1);
    buf_append_cstr(&key, prefix);
    buf_append_cstr(&key, suffix);
    bool ok = key.err == SIOC_OK;
    if (ok)
        memcpy(dst, key.data, key.len);
    buf_deinit(&key);
    return ok;
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
    if (!key_with(m->lease_key, sizeof m->lease_key, b->prefix, ":bk:lease")) {
        free(m);
        return NULL;
    }
    unsigned block = b->lease_ms / 2 < MIRROR_BLOCK_MAX_MS ? b->lease_ms / 2 : MIRROR_BLOCK_MAX_MS;
    snprintf(m->block_ms, sizeof m->block_ms, "%u", block > 0 ? block : 1);
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
    m->claimed_total = metrics_counter(
        b->metrics, "sioc_broker_registry_claimed_total",
        "pending registry entries taken over from other consumers (failover)", NULL);
    if (m->claimed_total == NULL || m->retry == NULL || m->applied == NULL || m->gaps == NULL ||
        m->dups == NULL || m->stale == NULL || m->unknown == NULL || m->invalid == NULL ||
        m->failed == NULL) {
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
