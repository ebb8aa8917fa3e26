// test_broker.mjs: issue 5, sioc-broker against a private redis-server. Registry entries and
// heartbeats are first written by hand exactly as DESIGN.md §3.4 / docs/contracts.md say (mirror,
// idempotency, stale epochs, node lost, restart, snapshot repair), then every API endpoint with
// good and bad input, emits compared byte for byte with @socket.io/redis-emitter and delivered
// to socket.io-client through a real gateway, and finally end to end with two gateways writing
// the registry themselves (JWT users, kill -9 of a gateway, broker restart).
import { io } from "socket.io-client";
import { createClient } from "redis";
import { Emitter } from "@socket.io/redis-emitter";
import notepack from "notepack.io";
import crypto from "node:crypto";
import { spawn, spawnSync } from "node:child_process";
import {
  BROKER,
  GATEWAY,
  assert,
  assertEqual,
  createRunner,
  get,
  post,
  repo,
  sleep,
  startRedis,
  startServer,
  until,
  within,
} from "./lib/harness.mjs";

const SHARDS = 2;
const redis = await startRedis();
const r = createClient({ url: redis.url });
await r.connect();
// lease-timeout 1000 (issue 17): a broker restarted after kill -9 waits for its dead
// predecessor's lease to expire; a short lease keeps the restart tests' waits small
const brokerArgs = ["--redis", redis.url, "--check-interval", "200", "--upstream-shards", String(SHARDS), "--lease-timeout", "1000",
  "--log-level", "info"];
let broker = await startServer(BROKER, brokerArgs);
const { test, run } = createRunner("test_broker");

// ---- helpers ----
const cmd = (...args) => r.sendCommand(args.map((a) => (Buffer.isBuffer(a) ? a : String(a))));
const cmdBuf = (...args) => r.sendCommand(args, { returnBuffers: true });
const epochOf = () => crypto.randomBytes(8).toString("hex");
const seqs = new Map();
// XADD one registry entry; seq defaults to the next of (node, epoch).
async function reg(node, epoch, op, sid, { nsp = "/", uid = "", rooms = [], seq } = {}) {
  const k = `${node}/${epoch}`;
  const s = seq ?? (seqs.get(k) || 0) + 1;
  seqs.set(k, Math.max(s, seqs.get(k) || 0));
  await cmd("XADD", "sioc:registry", "*", "node", node, "epoch", epoch, "seq", s, "op", op, "nsp", nsp,
    "sid", sid, "uid", uid, "rooms", notepack.encode(rooms));
}
const beat = (node, epoch, px = 6000) => cmd("SET", `sioc:hb:${node}`, epoch, "PX", px);
// Waits until the broker has consumed everything written so far (group lag 0, nothing pending).
async function settled() {
  await until("the broker to consume the registry", async () => {
    const groups = await cmd("XINFO", "GROUPS", "sioc:registry");
    const g = groups.find((x) => x[1] === "broker");
    const info = Object.fromEntries(Array.from({ length: g.length / 2 }, (_, i) => [g[2 * i], g[2 * i + 1]]));
    const last = (await cmd("XINFO", "STREAM", "sioc:registry"))[7];
    return info.pending === 0 && info["last-delivered-id"] === last;
  });
}
async function sidHash(sid) {
  const h = await cmdBuf("HGETALL", `sioc:sid:${sid}`);
  const o = {};
  for (let i = 0; i < h.length; i += 2) o[h[i].toString()] = h[i + 1];
  if (!o.node) return null;
  return { node: o.node.toString(), nsp: o.nsp.toString(), uid: o.uid.toString(), rooms: notepack.decode(o.rooms), since: Number(o.since.toString()) };
}
const smembers = async (key) => (await cmd("SMEMBERS", key)).sort();
function fnv1a32(s) {
  let h = 2166136261;
  for (const b of Buffer.from(s)) {
    h ^= b;
    h = Math.imul(h, 16777619) >>> 0;
  }
  return h >>> 0;
}
// Every upstream entry of nsp (all shards) as objects, each with its shard.
async function upstream(nsp = "/") {
  const out = [];
  for (let shard = 0; shard < SHARDS; shard++) {
    for (const [id, f] of await cmd("XRANGE", `sioc:up:${nsp}:${shard}`, "-", "+")) {
      const o = { id, shard };
      for (let i = 0; i < f.length; i += 2) o[f[i]] = f[i + 1];
      out.push(o);
    }
  }
  return out;
}
const nodeLost = async (node, nsp = "/") => (await upstream(nsp)).filter((e) => e.type === "disconnect" && e.reason === "node lost" && e.node === node);
const json = (res) => JSON.parse(res.body);
const api = (path) => get(broker.port, path);
const apiPost = (path, body) => post(broker.port, path, typeof body === "string" ? body : JSON.stringify(body), "Content-Type: application/json\r\n");
async function metric(name) {
  const m = new RegExp(`^${name.replace(/[{}"]/g, (c) => `\\${c}`)} (\\d+)`, "m").exec((await api("/metrics")).body);
  return m ? Number(m[1]) : 0;
}

