/* lease.h: which broker is active (issue 17; docs/contracts.md "Broker failover", extends
 * DESIGN.md §3.4). Every broker runs one; the one holding P:bk:lease (value = its token,
 * `SET NX PX lease-timeout`) is active: it alone consumes the registry, checks liveness and
 * drains the node-lost queue. The holder renews every lease-timeout / 3 with a compare-and-renew
 * script; the others poll every min(lease-timeout / 4, 1 s) and take the key when it expired.
 *
 * Fencing, two layers: (1) locally, the lease counts as held only until lease-timeout (less a
 * tenth) after the last successful renewal was *sent*, by the monotonic clock, so a process that
 * was paused (SIGSTOP, a long GC-like stall) stops acting the moment it runs again, before any
 * reply or timer; (2) in Redis, every script that writes broker state (apply, ack, claim,
 * liveness, the node-lost trim) compares P:bk:lease with the token first and answers the error
 * `FENCED <holder>` without writing anything; bk_lease_fenced() then drops the lease at once. */
#ifndef SIOC_BROKER_LEASE_H
#define SIOC_BROKER_LEASE_H

#include <stdbool.h>

struct broker;
struct bk_lease;

/* Told when this broker becomes active (true) or stops being so (false). */
typedef void bk_lease_change_cb(void *ctx, bool active);

/* `token` (copied) must be unique per process: "<broker-id>/<boot nonce>". lease_ms is the
 * key's PX. Starts polling as soon as the loop runs (on b->cmd). NULL when out of memory. */
struct bk_lease *bk_lease_new(struct broker *b, const char *token, unsigned lease_ms,
                              bk_lease_change_cb *cb, void *ctx);
/* NULL is a no-op. */
void bk_lease_free(struct bk_lease *l);
/* True while this broker may act as the active one (the local fencing layer above). */
bool bk_lease_active(const struct bk_lease *l);
/* The fencing token (the value of P:bk:lease while this broker holds it; its consumer name). */
const char *bk_lease_token(const struct bk_lease *l);
/* A script answered `reply_text` (an error reply): true if it was a fencing refusal, in which
 * case the lease is dropped (logged "lost lease", cb(false)) if it was still believed held. */
bool bk_lease_fenced(struct bk_lease *l, const char *reply_text);
/* Stop acting at once and give the key up if still held (a graceful stop: a standby need not
 * wait for the expiry); done(ctx) is called when Redis answered or could not be asked. */
void bk_lease_release(struct bk_lease *l, void (*done)(void *ctx), void *ctx);
/* True when the current (or last) term began after this broker had seen another holder: a
 * takeover, not the first broker of an idle cluster (liveness.c gives a grace then). */
bool bk_lease_took_over(const struct bk_lease *l);
/* The holder last seen ("" if none or not known yet): for /readyz and the logs. */
const char *bk_lease_holder(const struct bk_lease *l);

/* The option's default: node-timeout / 2, so that a takeover (at most lease-timeout after the
 * last renewal, plus one poll of lease-timeout / 4) lands within 5/8 of node-timeout. */
unsigned bk_lease_default_ms(unsigned node_timeout_ms);

#endif
