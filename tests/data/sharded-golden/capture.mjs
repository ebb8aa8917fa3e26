// capture.mjs: records the messages real Node peers exchange with @socket.io/redis-adapter's
// createShardedAdapter (Redis 7 SPUBLISH/SSUBSCRIBE), into captures.json next to this file.
// Two socket.io servers (A, B) in this process on a private redis-server, clients on both; a
// spy connection SSUBSCRIBEs to every channel the peers use and writes each message with its
// channel, raw bytes (hex) and decoded form. Run from the repository root:
//   node tests/data/sharded-golden/capture.mjs
// The captured uids and requestIds are random: tests read them from the "decoded" field.
import http from "node:http";
import { writeFileSync, readFileSync } from "node:fs";
import path from "node:path";
import { Server } from "socket.io";
import { io as ioc } from "socket.io-client";
import { createClient } from "redis";
import { createShardedAdapter } from "@socket.io/redis-adapter";
import notepack from "notepack.io";
import { repo, sleep, startRedis, until } from "../../integration/lib/harness.mjs";

const out = path.join(path.dirname(new URL(import.meta.url).pathname), "captures.json");
const version = (p) => JSON.parse(readFileSync(path.join(repo, "node_modules", p, "package.json"), "utf8")).version;
const redis = await startRedis();

async function nodeServer(mode) {
  const pub = createClient({ url: redis.url });
  const sub = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);
  const httpServer = http.createServer();
  const io = new Server(httpServer);
  io.adapter(createShardedAdapter(pub, sub, { subscriptionMode: mode }));
  io.of("/chat");
  await new Promise((r) => httpServer.listen(0, "127.0.0.1", r));
  return { io, port: httpServer.address().port, pub, sub, httpServer };
}

const A = await nodeServer("dynamic");
const B = await nodeServer("dynamic");
B.io.on("connection", (s) => s.join("room1"));
B.io.on("ping-servers", (arg, cb) => cb(`B got ${arg}`));

const captures = [];
let label = "";
const spy = createClient({ url: redis.url });
await spy.connect();
const subscribed = new Set();
async function watch(channel) {
  if (subscribed.has(channel)) return;
  subscribed.add(channel);
  await spy.sSubscribe(channel, (msg, ch) => {
    const json = msg[0] === 0x7b;
    const v = json ? JSON.parse(msg.toString()) : notepack.decode(msg);
    const norm = (x) =>
      Buffer.isBuffer(x) ? { $bin: x.toString("hex") }
      : Array.isArray(x) ? x.map(norm)
      : x && typeof x === "object" ? Object.fromEntries(Object.entries(x).map(([k, y]) => [k, norm(y)]))
      : x;
    captures.push({ label, channel: ch.toString(), bytes: msg.length, encoding: json ? "json" : "msgpack", hex: msg.toString("hex"), decoded: norm(v) });
  }, true);
}
for (const s of [A, B])
  for (const nsp of ["/", "/chat"]) {
    await watch(`socket.io#${nsp}#`);
    await watch(`socket.io#${nsp}#${s.io.of(nsp).adapter.uid}#`);
  }
for (const room of ["room1", "room2", "room3"]) await watch(`socket.io#/#${room}#`);

async function client(port, nsp = "/") {
  const socket = ioc(`http://127.0.0.1:${port}${nsp}`, { forceNew: true, transports: ["websocket"], auth: { token: "t" } });
  socket.on("ask", (x, cb) => cb(`acked ${x}`));
  socket.on("askbin", (cb) => cb(Buffer.from([7, 8])));
  await new Promise((r) => socket.once("connect", r));
  return socket;
}
const a1 = await client(A.port);
const b1 = await client(B.port);
await client(B.port, "/chat");
await sleep(300);

async function step(name, fn) {
  label = name;
  const before = captures.length;
  // the spy is one more SSUBSCRIBEr of the main channel, so PUBSUB SHARDNUMSUB counts it as a
  // server: requests that wait for every server time out here (the messages are what counts)
  await Promise.resolve().then(fn).catch(() => {});
  await until(`${name} captured`, () => captures.length > before, 3000);
  await sleep(300);
}

await step("broadcast-all", () => A.io.emit("hello", "all", 1));
await step("broadcast-room", () => A.io.to("room1").emit("room-msg", { x: 1 }));
await step("broadcast-rooms-except", () => A.io.to(["room1", "room2"]).except("room3").emit("multi", 1.5));
await step("broadcast-sid", () => A.io.to(b1.id).emit("to-sid", "s"));
await step("broadcast-volatile", () => A.io.volatile.emit("vol", null));
await step("broadcast-binary", () => A.io.emit("bin", Buffer.from([1, 2, 3]), { nested: Buffer.from([4]) }));
await step("broadcast-binary-room", () => A.io.to("room1").emit("binroom", Buffer.from([5])));
await step("broadcast-chat", () => A.io.of("/chat").emit("chat", "hi"));
await step("broadcast-ack", () => A.io.timeout(1000).emitWithAck("ask", "q"));
await step("broadcast-ack-binary", () => A.io.to("room1").timeout(1000).emitWithAck("askbin"));
await step("fetch-sockets", () => A.io.timeout(1000).fetchSockets());
await step("fetch-sockets-room", () => A.io.in("room1").except("room2").timeout(1000).fetchSockets());
await step("sockets-join", () => A.io.in(b1.id).socketsJoin(["room2", "room3"]));
await step("sockets-leave", () => A.io.in("room3").socketsLeave("room2"));
await step("server-side-emit", () => A.io.serverSideEmit("hello-servers", 1, "two"));
await step("server-side-emit-ack", () => { A.io.serverSideEmitWithAck("ping-servers", "x").catch(() => {}); });
await step("disconnect-sockets", () => A.io.in(b1.id).disconnectSockets(true));
void a1;

// dynamic-private: a socket-id room gets a channel of its own
const P = await nodeServer("dynamic-private");
const Q = await nodeServer("dynamic-private");
const q1 = await client(Q.port);
await watch(`socket.io#/#${q1.id}#`);
await sleep(200);
await step("private-broadcast-sid", () => P.io.to(q1.id).emit("private", 1));
await step("private-broadcast-ack-sid", () => P.io.to(q1.id).timeout(1000).emitWithAck("ask", "p"));

writeFileSync(out, JSON.stringify({
  source: `Captured on loopback from socket.io ${version("socket.io")} + @socket.io/redis-adapter ${version("@socket.io/redis-adapter")} (createShardedAdapter) + socket.io-adapter ${version("socket.io-adapter")}, redis-server ${redis.version || "7"}, key 'socket.io'. Servers A and B in subscriptionMode 'dynamic' ('private-*': P and Q in 'dynamic-private'). Node adapter uids: A '/' ${A.io.of("/").adapter.uid}, A '/chat' ${A.io.of("/chat").adapter.uid}, B '/' ${B.io.of("/").adapter.uid}, B '/chat' ${B.io.of("/chat").adapter.uid}, P '/' ${P.io.of("/").adapter.uid}, Q '/' ${Q.io.of("/").adapter.uid}. Script: capture.mjs.`,
  captures,
}, null, 1) + "\n");
console.log(`${captures.length} captures written to ${out}`);
process.exit(0);
