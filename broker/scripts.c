/* scripts.c: the broker's Lua scripts (DESIGN.md §3.4; the framing rules are in README.md).
 * Mirror keys: P:sid:<sid> hash {node, nsp, uid, rooms (MessagePack array), since, epoch},
 * P:user:<uid>, P:room:<nsp>:<room>, P:node-sids:<node> sets. Broker state: P:bk:node:<node>
 * hash {epoch, seq, snap, lost_at, mismatch, snapreq_at}, P:bk:retired:<node> set of dead
 * epochs, P:bk:snap:<node> sids not yet confirmed by a running snapshot, P:bk:nodes set of
 * nodes with state, P:bk:lost list of node-lost disconnects still to append upstream, P:bk:lease
 * the active broker's token (lease.h; every state-writing script is fenced by it). */
#include "broker/scripts.h"

/* Fencing (lease.h): fence(key, token) is nil while `token` holds the lease key, else the
 * error reply every broker-state script returns before writing anything. */
#define FENCE_FN                                                                                   \
    "local function fence(key, token)\n"                                                           \
    "  local h = redis.call('GET', key)\n"                                                         \
    "  if h ~= token then return redis.error_reply('FENCED ' .. (h or '(none)')) end\n"            \
    "  return nil\n"                                                                               \
    "end\n"

/* Helpers shared by the scripts that write the mirror. */
#define PRELUDE                                                                                    \
    "local P = ARGV[1]\n"                                                                          \
    "local function ksid(s) return P .. ':sid:' .. s end\n"                                        \
    "local function kuser(u) return P .. ':user:' .. u end\n"                                      \
    "local function kroom(n, r) return P .. ':room:' .. n .. ':' .. r end\n"                       \
    "local function knsids(n) return P .. ':node-sids:' .. n end\n"                                \
    "local function kstate(n) return P .. ':bk:node:' .. n end\n"                                  \
    "local function ksnap(n) return P .. ':bk:snap:' .. n end\n"                                   \
    "local function kretired(n) return P .. ':bk:retired:' .. n end\n"                             \
    "local KNODES = P .. ':nodes'\n"                                                               \
    "local KBKNODES = P .. ':bk:nodes'\n"                                                          \
    "local KLOST = P .. ':bk:lost'\n"                                                              \
    "local KLEASE = P .. ':bk:lease'\n" FENCE_FN "local function unpack_rooms(raw)\n"              \
    "  if not raw or raw == '' then return {} end\n"                                               \
    "  local ok, t = pcall(cmsgpack.unpack, raw)\n"                                                \
    "  if ok and type(t) == 'table' then return t end\n"                                           \
    "  return {}\n"                                                                                \
    "end\n" /* Removes a socket from every mirror key; `lost` queues its node-lost disconnect. */  \
    "local function remove_sid(sid, only_node, lost)\n"                                            \
    "  local h = redis.call('HMGET', ksid(sid), 'node', 'nsp', 'uid', 'rooms')\n"                  \
    "  if not h[1] then return 0 end\n"                                                            \
    "  if only_node and h[1] ~= only_node then return 0 end\n"                                     \
    "  local nsp, uid = h[2] or '/', h[3] or ''\n"                                                 \
    "  for _, r in ipairs(unpack_rooms(h[4])) do redis.call('SREM', kroom(nsp, r), sid) end\n"     \
    "  if uid ~= '' then redis.call('SREM', kuser(uid), sid) end\n"                                \
    "  redis.call('SREM', knsids(h[1]), sid)\n"                                                    \
    "  redis.call('DEL', ksid(sid))\n"                                                             \
    "  if not lost then return 0 end\n"                                                            \
    "  redis.call('RPUSH', KLOST, cmsgpack.pack({nsp, sid, uid, h[1]}))\n"                         \
    "  return 1\n"                                                                                 \
    "end\n" /* Every socket of `node` leaves the mirror, each with a node-lost disconnect. */      \
    "local function reap(node)\n"                                                                  \
    "  local n = 0\n"                                                                              \
    "  for _, s in ipairs(redis.call('SMEMBERS', knsids(node))) do\n"                              \
    "    n = n + remove_sid(s, node, true)\n"                                                      \
    "  end\n"                                                                                      \
    "  redis.call('DEL', knsids(node), ksnap(node))\n"                                             \
    "  redis.call('HDEL', kstate(node), 'snap', 'mismatch')\n"                                     \
    "  return n\n"                                                                                 \
    "end\n"                                                                                        \
    "local function retire(node, epoch)\n"                                                         \
    "  redis.call('SADD', kretired(node), epoch)\n"                                                \
    "  redis.call('PEXPIRE', kretired(node), 86400000)\n"                                          \
    "end\n"

