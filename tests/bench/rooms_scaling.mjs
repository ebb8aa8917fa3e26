// rooms_scaling.mjs: the many-rooms chat workload of docs/scaling.md. G gateways (release build)
// on loopback, on one redis-server 7 (--redis single) or a Redis Cluster of three masters and
// three replicas (--redis cluster, lib/redis_cluster.mjs), in `adapter classic` and `adapter
// sharded` (subscription-mode dynamic). N socket.io clients spread evenly over the gateways, put
// into R rooms (N/R members each) by the broker's /v1/join; per phase a room's members sit on
// `spread` gateways (1: every room local to one gateway ... G: every room on every gateway).
// Then M room broadcasts, round-robin over the rooms, are published as the SDK worker and the
// broker publish them (classic: the emitter's MessagePack PUBLISH on <key>#/#<room>#; sharded:
// the ClusterAdapter JSON BROADCAST SPUBLISHed on the room's channel), from a node-redis client.
// Per phase: the broadcasts each gateway read (sioc_broadcasts_received_total), the deliveries,
// Redis CPU per node (INFO cpu: masters and replicas apart), gateway CPU (/proc), and the time
// until every client got every message meant for it. Redis CPU is net of its idle rate (measured
// for 5 s with every socket connected and no traffic), the raw figure kept in the JSON. Writes tests/bench/results/<stamp>-rooms.{json,md}.
//   node tests/bench/rooms_scaling.mjs [--redis cluster|single] [--gateways 8] [--sockets 4000]
//        [--rooms 400] [--messages 4000] [--spreads 1,2,8] [--modes classic,sharded]
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { io as ioc } from "socket.io-client";
import { createClient, createCluster } from "redis";
import notepack from "notepack.io";
import { get, post, repo, sleep, startRedis, startServer, until } from "../integration/lib/harness.mjs";
import { cli, startRedisCluster } from "../integration/lib/redis_cluster.mjs";

const argv = process.argv.slice(2);
const arg = (n, d) => (argv.indexOf(`--${n}`) >= 0 ? argv[argv.indexOf(`--${n}`) + 1] : d);
const REDIS = arg("redis", "cluster");
const G = Number(arg("gateways", 8)), N = Number(arg("sockets", 4000)), R = Number(arg("rooms", 400));
const M = Number(arg("messages", 4000));
const SPREADS = arg("spreads", `1,2,${G}`).split(",").map(Number);
const MODES = arg("modes", "classic,sharded").split(",");
const GATEWAY = process.env.SIOC_GATEWAY || "build/sioc-gateway";
const BROKER = process.env.SIOC_BROKER || "build/sioc-broker";
const TICK = 100; // clock ticks per second (/proc/<pid>/stat)

function cpuOf(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(f[11]) + Number(f[12])) / TICK; // utime + stime
}
async function metric(gw, name) {
  const line = (await get(gw.port, "/metrics")).body.toString().split("\n").find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(" ").pop()) : NaN;
}
async function redisCpu(port) {
  const info = await cli(port, "info", "cpu");
  const v = (k) => Number(info.match(new RegExp(`${k}:([0-9.]+)`))[1]);
  return v("used_cpu_sys") + v("used_cpu_user");
}
async function roles(redis) {
  if (!redis.cluster) return [{ port: redis.port, role: "master" }];
  const out = [];
  for (const n of redis.cluster.nodes) {
    const r = await cli(n.port, "role");
    out.push({ port: n.port, role: r.split("\n")[0] });
  }
  return out;
}

async function startBackend() {
  if (REDIS === "cluster") {
    const cluster = await startRedisCluster();
    return { url: cluster.url, cluster, stop: () => cluster.stop(),
      client: () => createCluster({ rootNodes: cluster.seeds.map((s) => ({ url: `redis://${s}` })) }) };
  }
  const redis = await startRedis();
  return { url: redis.url, port: Number(redis.url.split(":").pop()), stop: () => redis.stop(),
    client: () => createClient({ url: redis.url }) };
}

function encode(mode, room, i) {
  const payload = ["m", i, "x".repeat(100)];
  if (mode === "classic")
    return [`socket.io#/#${room}#`, notepack.encode(["emitter", { type: 2, data: payload, nsp: "/" }, { rooms: [room], flags: {}, except: [] }])];
  return [`socket.io#/#${room}#`, JSON.stringify({ type: 3, data: { packet: { type: 2, data: payload },
    opts: { rooms: [room], except: [], flags: {} } }, uid: "emitter", nsp: "/" })];
}

