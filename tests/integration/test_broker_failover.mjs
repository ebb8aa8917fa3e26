// test_broker_failover.mjs: issue 17, brokers that fail over (docs/contracts.md "Broker
// failover"). Two and three sioc-brokers on one private redis-server: exactly one is active (the
// lease P:bk:lease); kill -9 of the active while clients of two gateways connect, join, leave and
// go: a standby takes over within node-timeout (measured), the mirror ends exactly the gateways'
// truth, no live node is declared lost, and a gateway killed afterwards gets one node-lost
// disconnect per socket; a SIGSTOPped active resumed after the takeover applies nothing; entries
// held by a dead consumer are claimed, and a registry entry delivered twice is applied once.
import { io } from "socket.io-client";
import { createClient } from "redis";
import notepack from "notepack.io";
import crypto from "node:crypto";
import {
  BROKER,
  GATEWAY,
  assert,
  assertEqual,
  createRunner,
  get,
  post,
  sleep,
  startRedis,
  startServer,
  until,
  within,
} from "./lib/harness.mjs";

const NODE_TIMEOUT = 4000; // lease-timeout defaults to half of it: 2000 ms, renewed every 667 ms
const redis = await startRedis();
const r = createClient({ url: redis.url });
await r.connect();
const { test, run } = createRunner("test_broker_failover");

const cmd = (...args) => r.sendCommand(args.map((a) => (Buffer.isBuffer(a) ? a : String(a))));
const cmdBuf = (...args) => r.sendCommand(args, { returnBuffers: true });
const brokerArgs = ["--redis", redis.url, "--check-interval", "200", "--node-timeout", String(NODE_TIMEOUT), "--log-level", "info"];
const startBroker = () => startServer(BROKER, brokerArgs);
const gwArgs = (node) => ["--redis", redis.url, "--node-id", node, "--auth", "jwt", "--jwt-secret", "s",
  "--node-timeout", String(NODE_TIMEOUT), "--log-level", "warn"];

function jwt(sub) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const body = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ sub, exp: Math.floor(Date.now() / 1000) + 600 })}`;
  return `${body}.${crypto.createHmac("sha256", "s").update(body).digest("base64url")}`;
}
function connect(port, uid) {
  const socket = io(`http://127.0.0.1:${port}/`, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: jwt(uid) } });
  return within(5000, new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", reject);
  }), `connect to ${port}`);
}
const readyz = async (b) => (await get(b.port, "/readyz")).body;
const isActive = async (b) => (await readyz(b).catch(() => "")).includes("(active;");
async function metric(b, name) {
  const m = new RegExp(`^${name.replace(/[{}"]/g, (c) => `\\${c}`)} (\\d+)`, "m").exec((await get(b.port, "/metrics")).body);
  return m ? Number(m[1]) : 0;
}
const APPLIED = 'sioc_broker_registry_entries_total{result="applied"}';
const DUPS = 'sioc_broker_registry_entries_total{result="duplicate"}';
async function scan(pattern) {
  const out = [];
  let cursor = "0";
  do {
    const [next, keys] = await cmd("SCAN", cursor, "MATCH", pattern, "COUNT", 1000);
    cursor = next;
    out.push(...keys);
  } while (cursor !== "0");
  return out.sort();
}
// The whole mirror (P:sid:*, P:user:*, P:room:*, P:node-sids:*) as one comparable object.
async function mirror() {
  const sids = {};
  for (const k of await scan("sioc:sid:*")) {
    const h = await cmdBuf("HGETALL", k);
    if (h.length === 0) continue; // deleted between SCAN and HGETALL: gone from the mirror
    const o = {};
    for (let i = 0; i < h.length; i += 2) o[h[i].toString()] = h[i + 1];
    sids[k.slice(9)] = { node: o.node.toString(), uid: o.uid.toString(), rooms: notepack.decode(o.rooms).sort() };
  }
  const sets = {};
  for (const pat of ["sioc:user:*", "sioc:room:*", "sioc:node-sids:*"])
    for (const k of await scan(pat)) sets[k] = (await cmd("SMEMBERS", k)).sort();
  const sorted = {};
  for (const k of Object.keys(sets).sort()) sorted[k] = sets[k];
  return { sids, sets: sorted };
}
// What the gateways hold: every live client, its node, uid and rooms.
function truth(clients) {
  const sids = {};
  const sets = {};
  const add = (k, sid) => (sets[k] = [...(sets[k] || []), sid].sort());
  for (const c of clients.values()) {
    const rooms = [`user:${c.uid}`, ...c.rooms].sort();
    sids[c.socket.id] = { node: c.node, uid: c.uid, rooms };
    add(`sioc:user:${c.uid}`, c.socket.id);
    add(`sioc:node-sids:${c.node}`, c.socket.id);
    for (const room of rooms) add(`sioc:room:/:${room}`, c.socket.id);
  }
  const sorted = {};
  for (const k of Object.keys(sets).sort()) sorted[k] = sets[k];
  const sortedSids = {};
  for (const k of Object.keys(sids).sort()) sortedSids[k] = sids[k];
  return { sids: sortedSids, sets: sorted };
}
async function mirrorIsTruth(clients, ms = 10000) {
  let last;
  await until("the mirror to equal the gateways' sockets", async () => {
    last = await mirror();
    return JSON.stringify(last) === JSON.stringify(truth(clients));
  }, ms).catch((err) => {
    throw new Error(`${err.message}\nmirror: ${JSON.stringify(last)}\ntruth:  ${JSON.stringify(truth(clients))}`);
  });
}
async function upstreamDisconnects(node) {
  const out = [];
  for (const [, f] of await cmd("XRANGE", "sioc:up:/:0", "-", "+")) {
    const o = {};
    for (let i = 0; i < f.length; i += 2) o[f[i]] = f[i + 1];
    if (o.type === "disconnect" && o.reason === "node lost" && o.node === node) out.push(o.sid);
  }
  return out.sort();
}
async function settled() {
  await until("the active broker to consume the registry", async () => {
    const g = (await cmd("XINFO", "GROUPS", "sioc:registry")).find((x) => x[1] === "broker");
    const info = Object.fromEntries(Array.from({ length: g.length / 2 }, (_, i) => [g[2 * i], g[2 * i + 1]]));
    const last = (await cmd("XINFO", "STREAM", "sioc:registry"))[7];
    return info.pending === 0 && info["last-delivered-id"] === last;
  }, 10000);
}
async function activeOf(brokers) {
  return until("one active broker", async () => {
    const act = [];
    for (const b of brokers) if (await isActive(b)) act.push(b);
    return act.length === 1 ? act[0] : null;
  }, 10000);
}
async function stopAll(list) {
  for (const x of list) await x.stop().catch(() => {});
}