// ---- mirror from hand-written entries ----
test("connect, join, leave, disconnect: the mirror keys are exact", async () => {
  const e = epochOf();
  await beat("m1", e);
  await reg("m1", e, "connect", "a1", { uid: "alice", rooms: ["user:alice", "red"] });
  await reg("m1", e, "connect", "a2", { nsp: "/chat", uid: "alice", rooms: ["user:alice"] });
  await reg("m1", e, "connect", "b1", { rooms: [] });
  await reg("m1", e, "join", "b1", { rooms: ["red", "blue"] });
  await reg("m1", e, "leave", "a1", { rooms: ["red"] });
  await settled();
  const a1 = await sidHash("a1");
  assertEqual([a1.node, a1.nsp, a1.uid, a1.rooms], ["m1", "/", "alice", ["user:alice"]], "P:sid:a1");
  assert(Math.abs(a1.since - Date.now()) < 10000, "since is a recent ms timestamp");
  assertEqual((await sidHash("b1")).rooms, ["red", "blue"], "P:sid:b1 rooms after join");
  assertEqual(await smembers("sioc:user:alice"), ["a1", "a2"], "P:user:alice");
  assertEqual(await smembers("sioc:room:/:red"), ["b1"], "P:room:/:red");
  assertEqual(await smembers("sioc:room:/chat:user:alice"), ["a2"], "P:room:/chat:user:alice");
  assertEqual(await smembers("sioc:node-sids:m1"), ["a1", "a2", "b1"], "P:node-sids:m1");
  await reg("m1", e, "disconnect", "a1", { uid: "alice", rooms: ["user:alice"] });
  await reg("m1", e, "disconnect", "b1", { rooms: ["red", "blue"] });
  await settled();
  assertEqual(await sidHash("a1"), null, "P:sid:a1 gone");
  assertEqual(await smembers("sioc:user:alice"), ["a2"], "alice keeps a2");
  assertEqual(await cmd("EXISTS", "sioc:room:/:red", "sioc:room:/:blue", "sioc:room:/:user:alice"), 0, "empty rooms vanish");
  assertEqual(await smembers("sioc:node-sids:m1"), ["a2"], "node-sids");
});

test("idempotent: a replayed entry, an old seq and a retired epoch change nothing", async () => {
  const e1 = epochOf();
  await beat("m2", e1);
  await reg("m2", e1, "connect", "c1", { uid: "carol", rooms: ["x"] });
  await reg("m2", e1, "connect", "c2", { rooms: [] });
  await settled();
  const dups = await metric('sioc_broker_registry_entries_total{result="duplicate"}');
  // the gateway's link re-sent seq 1 and 2 after a reconnect (REDIS_LINK_RETRY)
  await reg("m2", e1, "connect", "c1", { uid: "carol", rooms: ["x"], seq: 1 });
  await reg("m2", e1, "disconnect", "c2", { rooms: [], seq: 2 });
  await settled();
  assertEqual(await smembers("sioc:node-sids:m2"), ["c1", "c2"], "replays ignored");
  assertEqual(await metric('sioc_broker_registry_entries_total{result="duplicate"}'), dups + 2, "counted as duplicates");
  // the node restarts with a new epoch: the old life's sockets are lost ...
  const e2 = epochOf();
  await beat("m2", e2);
  await reg("m2", e2, "connect", "c3", { uid: "carol", rooms: [] });
  await settled();
  assertEqual(await smembers("sioc:node-sids:m2"), ["c3"], "old epoch's sockets reaped");
  await until("node-lost disconnects for c1, c2", async () => (await nodeLost("m2")).length === 2);
  // ... and entries of the old epoch that arrive late are refused
  const stale = await metric('sioc_broker_registry_entries_total{result="stale"}');
  await reg("m2", e1, "connect", "c9", { rooms: [] });
  await settled();
  assertEqual(await sidHash("c9"), null, "stale connect refused");
  assertEqual(await metric('sioc_broker_registry_entries_total{result="stale"}'), stale + 1, "counted as stale");
  assertEqual(await smembers("sioc:user:carol"), ["c3"], "P:user:carol");
});

