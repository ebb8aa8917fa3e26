// test_cluster.mjs: issue 4, gateways as full @socket.io/redis-adapter members. A mixed cluster on
// one private redis-server: a Node socket.io 4.8 server with @socket.io/redis-adapter 8.3 (in
// this process, node-redis v4 clients), two sioc gateways, socket.io-client clients on each, and
// @socket.io/redis-emitter 5.1. Covers Node broadcasts (all, room, except, namespace, volatile,
// binary), emitter broadcasts and room operations, fetchSockets, socketsJoin/Leave,
// disconnectSockets, allRooms, broadcast with acks, serverSideEmitWithAck, legacy requests, every
// broadcast and request of the golden captures published raw, /metrics, and delivery resuming
// after a Redis restart and after CLIENT KILL TYPE pubsub (the resume times are printed).
import http from "node:http";
import { readFileSync } from "node:fs";
import path from "node:path";
import { Server } from "socket.io";
import { io as ioc } from "socket.io-client";
import { createClient } from "redis";
import { createAdapter } from "@socket.io/redis-adapter";
import { Emitter } from "@socket.io/redis-emitter";
import notepack from "notepack.io";
import {
  GATEWAY,
  assert,
  assertEqual,
  createRunner,
  get,
  repo,
  sleep,
  startProcess,
  startRedis,
  startServer,
  until,
  within,
} from "./lib/harness.mjs";

const SHARED = process.env.SIOC_SHARED_DATA || path.join(repo, "..", "shared", "data");
const captures = JSON.parse(readFileSync(path.join(SHARED, "adapter-golden", "captures.json"), "utf8")).captures;

const redis = await startRedis();
// emitter.emit and the Node adapter publish without awaiting: commands in flight when Redis goes
// away (the restart tests) reject with nobody listening
let rejections = 0;
process.on("unhandledRejection", () => rejections++);
const { test, run } = createRunner("test_cluster");

// ---- the Node server ----
const pub = createClient({ url: redis.url });
const sub = pub.duplicate();
const cmd = pub.duplicate(); // test commands (PUBSUB, raw PUBLISH, CLIENT KILL)
const emClient = pub.duplicate();
for (const c of [pub, sub, cmd, emClient]) c.on("error", () => {});
await Promise.all([pub.connect(), sub.connect(), cmd.connect(), emClient.connect()]);
const httpServer = http.createServer();
const io = new Server(httpServer);
io.adapter(createAdapter(pub, sub));
io.of("/chat"); // its adapter subscribes now
await new Promise((r) => httpServer.listen(0, "127.0.0.1", r));
const nodePort = httpServer.address().port;
const emitter = new Emitter(emClient);

// ---- two gateways ----
function gatewayArgs(node) {
  return ["--redis", redis.url, "--namespaces", "/,/chat", "--node-id", node, "--upstream", "off", "--log-level", "warn"];
}
const gw1 = await startServer(GATEWAY, gatewayArgs("gw1"));
const gw2 = await startServer(GATEWAY, gatewayArgs("gw2"));

async function numsub(channel) {
  const r = await cmd.sendCommand(["PUBSUB", "NUMSUB", channel]);
  return Number(r[1]);
}

await until("3 members on the request channels", async () =>
  (await numsub("socket.io-request#/#")) === 3 && (await numsub("socket.io-request#/chat#")) === 3);

// ---- clients: events recorded per client ----
const clients = {};
function normalize(v) {
  if (Buffer.isBuffer(v) || v instanceof ArrayBuffer) return { $bin: Buffer.from(v).toString("hex") };
  if (Array.isArray(v)) return v.map(normalize);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, normalize(x)]));
  return v;
}

async function connectClient(name, port, nsp = "/") {
  const socket = ioc(`http://127.0.0.1:${port}${nsp}`, {
    forceNew: true,
    reconnection: false,
    transports: ["websocket"],
    auth: { token: `tok-${name}` },
    query: { name },
  });
  const c = { name, nsp, port, socket, events: [] };
  socket.onAny((ev, ...args) => {
    if (typeof args[args.length - 1] === "function") args.pop();
    c.events.push({ ev, args: normalize(args), t: Date.now() });
  });
  // acks asked by Node's io.timeout().emit and by the golden BROADCAST request
  socket.on("q", (...args) => args[args.length - 1](`${name} answers`));
  socket.on("ack-req", (q, cb) => cb(`${name} acks`));
  socket.on("q0", (cb) => cb()); // an ack without arguments
  socket.on("qbin", (cb) => cb(Buffer.from(name)));
  await within(5000, new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", reject);
  }), `${name} to connect`);
  clients[name] = c;
  return c;
}

