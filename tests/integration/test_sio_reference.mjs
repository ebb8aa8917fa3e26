// test_sio_reference.mjs: sioc's Socket.IO layer (in the sio_reference fixture, whose handlers
// copy the Node reference server of ../shared/data/reference-transcripts) against the official
// socket.io-client 4.8 over every transport, plus raw packets whose outcome PROTOCOL.md §2.4
// fixes (close or stay open, exact CONNECT_ERROR bytes).
import { io } from "socket.io-client";
import { assert, assertEqual, createRunner, rawWebSocket, sleep, startServer, within } from "./lib/harness.mjs";

const server = await startServer(process.env.SIOC_SIO_REFERENCE || "build/asan/fixtures/sio_reference", [
  "--connect-timeout",
  "1000",
]);
const url = `http://127.0.0.1:${server.port}`;
const { test, run } = createRunner("test_sio_reference");

function connect(nsp, opts) {
  const socket = io(url + nsp, { forceNew: true, reconnection: false, ...opts });
  const welcome = within(3000, new Promise((r) => socket.once("welcome", r)), `welcome on ${nsp}`);
  return { socket, welcome };
}

const transportSets = { websocket: ["websocket"], polling: ["polling"], default: ["polling", "websocket"] };

for (const [name, transports] of Object.entries(transportSets)) {
  test(`${name}: connect, welcome, echo, ack, binary both ways`, async () => {
    const { socket, welcome } = connect("/", { transports });
    assertEqual(await welcome, { n: 1 }, "welcome");
    assert(/^[A-Za-z0-9_-]{20}$/.test(socket.id), `socket id ${socket.id}`);
    if (name === "default" && socket.io.engine.transport.name !== "websocket")
      await within(3000, new Promise((r) => socket.io.engine.once("upgrade", r)), "upgrade");
    if (name === "default") assertEqual(socket.io.engine.transport.name, "websocket", "upgraded");
    const echoed = within(3000, new Promise((r) => socket.once("echo", (...a) => r(a))), "echo");
    socket.emit("echo", "hello", 2, { three: [true, null] }, "héllo 😀");
    assertEqual(await echoed, ["hello", 2, { three: [true, null] }, "héllo 😀"], "echo args");
    const acked = await socket.timeout(3000).emitWithAck("ack", 1, "two", { three: 3 });
    assertEqual(acked, 1, "ack (first arg)");
    const all = await new Promise((r) => socket.emit("ack", "a", "b", (...args) => r(args)));
    assertEqual(all, ["a", "b"], "ack args");
    const bin = within(3000, new Promise((r) => socket.once("bin", (...a) => r(a))), "bin");
    const ackBin = await socket.timeout(3000).emitWithAck("bin", Buffer.from([1, 2, 3]), { x: Buffer.from([4]) });
    const got = await bin;
    assertEqual([...got[0]], [1, 2, 3], "binary arg");
    assertEqual([...got[1].x], [4], "nested binary arg");
    assertEqual(Buffer.from(ackBin).toString(), "binary-ack", "binary ack");
    socket.disconnect();
  });
}

test("multiple namespaces on one connection; rooms; join broadcast", async () => {
  const main = connect("/", { transports: ["websocket"] });
  await main.welcome;
  const chat = main.socket.io.socket("/chat"); // auto-connects on the same Manager
  await within(3000, new Promise((r) => chat.once("welcome", r)), "chat welcome");
  assert(chat.io === main.socket.io, "one Manager: one Engine.IO connection");
  assert(chat.id !== main.socket.id, "distinct socket ids per namespace");
  const joined = within(3000, new Promise((r) => main.socket.once("joined", r)), "joined");
  main.socket.emit("join", "room1");
  assertEqual(await joined, "room1", "broadcast to the room");
  const echoed = within(3000, new Promise((r) => chat.once("echo", (...a) => r(a))), "chat echo");
  chat.emit("echo", "in chat");
  assertEqual(await echoed, ["in chat"], "namespace echo");
  main.socket.disconnect();
  chat.disconnect();
});