static const char apply_script[] = PRELUDE
    "local node, epoch, seqtext, op = ARGV[2], ARGV[3], ARGV[4], ARGV[5]\n"
    "local nsp, sid, uid, raw, since = ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10]\n"
    "local fenced = fence(KLEASE, ARGV[11])\n"
    "if fenced then return fenced end\n"
    "local seq = tonumber(seqtext)\n"
    "local st = kstate(node)\n"
    "local cur = redis.call('HMGET', st, 'epoch', 'seq')\n"
    "local lost = 0\n"
    "redis.call('SADD', KBKNODES, node)\n"
    /* a reaped epoch stays dead even if its node lived on: it will start a new one */
    "if redis.call('SISMEMBER', kretired(node), epoch) == 1 then return {'stale', 0} end\n"
    "if cur[1] ~= epoch then\n"
    /* Entries of one node reach the stream in order and a dead process writes nothing more, so
     * an epoch not seen before is the node's next life: the previous one is over. */
    "  if redis.call('SISMEMBER', kretired(node), epoch) == 1 then return {'stale', 0} end\n"
    "  if cur[1] then retire(node, cur[1]) end\n"
    "  lost = reap(node)\n"
    "  redis.call('HDEL', st, 'lost_at', 'mismatch', 'snapreq_at')\n"
    "  redis.call('HSET', st, 'epoch', epoch, 'seq', '-1')\n"
    "  cur[2] = '-1'\n"
    "end\n"
    "local last = tonumber(cur[2]) or -1\n"
    "if seq <= last then return {'dup', lost} end\n"
    "redis.call('HSET', st, 'seq', seqtext)\n"
    "redis.call('HDEL', st, 'lost_at')\n"
    "local status = 'ok'\n"
    "if last >= 0 and seq ~= last + 1 then status = 'gap' end\n"
    "local function dedup(list)\n"
    "  local seen, out = {[sid] = true}, {}\n"
    "  for _, r in ipairs(list) do\n"
    "    if not seen[r] then seen[r] = true; out[#out + 1] = r end\n"
    "  end\n"
    "  return out\n"
    "end\n"
    "if op == 'connect' or (op == 'snapshot' and sid ~= '*') then\n"
    "  local rooms = dedup(unpack_rooms(raw))\n"
    "  local old = redis.call('HMGET', ksid(sid), 'node', 'since')\n"
    "  local keep = nil\n"
    "  if old[1] then\n"
    "    if op == 'snapshot' and old[1] == node then keep = old[2] end\n"
    "    remove_sid(sid, nil, false)\n"
    "  end\n"
    "  redis.call('HSET', ksid(sid), 'node', node, 'nsp', nsp, 'uid', uid,\n"
    "             'rooms', cmsgpack.pack(rooms), 'since', keep or since, 'epoch', epoch)\n"
    "  redis.call('SADD', knsids(node), sid)\n"
    "  if uid ~= '' then redis.call('SADD', kuser(uid), sid) end\n"
    "  for _, r in ipairs(rooms) do redis.call('SADD', kroom(nsp, r), sid) end\n"
    "  if op == 'snapshot' then redis.call('SREM', ksnap(node), sid) end\n"
    "elseif op == 'disconnect' then\n"
    "  remove_sid(sid, node, false)\n"
    "  redis.call('SREM', ksnap(node), sid)\n"
    "elseif op == 'join' or op == 'leave' then\n"
    "  local h = redis.call('HMGET', ksid(sid), 'node', 'nsp', 'rooms')\n"
    "  if h[1] ~= node then return {'unknown', lost} end\n"
    "  local have = unpack_rooms(h[3])\n"
    "  local change = {}\n"
    "  for _, r in ipairs(unpack_rooms(raw)) do change[r] = true end\n"
    "  local out = {}\n"
    "  if op == 'join' then\n"
    "    for _, r in ipairs(have) do out[#out + 1] = r; change[r] = nil end\n"
    "    for _, r in ipairs(dedup(unpack_rooms(raw))) do\n"
    "      if change[r] then out[#out + 1] = r; redis.call('SADD', kroom(h[2], r), sid) end\n"
    "    end\n"
    "  else\n"
    "    for _, r in ipairs(have) do\n"
    "      if change[r] then redis.call('SREM', kroom(h[2], r), sid) else out[#out + 1] = r end\n"
    "    end\n"
    "  end\n"
    "  redis.call('HSET', ksid(sid), 'rooms', cmsgpack.pack(out))\n"
    "elseif op == 'snapshot' and uid == 'begin' then\n"
    /* Every socket the mirror holds for the node is unconfirmed until a snapshot entry names
     * it; the end marker reaps what is left. */
    "  redis.call('DEL', ksnap(node))\n"
    "  if redis.call('EXISTS', knsids(node)) == 1 then\n"
    "    redis.call('SUNIONSTORE', ksnap(node), knsids(node))\n"
    "  end\n"
    "  redis.call('HSET', st, 'snap', epoch)\n"
    "elseif op == 'snapshot' and uid == 'end' then\n"
    "  if redis.call('HGET', st, 'snap') == epoch then\n"
    "    for _, s in ipairs(redis.call('SMEMBERS', ksnap(node))) do\n"
    "      lost = lost + remove_sid(s, node, true)\n"
    "    end\n"
    "    redis.call('DEL', ksnap(node))\n"
    "    redis.call('HDEL', st, 'snap', 'mismatch')\n"
    "  end\n"
    "end\n"
    "return {status, lost}\n";