// gateway 1: A (room1), B (room2); gateway 2: C (room1, room2), D; Node: N (room1).
// /chat: E on gateway 1, F on gateway 2, M on Node.
await connectClient("A", gw1.port);
await connectClient("B", gw1.port);
await connectClient("C", gw2.port);
await connectClient("D", gw2.port);
await connectClient("N", nodePort);
await connectClient("E", gw1.port, "/chat");
await connectClient("F", gw2.port, "/chat");
await connectClient("M", nodePort, "/chat");
const membership = { A: ["room1"], B: ["room2"], C: ["room1", "room2"], D: [], N: ["room1"] };
const gatewayNames = ["A", "B", "C", "D", "E", "F"];

function got(name, ev) {
  return clients[name].events.filter((e) => e.ev === ev);
}

// Waits until every expected client got `ev`, then a quiet period; asserts each got it exactly
// once and nobody else (among `among`) got it. Returns the args per client.
async function expectDelivery(ev, expected, among = Object.keys(clients), quietMs = 250) {
  await until(`${ev} at ${expected.join(",")}`, () => expected.every((n) => got(n, ev).length > 0), 3000);
  await sleep(quietMs);
  const receivers = among.filter((n) => got(n, ev).length > 0).sort();
  assertEqual(receivers, [...expected].sort(), `receivers of ${ev}`);
  for (const n of expected) assertEqual(got(n, ev).length, 1, `${ev} count at ${n}`);
  return Object.fromEntries(expected.map((n) => [n, got(n, ev)[0].args]));
}

async function roomsOf(nsp = "/") {
  const sockets = await io.of(nsp).fetchSockets();
  return Object.fromEntries(sockets.map((s) => [s.id, [...s.rooms].sort()]));
}

// ---- responses on the shared response channels, read raw ----
const responses = [];
const spy = pub.duplicate();
spy.on("error", () => {});
await spy.connect();
for (const ch of ["socket.io-response#/#", "socket.io-response#/chat#"]) {
  await spy.subscribe(ch, (msg) => {
    const v = msg[0] === 0x7b ? JSON.parse(msg.toString()) : notepack.decode(msg);
    responses.push({ ch, v, raw: msg, t: Date.now() });
  }, true);
}
function responsesFor(requestId) {
  return responses.filter((r) => r.v.requestId === requestId).map((r) => r.v);
}

test("membership: each gateway holds exactly one subscription to each request and response channel", async () => {
  for (const nsp of ["/", "/chat"]) {
    assertEqual(await numsub(`socket.io-request#${nsp}#`), 3, `NUMSUB request ${nsp}`);
    assertEqual(await numsub(`socket.io-response#${nsp}#`), 4, `NUMSUB response ${nsp} (3 nodes + the test's reader)`);
    const specific = await cmd.sendCommand(["PUBSUB", "CHANNELS", `socket.io-response#${nsp}#?*#`]);
    assertEqual(specific.length, 3, `one specific response channel per node for ${nsp}`);
    for (const ch of specific) assertEqual(await numsub(ch), 1, `${ch} has one reader`);
  }
});

test("in(id).socketsJoin from the Node server (REMOTE_JOIN) puts gateway sockets in rooms", async () => {
  for (const [name, rooms] of Object.entries(membership))
    if (rooms.length) io.in(clients[name].socket.id).socketsJoin(rooms);
  await until("rooms applied", async () => {
    const r = await roomsOf();
    return Object.entries(membership).every(([n, rooms]) =>
      JSON.stringify(r[clients[n].socket.id]) === JSON.stringify([clients[n].socket.id, ...rooms].sort()));
  });
});

test("Node io.emit reaches every client of / on both gateways", async () => {
  io.emit("n-all", "x", 1);
  const args = await expectDelivery("n-all", ["A", "B", "C", "D", "N"]);
  assertEqual(args.C, ["x", 1], "payload");
});

test("Node io.to(room1).emit reaches only room1 members", async () => {
  io.to("room1").emit("n-room", { r: 1 });
  await expectDelivery("n-room", ["A", "C", "N"]);
});

test("Node io.to([room1, room2]) is the union, io.except(room1) the rest", async () => {
  io.to(["room1", "room2"]).emit("n-union");
  await expectDelivery("n-union", ["A", "B", "C", "N"]);
  io.except("room1").emit("n-except", "not room1");
  await expectDelivery("n-except", ["B", "D"]);
  io.to("room2").except("room1").emit("n-to-except");
  await expectDelivery("n-to-except", ["B"]);
});

