// test_sharded.mjs: issue 17, `adapter sharded`: sioc gateways as members of a cluster of Node
// socket.io 4.8 servers running @socket.io/redis-adapter 8.3's createShardedAdapter, on one
// private redis-server 7 (SPUBLISH/SSUBSCRIBE work without cluster mode). Two gateways, two Node
// servers (node-redis v4 clients, in this process) and socket.io-client clients on each.
// `dynamic` mode (the default): Node broadcasts (all, room, union, except, /chat, volatile,
// binary), broadcasts with acks, fetchSockets, socketsJoin/Leave, serverSideEmit(WithAck),
// disconnectSockets acting on gateway sockets, every request answered promptly (Node's
// fetchSockets under a broadcast load: no 5 s stall), one SSUBSCRIBE per gateway per namespace
// (PUBSUB SHARDNUMSUB), room channels followed only while a room has local members (and a
// gateway with no member reads none of that room's broadcasts), the broker's POST /v1/emit,
// /v1/join and /v1/disconnect in the sharded format reaching Node and gateway clients alike,
// and the golden captures published raw. Then one case each for `static`, `dynamic-private` and
// `namespaces *`. (@socket.io/redis-emitter 5.1 publishes with PUBLISH only: it cannot reach
// a sharded cluster, Node's or ours; the broker is the emitter here.)
import http from "node:http";
import { readFileSync } from "node:fs";
import path from "node:path";
import { Server } from "socket.io";
import { io as ioc } from "socket.io-client";
import { createClient } from "redis";
import { createShardedAdapter } from "@socket.io/redis-adapter";
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

const captures = JSON.parse(readFileSync(path.join(repo, "tests/data/sharded-golden/captures.json"), "utf8")).captures;

const redis = await startRedis();
let rejections = 0;
const exitProblems = []; // gateways that did not exit 0 (sanitizer reports included)
process.on("unhandledRejection", () => rejections++);
const { test, run } = createRunner("test_sharded");
const cmd = createClient({ url: redis.url });
cmd.on("error", () => {});
await cmd.connect();
const shardnumsub = async (ch) => Number((await cmd.sendCommand(["PUBSUB", "SHARDNUMSUB", ch]))[1]);
const shardchannels = async (pattern) => (await cmd.sendCommand(["PUBSUB", "SHARDCHANNELS", pattern])).sort();

function normalize(v) {
  if (Buffer.isBuffer(v) || v instanceof ArrayBuffer) return { $bin: Buffer.from(v).toString("hex") };
  if (Array.isArray(v)) return v.map(normalize);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, normalize(x)]));
  return v;
}

// One mixed cluster: `key` is the adapter key (channelPrefix), so the three modes do not meet.
async function startCluster(mode, key) {
  const cl = { mode, key, clients: {}, nodes: [], gateways: [] };
  for (let i = 0; i < 2; i++) {
    const pub = createClient({ url: redis.url });
    const sub = pub.duplicate();
    for (const c of [pub, sub]) c.on("error", () => {});
    await Promise.all([pub.connect(), sub.connect()]);
    const httpServer = http.createServer();
    const io = new Server(httpServer);
    io.adapter(createShardedAdapter(pub, sub, { subscriptionMode: mode, channelPrefix: key }));
    io.of("/chat");
    io.on("ping-servers", (x, cb) => cb(`node${i} ${x}`));
    io.of("/chat").on("ping-servers", (x, cb) => cb(`node${i} chat`));
    await new Promise((r) => httpServer.listen(0, "127.0.0.1", r));
    cl.nodes.push({ io, pub, sub, httpServer, port: httpServer.address().port });
  }
  for (let i = 0; i < 2; i++) {
    cl.gateways.push(await startServer(GATEWAY, ["--redis", redis.url, "--namespaces", "/,/chat", "--node-id", `${key}-gw${i}`,
      "--upstream", "off", "--adapter", "sharded", "--subscription-mode", mode, "--adapter-key", key, "--log-level", "warn"]));
  }
  await until("4 members on the namespace channels", async () =>
    (await shardnumsub(`${key}#/#`)) === 4 && (await shardnumsub(`${key}#/chat#`)) === 4);
  cl.io = cl.nodes[0].io;
  cl.connect = (name, port, nsp = "/") => connectClient(cl, name, port, nsp);
  cl.got = (name, ev) => cl.clients[name].events.filter((e) => e.ev === ev);
  cl.stop = async () => {
    for (const c of Object.values(cl.clients)) c.socket.disconnect();
    for (const g of cl.gateways) {
      const r = await g.stop();
      if (r.code !== 0) exitProblems.push(`${mode} gateway exit ${JSON.stringify(r)}:\n${g.log().slice(-3000)}`);
    }
    for (const n of cl.nodes) {
      n.io.close();
      await Promise.all([n.pub.quit(), n.sub.quit()].map((p) => p.catch(() => {})));
    }
  };
  return cl;
}