test("two, then three brokers: exactly one active, the others standing by; API and /readyz on all", async () => {
  const brokers = [await startBroker(), await startBroker()];
  try {
    const active = await activeOf(brokers);
    const standby = brokers.find((b) => b !== active);
    await until("the standby's log", () => standby.log().includes("standing by (active is "));
    assert(active.log().includes("became active"), "the active one logs it");
    brokers.push(await startBroker());
    await sleep(1500);
    let actives = 0;
    for (const b of brokers) {
      const body = await readyz(b);
      assert(/^ready \((active|standby); active: \S+\/[0-9a-f]{8}\)\n$/.test(body), `/readyz body: ${JSON.stringify(body)}`);
      actives += await metric(b, "sioc_broker_active");
      assertEqual((await get(b.port, "/v1/nodes")).status, 200, "a standby answers the API too");
    }
    assertEqual(actives, 1, "sioc_broker_active sums to 1");
    const token = await cmd("GET", "sioc:bk:lease");
    assert((await readyz(active)).includes(`active: ${token})`), `P:bk:lease holds the active token ${token}`);
    assertEqual(await isActive(brokers[2]), false, "a late broker stands by");
    // SIGTERM gives the lease up: a standby takes over without waiting for the expiry
    const t0 = Date.now();
    await active.stop();
    assert((await cmd("GET", "sioc:bk:lease")) !== token, "the stopped broker deleted its lease on the way out");
    assert(active.log().includes("releasing the lease"), "and said so");
    const next = await activeOf(brokers.filter((b) => b !== active));
    console.log(`graceful stop -> standby active in ${Date.now() - t0} ms (lease 2000 ms)`);
    assert(next.log().includes("became active"), "the next one logs it");
  } finally {
    await stopAll(brokers);
  }
}, 30000);

