// sharded_rooms.mjs: `adapter classic` against `adapter sharded` (subscription-mode dynamic) for
// a many-rooms workload on one redis-server 7: G gateways (release build), each with R rooms of
// its own (S sockets per room, every room local to one gateway), and one Node socket.io server
// with the matching adapter broadcasting M room messages round-robin over all rooms. Reports per
// mode: the broadcasts each gateway read from Redis (sioc_broadcasts_received_total), the
// deliveries, Redis CPU (INFO used_cpu_sys + used_cpu_user) and the time until every client got
// every message meant for it.
//   node tests/bench/sharded_rooms.mjs [--gateways 4] [--rooms 50] [--sockets 2] [--messages 4000]
import http from "node:http";
import { Server } from "socket.io";
import { io as ioc } from "socket.io-client";
import { createClient } from "redis";
import { createAdapter, createShardedAdapter } from "@socket.io/redis-adapter";
import { get, sleep, startRedis, startServer, until } from "../integration/lib/harness.mjs";

const argv = process.argv.slice(2);
const opt = (n, d) => (argv.indexOf(`--${n}`) >= 0 ? Number(argv[argv.indexOf(`--${n}`) + 1]) : d);
const G = opt("gateways", 4), R = opt("rooms", 50), S = opt("sockets", 2), M = opt("messages", 4000);
const GATEWAY = process.env.SIOC_GATEWAY || "build/sioc-gateway";

async function metric(gw, name) {
  const body = (await get(gw.port, "/metrics")).body.toString();
  const line = body.split("\n").find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(" ").pop()) : NaN;
}

async function redisCpu(cmd) {
  const info = await cmd.info("cpu");
  const v = (k) => Number(info.match(new RegExp(`${k}:([0-9.]+)`))[1]);
  return v("used_cpu_sys") + v("used_cpu_user");
}

async function runMode(mode) {
  const redis = await startRedis();
  const cmd = createClient({ url: redis.url });
  const pub = createClient({ url: redis.url });
  const sub = pub.duplicate();
  await Promise.all([cmd.connect(), pub.connect(), sub.connect()]);
  const httpServer = http.createServer();
  const io = new Server(httpServer);
  io.adapter(mode === "classic" ? createAdapter(pub, sub) : createShardedAdapter(pub, sub));
  await new Promise((r) => httpServer.listen(0, "127.0.0.1", r));
  const gateways = [];
  for (let g = 0; g < G; g++)
    gateways.push(await startServer(GATEWAY, ["--redis", redis.url, "--upstream", "off", "--adapter", mode, "--log-level", "warn"]));
  let received = 0;
  const sockets = [];
  for (let g = 0; g < G; g++) {
    for (let r = 0; r < R; r++) {
      for (let s = 0; s < S; s++) {
        const socket = ioc(`http://127.0.0.1:${gateways[g].port}`, { forceNew: true, transports: ["websocket"] });
        socket.on("m", () => received++);
        await new Promise((res) => socket.once("connect", res));
        sockets.push(socket);
        io.in(socket.id).socketsJoin(`g${g}-r${r}`);
      }
    }
  }
  await until("rooms joined", async () => (await io.in(`g${G - 1}-r${R - 1}`).fetchSockets()).length === S, 20000);
  await sleep(500);
  const before = await Promise.all(gateways.map((gw) => metric(gw, "sioc_broadcasts_received_total")));
  const cpu0 = await redisCpu(cmd);
  const start = Date.now();
  for (let i = 0; i < M; i++) {
    const room = i % (G * R);
    io.to(`g${Math.floor(room / R)}-r${room % R}`).emit("m", i, "x".repeat(100));
    if (i % 200 === 199) await sleep(1);
  }
  await until("all delivered", () => received === M * S, 60000, { every: 5 });
  const ms = Date.now() - start;
  await sleep(300);
  const cpu = (await redisCpu(cmd)) - cpu0;
  const after = await Promise.all(gateways.map((gw) => metric(gw, "sioc_broadcasts_received_total")));
  const read = after.map((a, i) => a - before[i]);
  for (const s of sockets) s.disconnect();
  for (const gw of gateways) await gw.stop();
  io.close();
  await Promise.all([cmd.quit(), pub.quit(), sub.quit()]);
  await redis.stop();
  return { mode, ms, redisCpuSeconds: Number(cpu.toFixed(2)), readPerGateway: read, deliveries: received };
}

console.log(`${G} gateways, ${R} rooms of ${S} sockets each per gateway, ${M} room broadcasts from one Node server`);
for (const mode of ["classic", "sharded"]) console.log(JSON.stringify(await runMode(mode)));
process.exit(0);