test('Node io.of("/chat").emit reaches only /chat clients', async () => {
  io.of("/chat").emit("n-chat", "hi");
  await expectDelivery("n-chat", ["E", "F", "M"]);
});

test("Node volatile and compress(false) emits reach idle clients", async () => {
  io.volatile.emit("n-vol", 1.5, -3, 300, 70000);
  const args = await expectDelivery("n-vol", ["A", "B", "C", "D", "N"]);
  assertEqual(args.D, [1.5, -3, 300, 70000], "numbers");
  io.compress(false).emit("n-nocomp");
  await expectDelivery("n-nocomp", ["A", "B", "C", "D", "N"]);
});

test("Node binary emits reach gateway clients as binary, and only those meant", async () => {
  io.emit("n-bin", Buffer.from([1, 2, 3]), { nested: Buffer.from([4]) });
  const args = await expectDelivery("n-bin", ["A", "B", "C", "D", "N"]);
  assertEqual(args.B, [{ $bin: "010203" }, { nested: { $bin: "04" } }], "binary at gateway 1");
  assertEqual(args.D, args.N, "same at gateway 2 as at Node");
  io.to("room2").emit("n-bin-room", Buffer.alloc(1000, 7));
  const r = await expectDelivery("n-bin-room", ["B", "C"]);
  assertEqual(r.C[0].$bin.length, 2000, "1000 bytes");
});

test("emitter: emit, to, in, except, of(/chat), volatile, binary", async () => {
  emitter.emit("e-all", "e1");
  await expectDelivery("e-all", ["A", "B", "C", "D", "N"]);
  emitter.to("room2").emit("e-room", "e2");
  await expectDelivery("e-room", ["B", "C"]);
  emitter.in(["room1", "room2"]).emit("e-in");
  await expectDelivery("e-in", ["A", "B", "C", "N"]);
  emitter.except("room2").volatile.emit("e-exc", "e3");
  await expectDelivery("e-exc", ["A", "D", "N"]);
  emitter.of("/chat").emit("e-chat", "e4");
  await expectDelivery("e-chat", ["E", "F", "M"]);
  emitter.to(["room1"]).except("room2").compress(true).emit("e-bin", Buffer.from([9, 9]), { b: Buffer.from([]) });
  const args = await expectDelivery("e-bin", ["A", "N"]);
  assertEqual(args.A, [{ $bin: "0909" }, { b: { $bin: "" } }], "binary from the emitter");
});

test("emitter socketsJoin, socketsLeave and disconnectSockets act on gateway sockets", async () => {
  const x = await connectClient("X", gw1.port);
  const y = await connectClient("Y", gw2.port);
  emitter.in(x.socket.id).socketsJoin("e-room");
  emitter.in(y.socket.id).socketsJoin(["e-room", "e-other"]);
  await until("emitter joins", async () => {
    const r = await roomsOf();
    return r[x.socket.id]?.includes("e-room") && r[y.socket.id]?.includes("e-other");
  });
  emitter.to("e-room").emit("e-joined");
  await expectDelivery("e-joined", ["X", "Y"]);
  emitter.in("e-room").socketsLeave("e-other");
  await until("emitter leave", async () => !(await roomsOf())[y.socket.id].includes("e-other"));
  // y has a /chat socket on the same connection: close=true takes it too, close=false does not
  const yChat = y.socket.io.socket("/chat");
  const xChat = x.socket.io.socket("/chat");
  // (Manager.socket connects by itself: a second connect() would send a second CONNECT)
  await within(3000, Promise.all([yChat, xChat].map((s) => new Promise((r) => (s.connected ? r() : s.once("connect", r))))), "/chat siblings");
  const xGone = new Promise((r) => x.socket.once("disconnect", r));
  emitter.in(x.socket.id).disconnectSockets(false);
  assertEqual(await within(3000, xGone, "X disconnected"), "io server disconnect", "close=false");
  await sleep(200);
  assert(xChat.connected, "close=false leaves the connection (and X's /chat socket) open");
  const gone = [y.socket, yChat].map((s) => new Promise((r) => s.once("disconnect", r)));
  emitter.in("e-room").disconnectSockets(true);
  const reasons = await within(3000, Promise.all(gone), "Y and its /chat sibling disconnected");
  assertEqual(reasons[0], "io server disconnect", "Y");
  assert(["transport close", "io server disconnect"].includes(reasons[1]), `close=true closed the connection: /chat sibling ${reasons[1]}`);
  xChat.disconnect();
  delete clients.X;
  delete clients.Y;
});