static const char liveness_script[] = PRELUDE
    "local now, forget = tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "local checks, every = tonumber(ARGV[4]), tonumber(ARGV[5])\n"
    "local node_timeout, outage = tonumber(ARGV[6]), tonumber(ARGV[7])\n"
    "local saw_outage = ARGV[8] == '1'\n"
    "local fenced = fence(KLEASE, ARGV[9])\n"
    "if fenced then return fenced end\n"
    /* DESIGN.md 3.4 (docs/contracts.md): a node is lost only when it missed its heartbeat while
     * Redis was reachable for the broker and the node. The checks note Redis's own time; a gap
     * between two checks longer than `outage` means Redis (or the broker's contact with it) was
     * away, as does an outage the broker saw itself (`saw_outage`: its link dropped or a check
     * failed), and every node gets a fresh node-timeout from now before a missing heartbeat
     * counts (a gateway retries Redis at least every node-timeout / 4 and beats at once when
     * back). Redis's clock alone is used, so the broker's clock cannot skew it. */
    "local KLIVE = P .. ':bk:liveness'\n"
    "local t = redis.call('TIME')\n"
    "local rnow = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local lv = redis.call('HMGET', KLIVE, 'last', 'grace')\n"
    "local grace = tonumber(lv[2]) or 0\n"
    "if saw_outage or (lv[1] and rnow - tonumber(lv[1]) > outage) then\n"
    "  grace = rnow + node_timeout\n"
    "  redis.call('HSET', KLIVE, 'grace', grace)\n"
    "end\n"
    "redis.call('HSET', KLIVE, 'last', rnow)\n"
    "local in_grace = rnow < grace\n"
    "local nodes = {}\n"
    "for _, n in ipairs(redis.call('HKEYS', KNODES)) do nodes[n] = true end\n"
    "for _, n in ipairs(redis.call('SMEMBERS', KBKNODES)) do nodes[n] = true end\n"
    "local reaped, want = {}, {}\n"
    "local function report(node, n, why)\n"
    "  if n > 0 then reaped[#reaped + 1] = node; reaped[#reaped + 1] = n;\n"
    "    reaped[#reaped + 1] = why end\n"
    "end\n"
    "for node in pairs(nodes) do\n"
    "  local hb = redis.call('GET', P .. ':hb:' .. node)\n"
    "  local st = kstate(node)\n"
    "  local s = redis.call('HMGET', st, 'epoch', 'lost_at', 'mismatch', 'snapreq_at')\n"
    "  if not hb and in_grace then\n"
    /* after an outage: the node has not had node-timeout of reachable Redis to beat again */
    "  elseif not hb then\n"
    /* DESIGN.md 3.4: the heartbeat expired with Redis reachable: the node is lost. Its epoch
     * is retired, so that if it lives after all it learns so (the gateway checks
     * P:bk:retired:<node> with each heartbeat) and starts a new epoch, closing its sockets. */
    "    if s[1] then retire(node, s[1]) end\n"
    "    report(node, reap(node), 'heartbeat expired')\n"
    "    redis.call('HDEL', KNODES, node)\n"
    "    if not s[1] then\n"
    "      redis.call('DEL', st)\n"
    "      redis.call('SREM', KBKNODES, node)\n"
    "    elseif not s[2] then\n"
    "      redis.call('HSET', st, 'lost_at', now)\n"
    "    elseif now - tonumber(s[2]) > forget then\n"
    "      redis.call('DEL', st, kretired(node))\n"
    "      redis.call('SREM', KBKNODES, node)\n"
    "    end\n"
    "  elseif s[1] and hb ~= s[1] and redis.call('SISMEMBER', kretired(node), hb) == 0 then\n"
    /* A new epoch heartbeats before its first registry entry reached us: the old life is
     * over. Its remaining entries will be refused as stale; the new epoch is adopted from its
     * first entry (stream order), never from the heartbeat. */
    "    retire(node, s[1])\n"
    "    report(node, reap(node), 'new epoch')\n"
    "    redis.call('HDEL', st, 'epoch', 'seq', 'lost_at', 'mismatch', 'snapreq_at')\n"
    "  elseif s[1] and hb == s[1] and redis.call('SISMEMBER', kretired(node), hb) == 0 then\n"
    "    if s[2] then redis.call('HDEL', st, 'lost_at') end\n"
    /* Anti-entropy: the node's own socket count against the mirror's. */
    "    local info = redis.call('HGET', KNODES, node)\n"
    "    local reported = nil\n"
    "    if info then\n"
    "      local ok, t = pcall(cmsgpack.unpack, info)\n"
    "      if ok and type(t) == 'table' and t.epoch == hb then reported = tonumber(t.sockets) end\n"
    "    end\n"
    "    if reported then\n"
    "      if reported == redis.call('SCARD', knsids(node)) then\n"
    "        if s[3] then redis.call('HDEL', st, 'mismatch') end\n"
    "      else\n"
    "        local m = (tonumber(s[3]) or 0) + 1\n"
    "        redis.call('HSET', st, 'mismatch', m)\n"
    "        if m >= checks and (not s[4] or now - tonumber(s[4]) >= every) then\n"
    "          redis.call('HSET', st, 'snapreq_at', now)\n"
    "          want[#want + 1] = node\n"
    "        end\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return {redis.call('LLEN', KLOST), reaped, want}\n";