async function connectClient(cl, name, port, nsp) {
  const socket = ioc(`http://127.0.0.1:${port}${nsp}`, {
    forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: `tok-${name}` }, query: { name },
  });
  const c = { name, nsp, port, socket, events: [] };
  socket.onAny((ev, ...args) => {
    if (typeof args[args.length - 1] === "function") args.pop();
    c.events.push({ ev, args: normalize(args) });
  });
  socket.on("q", (...args) => args[args.length - 1](`${name} answers`));
  socket.on("q0", (cb) => cb());
  socket.on("qbin", (cb) => cb(Buffer.from(name)));
  await within(5000, new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", reject);
  }), `${name} to connect`);
  cl.clients[name] = c;
  return c;
}

// Waits until every expected client got `ev`, then a quiet period; each got it exactly once and
// nobody else among `among` got it. Returns the args per client.
async function expectDelivery(cl, ev, expected, among = Object.keys(cl.clients), quietMs = 250) {
  await until(`${ev} at ${expected.join(",")}`, () => expected.every((n) => cl.got(n, ev).length > 0), 3000);
  await sleep(quietMs);
  const receivers = among.filter((n) => cl.got(n, ev).length > 0).sort();
  assertEqual(receivers, [...expected].sort(), `receivers of ${ev}`);
  for (const n of expected) assertEqual(cl.got(n, ev).length, 1, `${ev} count at ${n}`);
  return Object.fromEntries(expected.map((n) => [n, cl.got(n, ev)[0].args]));
}

async function roomsOf(cl, nsp = "/") {
  const sockets = await cl.io.of(nsp).fetchSockets();
  return Object.fromEntries(sockets.map((s) => [s.id, [...s.rooms].sort()]));
}

async function metric(gw, name) {
  const res = await get(gw.port, "/metrics");
  const line = res.body.toString().split("\n").find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line ? Number(line.split(" ").pop()) : NaN;
}

async function timed(what, promise) {
  const start = Date.now();
  const v = await promise;
  return { v, ms: Date.now() - start, what };
}

// ==================== dynamic (the default mode) ====================
const cl = await startCluster("dynamic", "sd");
const [gw1, gw2] = cl.gateways;
const io = cl.io;
// gateway 1: A, B; gateway 2: C, D; Node 0: N; Node 1: O. /chat: E (gw1), F (gw2), M (Node 1).
await cl.connect("A", gw1.port);
await cl.connect("B", gw1.port);
await cl.connect("C", gw2.port);
await cl.connect("D", gw2.port);
await cl.connect("N", cl.nodes[0].port);
await cl.connect("O", cl.nodes[1].port);
await cl.connect("E", gw1.port, "/chat");
await cl.connect("F", gw2.port, "/chat");
await cl.connect("M", cl.nodes[1].port, "/chat");
const membership = { A: ["room1"], B: ["room2"], C: ["room1", "room2"], D: [], N: ["room1"], O: ["room2"] };
const slash = ["A", "B", "C", "D", "N", "O"];
const id = (n) => cl.clients[n].socket.id;

test("membership: each gateway holds one SSUBSCRIBE per namespace channel; none before a room has members", async () => {
  assertEqual(await shardnumsub("sd#/#"), 4, "SHARDNUMSUB sd#/# (2 gateways + 2 Node servers)");
  assertEqual(await shardnumsub("sd#/chat#"), 4, "SHARDNUMSUB sd#/chat#");
  assertEqual(await shardnumsub("sd#/#room1#"), 0, "no room channel yet");
  // a socket's own-id room is not a public room: no channel for it in dynamic mode
  assertEqual(await shardnumsub(`sd#/#${id("A")}#`), 0, "no channel for a socket id");
});