test("heartbeat expiry: the node's sockets leave the mirror, one node-lost disconnect each, in the right shard", async () => {
  const e = epochOf();
  await beat("m3", e, 1000);
  const sids = ["d1", "d2", "d3", "d4", "d5"];
  for (const sid of sids) await reg("m3", e, "connect", sid, { nsp: "/chat", uid: `u-${sid}`, rooms: ["room1"] });
  await settled();
  assertEqual(await smembers("sioc:node-sids:m3"), sids, "registered");
  await until("the mirror to drop m3", async () => (await cmd("EXISTS", "sioc:node-sids:m3", "sioc:room:/chat:room1")) === 0, 4000);
  for (const sid of sids) assertEqual(await sidHash(sid), null, `P:sid:${sid} gone`);
  const lost = await until("5 node-lost entries", async () => {
    const l = await nodeLost("m3", "/chat");
    return l.length >= 5 ? l : null;
  });
  assertEqual(lost.map((x) => x.sid).sort(), sids, "one per socket");
  for (const x of lost) {
    assertEqual([x.v, x.nsp, x.uid, x.shard], ["1", "/chat", `u-${x.sid}`, fnv1a32(x.sid) % SHARDS], "entry fields and shard");
    assert(/^\d+$/.test(x.ts), "ts is decimal ms");
  }
  assertEqual(await cmd("HEXISTS", "sioc:nodes", "m3"), 0, "dead node removed from P:nodes");
  assertEqual(await cmd("LLEN", "sioc:bk:lost"), 0, "lost queue drained");
});

test("a dead node leaves /v1/nodes forget-after its heartbeat expired (issue 10)", async () => {
  // its own broker and key prefix, with a short forget-after
  const other = await startServer(BROKER, ["--redis", redis.url, "--key-prefix", "fg", "--check-interval", "100",
    "--forget-after", "1000", "--log-level", "warn"]);
  try {
    const e = epochOf();
    await cmd("SET", "fg:hb:gone1", e, "PX", 300);
    await cmd("XADD", "fg:registry", "*", "node", "gone1", "epoch", e, "seq", 1, "op", "connect", "nsp", "/",
      "sid", "g1", "uid", "", "rooms", notepack.encode([]));
    const listed = async () => JSON.parse((await get(other.port, "/v1/nodes")).body).filter((n) => n.node === "gone1");
    await until("gone1 listed dead", async () => (await listed()).some((n) => !n.alive), 3000);
    const deadAt = Date.now();
    await until("gone1 forgotten", async () => (await listed()).length === 0, 4000);
    assert(Date.now() - deadAt >= 500, `listed dead for a while first (${Date.now() - deadAt} ms)`);
  } finally {
    await other.stop();
  }
});

// Issue 10 item 3 (DESIGN.md §3.4 as docs/contracts.md states it): a Redis stall longer than
// node-timeout is an outage, not a dead node; and a node the cluster did declare lost learns it.
test("Redis SIGSTOPped for 3 x node-timeout: no node lost, the mirror and the clients stay", async () => {
  const red = await startRedis();
  const rr = createClient({ url: red.url });
  await rr.connect();
  const bk = await startServer(BROKER, ["--redis", red.url, "--node-timeout", "1000", "--check-interval", "100", "--log-level", "info"]);
  const gw = await startServer(GATEWAY, ["--redis", red.url, "--node-timeout", "1000", "--node-id", "lv1", "--log-level", "info"]);
  const clients = [];
  try {
    let disconnects = 0;
    for (let i = 0; i < 5; i++) {
      const s = io(`http://127.0.0.1:${gw.port}/`, { transports: ["websocket"], forceNew: true, reconnection: false });
      s.on("disconnect", () => disconnects++);
      clients.push(s);
      await within(5000, new Promise((res) => s.once("connect", res)), "connect");
    }
    const scard = () => rr.sendCommand(["SCARD", "sioc:node-sids:lv1"]);
    await until("5 sockets in the mirror", async () => (await scard()) === 5);
    process.kill(red.pid, "SIGSTOP");
    await sleep(3500);
    process.kill(red.pid, "SIGCONT");
    await sleep(3000);
    const lost = (await rr.xRange("sioc:up:/:0", "-", "+")).map((e) => e.message).filter((m) => m.reason === "node lost");
    assertEqual(lost.length, 0, "node-lost disconnects after the stall");
    assert(!/node\.lost/.test(bk.log()), `the broker declared no node lost:\n${bk.log().split("\n").filter((l) => /node/.test(l)).join("\n")}`);
    assertEqual(await scard(), 5, "the mirror kept the sockets");
    assertEqual([disconnects, clients.every((s) => s.connected)], [0, true], "the clients stayed connected");
  } finally {
    for (const s of clients) s.close();
    await gw.stop();
    await bk.stop();
    await rr.quit();
    await red.stop();
  }
}, 30000);