test("fetchSockets from the Node server returns gateway sockets with ids, rooms and handshake", async () => {
  const all = await io.fetchSockets();
  const byId = Object.fromEntries(all.map((s) => [s.id, s]));
  for (const n of ["A", "B", "C", "D", "N"]) assert(byId[clients[n].socket.id], `${n} fetched`);
  assertEqual(all.length, 5, "five sockets in /");
  const a = byId[clients.A.socket.id];
  assertEqual([...a.rooms].sort(), [clients.A.socket.id, "room1"].sort(), "rooms of A");
  const hs = a.handshake;
  assertEqual(Object.keys(hs), ["headers", "time", "address", "xdomain", "secure", "issued", "url", "query", "auth"], "handshake keys");
  assertEqual(hs.auth, { token: "tok-A" }, "auth");
  assertEqual(hs.query.name, "A", "query");
  assertEqual(hs.query.EIO, "4", "query EIO");
  assert(hs.url.startsWith("/socket.io/?"), `url ${hs.url}`);
  assertEqual(hs.address, "127.0.0.1", "address");
  assert(hs.headers.host === `127.0.0.1:${gw1.port}`, `host header ${JSON.stringify(hs.headers)}`);
  assertEqual([hs.xdomain, hs.secure], [false, false], "xdomain, secure");
  assert(typeof hs.issued === "number" && Math.abs(hs.issued - Date.now()) < 60000, `issued ${hs.issued}`);
  assert(/^\w{3} \w{3} \d{2} \d{4} \d{2}:\d{2}:\d{2} GMT\+0000 \(Coordinated Universal Time\)$/.test(hs.time), `time ${hs.time}`);
  assertEqual(Math.abs(new Date(hs.time).getTime() - hs.issued) < 1000, true, "time matches issued");
  assertEqual(a.data, {}, "data");
  const room2 = (await io.in("room2").fetchSockets()).map((s) => s.id).sort();
  assertEqual(room2, [clients.B.socket.id, clients.C.socket.id].sort(), "fetchSockets by room");
  const except = (await io.except("room1").fetchSockets()).map((s) => s.id).sort();
  assertEqual(except, [clients.B.socket.id, clients.D.socket.id].sort(), "fetchSockets except");
  const chat = (await io.of("/chat").fetchSockets()).map((s) => s.id).sort();
  assertEqual(chat, ["E", "F", "M"].map((n) => clients[n].socket.id).sort(), "fetchSockets in /chat");
});

test("in(room).socketsJoin / socketsLeave / disconnectSockets from the Node server act on gateway sockets", async () => {
  io.in("room2").socketsJoin("joined-by-node");
  await until("joined", async () => (await io.in("joined-by-node").fetchSockets()).length === 2);
  io.to("joined-by-node").emit("n-joined");
  await expectDelivery("n-joined", ["B", "C"]);
  io.in("room1").socketsLeave("joined-by-node");
  await until("left", async () => (await io.in("joined-by-node").fetchSockets()).length === 1);
  assertEqual((await io.in("joined-by-node").fetchSockets())[0].id, clients.B.socket.id, "C left, B stays");
  const x = await connectClient("X", gw2.port);
  io.in(x.socket.id).socketsJoin("doomed");
  await until("doomed joined", async () => (await io.in("doomed").fetchSockets()).length === 1);
  const reason = new Promise((r) => x.socket.once("disconnect", r));
  io.in("doomed").disconnectSockets();
  assertEqual(await within(3000, reason, "X disconnected"), "io server disconnect", "close=false: namespace disconnect");
  delete clients.X;
});

test("allRooms from the Node server includes the gateways' rooms", async () => {
  const rooms = await io.of("/").adapter.allRooms();
  for (const r of ["room1", "room2", "joined-by-node", ...["A", "B", "C", "D"].map((n) => clients[n].socket.id)])
    assert(rooms.has(r), `allRooms has ${r}: ${[...rooms]}`);
});