test("kill -9 of the active under churn: takeover within node-timeout, exact mirror, no false node lost, reaping after", async () => {
  const brokers = [await startBroker(), await startBroker(), await startBroker()];
  const gws = { gwA: await startServer(GATEWAY, gwArgs("gwA")), gwB: await startServer(GATEWAY, gwArgs("gwB")) };
  const clients = new Map(); // sid -> {socket, node, uid, rooms}
  let n = 0;
  try {
    const active = await activeOf(brokers);
    const standbys = brokers.filter((b) => b !== active);
    const apiBroker = () => standbys[n % standbys.length];
    const open = async () => {
      const node = n % 2 ? "gwA" : "gwB";
      const uid = `u${n++ % 7}`;
      const socket = await connect(gws[node].port, uid);
      clients.set(socket.id, { socket, node, uid, rooms: [] });
    };
    for (let i = 0; i < 12; i++) await open();
    await mirrorIsTruth(clients);
    // churn: connects, joins and leaves through a standby's API, closes; the active dies midway
    let stop = false;
    let steps = 0;
    const churn = (async () => {
      while (!stop) {
        const all = [...clients.values()];
        const c = all[n % all.length];
        const room = `r${n % 5}`;
        const kind = n % 4;
        n++;
        steps++;
        if (kind === 0) await open();
        else if (kind === 1 && !c.rooms.includes(room)) {
          const res = await post(apiBroker().port, "/v1/join", JSON.stringify({ sids: [c.socket.id], to: [room] }), "Content-Type: application/json\r\n");
          assertEqual(res.status, 200, "join through a standby");
          c.rooms.push(room);
        } else if (kind === 2 && c.rooms.length) {
          const res = await post(apiBroker().port, "/v1/leave", JSON.stringify({ sids: [c.socket.id], to: [c.rooms[0]] }), "Content-Type: application/json\r\n");
          assertEqual(res.status, 200, "leave through a standby");
          c.rooms.shift();
        } else if (kind === 3 && clients.size > 6) {
          clients.delete(c.socket.id);
          c.socket.close();
        }
        await sleep(20);
      }
    })();
    await sleep(800);
    const applied = await metric(active, APPLIED);
    assert(applied > 0, "the active one applied entries");
    const t0 = Date.now();
    process.kill(active.pid, "SIGKILL");
    const next = await until("a standby to become active", async () => {
      for (const b of standbys) if (await isActive(b)) return b;
      return null;
    }, 3 * NODE_TIMEOUT, { every: 10 });
    const takeover = Date.now() - t0;
    console.log(`kill -9 of the active -> standby active in ${takeover} ms (node-timeout ${NODE_TIMEOUT} ms, lease 2000 ms)`);
    await sleep(800);
    stop = true;
    await churn;
    assert(steps > 40, `churn ran across the takeover (${steps} steps)`);
    assert(takeover < NODE_TIMEOUT, `takeover within node-timeout: ${takeover} ms`);
    assertEqual(standbys.filter((b) => b !== next).length, 1, "one standby left");
    await mirrorIsTruth(clients);
    await settled();
    assertEqual(await cmd("XPENDING", "sioc:registry", "broker").then((x) => x[0]), 0, "nothing pending");
    const consumers = (await cmd("XINFO", "CONSUMERS", "sioc:registry", "broker")).map((c) => c[1]);
    assert(!consumers.some((c) => active.log().includes(`broker ${c} (lease`)), `the dead consumer was deleted: ${consumers}`);
    // no live node was declared lost across the takeover (past the new active's grace, too)
    await sleep(NODE_TIMEOUT + 500);
    assertEqual([await upstreamDisconnects("gwA"), await upstreamDisconnects("gwB")], [[], []], "no node lost for live nodes");
    assert(!next.log().includes("node.lost"), "the new active reaped nothing");
    await mirrorIsTruth(clients);
    // reaping still works: kill -9 gwA, one node-lost disconnect per socket, exactly once
    const gone = [...clients.values()].filter((c) => c.node === "gwA").map((c) => c.socket.id).sort();
    assert(gone.length > 0, "gwA had sockets");
    process.kill(gws.gwA.pid, "SIGKILL");
    await until("gwA's node-lost disconnects", async () => (await upstreamDisconnects("gwA")).length >= gone.length, 3 * NODE_TIMEOUT);
    for (const sid of gone) clients.delete(sid);
    await sleep(1500);
    assertEqual(await upstreamDisconnects("gwA"), gone, "exactly one node-lost disconnect per socket of gwA");
    assertEqual(await upstreamDisconnects("gwB"), [], "none for gwB");
    await mirrorIsTruth(clients);
    assertEqual(await cmd("LLEN", "sioc:bk:lost"), 0, "lost queue drained");
  } finally {
    for (const c of clients.values()) c.socket.close();
    await stopAll([...brokers, ...Object.values(gws)]);
  }
}, 90000);