test("in(id).socketsJoin from Node (SOCKETS_JOIN) puts gateway sockets in rooms; room channels follow", async () => {
  for (const [name, rooms] of Object.entries(membership))
    if (rooms.length) io.in(id(name)).socketsJoin(rooms);
  await until("rooms applied", async () => {
    const r = await roomsOf(cl);
    return Object.entries(membership).every(([n, rooms]) =>
      JSON.stringify(r[id(n)]) === JSON.stringify([id(n), ...rooms].sort()));
  });
  // room1: gw1 (A), gw2 (C), Node 0 (N); room2: gw1 (B), gw2 (C), Node 1 (O)
  await until("room channels subscribed", async () =>
    (await shardnumsub("sd#/#room1#")) === 3 && (await shardnumsub("sd#/#room2#")) === 3);
});

test("Node io.emit / to(room) / union / except / of(/chat) reach exactly the right gateway clients", async () => {
  io.emit("n-all", "x", 1);
  const args = await expectDelivery(cl, "n-all", slash);
  assertEqual(args.C, ["x", 1], "payload");
  io.to("room1").emit("n-room", { r: 1 }); // on the room's own channel
  await expectDelivery(cl, "n-room", ["A", "C", "N"]);
  cl.nodes[1].io.to("room2").emit("n-room2"); // from the other Node server
  await expectDelivery(cl, "n-room2", ["B", "C", "O"]);
  io.to(["room1", "room2"]).emit("n-union");
  await expectDelivery(cl, "n-union", ["A", "B", "C", "N", "O"]);
  io.except("room1").emit("n-except", "not room1");
  await expectDelivery(cl, "n-except", ["B", "D", "O"]);
  io.to(id("D")).emit("n-sid"); // a socket id: the namespace channel
  await expectDelivery(cl, "n-sid", ["D"]);
  io.of("/chat").emit("n-chat", "hi");
  await expectDelivery(cl, "n-chat", ["E", "F", "M"]);
});

test("Node volatile and binary emits reach gateway clients (JSON and MessagePack messages)", async () => {
  io.volatile.emit("n-vol", 1.5, -3, 70000);
  const v = await expectDelivery(cl, "n-vol", slash);
  assertEqual(v.D, [1.5, -3, 70000], "numbers");
  io.emit("n-bin", Buffer.from([1, 2, 3]), { nested: Buffer.from([4]) });
  const args = await expectDelivery(cl, "n-bin", slash);
  assertEqual(args.B, [{ $bin: "010203" }, { nested: { $bin: "04" } }], "binary at gateway 1");
  io.to("room2").emit("n-bin-room", Buffer.alloc(1000, 7));
  const r = await expectDelivery(cl, "n-bin-room", ["B", "C", "O"]);
  assertEqual(r.C[0].$bin.length, 2000, "1000 bytes");
});

test("dynamic: a gateway with no member in a room reads none of that room's broadcasts", async () => {
  io.in(id("A")).socketsJoin("only-gw1");
  await until("only-gw1 subscribed by gateway 1 only", async () => (await shardnumsub("sd#/#only-gw1#")) === 1);
  const before1 = await metric(gw1, "sioc_broadcasts_received_total");
  const before2 = await metric(gw2, "sioc_broadcasts_received_total");
  for (let i = 0; i < 20; i++) io.to("only-gw1").emit("n-only", i);
  await until("20 at A", () => cl.got("A", "n-only").length === 20);
  await sleep(200);
  assertEqual((await metric(gw1, "sioc_broadcasts_received_total")) - before1, 20, "gateway 1 read 20");
  assertEqual((await metric(gw2, "sioc_broadcasts_received_total")) - before2, 0, "gateway 2 read none");
  const channels = await metric(gw1, "sioc_adapter_room_channels");
  assertEqual(channels, 3, "gateway 1 follows room1, room2, only-gw1");
  io.in(id("A")).socketsLeave("only-gw1");
  await until("only-gw1 unsubscribed once empty", async () => (await shardnumsub("sd#/#only-gw1#")) === 0);
  assertEqual(await metric(gw1, "sioc_adapter_room_channels"), 2, "one room channel less");
});