static const char user_script[] =
    "local P = ARGV[1]\n"
    "local sids = redis.call('SMEMBERS', P .. ':user:' .. ARGV[2])\n"
    "table.sort(sids)\n"
    "local out = {}\n"
    "for _, s in ipairs(sids) do\n"
    "  local h = redis.call('HMGET', P .. ':sid:' .. s, 'nsp', 'node', 'rooms')\n"
    "  if h[1] then\n"
    "    out[#out + 1] = s; out[#out + 1] = h[1]; out[#out + 1] = h[2] or ''\n"
    "    out[#out + 1] = h[3] or '\\144'\n"
    "  end\n"
    "end\n"
    "return out\n";

static const char rooms_script[] =
    "local P, nsp, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])\n"
    "local prefix = P .. ':room:' .. nsp .. ':'\n"
    "local pattern = string.gsub(prefix, '[%*%?%[%]\\\\]', '\\\\%0') .. '*'\n"
    "local cursor, seen, rooms = '0', {}, {}\n"
    "repeat\n"
    "  local r = redis.call('SCAN', cursor, 'MATCH', pattern, 'COUNT', 1000)\n"
    "  cursor = r[1]\n"
    "  for _, k in ipairs(r[2]) do\n"
    "    local room = string.sub(k, #prefix + 1)\n"
    "    if not seen[room] and #rooms < limit then\n"
    "      seen[room] = true\n"
    /* P:room:/a:b:x is also room b:x of /a: keep it only if a member is in this nsp. */
    "      local m = redis.call('SRANDMEMBER', k)\n"
    "      if m and redis.call('HGET', P .. ':sid:' .. m, 'nsp') == nsp then\n"
    "        rooms[#rooms + 1] = room\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "until cursor == '0'\n"
    "table.sort(rooms)\n"
    "local out = {}\n"
    "for _, room in ipairs(rooms) do\n"
    "  out[#out + 1] = room; out[#out + 1] = redis.call('SCARD', prefix .. room)\n"
    "end\n"
    "return out\n";