test("a live node whose epoch was reaped learns it: reconnect-friendly close, a new epoch", async () => {
  const red = await startRedis();
  const rr = createClient({ url: red.url });
  await rr.connect();
  const bk = await startServer(BROKER, ["--redis", red.url, "--node-timeout", "1000", "--check-interval", "100", "--log-level", "info"]);
  const gw = await startServer(GATEWAY, ["--redis", red.url, "--node-timeout", "1000", "--node-id", "lv2", "--log-level", "info"]);
  const clients = [];
  try {
    let reasons = [];
    for (let i = 0; i < 3; i++) {
      const s = io(`http://127.0.0.1:${gw.port}/`, { transports: ["websocket"], forceNew: true, reconnectionDelay: 100 });
      s.on("disconnect", (why) => reasons.push(why));
      clients.push(s);
      await within(5000, new Promise((res) => s.once("connect", res)), "connect");
    }
    const scard = () => rr.sendCommand(["SCARD", "sioc:node-sids:lv2"]);
    await until("3 sockets in the mirror", async () => (await scard()) === 3);
    const epoch = await rr.get("sioc:hb:lv2");
    // what the broker does when it reaps a node it thinks dead: its epoch is retired
    await rr.sendCommand(["SADD", "sioc:bk:retired:lv2", epoch]);
    await until("the gateway to start a new epoch", async () => {
      const now = await rr.get("sioc:hb:lv2");
      return now !== null && now !== epoch;
    }, 5000);
    await until("every client back, in the mirror under the new epoch", async () =>
      clients.every((s) => s.connected) && (await scard()) === 3, 8000);
    assertEqual(reasons, ["transport close", "transport close", "transport close"], "a reconnect-friendly close");
    assert(/registry\.epoch_reaped/.test(gw.log()), "the gateway says why");
  } finally {
    for (const s of clients) s.close();
    await gw.stop();
    await bk.stop();
    await rr.quit();
    await red.stop();
  }
}, 30000);

test("a new epoch seen first in the heartbeat reaps the old one; its late entries are refused", async () => {
  const e1 = epochOf(), e2 = epochOf();
  await beat("m4", e1);
  await reg("m4", e1, "connect", "f1", { rooms: [] });
  await settled();
  await beat("m4", e2); // restarted, not registered anything yet
  await until("f1 reaped", async () => (await sidHash("f1")) === null, 3000);
  await reg("m4", e1, "connect", "f2", { rooms: [] });
  await reg("m4", e2, "connect", "f3", { rooms: [] });
  await settled();
  assertEqual(await smembers("sioc:node-sids:m4"), ["f3"], "only the new epoch's socket");
  assertEqual((await nodeLost("m4")).map((x) => x.sid), ["f1"], "one node-lost disconnect");
});

test("snapshot: begin/end markers replace the node's part of the mirror", async () => {
  const e = epochOf();
  await beat("m5", e);
  await reg("m5", e, "connect", "g1", { uid: "gina", rooms: ["user:gina"] });
  await reg("m5", e, "connect", "g2", { rooms: ["old"] });
  await settled();
  const since = (await sidHash("g2")).since;
  await sleep(5);
  // after a Redis failover the gateway re-announces everything it has
  await reg("m5", e, "snapshot", "*", { uid: "begin" });
  await reg("m5", e, "snapshot", "g2", { rooms: ["new"] });
  await reg("m5", e, "snapshot", "g3", { uid: "gina", rooms: ["user:gina"] });
  await settled();
  assertEqual(await smembers("sioc:node-sids:m5"), ["g1", "g2", "g3"], "nothing dropped before the end marker");
  await reg("m5", e, "snapshot", "*", { uid: "end" });
  await settled();
  assertEqual(await smembers("sioc:node-sids:m5"), ["g2", "g3"], "g1 was not in the snapshot");
  assertEqual(await smembers("sioc:user:gina"), ["g3"], "P:user:gina");
  const g2 = await sidHash("g2");
  assertEqual([g2.rooms, g2.since], [["new"], since], "g2 rooms replaced, since kept");
  assertEqual(await cmd("EXISTS", "sioc:room:/:old"), 0, "old room gone");
  await until("g1's node-lost disconnect", async () => (await nodeLost("m5")).map((x) => x.sid).join() === "g1");
});

test("broker restart (SIGTERM and kill -9): it resumes from the consumer group", async () => {
  const e = epochOf();
  await beat("m6", e);
  await reg("m6", e, "connect", "h1", { rooms: [] });
  await settled();
  await broker.stop();
  await reg("m6", e, "connect", "h2", { rooms: ["r"] });
  await reg("m6", e, "disconnect", "h1", { rooms: [] });
  broker = await startServer(BROKER, brokerArgs);
  await settled();
  assertEqual(await smembers("sioc:node-sids:m6"), ["h2"], "entries written while down applied");
  // kill -9 with entries in flight: delivered-but-unacked entries are re-read and re-applied
  for (let i = 3; i < 40; i++) await reg("m6", e, "connect", `h${i}`, { rooms: ["r"] });
  process.kill(broker.pid, "SIGKILL");
  await broker.stop();
  for (let i = 3; i < 40; i += 2) await reg("m6", e, "disconnect", `h${i}`, { rooms: ["r"] });
  broker = await startServer(BROKER, brokerArgs);
  await settled();
  const want = ["h2", ...Array.from({ length: 37 }, (_, k) => k + 3).filter((i) => i % 2 === 0).map((i) => `h${i}`)].sort();
  assertEqual(await smembers("sioc:node-sids:m6"), want, "mirror exact after kill -9");
  assertEqual(await smembers("sioc:room:/:r"), want, "room exact after kill -9");
});