test("io.timeout(2000).emit collects the acks of gateway clients (BROADCAST 7, 8, 9)", async () => {
  const start = Date.now();
  const answers = await new Promise((resolve, reject) =>
    io.timeout(2000).emit("q", "question", (err, res) => (err ? reject(err) : resolve(res))));
  assert(Date.now() - start < 1500, `completed without waiting for the timeout (${Date.now() - start} ms)`);
  assertEqual(answers.sort(), ["A", "B", "C", "D", "N"].map((n) => `${n} answers`), "every client's ack");
  const room = await io.to("room2").timeout(2000).emitWithAck("q");
  assertEqual(room.sort(), ["B answers", "C answers"], "acks of a room");
  const none = await io.to("nobody-here").timeout(2000).emitWithAck("q");
  assertEqual(none, [], "no clients: both gateways answered clientCount 0");
  const before = responses.length;
  const empty = await io.to(clients.A.socket.id).timeout(2000).emitWithAck("q0");
  assertEqual(empty.length, 1, "one ack");
  assertEqual(empty[0], undefined, "no argument");
  // the test's reader is another connection: it may see the ack after the requester did
  await until("the ack at the reader", () => responses.slice(before).some((r) => r.v.type === 9), 2000);
  await sleep(50);
  const acks9 = responses.slice(before).filter((r) => r.v.type === 9);
  assertEqual(acks9.length, 1, "one BROADCAST_ACK");
  assertEqual(Object.keys(acks9[0].v), ["type", "requestId"], "no packet key when the client acked without arguments");
  const bins = await io.to("room2").timeout(2000).emitWithAck("qbin");
  assertEqual(bins.map((b) => Buffer.from(b).toString()).sort(), ["B", "C"], "binary acks travel as msgpack bin");
  const never = await new Promise((resolve) =>
    io.to(clients.A.socket.id).timeout(300).emit("qnever", (err, res) => resolve([err && err.message, res])));
  assertEqual(never, ["operation has timed out", []], "a client that never acks: the requester times out");
  const chat = await io.of("/chat").timeout(2000).emitWithAck("q", Buffer.from([1]));
  assertEqual(chat.sort(), ["E answers", "F answers", "M answers"], "acks in /chat, binary request");
});

test("serverSideEmitWithAck resolves without a timeout (each gateway answers null)", async () => {
  const start = Date.now();
  const res = await io.serverSideEmitWithAck("ping-servers", 1);
  assert(Date.now() - start < 1000, `took ${Date.now() - start} ms`);
  assertEqual(res, [null, null], "one null per gateway");
  io.serverSideEmit("no-ack", 2); // nobody answers; nothing breaks
  const chat = await io.of("/chat").serverSideEmitWithAck("x");
  assertEqual(chat, [null, null], "in /chat too");
});

test("SOCKETS (0) and the legacy sid forms of join/leave/disconnect are answered by the owner only", async () => {
  await cmd.publish("socket.io-request#/#", JSON.stringify({ uid: "tstUID", requestId: "sock01", type: 0, rooms: ["room1"] }));
  await until("SOCKETS answers", () => responsesFor("sock01").length >= 3);
  const ids = responsesFor("sock01").flatMap((r) => r.sockets).sort();
  assertEqual(ids, ["A", "C", "N"].map((n) => clients[n].socket.id).sort(), "room1 ids from every node");
  const b = clients.B.socket.id;
  await cmd.publish("socket.io-request#/#", JSON.stringify({ uid: "tstUID", requestId: "join01", type: 2, sid: b, room: "legacy" }));
  await until("legacy join answer", () => responsesFor("join01").length >= 1);
  await sleep(200);
  assertEqual(responsesFor("join01"), [{ requestId: "join01" }], "one answer, from B's gateway");
  assert((await roomsOf())[b].includes("legacy"), "B joined legacy");
  await cmd.publish("socket.io-request#/#", JSON.stringify({ uid: "tstUID", requestId: "leave1", type: 3, sid: b, room: "legacy" }));
  await until("legacy leave answer", () => responsesFor("leave1").length >= 1);
  assert(!(await roomsOf())[b].includes("legacy"), "B left legacy");
  const x = await connectClient("X", gw1.port);
  const reason = new Promise((r) => x.socket.once("disconnect", r));
  await cmd.publish("socket.io-request#/#", JSON.stringify({ uid: "tstUID", requestId: "disc01", type: 4, sid: x.socket.id, close: false }));
  assertEqual(await within(3000, reason, "X disconnected"), "io server disconnect", "legacy disconnect");
  await until("legacy disconnect answer", () => responsesFor("disc01").length >= 1);
  delete clients.X;
  // a malformed request and an unknown type are ignored, not fatal
  await cmd.publish("socket.io-request#/#", "{not json");
  await cmd.publish("socket.io-request#/#", JSON.stringify({ uid: "tstUID", requestId: "unk001", type: 42 }));
  await sleep(100);
  const res = await io.fetchSockets();
  assertEqual(res.length, 5, "gateways still answer");
});

// ---- the golden captures, published raw ----
function decodedData(data) {
  return normalize(JSON.parse(JSON.stringify(data), (k, v) => (v && typeof v === "object" && "$bin" in v ? Buffer.from(v.$bin, "hex") : v)));
}