static const char room_script[] =
    "local P = ARGV[1]\n"
    "local sids = redis.call('SMEMBERS', P .. ':room:' .. ARGV[2] .. ':' .. ARGV[3])\n"
    "table.sort(sids)\n"
    "local out = {}\n"
    "for _, s in ipairs(sids) do\n"
    "  local h = redis.call('HMGET', P .. ':sid:' .. s, 'node', 'uid')\n"
    "  out[#out + 1] = s; out[#out + 1] = h[1] or ''; out[#out + 1] = h[2] or ''\n"
    "end\n"
    "return out\n";

static const char nodes_script[] =
    "local P = ARGV[1]\n"
    "local seen, nodes = {}, {}\n"
    "for _, n in ipairs(redis.call('HKEYS', P .. ':nodes')) do\n"
    "  if not seen[n] then seen[n] = true; nodes[#nodes + 1] = n end\n"
    "end\n"
    "for _, n in ipairs(redis.call('SMEMBERS', P .. ':bk:nodes')) do\n"
    "  if not seen[n] then seen[n] = true; nodes[#nodes + 1] = n end\n"
    "end\n"
    "table.sort(nodes)\n"
    "local out = {}\n"
    "for _, n in ipairs(nodes) do\n"
    "  out[#out + 1] = n\n"
    "  out[#out + 1] = redis.call('HGET', P .. ':nodes', n) or ''\n"
    "  out[#out + 1] = redis.call('GET', P .. ':hb:' .. n) or ''\n"
    "  out[#out + 1] = redis.call('PTTL', P .. ':hb:' .. n)\n"
    "  out[#out + 1] = redis.call('SCARD', P .. ':node-sids:' .. n)\n"
    "  out[#out + 1] = redis.call('HGET', P .. ':bk:node:' .. n, 'epoch') or ''\n"
    "end\n"
    "return out\n";

static const char ack_targets_script[] =
    "local P, nsp, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])\n"
    "local targets, except = cmsgpack.unpack(ARGV[4]), cmsgpack.unpack(ARGV[5])\n"
    "local function kroom(name) return P .. ':room:' .. nsp .. ':' .. name end\n"
    "local function ksid(sid) return P .. ':sid:' .. sid end\n"
    /* a socket is in the room named by its id, which the mirror does not store (README.md) */
    "local function own(name) return redis.call('EXISTS', ksid(name)) end\n"
    "local keys, total = {}, 0\n"
    "if #targets == 0 then\n"
    /* no selector: every socket of the namespace, found through the nodes' socket sets */
    "  local seen = {}\n"
    "  for _, n in ipairs(redis.call('HKEYS', P .. ':nodes')) do seen[n] = true end\n"
    "  for _, n in ipairs(redis.call('SMEMBERS', P .. ':bk:nodes')) do seen[n] = true end\n"
    "  for n in pairs(seen) do keys[#keys + 1] = P .. ':node-sids:' .. n end\n"
    "else\n"
    "  for _, t in ipairs(targets) do keys[#keys + 1] = kroom(t); total = total + own(t) end\n"
    "end\n"
    "for _, k in ipairs(keys) do total = total + redis.call('SCARD', k) end\n"
    "if total > limit then return {'toomany', total} end\n"
    "local skip, big = {}, {}\n"
    "for _, name in ipairs(except) do\n"
    "  skip[name] = true\n"
    "  local k = kroom(name)\n"
    /* a huge except room is asked per candidate instead of being read whole */
    "  if redis.call('SCARD', k) <= limit then\n"
    "    for _, s in ipairs(redis.call('SMEMBERS', k)) do skip[s] = true end\n"
    "  else big[#big + 1] = k end\n"
    "end\n"
    "local seen, sids = {}, {}\n"
    "local function consider(s)\n"
    "  if seen[s] or skip[s] then return end\n"
    "  seen[s] = true\n"
    "  for _, k in ipairs(big) do\n"
    "    if redis.call('SISMEMBER', k, s) == 1 then return end\n"
    "  end\n"
    "  sids[#sids + 1] = s\n"
    "end\n"
    "for _, k in ipairs(keys) do\n"
    "  for _, s in ipairs(redis.call('SMEMBERS', k)) do consider(s) end\n"
    "end\n"
    "if #targets > 0 then\n"
    "  for _, t in ipairs(targets) do if own(t) == 1 then consider(t) end end\n"
    "end\n"
    "table.sort(sids)\n"
    "local out = {'ok'}\n"
    "for _, s in ipairs(sids) do\n"
    /* P:room:/a:b:x is also room b:x of /a: only sockets of this namespace count */
    "  local h = redis.call('HMGET', ksid(s), 'node', 'nsp')\n"
    "  if h[1] and h[1] ~= '' and h[2] == nsp then\n"
    "    out[#out + 1] = s; out[#out + 1] = h[1]\n"
    "  end\n"
    "end\n"
    "return out\n";