// ---- the HTTP API ----
test("GET /v1/users, /v1/rooms, /v1/rooms/<room>, /v1/nodes", async () => {
  const e = epochOf();
  await beat("m7", e);
  await cmd("HSET", "sioc:nodes", "m7", notepack.encode({ epoch: e, address: "10.0.0.7:3000", started: 1700000000000, sockets: 2 }));
  await reg("m7", e, "connect", "k1", { uid: "u/7 é", rooms: ["user:u/7 é", "lobby"] });
  await reg("m7", e, "connect", "k2", { nsp: "/chat", uid: "u/7 é", rooms: ["lobby"] });
  await settled();
  const u = json(await api(`/v1/users/${encodeURIComponent("u/7 é")}`));
  assertEqual(u, { uid: "u/7 é", online: true, sockets: [
    { sid: "k1", nsp: "/", node: "m7", rooms: ["user:u/7 é", "lobby"] },
    { sid: "k2", nsp: "/chat", node: "m7", rooms: ["lobby"] }] }, "user");
  assertEqual(json(await api("/v1/users/nobody")), { uid: "nobody", online: false, sockets: [] }, "unknown user");
  const rooms = json(await api("/v1/rooms?nsp=%2Fchat"));
  assertEqual(rooms.filter((x) => x.room !== "user:alice"), [{ room: "lobby", count: 1 }], "rooms of /chat (sorted)");
  const all = json(await api("/v1/rooms"));
  assert(all.some((x) => x.room === "lobby" && x.count === 1) && all.some((x) => x.room === "user:u/7 é"), "rooms of / (default nsp)");
  assertEqual(json(await api("/v1/rooms/lobby?nsp=/chat")), { room: "lobby", nsp: "/chat", count: 1, members: [{ sid: "k2", node: "m7", uid: "u/7 é" }] }, "room members");
  const nodes = json(await api("/v1/nodes"));
  const m7 = nodes.find((n) => n.node === "m7");
  assertEqual([m7.alive, m7.epoch, m7.address, m7.started, m7.sockets, m7.mirror_sockets], [true, e, "10.0.0.7:3000", 1700000000000, 2, 2], "node m7");
  assert(Math.abs(m7.last_heartbeat - Date.now()) < 3000 && m7.heartbeat_ttl_ms > 0, "last heartbeat");
  assertEqual((await api("/healthz")).status, 200, "healthz");
  assertEqual((await api("/readyz")).status, 200, "readyz");
  assert((await api("/metrics")).body.includes("sioc_broker_registry_entries_total"), "metrics");
});

test("bad input: 4xx with a JSON error", async () => {
  const cases = [
    ["/v1/emit", "{not json", 400],
    ["/v1/emit", "[1,2]", 400],
    ["/v1/emit", { event: 5 }, 400],
    ["/v1/emit", { event: "e", rooms: "lobby" }, 400],
    ["/v1/emit", { event: "e", rooms: [1] }, 400],
    ["/v1/emit", { event: "e", args: { a: 1 } }, 400],
    ["/v1/emit", { event: "e", volatile: "yes" }, 400],
    ["/v1/emit", { event: "e", nsp: "chat" }, 400],
    ["/v1/emit", { event: "e", bogus: 1 }, 400],
    ["/v1/emit", { event: "e", rooms: [""] }, 400],
    ["/v1/emit", { args: [] }, 400],
    ["/v1/emit", { event: "disconnect" }, 400],
    ["/v1/emit", { event: "e", rooms: Array.from({ length: 300 }, (_, i) => `r${i}`) }, 400],
    ["/v1/join", { rooms: ["a"] }, 400],
    ["/v1/join", { to: ["a"] }, 400],
    ["/v1/leave", { sids: ["x"], to: "a" }, 400],
    ["/v1/disconnect", { sids: ["x"], close: 1 }, 400],
    ["/v1/disconnect", { sids: ["x"], to: ["a"] }, 400],
    ["/v1/nope", {}, 404],
    // issue 10: a namespace name with NUL can have no socket on any gateway
    ["/v1/emit", { event: "e", nsp: "/a\u0000b" }, 400],
    ["/v1/join", { nsp: "/\u0000", sids: ["x"], to: ["a"] }, 400],
  ];
  for (const [path, body, status] of cases) {
    const res = await apiPost(path, body);
    assertEqual(res.status, status, `${path} ${JSON.stringify(body).slice(0, 60)}`);
    assert(typeof json(res).error === "string", `JSON error for ${JSON.stringify(body).slice(0, 60)}`);
  }
  // issue 10: bytes that are not UTF-8 in a path come back as U+FFFD, the body stays UTF-8
  const odd = await api("/v1/users/%ff%fe");
  const oddBody = odd.raw.subarray(odd.raw.indexOf("\r\n\r\n") + 4);
  assertEqual(JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(oddBody)).uid, "\ufffd\ufffd", "uid %ff%fe");
  assertEqual((await api("/v1/emit")).status, 405, "GET /v1/emit");
  assertEqual((await apiPost("/v1/nodes", {})).status, 405, "POST /v1/nodes");
  assertEqual((await api("/v1/users/a%2")).status, 400, "bad escape");
  assertEqual((await api("/v1/rooms?nsp=chat")).status, 400, "nsp without /");
  assert(typeof json(await api("/v1/whatever")).error === "string", "404 is JSON");
});