test("golden captures: every broadcast produces the delivery it describes on gateway clients", async () => {
  const broadcasts = captures.filter((c) => c.channel.startsWith("socket.io#"));
  assert(broadcasts.length >= 12, `${broadcasts.length} broadcast captures`);
  for (const cap of broadcasts) await cmd.publish(cap.channel, Buffer.from(cap.hex, "hex"));
  for (const cap of broadcasts) {
    const [, packet, opts] = cap.decoded;
    const [ev, ...args] = packet.data;
    const nsp = packet.nsp || "/";
    const names = nsp === "/" ? ["A", "B", "C", "D"] : ["E", "F"];
    const expected = names.filter((n) => {
      const rooms = membership[n] || [];
      const inRooms = opts.rooms.length === 0 || opts.rooms.some((r) => rooms.includes(r));
      return inRooms && !(opts.except || []).some((r) => rooms.includes(r));
    });
    const got1 = await expectDelivery(ev, expected, gatewayNames, 50);
    for (const n of expected) assertEqual(got1[n], decodedData(args), `${cap.label}: data at ${n}`);
  }
});

async function publishRequest(label, index = 0) {
  const cap = captures.filter((c) => c.label === label && c.channel.startsWith("socket.io-request#"))[index];
  assert(cap, `capture ${label}`);
  const bytes = cap.encoding === "json" ? Buffer.from(JSON.stringify(cap.decoded)) : Buffer.from(cap.hex, "hex");
  await cmd.publish(cap.channel, bytes);
  return cap.decoded;
}

test("golden captures: BROADCAST with acks gets clientCount first, then one ack per client", async () => {
  const req = await publishRequest("broadcast-with-ack");
  const all = ["A", "B", "C", "D", "N"];
  await expectDelivery("ack-req", all);
  await until("5 acks", () => responsesFor(req.requestId).filter((r) => r.type === 9).length === 5);
  await sleep(100);
  const rs = responsesFor(req.requestId);
  const counts = rs.filter((r) => r.type === 8);
  assertEqual(counts.length, 3, "one clientCount per node");
  assertEqual(counts.map((r) => r.clientCount).sort(), [1, 2, 2], "client counts (Node 1, gateways 2 each)");
  assertEqual(rs.filter((r) => r.type === 9).map((r) => r.packet).sort(), all.map((n) => `${n} acks`), "acks");
  const order = responses.filter((r) => r.v.requestId === req.requestId).map((r) => r.v.type);
  assertEqual(order[0], 8, "a clientCount comes first (each node publishes it before its acks)");
  const raw8 = responses.find((r) => r.v.requestId === req.requestId && r.v.type === 8 && r.v.clientCount === 2);
  assertEqual(raw8.raw.toString(), `{"type":8,"requestId":"${req.requestId}","clientCount":2}`, "type 8 bytes");
});

test("golden captures: serverSideEmit requests (ack answered with null; none otherwise)", async () => {
  const before = responses.length;
  await publishRequest("serverSideEmit");
  await publishRequest("emitter-serverSideEmit");
  const req = await publishRequest("serverSideEmitWithAck");
  await until("2 answers", () => responsesFor(req.requestId).length === 2);
  await sleep(200);
  assertEqual(responsesFor(req.requestId), [{ type: 6, requestId: req.requestId, data: null }, { type: 6, requestId: req.requestId, data: null }], "answers");
  assertEqual(responses.length - before, 2, "nothing for the emits without ack");
});

