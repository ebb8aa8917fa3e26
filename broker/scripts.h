/* scripts.h: the Lua scripts the broker runs with EVAL (DESIGN.md §3.4). Every change to the
 * mirror happens inside one script, so Redis applies it atomically: a broker killed at any point
 * leaves either the whole effect of a registry entry or none of it, and the per-node state that
 * makes applying idempotent (epoch, last seq) changes in the same step. Keys are built inside
 * the scripts (standalone Redis; not Redis Cluster). Broker-private keys live under P:bk:
 * (README.md). Every script takes ARGV[1] = key prefix P. */
#ifndef SIOC_BROKER_SCRIPTS_H
#define SIOC_BROKER_SCRIPTS_H

/* Applies one registry entry. ARGV: P, node, epoch, seq, op, nsp, sid, uid, rooms (MessagePack
 * array of strings, as in the entry), since (ms). Returns {status, lost}: status "ok", "gap"
 * (applied after a seq gap), "dup" (seq already applied: skipped), "stale" (retired epoch:
 * refused), "unknown" (join/leave of a sid the mirror does not hold for that node); lost = node
 * lost disconnects queued on P:bk:lost. */
const char *bk_script_apply(void);

/* The liveness check. ARGV: P, now (ms), forget_after (ms), mismatch_checks, snapshot_every (ms),
 * node_timeout (ms), outage (ms: a longer gap between two checks, by Redis's clock, is an
 * outage after which no node is reaped for node_timeout; state in P:bk:liveness {last, grace}).
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

#endif