test("api-key: bearer auth; without one only a loopback listen is accepted", async () => {
  const keyed = await startServer(BROKER, ["--redis", redis.url, "--api-key", "s3cret"]);
  try {
    const none = await get(keyed.port, "/v1/nodes");
    assertEqual([none.status, typeof JSON.parse(none.body).error], [401, "string"], "no key");
    assertEqual((await get(keyed.port, "/v1/nodes", "Authorization: Bearer wrong\r\n")).status, 401, "wrong key");
    assertEqual((await get(keyed.port, "/v1/nodes", "Authorization: Bearer s3cret\r\n")).status, 200, "right key");
    const emit = await post(keyed.port, "/v1/emit", JSON.stringify({ event: "e" }), "Authorization: Bearer s3cret\r\n");
    assertEqual(emit.status, 200, "emit with the key");
    assertEqual((await get(keyed.port, "/healthz")).status, 200, "healthz stays open");
  } finally {
    await keyed.stop();
  }
  const out = await new Promise((resolve) => {
    const child = spawn(`${repo}/${BROKER}`, ["--redis", redis.url, "--listen", "0.0.0.0:0"], { stdio: ["ignore", "pipe", "pipe"] });
    let text = "";
    child.stderr.on("data", (d) => (text += d));
    child.on("exit", (code) => resolve({ code, text }));
  });
  assertEqual(out.code, 2, "refuses a public listen without an api key");
  assert(out.text.includes("loopback"), "says why");
  // issue 10: loopback by address, not by a "127." prefix of whatever host name
  const check = (listen) => spawnSync(`${repo}/${BROKER}`, ["--redis", redis.url, "--listen", listen, "--check-config"],
    { timeout: 10000 }).status;
  assertEqual(check("127.evil.example:8081"), 2, "a host name starting with 127. is not loopback");
  assertEqual(check("127.0.0.1.evil.example:8081"), 2, "nor one that starts with a loopback address");
  assertEqual(check("[::ffff:10.0.0.1]:8081"), 2, "nor a mapped public address");
  for (const ok of ["127.0.0.1:8081", "127.1.2.3:0", "localhost:8081", "[::1]:8081", "::1:8081"])
    assertEqual(check(ok), 0, `${ok} is loopback`);
});

test("emit, join, leave, disconnect are byte-identical to @socket.io/redis-emitter", async () => {
  const sub = r.duplicate();
  await sub.connect();
  const got = [];
  await sub.pSubscribe("socket.io*", (msg, channel) => got.push([channel, msg.toString("hex")]), true);
  const emitter = new Emitter(r);
  const take = async (n) => {
    await until(`${n} messages`, async () => got.length >= n);
    return got.splice(0, n);
  };
  const pairs = [
    [() => emitter.to("lobby").emit("hi", 1, { a: [true, null] }, "x"), ["/v1/emit", { event: "hi", args: [1, { a: [true, null] }, "x"], rooms: ["lobby"] }]],
    [() => emitter.emit("all", 1.5), ["/v1/emit", { event: "all", args: [1.5] }]],
    [() => emitter.of("/chat").to("a").to("user:u1").except("b").volatile.emit("v"), ["/v1/emit", { nsp: "/chat", event: "v", rooms: ["a"], users: ["u1"], except: ["b"], volatile: true }]],
    [() => emitter.in("a").socketsJoin(["x", "y"]), ["/v1/join", { rooms: ["a"], to: ["x", "y"] }]],
    [() => emitter.in("user:u2").except("b").socketsLeave("x"), ["/v1/leave", { users: ["u2"], except: ["b"], to: ["x"] }]],
    [() => emitter.in("s1").disconnectSockets(true), ["/v1/disconnect", { sids: ["s1"], close: true }]],
  ];
  for (const [viaEmitter, [path, body]] of pairs) {
    viaEmitter();
    const [want] = await take(1);
    const res = await apiPost(path, body);
    assertEqual(res.status, 200, `${path} status`);
    assert(typeof json(res).published === "number", "published count");
    const [have] = await take(1);
    assertEqual(have, want, `${path} ${JSON.stringify(body)}`);
  }
  await sub.quit();
});

// ---- with real gateways ----
function jwt(sub, secret = "s") {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const body = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ sub, exp: Math.floor(Date.now() / 1000) + 600 })}`;
  return `${body}.${crypto.createHmac("sha256", secret).update(body).digest("base64url")}`;
}
function connect(port, nsp = "/", opts = {}) {
  const socket = io(`http://127.0.0.1:${port}${nsp}`, { forceNew: true, reconnection: false, transports: ["websocket"], ...opts });
  const ready = within(5000, new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", reject);
  }), `connect to ${port}${nsp}`);
  return ready;
}
const gwArgs = (node) => ["--redis", redis.url, "--node-id", node, "--namespaces", "/,/chat", "--auth", "jwt", "--jwt-secret", "s",
  "--upstream-shards", String(SHARDS), "--log-level", "warn"];

