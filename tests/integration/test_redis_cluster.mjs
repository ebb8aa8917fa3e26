// test_redis_cluster.mjs: issue 17, sioc on a real Redis Cluster (six redis-servers, three
// masters and three replicas, lib/redis_cluster.mjs): two gateways, the broker and the Python
// SDK test worker, all on redis-cluster://<two seeds>, with upstream-shards 3. Clients on both
// gateways: events answered by the worker through upstream streams that sit on three different
// masters (checked with CLUSTER KEYSLOT / CLUSTER NODES), a room broadcast across gateways
// (classic adapter: Redis Cluster forwards PUBLISH to every node), the registry mirrored by the
// broker into {sioc}:* keys of one slot. Then failover under load: clients keep sending acked
// events while a replica takes over with CLUSTER FAILOVER, then while a master is killed (-9):
// clients stay connected, every event is answered (none lost upstream), room fan-out resumes;
// the seconds are printed.
import { io as ioc } from "socket.io-client";
import { BROKER, GATEWAY, assert, assertEqual, createRunner, get, post, sleep, startProcess, startServer, until, within } from "./lib/harness.mjs";
import { cli, killOnExit, startRedisCluster } from "./lib/redis_cluster.mjs";

const { test, run } = createRunner("test_redis_cluster");

const cluster = await startRedisCluster();
const started = killOnExit(cluster);

const SHARDS = 3;
const url = cluster.url;
const gwArgs = (node) => ["--redis", url, "--namespaces", "/", "--node-id", node, "--upstream-shards", String(SHARDS),
  "--log-level", "info", "--node-timeout", "4000"];
const gw1 = await startServer(GATEWAY, gwArgs("gw1"));
started.push(gw1.pid);
const gw2 = await startServer(GATEWAY, gwArgs("gw2"));
started.push(gw2.pid);
const broker = await startServer(BROKER, ["--redis", url, "--upstream-shards", String(SHARDS), "--check-interval", "200",
  "--node-timeout", "4000", "--log-level", "info"]);
started.push(broker.pid);
const worker = await startProcess("/usr/bin/python3", ["tests/integration/worker.py", "--redis", url, "--namespaces", "/",
  "--shards", String(SHARDS), // stderr quiet (stdout lines stay whole), unless it logs to a file
  "--log-level", process.env.SIOC_TEST_WORKER_LOG_FILE ? "WARNING" : "CRITICAL"], "worker ready");
started.push(worker.pid);

const waitFor = (what, fn, ms = 10000) => until(what, fn, ms, { every: 50 });
const ready = async (port) => (await get(port, "/readyz")).status === 200;

const clients = [];
async function connect(port) {
  const s = ioc(`http://127.0.0.1:${port}`, { transports: ["websocket"], reconnection: false });
  s.got = [];
  s.drops = 0;
  s.onAny((event, ...args) => s.got.push([event, ...args]));
  s.on("disconnect", () => s.drops++);
  clients.push(s);
  await within(5000, new Promise((r) => s.once("connect", r)), "socket.io connect");
  return s;
}
function ack(s, event, ...args) {
  return within(12000, new Promise((r) => s.emit(event, ...args, (...got) => r(got))), `${event} ack`);
}

// the three streams of namespace "/" (docs/contracts.md "Redis Cluster")
const streams = ["sioc:up:/:{0.1}", "sioc:up:/:{1.0}", "sioc:up:/:{2.0}"];

let a, b;
test("gateways, broker and worker come up on redis-cluster://", async () => {
  await waitFor("both gateways ready", async () => (await ready(gw1.port)) && (await ready(gw2.port)));
  await waitFor("broker ready", () => ready(broker.port));
  assert(/redis\.slot_map[^\n]*3 masters, 16384 slots/.test(gw1.log()), `gateway log: ${gw1.log()}`);
});