test("golden captures: fetchSockets, socketsJoin, allRooms, socketsLeave, emitter socketsJoin, disconnectSockets", async () => {
  const ids = (names) => names.map((n) => clients[n].socket.id).sort();
  const fetched = async (label) => {
    const req = await publishRequest(label);
    await until(`${label} answers`, () => responsesFor(req.requestId).length === 3);
    return responsesFor(req.requestId).flatMap((r) => r.sockets);
  };
  let socks = await fetched("fetchSockets-all");
  assertEqual(socks.map((s) => s.id).sort(), ids(["A", "B", "C", "D", "N"]), "fetchSockets-all");
  const d = socks.find((s) => s.id === clients.D.socket.id);
  assertEqual(Object.keys(d), ["id", "handshake", "rooms", "data"], "socket keys");
  assertEqual(d.handshake.query.name, "D", "handshake");
  assertEqual((await fetched("fetchSockets-room2")).map((s) => s.id).sort(), ids(["B", "C"]), "fetchSockets-room2");
  await publishRequest("socketsJoin"); // room2 -> room3
  await until("room3", async () => (await io.in("room3").fetchSockets()).length === 2);
  const reqRooms = await publishRequest("allRooms");
  await until("allRooms answers", () => responsesFor(reqRooms.requestId).length === 3);
  const rooms = new Set(responsesFor(reqRooms.requestId).flatMap((r) => r.rooms));
  for (const r of ["room1", "room2", "room3", ...ids(["A", "B", "C", "D"])]) assert(rooms.has(r), `allRooms has ${r}`);
  await publishRequest("socketsLeave"); // room2 leaves room3
  await until("room3 empty", async () => (await io.in("room3").fetchSockets()).length === 0);
  await publishRequest("emitter-socketsJoin"); // room1 -> room4
  await until("room4", async () => (await io.in("room4").fetchSockets()).length === 3);
  assertEqual((await fetched("fetchSockets-room4")).map((s) => s.id).sort(), ids(["A", "C", "N"]), "fetchSockets-room4");
  const gone = ["B", "C"].map((n) => new Promise((r) => clients[n].socket.once("disconnect", r)));
  await publishRequest("disconnectSockets-room2");
  assertEqual(await within(3000, Promise.all(gone), "room2 disconnected"), ["io server disconnect", "io server disconnect"], "close:true (Node also sends DISCONNECT first)");
  await sleep(100);
  assert(clients.A.socket.connected && clients.D.socket.connected, "the others stay");
  delete clients.B;
  delete clients.C;
});

test("/metrics counts broadcasts and requests by type", async () => {
  const m = (await get(gw1.port, "/metrics")).body;
  const value = (series) => {
    const line = m.split("\n").find((l) => l.startsWith(series + " "));
    return line ? Number(line.split(" ")[1]) : NaN;
  };
  assert(value("sioc_broadcasts_received_total") > 20, "broadcasts received");
  assert(value("sioc_broadcast_deliveries_total") > 20, "deliveries");
  for (const t of ["sockets", "all_rooms", "remote_join", "remote_leave", "remote_disconnect", "remote_fetch", "server_side_emit", "broadcast"])
    assert(value(`sioc_adapter_requests_total{type="${t}"}`) >= 1, `requests ${t}: ${value(`sioc_adapter_requests_total{type="${t}"}`)}`);
  assert(value("sioc_adapter_requests_invalid_total") >= 1, "the malformed request was counted");
  assert(value("sioc_adapter_responses_total") > 10, "responses");
  assertEqual(value("sioc_adapter_ack_requests_pending"), 0, "no ack broadcast left pending");
  assert(value("sioc_adapter_ack_requests_expired_total") >= 1, "the unanswered one expired after its timeout");
  assertEqual(value("sioc_cluster_redis_connected"), 1, "publishing link up");
});

// ---- Redis robustness: a steady emitter stream (one tick every 20 ms) ----
let seq = 0;
const published = [];
let ticking = null;
function startTicks() {
  ticking = setInterval(() => {
    const n = seq++;
    published[n] = Date.now();
    emitter.emit("tick", n);
  }, 20);
}
function ticksAfter(name, t) {
  return got(name, "tick").filter((e) => e.t > t);
}

test("Redis restarted under a steady broadcast stream: subscriptions come back, delivery resumes within 2 s", async () => {
  startTicks();
  await until("ticks flowing", () => ticksAfter("A", 0).length > 5 && ticksAfter("D", 0).length > 5);
  await redis.kill();
  await sleep(300);
  await redis.launch();
  const up = Date.now();
  const resumed = await until("ticks after the restart", () =>
    ticksAfter("A", up).length > 0 && ticksAfter("D", up).length > 0 ? true : false, 5000).catch(() => false);
  const rA = ticksAfter("A", up)[0]?.t - up;
  const rD = ticksAfter("D", up)[0]?.t - up;
  const firstSeq = ticksAfter("A", up)[0]?.args[0];
  console.log(`redis restart: delivery resumed after ${rA} ms (gateway 1), ${rD} ms (gateway 2) from Redis being up; first tick seq ${firstSeq}`);
  assert(resumed, "delivery resumed on both gateways");
  assert(rA < 2000 && rD < 2000, `resume within 2 s (${rA}, ${rD})`);
  await until("subscriptions back", async () => (await numsub("socket.io-request#/#")) === 3 && (await numsub("socket.io-request#/chat#")) === 3, 5000);
  const all = (await io.fetchSockets()).length;
  assertEqual(all, 3, "fetchSockets after the restart: A, D, N");
}, 20000);