test("/v1/emit reaches socket.io-client through a gateway (rooms, sids, users, except)", async () => {
  const gw = await startServer(GATEWAY, gwArgs("gw-emit"));
  const clients = [];
  try {
    const a = await connect(gw.port, "/", { auth: { token: jwt("emit-a") } });
    const b = await connect(gw.port, "/", { auth: { token: jwt("emit-b") } });
    clients.push(a, b);
    const seen = { a: [], b: [] };
    a.on("push", (...args) => seen.a.push(args));
    b.on("push", (...args) => seen.b.push(args));
    await sleep(200);
    const send = async (body) => {
      const res = await apiPost("/v1/emit", { event: "push", ...body });
      assertEqual(res.status, 200, "emit");
      return json(res).published;
    };
    assert((await send({ args: [1, "all"] })) >= 1, "the gateway received it");
    await send({ args: [2, "to a by sid"], sids: [a.id] });
    await send({ args: [3, "to b by user"], users: ["emit-b"] });
    await send({ args: [4, "all but a"], except: [a.id] });
    await until("deliveries", async () => seen.a.length >= 2 && seen.b.length >= 3, 3000);
    await sleep(200);
    assertEqual(seen.a, [[1, "all"], [2, "to a by sid"]], "a's events");
    assertEqual(seen.b, [[1, "all"], [3, "to b by user"], [4, "all but a"]], "b's events");
    // join by user, emit to the joined room, then disconnect by room
    await apiPost("/v1/join", { users: ["emit-a"], to: ["vip"] });
    await sleep(200);
    await send({ args: [5, "vip"], rooms: ["vip"] });
    await until("vip event", async () => seen.a.length === 3, 3000);
    const gone = new Promise((res) => a.once("disconnect", res));
    assertEqual((await apiPost("/v1/disconnect", { rooms: ["vip"] })).status, 200, "disconnect");
    assertEqual(await within(3000, gone, "a disconnected"), "io server disconnect", "reason");
    assert(b.connected, "b untouched");
  } finally {
    clients.forEach((c) => c.close());
    await gw.stop();
  }
});