test("io.timeout().emitWithAck collects the gateway clients' acks (BROADCAST with requestId, 11, 12)", async () => {
  const all = await timed("ack all", io.timeout(4000).emitWithAck("q", "question"));
  assert(all.ms < 3000, `completed without waiting for the timeout (${all.ms} ms)`);
  assertEqual(all.v.sort(), slash.map((n) => `${n} answers`), "every client's ack");
  const room = await io.to("room2").timeout(4000).emitWithAck("q");
  assertEqual(room.sort(), ["B answers", "C answers", "O answers"], "acks of a room");
  assertEqual(await io.to("nobody-here").timeout(4000).emitWithAck("q"), [], "no clients: clientCount 0 from everyone");
  const empty = await io.to(id("A")).timeout(4000).emitWithAck("q0");
  assertEqual(empty, [undefined], "an ack without arguments");
  const bins = await io.to("room2").timeout(4000).emitWithAck("qbin");
  assertEqual(bins.map((b) => Buffer.from(b).toString()).sort(), ["B", "C", "O"], "binary acks (MessagePack)");
  const chat = await io.of("/chat").timeout(4000).emitWithAck("q", Buffer.from([1]));
  assertEqual(chat.sort(), ["E answers", "F answers", "M answers"], "acks in /chat, binary request");
});

test("fetchSockets from Node returns gateway sockets with ids, rooms and handshake, promptly", async () => {
  const { v: all, ms } = await timed("fetch", io.fetchSockets());
  assert(ms < 3000, `fetchSockets took ${ms} ms (a missing answer stalls it 5 s)`);
  const byId = Object.fromEntries(all.map((s) => [s.id, s]));
  for (const n of slash) assert(byId[id(n)], `${n} fetched`);
  assertEqual(all.length, 6, "six sockets in /");
  const a = byId[id("A")];
  assertEqual([...a.rooms].sort(), [id("A"), "room1"].sort(), "rooms of A");
  const hs = a.handshake;
  assertEqual(Object.keys(hs), ["headers", "time", "address", "xdomain", "secure", "issued", "url", "query", "auth"], "handshake keys");
  assertEqual(hs.auth, { token: "tok-A" }, "auth");
  assertEqual(hs.query.name, "A", "query");
  assertEqual(a.data, {}, "data");
  const room2 = (await io.in("room2").fetchSockets()).map((s) => s.id).sort();
  assertEqual(room2, ["B", "C", "O"].map(id).sort(), "fetchSockets by room");
  const except = (await io.except("room1").fetchSockets()).map((s) => s.id).sort();
  assertEqual(except, ["B", "D", "O"].map(id).sort(), "fetchSockets except");
  const chat = (await cl.nodes[1].io.of("/chat").fetchSockets()).map((s) => s.id).sort();
  assertEqual(chat, ["E", "F", "M"].map(id).sort(), "fetchSockets in /chat from the other Node server");
});

test("under a broadcast load, every Node fetchSockets still completes well before the 5 s timeout", async () => {
  let sent = 0;
  const load = (async () => {
    for (let i = 0; i < 40; i++) {
      for (let j = 0; j < 25; j++, sent++) io.to(j % 2 ? "room1" : "room2").emit("load", i, j, "x".repeat(200));
      await sleep(5);
    }
  })();
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) =>
    timed(`fetch ${i}`, cl.nodes[i % 2].io.fetchSockets())));
  await load;
  const slowest = Math.max(...results.map((r) => r.ms));
  console.log(`  ${sent} broadcasts; slowest of 20 concurrent fetchSockets: ${slowest} ms`);
  for (const r of results) assertEqual(r.v.length, 6, `${r.what}: six sockets`);
  assert(slowest < 3000, `slowest fetchSockets ${slowest} ms`);
  await until("load delivered at C", () => cl.got("C", "load").length === sent, 10000);
});

