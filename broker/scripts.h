/* scripts.h: the Lua scripts the broker runs with EVAL (DESIGN.md §3.4). Every change to the
 * mirror happens inside one script, so Redis applies it atomically: a broker killed at any point
 * leaves either the whole effect of a registry entry or none of it, and the per-node state that
 * makes applying idempotent (epoch, last seq) changes in the same step. Keys are built inside
 * the scripts (standalone Redis; not Redis Cluster), except the registry consumer's (KEYS).
 * Broker-private keys live under P:bk: (README.md). The others take ARGV[1] = key prefix P. */
#ifndef SIOC_BROKER_SCRIPTS_H
#define SIOC_BROKER_SCRIPTS_H

/* Fencing (lease.h): every script that writes broker state takes the broker's lease token and
 * first compares it with P:bk:lease; when another token (or none) holds it, it writes nothing and
 * returns the error reply "FENCED <holder or (none)>" (bk_lease_fenced). */

/* Applies one registry entry. ARGV: P, node, epoch, seq, op, nsp, sid, uid, rooms (MessagePack
 * array of strings, as in the entry), since (ms), token. Returns {status, lost}: status "ok", "gap"
 * (applied after a seq gap), "dup" (seq already applied: skipped), "stale" (retired epoch:
 * refused), "unknown" (join/leave of a sid the mirror does not hold for that node); lost = node
 * lost disconnects queued on P:bk:lost. */
const char *bk_script_apply(void);

/* The liveness check. ARGV: P, now (ms), forget_after (ms), mismatch_checks, snapshot_every (ms),
 * node_timeout (ms), outage (ms: a longer gap between two checks, by Redis's clock, is an
 * outage after which no node is reaped for node_timeout; state in P:bk:liveness {last, grace}),
 * saw_outage ("1": grace from now), token.
 * Returns {lost_queue_len, {node, count, why, ...}, {node needing a snapshot, ...}}. */
const char *bk_script_liveness(void);

/* Read-only queries. user: ARGV P, uid -> {sid, nsp, node, rooms, ...} (sorted by sid).
 * rooms: ARGV P, nsp, limit -> {room, count, ...} (sorted). room: ARGV P, nsp, room ->
 * {sid, node, uid, ...}. nodes: ARGV P -> {node, info, hb_epoch, hb_pttl, mirror_count,
 * state_epoch, ...}. */
const char *bk_script_user(void);
const char *bk_script_rooms(void);
const char *bk_script_room(void);
const char *bk_script_nodes(void);

/* Read-only: the sockets an ack emit selects (broker/calls.h). ARGV: P, nsp, limit, targets (a
 * MessagePack array of room names: rooms, user rooms, socket ids; empty = every socket of the
 * namespace), except (the same). Sockets counted before duplicates and `except` are removed:
 * more than `limit` -> {"toomany", count} without reading them; otherwise {"ok", sid, node, ...}
 * sorted by sid, only sockets of nsp. */
const char *bk_script_ack_targets(void);

/* The lease (lease.h), P:bk:lease. lease: ARGV P, token, px -> {"ours"|"acquired"|"other",
 * holder}: renews it when the token holds it, takes it when free. lease_release: ARGV P, token
 * -> deletes it if the token holds it. */
const char *bk_script_lease(void);
const char *bk_script_lease_release(void);

/* The fenced registry consumer (mirror.c). KEYS[1] = P:registry, KEYS[2] = P:bk:lease; the
 * consumer name is the token. read: ARGV token, id ("0" or ">"), count -> the XREADGROUP reply,
 * or (">" and nothing new) the stream's last id as a string. claim: ARGV token, cursor, count
 * -> {next cursor, n}: XAUTOCLAIM (idle 0) of every consumer's pending entries; at the end the
 * consumers left with none are deleted. ack: ARGV token, id... -> XACK's count. */
const char *bk_script_registry_read(void);
const char *bk_script_registry_claim(void);
const char *bk_script_registry_ack(void);

/* ARGV P, token, n: LTRIM P:bk:lost n -1 (liveness.c, after the XADDs of its first n items). */
const char *bk_script_lost_trim(void);

#endif