async function runMode(mode) {
  const be = await startBackend();
  const pub = be.client();
  pub.on("error", () => {});
  await pub.connect();
  const gateways = [];
  for (let g = 0; g < G; g++)
    gateways.push(await startServer(GATEWAY, ["--redis", be.url, "--upstream", "off", "--adapter", mode,
      "--node-id", `gw${g}`, "--max-connections", String(N), "--log-level", "warn"]));
  const broker = await startServer(BROKER, ["--redis", be.url, "--adapter", mode, "--log-level", "warn"]);
  let received = 0;
  const sockets = [];
  const t0 = Date.now();
  for (let i = 0; i < N; i++) {
    const g = i % G;
    const s = ioc(`http://127.0.0.1:${gateways[g].port}`, { forceNew: true, transports: ["websocket"], reconnection: false });
    s.on("m", () => received++);
    s.gw = g;
    sockets.push(s);
    if (i % 200 === 199) await until("connects", () => sockets.every((x) => x.connected), 60000, { every: 20 });
  }
  await until("every socket connected", () => sockets.every((x) => x.connected), 60000, { every: 20 });
  console.log(`  ${mode}: ${N} sockets on ${G} gateways connected in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const byGw = Array.from({ length: G }, (_, g) => sockets.filter((s) => s.gw === g));
  // Redis's own CPU with every socket connected and no traffic (cluster cron, bus pings), per
  // second and node: subtracted from each phase's figure (net)
  const rsIdle = await roles(be);
  const idle0 = await Promise.all(rsIdle.map((n) => redisCpu(n.port)));
  const idleStart = Date.now();
  await sleep(5000);
  const idleRate = (await Promise.all(rsIdle.map((n) => redisCpu(n.port)))).map((c, i) => (c - idle0[i]) / ((Date.now() - idleStart) / 1000));
  const phases = [];
  for (const spread of SPREADS) {
    // room r: N/R members on gateways r, r+1, ..., r+spread-1 (mod G), round-robin
    const per = Math.floor(N / R);
    const taken = new Array(G).fill(0);
    const members = [];
    for (let r = 0; r < R; r++) {
      const sids = [];
      for (let j = 0; j < per; j++) {
        const g = (r + (j % spread)) % G;
        sids.push(byGw[g][taken[g]++ % byGw[g].length].id);
      }
      members.push(sids);
      const res = await post(broker.port, "/v1/join", JSON.stringify({ sids, to: [`s${spread}-r${r}`] }),
        "Content-Type: application/json\r\n");
      if (res.status !== 200) throw new Error(`join: ${res.status} ${res.body}`);
    }
    await sleep(1500); // the joins applied and the room channels subscribed
    const rs = await roles(be);
    const before = await Promise.all(gateways.map((gw) => metric(gw, "sioc_broadcasts_received_total")));
    const gcpu0 = gateways.map((gw) => cpuOf(gw.pid));
    const rcpu0 = await Promise.all(rs.map((n) => redisCpu(n.port)));
    const got0 = received;
    const start = Date.now();
    for (let i = 0; i < M; i++) {
      const [ch, msg] = encode(mode, `s${spread}-r${i % R}`, i);
      if (mode === "classic") pub.publish(ch, msg).catch(() => {});
      else pub.sPublish(ch, msg).catch(() => {});
      if (i % 100 === 99) await sleep(1);
    }
    const want = M * per;
    await until(`${want} deliveries`, () => received - got0 >= want, 120000, { every: 5 }).catch(() => {});
    await sleep(300);
    const ms = Date.now() - start - 300;
    const span = (Date.now() - start) / 1000;
    const rcpuRaw = (await Promise.all(rs.map((n) => redisCpu(n.port)))).map((c, i) => c - rcpu0[i]);
    const rcpu = rcpuRaw.map((c, i) => Math.max(0, c - idleRate[rsIdle.findIndex((x) => x.port === rs[i].port)] * span));
    const after = await Promise.all(gateways.map((gw) => metric(gw, "sioc_broadcasts_received_total")));
    const read = after.map((a, i) => a - before[i]);
    const gcpu = gateways.map((gw, i) => cpuOf(gw.pid) - gcpu0[i]);
    const sum = (a) => a.reduce((x, y) => x + y, 0);
    const phase = {
      mode, redis: REDIS, spread, sockets: N, rooms: R, messages: M, ms, deliveries: received - got0, wanted: want,
      readPerGateway: read, readMean: sum(read) / G,
      redisCpuMasters: Number(sum(rcpu.filter((_, i) => rs[i].role === "master")).toFixed(2)),
      redisCpuReplicas: Number(sum(rcpu.filter((_, i) => rs[i].role !== "master")).toFixed(2)),
      redisCpuPerNode: rcpu.map((c, i) => `${rs[i].role[0]}:${c.toFixed(2)}`),
      redisCpuRawMasters: Number(sum(rcpuRaw.filter((_, i) => rs[i].role === "master")).toFixed(2)),
      redisIdleCpuPerSecond: Number(sum(idleRate).toFixed(4)),
      gatewayCpu: Number(sum(gcpu).toFixed(2)),
    };
    console.log(JSON.stringify(phase));
    phases.push(phase);
  }
  for (const s of sockets) s.disconnect();
  for (const gw of [...gateways, broker]) await gw.stop();
  await pub.disconnect().catch(() => {});
  await be.stop();
  return phases;
}

console.log(`${REDIS} Redis, ${G} gateways, ${N} sockets in ${R} rooms, ${M} room broadcasts per phase, spreads ${SPREADS}`);
const all = [];
for (const mode of MODES) all.push(...(await runMode(mode)));
const stamp = new Date().toISOString().replace(/[T:]/g, "-").slice(0, 19);
const base = path.join(repo, "tests/bench/results", `${stamp}-rooms-${REDIS}`);
writeFileSync(`${base}.json`, JSON.stringify({ args: { REDIS, G, N, R, M, SPREADS, MODES }, phases: all }, null, 1));
const rows = all.map((p) => `| ${p.mode} | ${p.spread} | ${p.readMean.toFixed(0)} | ${Math.min(...p.readPerGateway)}–${Math.max(...p.readPerGateway)} | ` +
  `${p.deliveries}/${p.wanted} | ${p.redisCpuMasters} | ${p.redisCpuReplicas} | ${p.gatewayCpu} | ${(p.ms / 1000).toFixed(2)} |`);
writeFileSync(`${base}.md`, [`${REDIS} Redis, ${G} gateways, ${N} sockets in ${R} rooms, ${M} room broadcasts per phase`, "",
  "| mode | spread | read/gateway (mean) | read min–max | deliveries | Redis CPU s (masters) | (replicas) | gateways CPU s | s |",
  "|---|---|---|---|---|---|---|---|---|", ...rows, ""].join("\n"));
console.log(`results: ${base}.{json,md}`);
process.exit(0);