const char *bk_script_apply(void)
{
    return apply_script;
}

const char *bk_script_liveness(void)
{
    return liveness_script;
}

const char *bk_script_user(void)
{
    return user_script;
}

const char *bk_script_rooms(void)
{
    return rooms_script;
}

const char *bk_script_room(void)
{
    return room_script;
}

const char *bk_script_nodes(void)
{
    return nodes_script;
}

const char *bk_script_ack_targets(void)
{
    return ack_targets_script;
}

/* ---- failover (lease.h, mirror.c): KEYS[1] = P:registry, KEYS[2] = P:bk:lease ---- */

static const char lease_script[] =
    "local K, token, px = ARGV[1] .. ':bk:lease', ARGV[2], ARGV[3]\n"
    "local cur = redis.call('GET', K)\n"
    "if cur == token then redis.call('PEXPIRE', K, px); return {'ours', token} end\n"
    "if not cur then redis.call('SET', K, token, 'PX', px); return {'acquired', token} end\n"
    "return {'other', cur}\n";

static const char lease_release_script[] =
    "local K = ARGV[1] .. ':bk:lease'\n"
    "if redis.call('GET', K) == ARGV[2] then return redis.call('DEL', K) end\n"
    "return 0\n";

/* ARGV: token, id ("0": this consumer's pending entries, ">": new ones), count. The XREADGROUP
 * answer when it has one (new entries, or the pending list, possibly empty); with ">" and nothing
 * new, the id of the stream's last entry ("0-0" when empty) to wait after with XREAD BLOCK. */
static const char registry_read_script[] =
    FENCE_FN "local fenced = fence(KEYS[2], ARGV[1])\n"
             "if fenced then return fenced end\n"
             "local r = redis.call('XREADGROUP', 'GROUP', 'broker', ARGV[1], 'COUNT', ARGV[3],\n"
             "                     'STREAMS', KEYS[1], ARGV[2])\n"
             "if r then return r end\n"
             "local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)\n"
             "if top[1] then return top[1][1] end\n"
             "return '0-0'\n";

/* ARGV: token, cursor, count. Moves pending entries of every consumer of group `broker` to
 * this one (XAUTOCLAIM, idle 0); when done (next cursor 0-0) deletes the other consumers that
 * own nothing any more. Returns {next cursor, entries claimed}. */
static const char registry_claim_script[] = FENCE_FN
    "local fenced = fence(KEYS[2], ARGV[1])\n"
    "if fenced then return fenced end\n"
    "local r = redis.call('XAUTOCLAIM', KEYS[1], 'broker', ARGV[1], 0, ARGV[2], 'COUNT', ARGV[3],\n"
    "                     'JUSTID')\n"
    "if r[1] == '0-0' then\n"
    "  for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], 'broker')) do\n"
    "    local f = {}\n"
    "    for i = 1, #c, 2 do f[c[i]] = c[i + 1] end\n"
    "    if f.name ~= ARGV[1] and tonumber(f.pending) == 0 then\n"
    "      redis.call('XGROUP', 'DELCONSUMER', KEYS[1], 'broker', f.name)\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return {r[1], #r[2]}\n";

/* ARGV: token, id... : XACK of a batch whose entries were applied. */
static const char registry_ack_script[] =
    FENCE_FN "local fenced = fence(KEYS[2], ARGV[1])\n"
             "if fenced then return fenced end\n"
             "return redis.call('XACK', KEYS[1], 'broker', unpack(ARGV, 2))\n";

/* ARGV: P, token, n: drops the first n items of P:bk:lost (they were appended upstream). */
static const char lost_trim_script[] =
    FENCE_FN "local fenced = fence(ARGV[1] .. ':bk:lease', ARGV[2])\n"
             "if fenced then return fenced end\n"
             "return redis.call('LTRIM', ARGV[1] .. ':bk:lost', ARGV[3], -1)\n";

const char *bk_script_lease(void)
{
    return lease_script;
}

const char *bk_script_lease_release(void)
{
    return lease_release_script;
}

const char *bk_script_registry_read(void)
{
    return registry_read_script;
}

const char *bk_script_registry_claim(void)
{
    return registry_claim_script;
}

const char *bk_script_registry_ack(void)
{
    return registry_ack_script;
}

const char *bk_script_lost_trim(void)
{
    return lost_trim_script;
}