test("events from both gateways reach the worker through streams on three masters; replies come back", async () => {
  a = await connect(gw1.port);
  b = await connect(gw2.port);
  const more = [];
  for (let i = 0; i < 8; i++) more.push(await connect(i % 2 ? gw2.port : gw1.port));
  for (const s of [a, b, ...more]) assertEqual(await ack(s, "echo", "hi", s.id), ["hi", s.id], "echo ack");
  await waitFor("the echo events", () => a.got.some((e) => e[0] === "echo" && e[1] === "hi"));
  // a socket's shard is fnv1a32(sid) % 3: ten random sids leave one shard empty in ~5 % of runs,
  // so more sockets send an event until every stream has one (bounded: 3*(2/3)^40 is ~1e-7)
  const filled = async () => {
    for (const key of streams)
      if (Number(await cli((await cluster.masterOf(key)).port, "xlen", key)) === 0) return false;
    return true;
  };
  for (let i = 0; i < 30 && !(await filled()); i++) {
    const s = await connect(i % 2 ? gw2.port : gw1.port);
    assertEqual(await ack(s, "echo", "hi", s.id), ["hi", s.id], "echo ack");
    more.push(s);
  }
  // every shard stream exists, each on its own master
  const masters = new Set();
  for (const key of streams) {
    const m = await cluster.masterOf(key);
    const len = Number(await cli(m.port, "xlen", key));
    assert(len > 0, `${key} is empty on its master ${m.port}`);
    masters.add(m.port);
  }
  assertEqual(masters.size, 3, "the three upstream streams are on three masters");
  // nothing is left under the single-Redis names
  assertEqual(await cli(cluster.anyPort(), "-c", "exists", "sioc:up:/:0"), "0", "no single-Redis stream name");
});

test("a room broadcast crosses gateways (classic adapter on the cluster)", async () => {
  assertEqual(await within(5000, a.emitWithAck("join", "r"), "join a"), "r", "join a");
  assertEqual(await within(5000, b.emitWithAck("join", "r"), "join b"), "r", "join b");
  await within(5000, a.emitWithAck("room_msg", "r", "to the room"), "room_msg");
  await waitFor("the room message on the other gateway", () => b.got.some((e) => e[0] === "room_msg" && e[1] === "to the room"));
});

test("the broker mirrors the registry into {sioc}:* keys of one slot; its emit API works", async () => {
  await waitFor("room r with 2 members in the broker", async () => {
    const r = await get(broker.port, "/v1/rooms?nsp=/");
    return r.status === 200 && JSON.parse(r.body).some((x) => x.room === "r" && x.count === 2);
  });
  const home = await cluster.masterOf("{sioc}:registry");
  const members = (await cli(home.port, "smembers", "{sioc}:room:/:r")).split("\n").sort();
  assertEqual(members, [a.id, b.id].sort(), "mirror room set on the registry's master");
  assertEqual(await cluster.keyslot("{sioc}:sid:x"), await cluster.keyslot("{sioc}:registry"), "one slot");
  const nodes = JSON.parse((await get(broker.port, "/v1/nodes")).body);
  assert(JSON.stringify(nodes).includes("gw1") && JSON.stringify(nodes).includes("gw2"), `nodes: ${JSON.stringify(nodes)}`);
  const r = await post(broker.port, "/v1/emit", JSON.stringify({ nsp: "/", event: "news", args: ["from broker"], rooms: ["r"] }),
    "Content-Type: application/json\r\n");
  assertEqual(r.status, 200, `emit: ${r.body}`);
  await waitFor("the broker's broadcast on both clients", () =>
    [a, b].every((s) => s.got.some((e) => e[0] === "news" && e[1] === "from broker")));
});

// 'ack' events each client sent so far (the worker's log must show at least as many)
const sentBy = new Map();

// The worker's log line per handled entry: "event / <sid> <stream id> ack" (its handler threads
// print concurrently: a line's newline may come after the next line)
function handledBy() {
  const counts = new Map();
  for (const m of worker.output().matchAll(/event \/ (\S+) \d+-\d+ ack(?=\n|event|$)/g)) counts.set(m[1], (counts.get(m[1]) || 0) + 1);
  return counts;
}