test("socketsJoin / socketsLeave / disconnectSockets from Node act on gateway sockets", async () => {
  io.in("room2").socketsJoin("joined-by-node");
  await until("joined", async () => (await io.in("joined-by-node").fetchSockets()).length === 3);
  io.to("joined-by-node").emit("n-joined");
  await expectDelivery(cl, "n-joined", ["B", "C", "O"]);
  io.in("room1").socketsLeave("joined-by-node");
  await until("left", async () => (await io.in("joined-by-node").fetchSockets()).length === 2);
  const x = await cl.connect("X", gw2.port);
  io.in(x.socket.id).socketsJoin("doomed");
  await until("doomed joined", async () => (await io.in("doomed").fetchSockets()).length === 1);
  const reason = new Promise((r) => x.socket.once("disconnect", r));
  io.in("doomed").disconnectSockets();
  assertEqual(await within(3000, reason, "X disconnected"), "io server disconnect", "DISCONNECT_SOCKETS close=false");
  delete cl.clients.X;
  const y = await cl.connect("Y", gw1.port);
  const ySib = y.socket.io.socket("/chat");
  await within(3000, new Promise((r) => (ySib.connected ? r() : ySib.once("connect", r))), "Y's /chat sibling");
  const gone = [y.socket, ySib].map((s) => new Promise((r) => s.once("disconnect", r)));
  io.in(y.socket.id).disconnectSockets(true);
  const reasons = await within(3000, Promise.all(gone), "Y and its sibling disconnected");
  assertEqual(reasons[0], "io server disconnect", "Y");
  assert(["transport close", "io server disconnect"].includes(reasons[1]), `close=true: sibling ${reasons[1]}`);
  delete cl.clients.Y;
});

test("serverSideEmitWithAck resolves promptly: each gateway answers null", async () => {
  const { v, ms } = await timed("sse", io.serverSideEmitWithAck("ping-servers", 1));
  assert(ms < 3000, `took ${ms} ms`);
  assertEqual(v.sort(), [null, null, "node1 1"].sort(), "two gateways (null) and the other Node server");
  io.serverSideEmit("no-ack", 2); // nobody answers; nothing breaks
  const chat = await cl.nodes[1].io.of("/chat").serverSideEmitWithAck("ping-servers", 2);
  assertEqual(chat.sort(), [null, null, "node0 chat"].sort(), "in /chat too");
});

// ---- the broker: pushes in the sharded format ----
test("broker --adapter sharded: POST /v1/emit, /v1/join, /v1/disconnect reach gateway and Node sockets", async () => {
  const broker = await startServer(BROKER, ["--redis", redis.url, "--adapter", "sharded", "--adapter-key", "sd", "--log-level", "warn"]);
  try {
    const api = (p, body) => post(broker.port, p, JSON.stringify(body), "Content-Type: application/json\r\n");
    await until("broker ready", async () => (await get(broker.port, "/readyz")).status === 200);
    let res = await api("/v1/emit", { event: "b-all", args: [1, "two"] });
    assertEqual(res.status, 200, `emit status ${res.body}`);
    assertEqual(JSON.parse(res.body).published, 4, "SPUBLISH reached the 4 members");
    const all = await expectDelivery(cl, "b-all", slash);
    assertEqual(all.N, [1, "two"], "payload at Node");
    res = await api("/v1/emit", { event: "b-room", rooms: ["room1"], args: [{ x: 1 }] });
    assertEqual(JSON.parse(res.body).published, 3, "room1's channel: 3 members");
    await expectDelivery(cl, "b-room", ["A", "C", "N"]);
    await api("/v1/emit", { nsp: "/chat", event: "b-chat", except: ["nobody"], volatile: true });
    await expectDelivery(cl, "b-chat", ["E", "F", "M"]);
    await api("/v1/join", { sids: [id("D"), id("O")], to: ["b-joined"] });
    await until("joined by the broker", async () => (await io.in("b-joined").fetchSockets()).length === 2);
    await api("/v1/emit", { event: "b-joined", rooms: ["b-joined"] });
    await expectDelivery(cl, "b-joined", ["D", "O"]);
    await api("/v1/leave", { rooms: ["b-joined"], to: ["b-joined"] });
    await until("left by the broker", async () => (await io.in("b-joined").fetchSockets()).length === 0);
    const z = await cl.connect("Z", gw2.port);
    const reason = new Promise((r) => z.socket.once("disconnect", r));
    res = await api("/v1/disconnect", { sids: [z.socket.id] });
    assertEqual(res.status, 200, "disconnect status");
    assertEqual(await within(3000, reason, "Z disconnected"), "io server disconnect", "broker disconnect");
    delete cl.clients.Z;
  } finally {
    await broker.stop();
  }
});