test("invalid namespace and middleware refusal: CONNECT_ERROR, connection stays open", async () => {
  const bad = io(url + "/random", { transports: ["websocket"], reconnection: false, forceNew: true });
  const err = await within(3000, new Promise((r) => bad.once("connect_error", r)), "connect_error");
  assertEqual(err.message, "Invalid namespace", "message");
  bad.close();
  const secure = io(url + "/secure", { transports: ["websocket"], reconnection: false, forceNew: true });
  const e2 = await within(3000, new Promise((r) => secure.once("connect_error", r)), "connect_error");
  assertEqual([e2.message, e2.data], ["not authorized", { reason: "bad token" }], "middleware error");
  secure.close();
});

test("server disconnects: kick (namespace) and bye (whole connection)", async () => {
  const { socket, welcome } = connect("/", { transports: ["websocket"] });
  await welcome;
  const reason = within(3000, new Promise((r) => socket.once("disconnect", r)), "disconnect");
  socket.emit("kick");
  assertEqual(await reason, "io server disconnect", "kick");
  const b = connect("/", { transports: ["polling"] });
  await b.welcome;
  const r2 = within(3000, new Promise((r) => b.socket.once("disconnect", r)), "disconnect");
  b.socket.emit("bye");
  assertEqual(await r2, "io server disconnect", "bye");
});

// Raw frames over a WebSocket: [frames to send after the open packet, expected outcome].
async function rawSession() {
  const ws = await rawWebSocket(server.port, "/socket.io/?EIO=4&transport=websocket");
  const open = await ws.next();
  assert(open && open.text.startsWith("0{"), "open packet");
  return ws;
}

async function closedWithin(ws, ms) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const f = await ws.next(Math.max(1, deadline - Date.now())).catch(() => undefined);
    if (f === null || (f && f.opcode === 8)) return true;
    if (f === undefined) return false;
  }
  return false;
}

test("raw packets the reference closes on (PROTOCOL.md 2.3, 2.4)", async () => {
  const closing = ['42["x"]', "4", "40\x1e", '40["x"]', '40"x"', "44", '450-["a",{"_placeholder":true,"num":0}]',
    '4511-["a"]', "42[]", "42{}", '42[{"a":1}]', '42["disconnect"]', "42abc[1]", "431{}"];
  for (const packet of closing) {
    const ws = await rawSession();
    if (packet !== '42["x"]') {
      ws.text("40");
      const reply = await ws.next();
      assert(reply && reply.text.startsWith('40{"sid":"'), `connect reply for ${packet}: ${reply && reply.text}`);
      await ws.next(); // welcome
    }
    ws.text(packet);
    assert(await closedWithin(ws, 1500), `closed after ${JSON.stringify(packet)}`);
  }
});

test("raw packets that keep the connection open, with exact answers", async () => {
  const ws = await rawSession();
  ws.text("40/random,");
  assertEqual((await ws.next()).text, '44/random,{"message":"Invalid namespace"}', "invalid namespace");
  ws.text("40/custom?foo=bar,");
  assertEqual((await ws.next()).text, '44/custom?foo=bar,{"message":"Invalid namespace"}', "literal v5 namespace");
  ws.text("40/secure,");
  assertEqual((await ws.next()).text, '44/secure,{"message":"not authorized","data":{"reason":"bad token"}}', "refusal");
  ws.text('40{"token":"123"}');
  assert(/^40\{"sid":"[A-Za-z0-9_-]{20}"\}$/.test((await ws.next()).text), "connect reply has only sid");
  assertEqual((await ws.next()).text, '42["welcome",{"n":1}]', "welcome right after the reply");
  ws.text('42[1,2]');
  ws.text('421["ack",{"3":[true]},[1,"2",{"3":[false]}]]');
  assertEqual((await ws.next()).text, '431[{"3":[true]},[1,"2",{"3":[false]}]]', "ack payload byte-exact");
  ws.text("439[]"); // an ACK with an unknown id is ignored
  ws.text("41");
  ws.text('42["x"]'); // after leaving "/", a packet for it closes
  assert(await closedWithin(ws, 1500), "packet after DISCONNECT closes");
});

test("connect timeout: no namespace within connectTimeout closes", async () => {
  const ws = await rawSession();
  assert(await closedWithin(ws, 2500), "closed after 1000 ms without CONNECT");
});

const ok = await run();
const result = await server.stop();
if (result.code !== 0) console.log(`server exit ${JSON.stringify(result)}\n${server.log()}`);
process.exit(ok && result.code === 0 ? 0 : 1);