// Clients send one acked event every 50 ms each while `disrupt` runs. Upstream: every event must
// reach the worker (counted in its log; a retried XADD may add a duplicate). Replies: pub/sub
// (DESIGN.md §3.3, at-most-once): one published while the gateway's subscription is moving to a
// new master is lost, so acks are counted and printed, and must all come back when the
// gateway's subscription stays where it is.
async function underLoad(label, disrupt, { repliesMayDrop = false } = {}) {
  const senders = clients.slice(0, 10);
  let sent = 0;
  let answered = 0;
  let stop = false;
  const pending = [];
  const missing = [];
  const loops = senders.map(async (s, k) => {
    for (let i = 0; !stop; i++) {
      const t = Date.now();
      sent++;
      sentBy.set(s.id, (sentBy.get(s.id) || 0) + 1);
      pending.push(ack(s, "ack", label, k, i).then(
        (got) => {
          assertEqual(got, [label, k, i], "ack args");
          answered++;
          return Date.now() - t;
        },
        () => {
          missing.push(`${s.id}/${k}/${i}`);
          return null;
        },
      ));
      await sleep(50);
    }
  });
  await sleep(500);
  const t0 = Date.now();
  await disrupt();
  // fan-out: a room message through the worker, until it arrives on the other gateway
  let fanout = null;
  for (let i = 0; fanout === null && Date.now() - t0 < 20000; i++) {
    const tag = `${label}-${i}`;
    a.emit("room_msg", "r", tag);
    await sleep(100);
    if (b.got.some((e) => e[0] === "room_msg" && e[1] === tag)) fanout = Date.now() - t0;
  }
  await sleep(1000);
  stop = true;
  await Promise.all(loops);
  const latencies = await within(30000, Promise.all(pending), "every ack");
  if (missing.length) console.log(`${label}: ${missing.length} not answered, first: ${missing.slice(0, 5).join(" ")}`);
  const worst = Math.max(...latencies.filter((x) => x !== null));
  await waitFor("the worker to log every event", () => senders.every((s) => (handledBy().get(s.id) || 0) >= sentBy.get(s.id)), 20000)
    .catch(async (err) => {
      const h = handledBy();
      console.log(senders.map((s) => `${s.id}: sent ${sentBy.get(s.id)} handled ${h.get(s.id) || 0}`).join("\n"));
      const before = worker.output().length;
      process.kill(worker.pid, "SIGUSR1"); // worker.py: every thread's stack on stderr
      await sleep(1000);
      console.log(`worker output tail:\n${worker.output().slice(before - 600)}`);
      throw err;
    });
  console.log(`${label}: ${sent} events sent by ${senders.length} clients, all ${sent} reached the worker, ` +
    `${answered} acks back (${sent - answered} replies lost while a subscription moved), ` +
    `worst ack ${(worst / 1000).toFixed(2)} s, room fan-out back after ${(fanout / 1000).toFixed(2)} s`);
  if (repliesMayDrop) assert(sent - answered <= 3 * senders.length, `${sent - answered} replies lost`);
  else assertEqual(answered, sent, "every event answered");
  assert(fanout !== null, "room fan-out resumed");
  assert(senders.every((s) => s.connected && s.drops === 0), "clients stayed connected");
}

test("CLUSTER FAILOVER on a replica under load: no event lost, clients stay connected", async () => {
  const m = await cluster.masterOf(streams[1]);
  await underLoad("cluster-failover", async () => {
    assertEqual(await cli(m.replica, "cluster", "failover"), "OK", "CLUSTER FAILOVER");
  });
  await waitFor("the replica is master", async () => (await cluster.masterOf(streams[1])).port === m.replica);
}, 60000);

test("kill -9 of the master of slot 0 (the pub/sub home and shard 0 stream) under load: no event lost", async () => {
  const m = await cluster.masterOf(0);
  await underLoad("kill-9", async () => {
    await cluster.node(m.port).kill();
  }, { repliesMayDrop: true }); // the gateways' classic subscription lived on that master
  await waitFor("a new master of slot 0", async () => (await cluster.masterOf(0))?.port === m.replica, 20000);
  await waitFor("gateways ready", async () => (await ready(gw1.port)) && (await ready(gw2.port)), 20000);
  assert(/redis\.slot_map/.test(gw1.log()), "slot map reloaded");
}, 90000);

test("after the failovers: the mirror still right, the worker's groups intact", async () => {
  await waitFor("room r still has 2 members", async () => {
    const r = await get(broker.port, "/v1/rooms?nsp=/");
    return r.status === 200 && JSON.parse(r.body).some((x) => x.room === "r" && x.count === 2);
  }, 20000);
  const c = await connect(gw2.port);
  assertEqual(await ack(c, "echo", "late"), ["late"], "a new client's event");
}, 40000);

await run();
for (const s of clients) s.close();
await worker.stop();
for (const p of [gw1, gw2, broker]) await p.stop();
await cluster.stop();