// ---- the golden captures, published raw on their channels (renamed to this cluster's key) ----
test("golden captures: Node's broadcasts and requests, replayed raw, act on gateway sockets", async () => {
  const spublish = (ch, hex) => cmd.sendCommand(["SPUBLISH", ch.replace(/^socket\.io#/, "sd#"), Buffer.from(hex, "hex")]);
  const allBefore = Object.fromEntries(slash.map((n) => [n, cl.got(n, "hello").length]));
  const cap = (label) => captures.find((c) => c.label === label);
  await spublish(cap("broadcast-all").channel, cap("broadcast-all").hex);
  await until("hello at the gateway clients", () => ["A", "B", "C", "D"].every((n) => cl.got(n, "hello").length > allBefore[n]));
  assertEqual(cl.got("B", "hello").at(-1).args, ["all", 1], "payload");
  await spublish(cap("broadcast-room").channel, cap("broadcast-room").hex); // room1's channel
  await until("room-msg at A and C", () => cl.got("A", "room-msg").length && cl.got("C", "room-msg").length);
  await spublish(cap("broadcast-binary").channel, cap("broadcast-binary").hex);
  await until("bin at D", () => cl.got("D", "bin").length === 1);
  assertEqual(cl.got("D", "bin")[0].args, [{ $bin: "010203" }, { nested: { $bin: "04" } }], "binary capture");
  // a captured FETCH_SOCKETS: both gateways answer on the requester's channel
  const fetch = cap("fetch-sockets");
  const requester = fetch.decoded.uid;
  const answers = [];
  const spy = cmd.duplicate();
  spy.on("error", () => {});
  await spy.connect();
  await spy.sSubscribe(`sd#/#${requester}#`, (m) => answers.push(JSON.parse(m.toString())));
  await spublish(fetch.channel, fetch.hex);
  // every member answers (the Node servers too: the requester is none of them)
  const nodeUids = cl.nodes.map((n) => n.io.of("/").adapter.uid);
  const fromGateways = () => answers.filter((a) => a.type === 8 && !nodeUids.includes(a.uid));
  await until("FETCH_SOCKETS_RESPONSE from both gateways", () => fromGateways().length === 2);
  const ids = fromGateways().flatMap((a) => a.data.sockets.map((s) => s.id)).sort();
  assertEqual(ids, ["A", "B", "C", "D"].map(id).sort(), "the gateways' sockets");
  assertEqual(answers[0].data.requestId, fetch.decoded.data.requestId, "requestId echoed");
  assertEqual(Object.keys(answers[0]), ["type", "data", "uid", "nsp"], "Node's key order");
  await spy.quit();
});

test("metrics: requests counted by type, nothing invalid", async () => {
  for (const gw of [gw1, gw2]) {
    const body = (await get(gw.port, "/metrics")).body.toString();
    assert(/sioc_adapter_requests_total\{type="remote_fetch"\} [1-9]/.test(body), "fetches counted");
    assert(/sioc_adapter_requests_total\{type="broadcast"\} [1-9]/.test(body), "ack broadcasts counted");
    assertEqual(await metric(gw, "sioc_adapter_requests_invalid_total"), 0, "no invalid message");
  }
});

// ==================== static and dynamic-private ====================
test("static mode: no room channels; room broadcasts, acks and fetchSockets still work", async () => {
  await cl.stop();
  const st = await startCluster("static", "ss");
  try {
    await st.connect("A", st.gateways[0].port);
    await st.connect("C", st.gateways[1].port);
    await st.connect("N", st.nodes[0].port);
    st.io.in(st.clients.A.socket.id).socketsJoin("r");
    await until("A in r", async () => (await st.io.in("r").fetchSockets()).length === 1);
    await sleep(200);
    assertEqual(await shardchannels("ss#*"), ["ss#/#", "ss#/chat#", ...st.nodes.flatMap((n) =>
      ["/", "/chat"].map((nsp) => `ss#${nsp}#${n.io.of(nsp).adapter.uid}#`))].sort(), "only namespace and response channels");
    st.io.to("r").emit("s-room");
    await expectDelivery(st, "s-room", ["A"]);
    const { v, ms } = await timed("fetch", st.io.fetchSockets());
    assert(ms < 3000, `fetchSockets took ${ms} ms`);
    assertEqual(v.length, 3, "three sockets");
    assertEqual((await st.io.timeout(4000).emitWithAck("q")).sort(), ["A answers", "C answers", "N answers"], "acks");
  } finally {
    await st.stop();
  }
});

test("dynamic-private mode: every room has a channel, socket ids included; to(id) reaches a gateway socket", async () => {
  const pv = await startCluster("dynamic-private", "sp");
  try {
    const a = await pv.connect("A", pv.gateways[0].port);
    const aid = a.socket.id; // (the client forgets it on disconnect)
    await pv.connect("C", pv.gateways[1].port);
    await pv.connect("N", pv.nodes[0].port);
    await until("A's own channel subscribed", async () => (await shardnumsub(`sp#/#${aid}#`)) === 1);
    pv.io.to(aid).emit("p-sid", "direct"); // published on sp#/#<id>#
    const got = await expectDelivery(pv, "p-sid", ["A"]);
    assertEqual(got.A, ["direct"], "payload");
    pv.io.in(aid).socketsJoin("pr");
    await until("pr subscribed", async () => (await shardnumsub("sp#/#pr#")) === 1);
    pv.io.to("pr").emit("p-room");
    await expectDelivery(pv, "p-room", ["A"]);
    const { v, ms } = await timed("fetch", pv.io.fetchSockets());
    assert(ms < 3000, `fetchSockets took ${ms} ms`);
    assertEqual(v.length, 3, "three sockets");
    a.socket.disconnect();
    delete pv.clients.A;
    await until("A's channels unsubscribed when it left", async () =>
      (await shardnumsub(`sp#/#${aid}#`)) === 0 && (await shardnumsub("sp#/#pr#")) === 0);
  } finally {
    await pv.stop();
  }
});

test("namespaces *: a namespace's channel is SSUBSCRIBEd with its first socket, and dropped when it is freed", async () => {
  const gw = await startServer(GATEWAY, ["--redis", redis.url, "--namespaces", "*", "--upstream", "off", "--adapter", "sharded",
    "--adapter-key", "sx", "--empty-namespace-timeout", "300", "--log-level", "warn"]);
  try {
    assertEqual(await shardnumsub("sx#/dyn#"), 0, "nothing before the namespace exists");
    const s = ioc(`http://127.0.0.1:${gw.port}/dyn`, { transports: ["websocket"], forceNew: true, reconnection: false });
    await within(5000, new Promise((r) => s.once("connect", r)), "/dyn connect");
    await until("sx#/dyn# subscribed", async () => (await shardnumsub("sx#/dyn#")) === 1);
    const got = new Promise((r) => s.once("x", (...a) => r(a)));
    await cmd.sendCommand(["SPUBLISH", "sx#/dyn#", JSON.stringify({ type: 3, data: { packet: { type: 2, data: ["x", 1] },
      opts: { rooms: [], except: [], flags: {} } }, uid: "test", nsp: "/dyn" })]);
    assertEqual(await within(3000, got, "x at the /dyn client"), [1], "delivered");
    s.disconnect();
    await until("sx#/dyn# dropped", async () => (await shardnumsub("sx#/dyn#")) === 0, 5000);
  } finally {
    const r = await gw.stop();
    if (r.code !== 0) exitProblems.push(`namespaces * gateway exit ${JSON.stringify(r)}:\n${gw.log().slice(-3000)}`);
  }
});

const ok = await run();
await cmd.quit();
await redis.stop();
for (const p of exitProblems) console.log(p);
process.exit(ok && exitProblems.length === 0 ? 0 : 1);