test("SIGSTOP the active past its lease: a standby takes over; resumed, the old one applies nothing", async () => {
  const brokers = [await startBroker(), await startBroker()];
  const gw = await startServer(GATEWAY, gwArgs("gwS"));
  const clients = new Map();
  let stopped = null;
  try {
    const old = await activeOf(brokers);
    const standby = brokers.find((b) => b !== old);
    for (let i = 0; i < 4; i++) {
      const socket = await connect(gw.port, `s${i}`);
      clients.set(socket.id, { socket, node: "gwS", uid: `s${i}`, rooms: [] });
    }
    await mirrorIsTruth(clients);
    await settled();
    await sleep(300); // the old active idle in its XREAD BLOCK
    const appliedBefore = await metric(old, APPLIED);
    process.kill(old.pid, "SIGSTOP");
    stopped = old;
    await until("the standby to take over", () => isActive(standby), 3 * NODE_TIMEOUT);
    // registry traffic while the old active is paused, and after it resumes
    for (let i = 4; i < 8; i++) {
      const socket = await connect(gw.port, `s${i}`);
      clients.set(socket.id, { socket, node: "gwS", uid: `s${i}`, rooms: [] });
    }
    const first = [...clients.values()][0];
    await post(standby.port, "/v1/join", JSON.stringify({ sids: [first.socket.id], to: ["paused"] }), "Content-Type: application/json\r\n");
    first.rooms.push("paused");
    await mirrorIsTruth(clients);
    // a burst of entries in flight when the old active resumes: its blocked XREAD answered while
    // it was paused, so it wakes with work in hand and must not read or apply any of it
    const burstEpoch = crypto.randomBytes(8).toString("hex");
    await cmd("SET", "sioc:hb:burst", burstEpoch, "PX", 120000);
    const burst = Array.from({ length: 400 }, (_, i) => cmd("XADD", "sioc:registry", "*", "node", "burst", "epoch", burstEpoch,
      "seq", i + 1, "op", "connect", "nsp", "/", "sid", `b${i}`, "uid", "", "rooms", notepack.encode([])));
    await Promise.all(burst);
    process.kill(old.pid, "SIGCONT");
    stopped = null;
    await until("the old active's 'lost lease' line", () => old.log().includes("lost lease"), 5000);
    for (let i = 8; i < 12; i++) {
      const socket = await connect(gw.port, `s${i}`);
      clients.set(socket.id, { socket, node: "gwS", uid: `s${i}`, rooms: [] });
    }
    const last = [...clients.values()][1];
    clients.delete(last.socket.id);
    last.socket.close();
    await settled();
    assertEqual(await cmd("SCARD", "sioc:node-sids:burst"), 400, "the burst applied (by the new active)");
    await cmd("DEL", "sioc:hb:burst");
    await until("the burst node reaped", async () => (await cmd("EXISTS", "sioc:node-sids:burst")) === 0, 3 * NODE_TIMEOUT);
    await mirrorIsTruth(clients);
    await settled();
    await sleep(500);
    assertEqual(await metric(old, APPLIED), appliedBefore, "the resumed old active applied nothing");
    assertEqual(await metric(old, "sioc_broker_active"), 0, "it stands by");
    assert(/\(standby; active: /.test(await readyz(old)), "its /readyz says standby");
    assert(await isActive(standby), "the new active stays active");
    assertEqual(await metric(old, "sioc_broker_lease_lost_total"), 1, "it counted the loss");
    await mirrorIsTruth(clients);
  } finally {
    if (stopped) process.kill(stopped.pid, "SIGCONT");
    for (const c of clients.values()) c.socket.close();
    await stopAll([...brokers, gw]);
  }
}, 60000);

// Hand-written registry entries (DESIGN.md §3.4) of a node with a long heartbeat.
const epoch = crypto.randomBytes(8).toString("hex");
let seq = 0;
async function reg(op, sid, rooms = []) {
  await cmd("XADD", "sioc:registry", "*", "node", "hand", "epoch", epoch, "seq", ++seq, "op", op, "nsp", "/",
    "sid", sid, "uid", "", "rooms", notepack.encode(rooms));
}

test("entries a dead consumer held are claimed by the next active; an entry delivered twice is applied once", async () => {
  await cmd("SET", "sioc:hb:hand", epoch, "PX", 120000);
  const brokers = [await startBroker(), await startBroker()];
  let stopped = null;
  try {
    const old = await activeOf(brokers);
    const next = brokers.find((b) => b !== old);
    const top = await cmd("XREVRANGE", "sioc:registry", "+", "-", "COUNT", 1);
    const before1 = top.length ? top[0][0] : "0";
    await reg("connect", "h1", ["a"]);
    await settled();
    // the active dies in the middle of a batch: it had applied the first entry (h1's connect)
    // but acknowledged none of the batch, which sits in a dead consumer's pending list
    process.kill(old.pid, "SIGSTOP");
    stopped = old;
    await reg("connect", "h2", ["a"]);
    await reg("join", "h1", ["b"]);
    await reg("disconnect", "h1", ["a", "b"]);
    await cmd("XGROUP", "SETID", "sioc:registry", "broker", before1);
    const took = await cmd("XREADGROUP", "GROUP", "broker", "ghost", "COUNT", 10, "STREAMS", "sioc:registry", ">");
    assertEqual(took[0][1].length, 4, "the ghost consumer holds 4 entries, the first one applied already");
    process.kill(old.pid, "SIGKILL");
    stopped = null;
    await until("the standby to take over", () => isActive(next), 3 * NODE_TIMEOUT);
    await settled();
    assertEqual([await metric(next, APPLIED), await metric(next, DUPS)], [3, 1], "3 applied, h1's connect a duplicate");
    assertEqual(await cmd("SMEMBERS", "sioc:node-sids:hand"), ["h2"], "the ghost's entries were applied");
    assertEqual(await cmd("SMEMBERS", "sioc:room:/:a"), ["h2"], "room a");
    assertEqual(await cmd("EXISTS", "sioc:sid:h1", "sioc:room:/:b"), 0, "h1 gone");
    assert(await metric(next, "sioc_broker_registry_claimed_total") >= 3, "counted as claimed");
    const consumers = (await cmd("XINFO", "CONSUMERS", "sioc:registry", "broker")).map((c) => c[1]);
    assert(!consumers.includes("ghost"), `the emptied ghost consumer was deleted: ${consumers}`);
    // every entry delivered again (the group rewound): all duplicates, the mirror unchanged
    const before = JSON.stringify(await mirror());
    const applied = await metric(next, APPLIED);
    const dups = await metric(next, DUPS);
    const total = (await cmd("XRANGE", "sioc:registry", "-", "+")).filter(([, f]) => f[1] === "hand").length;
    await cmd("XGROUP", "SETID", "sioc:registry", "broker", "0");
    await until("the replay to be consumed", async () => (await metric(next, DUPS)) >= dups + total, 10000);
    await settled();
    assertEqual(JSON.stringify(await mirror()), before, "the mirror is unchanged by the replay");
    assertEqual(await metric(next, APPLIED), applied, "nothing applied twice");
  } finally {
    if (stopped) process.kill(stopped.pid, "SIGKILL");
    await stopAll(brokers);
  }
}, 60000);

test("options: lease-timeout must leave the takeover within node-timeout; broker-id is checked", async () => {
  const { spawnSync } = await import("node:child_process");
  const bin = `${process.cwd()}/${BROKER}`;
  const bad = spawnSync(bin, ["--node-timeout", "2000", "--lease-timeout", "1900", "--check-config"], { encoding: "utf8" });
  assertEqual(bad.status, 2, "refused");
  assert(bad.stderr.includes("lease-timeout"), `names the option: ${bad.stderr}`);
  const id = spawnSync(bin, ["--broker-id", "a b", "--check-config"], { encoding: "utf8" });
  assert(id.status === 2 && id.stderr.includes("broker-id"), `bad broker-id refused: ${id.stderr}`);
  const ok = spawnSync(bin, ["--node-timeout", "2000", "--lease-timeout", "1000", "--broker-id", "east-1", "--check-config"], { encoding: "utf8" });
  assertEqual(ok.status, 0, `accepted: ${ok.stderr}`);
  const help = spawnSync(bin, ["--help"], { encoding: "utf8" });
  assert(help.stdout.includes("lease-timeout") && help.stdout.includes("broker-id"), "--help lists them");
});

const ok = await run();
await r.quit();
await redis.stop();
process.exit(ok ? 0 : 1);