test("two gateways with JWT users: /v1/users, SMEMBERS, user emits, rooms; kill -9 -> clean mirror", async () => {
  const gwA = await startServer(GATEWAY, gwArgs("gwA"));
  const gwB = await startServer(GATEWAY, gwArgs("gwB"));
  const clients = [];
  try {
    const u1a = await connect(gwA.port, "/", { auth: { token: jwt("u1") } });
    const u1b = await connect(gwB.port, "/", { auth: { token: jwt("u1") } });
    const u1chat = await connect(gwA.port, "/chat", { auth: { token: jwt("u1") } });
    const u2a = await connect(gwA.port, "/", { auth: { token: jwt("u2") } });
    const u3b = await connect(gwB.port, "/", { auth: { token: jwt("u3") } });
    clients.push(u1a, u1b, u1chat, u2a, u3b);
    const u1ids = [u1a.id, u1b.id, u1chat.id].sort();
    const u1 = await until("u1's three sockets in the mirror", async () => {
      const res = json(await api("/v1/users/u1"));
      return res.sockets.length === 3 ? res : null;
    });
    assertEqual(u1.sockets.map((s) => s.sid).sort(), u1ids, "/v1/users/u1 sids");
    const where = (list) => list.map(([sid, node]) => `${sid}@${node}`).sort();
    assertEqual(where(u1.sockets.map((s) => [s.sid, s.node])), where([[u1a.id, "gwA"], [u1b.id, "gwB"], [u1chat.id, "gwA"]]), "nodes");
    assert(u1.sockets.every((s) => s.rooms.includes("user:u1")), "user room listed");
    assertEqual(await smembers("sioc:user:u1"), u1ids, "SMEMBERS P:user:u1");
    const got = new Map(clients.map((c) => [c, []]));
    for (const c of clients) c.on("note", (x) => got.get(c).push(x));
    await apiPost("/v1/emit", { event: "note", args: ["for u1"], users: ["u1"] });
    await apiPost("/v1/emit", { nsp: "/chat", event: "note", args: ["for u1 in chat"], users: ["u1"] });
    await until("u1's deliveries", async () => got.get(u1a).length && got.get(u1b).length && got.get(u1chat).length, 3000);
    await sleep(300);
    assertEqual([got.get(u1a), got.get(u1b), got.get(u1chat), got.get(u2a), got.get(u3b)],
      [["for u1"], ["for u1"], ["for u1 in chat"], [], []], "only u1's sockets, each once");
    // rooms follow joins and leaves
    await apiPost("/v1/join", { sids: [u2a.id, u3b.id], to: ["hall"] });
    await until("hall of 2", async () => JSON.stringify(json(await api("/v1/rooms"))).includes('{"room":"hall","count":2}'), 3000);
    const left = await apiPost("/v1/leave", { users: ["u3"], to: ["hall"] });
    assertEqual(json(left).published, 2, "both gateways got the leave request");
    await until("hall of 1", async () => JSON.stringify(json(await api("/v1/rooms"))).includes('{"room":"hall","count":1}'), 3000)
      .catch(async (err) => { throw new Error(`${err.message}: ${(await api("/v1/rooms")).body} ${(await api("/v1/rooms/hall")).body}`); });
    const nodes = json(await api("/v1/nodes"));
    for (const n of ["gwA", "gwB"]) assert(nodes.some((x) => x.node === n && x.alive), `${n} listed alive`);
    // kill -9 gwA: its sockets (u1a, u1chat, u2a) leave the mirror; gwB's stay
    const lostIds = [u1a.id, u1chat.id, u2a.id];
    const before = (await upstream("/")).length + (await upstream("/chat")).length;
    const t0 = Date.now();
    process.kill(gwA.pid, "SIGKILL");
    await until("gwA's sockets to leave the mirror", async () => (await cmd("EXISTS", "sioc:node-sids:gwA")) === 0 &&
      (await Promise.all(lostIds.map(sidHash))).every((h) => h === null), 10000);
    const elapsed = Date.now() - t0;
    console.log(`kill -9 -> clean mirror: ${elapsed} ms (heartbeat 2000 ms, node-timeout 6000 ms, check-interval 200 ms)`);
    assert(elapsed <= 3 * 2000 + 2 * 200 + 300, `within 3 heartbeat intervals (+ one check): ${elapsed} ms`);
    const lost = await until("3 node-lost disconnects", async () => {
      const l = [...(await nodeLost("gwA", "/")), ...(await nodeLost("gwA", "/chat"))];
      return l.length >= 3 ? l : null;
    });
    assertEqual(lost.map((x) => x.sid).sort(), lostIds.sort(), "one node-lost disconnect per lost socket");
    assert((await upstream("/")).length + (await upstream("/chat")).length >= before + 3, "appended upstream");
    assertEqual(await smembers("sioc:user:u1"), [u1b.id], "u1 keeps the gwB socket");
    assertEqual(await smembers("sioc:node-sids:gwB"), [u1b.id, u3b.id].sort(), "gwB untouched");
    // broker killed and restarted while clients come and go: afterwards the mirror is the truth
    process.kill(broker.pid, "SIGKILL");
    await broker.stop();
    const extra = await connect(gwB.port, "/", { auth: { token: jwt("u4") } });
    clients.push(extra);
    u3b.close();
    await sleep(300);
    broker = await startServer(BROKER, brokerArgs);
    await until("mirror == gwB's sockets", async () => JSON.stringify(await smembers("sioc:node-sids:gwB")) === JSON.stringify([u1b.id, extra.id].sort()), 5000);
    assertEqual(await smembers("sioc:user:u4"), [extra.id], "u4 registered while the broker was down");
    assertEqual(await smembers("sioc:user:u3"), [], "u3 gone while the broker was down");
  } finally {
    clients.forEach((c) => c.close());
    await gwA.stop();
    await gwB.stop();
  }
}, 40000);

test("anti-entropy: a mirror that lost a gateway's socket is noticed and repaired from a snapshot", async () => {
  const gw = await startServer(GATEWAY, gwArgs("gw-ae"));
  let socket;
  try {
    socket = await connect(gw.port, "/", { auth: { token: jwt("ae-user") } });
    const sid = socket.id;
    await until("the socket in the mirror", async () => (await sidHash(sid)) !== null);
    // what a Redis failover could do: the mirror forgets the socket, the gateway still has it
    await cmd("DEL", `sioc:sid:${sid}`);
    await cmd("SREM", "sioc:node-sids:gw-ae", sid);
    await cmd("SREM", "sioc:user:ae-user", sid);
    const start = Date.now();
    // the broker compares the node's reported count with the mirror, asks for a snapshot
    // ({"t":"snapshot"} on P:node:gw-ae), and the gateway's snapshot restores the entry
    await until("the mirror repaired", async () => (await sidHash(sid)) !== null &&
      (await smembers("sioc:user:ae-user")).includes(sid), 15000);
    console.log(`mirror repaired ${Date.now() - start} ms after the loss`);
    assertEqual((await sidHash(sid)).node, "gw-ae", "node of the repaired entry");
    assert((await metric("sioc_broker_snapshot_requests_total")) >= 1, "a snapshot was requested");
  } finally {
    if (socket) socket.disconnect();
    await gw.stop();
  }
}, 30000);

const ok = await run();
await r.quit();
await broker.stop();
await redis.stop();
process.exit(ok ? 0 : 1);