test("CLIENT KILL TYPE pubsub: the gateways' subscriber connections are repaired (measured)", async () => {
  if (!ticking) startTicks();
  await until("ticks flowing", () => ticksAfter("A", Date.now() - 200).length > 0, 3000);
  const killedAt = Date.now();
  const killSeq = seq; // ticks from here are published after the kill (same connection, in order)
  const killed = Number(await emClient.sendCommand(["CLIENT", "KILL", "TYPE", "pubsub"]));
  assert(killed >= 3, `killed ${killed} pub/sub connections`);
  const after = (n) => got(n, "tick").filter((e) => e.args[0] >= killSeq);
  const ok = await until("ticks after the kill", () => after("A").length > 0 && after("D").length > 0, 5000).catch(() => false);
  const rA = after("A")[0]?.t - killedAt;
  const rD = after("D")[0]?.t - killedAt;
  const lost = (after("A")[0]?.args[0] ?? killSeq) - killSeq;
  console.log(`client kill: delivery resumed after ${rA} ms (gateway 1), ${rD} ms (gateway 2); ${lost} ticks missed at gateway 1`);
  assert(ok, "delivery resumed on both gateways");
  assert(rA < 2000 && rD < 2000, `repaired within 2 s (${rA}, ${rD})`);
  await until("subscriptions back", async () => (await numsub("socket.io-request#/#")) === 3, 5000);
  clearInterval(ticking);
  ticking = null;
}, 20000);

test("a worker's broadcast (emitter format) reaches Node-connected and gateway-connected clients", async () => {
  const gw4 = await startServer(GATEWAY, ["--redis", redis.url, "--namespaces", "/", "--node-id", "gw4", "--log-level", "warn"]);
  const worker = await startProcess("/usr/bin/python3", ["tests/integration/worker.py", "--redis", redis.url, "--namespaces", "/"], "worker ready");
  try {
    const sender = ioc(`http://127.0.0.1:${gw4.port}/`, { forceNew: true, reconnection: false, transports: ["websocket"] });
    await within(5000, new Promise((r) => sender.once("connect", r)), "sender connect");
    const tag = `w-${Date.now()}`;
    for (const c of Object.values(clients)) c.events = [];
    // whoever is in room1 now, on the Node server and on both gateways, per the cluster itself
    const ids = new Set((await io.of("/").in("room1").fetchSockets()).map((x) => x.id));
    const members = Object.values(clients).filter((c) => c.nsp === "/" && ids.has(c.socket.id)).map((c) => c.name);
    assert(members.includes("N") && members.some((n) => n !== "N"), `room1 spans Node and gateways: ${members}`);
    await sender.timeout(5000).emitWithAck("room_msg", "room1", tag);
    const args = await expectDelivery("room_msg", members);
    for (const n of members) assertEqual(args[n], [tag], `payload at ${n}`);
    sender.disconnect();
  } finally {
    await worker.stop();
    await gw4.stop();
  }
}, 30000);

test("namespaces *: a namespace's adapter channels are joined with its first socket", async () => {
  const gw3 = await startServer(GATEWAY, ["--redis", redis.url, "--namespaces", "*", "--node-id", "gw3",
    "--upstream", "off", "--log-level", "warn"]);
  try {
    const dyn = io.of("/dyn-7"); // the Node server's adapter for it subscribes now
    const socket = ioc(`http://127.0.0.1:${gw3.port}/dyn-7`, { forceNew: true, reconnection: false, transports: ["websocket"] });
    await within(5000, new Promise((r) => socket.once("connect", r)), "connect to /dyn-7");
    await until("gw3 counted on /dyn-7's request channel", async () => (await numsub("socket.io-request#/dyn-7#")) === 2);
    const got = within(5000, new Promise((r) => socket.once("dyn", (...a) => r(a))), "dyn broadcast");
    dyn.emit("dyn", 7);
    assertEqual(await got, [7], "Node broadcast to a dynamic namespace");
    const sockets = await dyn.fetchSockets();
    assertEqual(sockets.map((s) => s.id), [socket.id], "fetchSockets finds the gateway socket");
    socket.disconnect();
  } finally {
    await gw3.stop();
  }
});

const ok = await run();
clearInterval(ticking);
for (const c of Object.values(clients)) c.socket.disconnect();
io.close();
for (const c of [pub, sub, cmd, emClient, spy]) await c.disconnect().catch(() => {});
const r1 = await gw1.stop();
const r2 = await gw2.stop();
if (r1.code !== 0 || r2.code !== 0) {
  console.log(`gateway exit: ${JSON.stringify(r1)} ${JSON.stringify(r2)}`);
  console.log(gw1.log().slice(-3000));
  console.log(gw2.log().slice(-3000));
}
await redis.stop();
process.exit(ok && r1.code === 0 && r2.code === 0 ? 0 : 1);
