// test_ws_routes.mjs: issue 15, plain WebSocket routes (ws-routes) on real gateways: `ws`
// clients (the npm package browsers' WebSocket behaves like) and raw frames for RFC 6455
// errors, the SDK's sioc.Worker (tests/integration/plain_worker.py) behind them, a Socket.IO
// client on a second gateway, a Node socket.io server with @socket.io/redis-adapter,
// @socket.io/redis-emitter, and sioc-broker's API. Docs: docs/contracts.md "Plain WebSocket
// routes", docs/operations.md.
// test-run: alone (tests/run.sh): the slow-consumer case pushes 15 MB through the ASan gateway to
// a reader within a bound; on a CPU shared with other test files it missed it.
import http from "node:http";
import crypto from "node:crypto";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import WebSocket from "ws";
import { io as ioClient } from "socket.io-client";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-adapter";
import { Emitter } from "@socket.io/redis-emitter";
import { commandOptions, createClient } from "redis";
import {
  assert,
  assertEqual,
  createRunner,
  get,
  post,
  rawHttp,
  rawWebSocket,
  sleep,
  startProcess,
  startRedis,
  startServer,
  until,
  within,
} from "./lib/harness.mjs";

const GATEWAY = process.env.SIOC_GATEWAY || "build/asan/sioc-gateway";
const BROKER = process.env.SIOC_BROKER || "build/asan/sioc-broker";
const ROUTES = "/test=/echo,/ws=/ws,/ws/{user}=/ws";
const { test, run } = createRunner("test_ws_routes");

const redis = await startRedis();
let rejections = 0;
process.on("unhandledRejection", () => rejections++);
const rc = createClient({ url: redis.url });
const pub = rc.duplicate();
const sub = rc.duplicate();
for (const c of [rc, pub, sub]) c.on("error", () => {});
await Promise.all([rc.connect(), pub.connect(), sub.connect()]);
const emitter = new Emitter(rc);

// a Node socket.io server in the same adapter cluster
const httpServer = http.createServer();
const nodeIo = new Server(httpServer);
nodeIo.adapter(createAdapter(pub, sub));
nodeIo.of("/ws");
await new Promise((r) => httpServer.listen(0, "127.0.0.1", r));

const gwArgs = (node, extra = []) => ["--redis", redis.url, "--namespaces", "/,/echo,/ws", "--ws-routes", ROUTES,
  "--node-id", node, "--ping-interval", "1000", "--ping-timeout", "1000", "--log-level", "info", ...extra];
const gw1 = await startServer(GATEWAY, gwArgs("gw1"));
const gw2 = await startServer(GATEWAY, gwArgs("gw2"));
const broker = await startServer(BROKER, ["--redis", redis.url, "--check-interval", "200"]);
const worker = await startProcess("/usr/bin/python3", ["tests/integration/plain_worker.py", "--redis", redis.url],
  "plain worker ready");

// A `ws` client that records what it receives: {binary, text} per message, and its close.
async function plain(port, path, opts = {}) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, opts);
  const messages = [];
  const waiters = [];
  let closed = null;
  ws.on("message", (data, binary) => {
    messages.push({ binary, text: binary ? Buffer.from(data).toString("hex") : data.toString() });
    while (waiters.length) waiters.shift()();
  });
  ws.on("close", (code, reason) => {
    closed = { code, reason: reason.toString() };
    while (waiters.length) waiters.shift()();
  });
  ws.on("error", () => {});
  await within(5000, new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("unexpected-response", (req, res) => reject(new Error(`status ${res.statusCode}`)));
    ws.once("error", reject);
  }), `plain connect to ${path}`);
  return {
    ws,
    messages,
    get closed() {
      return closed;
    },
    // the next message (in order), waiting up to `ms`
    async next(ms = 5000) {
      await until("a plain message", () => messages.length > 0 || closed, ms);
      assert(messages.length > 0, `closed before a message: ${JSON.stringify(closed)}`);
      return messages.shift();
    },
    async waitClose(ms = 5000) {
      await until("the close", () => closed, ms);
      return closed;
    },
  };
}

function sio(port, nsp, opts = {}) {
  const socket = ioClient(`http://127.0.0.1:${port}${nsp}`, { forceNew: true, reconnection: false, transports: ["websocket"], ...opts });
  const got = [];
  socket.on("message", (...args) => got.push(args));
  return within(5000, new Promise((resolve, reject) => {
    socket.once("connect", () => resolve({ socket, got }));
    socket.once("connect_error", reject);
  }), `Socket.IO connect to ${nsp}`);
}

async function numsub(channel) {
  return Number((await rc.sendCommand(["PUBSUB", "NUMSUB", channel]))[1]);
}
await until("3 members of the /ws adapter", async () => (await numsub("socket.io-request#/ws#")) === 3, 10000);

async function whoami(c) {
  c.ws.send("whoami");
  const m = await c.next();
  const i = m.text.indexOf(" ");
  return { sid: m.text.slice(0, i), uid: m.text.slice(i + 1) };
}

test("echo through the SDK's Worker: text and binary messages, in order", async () => {
  const c = await plain(gw1.port, "/test");
  try {
    c.ws.send("hello");
    c.ws.send(Buffer.from([1, 2, 3]));
    c.ws.send("héllo ✓");
    assertEqual(await c.next(), { binary: false, text: "received hello" }, "text echo");
    assertEqual(await c.next(), { binary: true, text: Buffer.concat([Buffer.from("received "), Buffer.from([1, 2, 3])]).toString("hex") }, "binary echo");
    assertEqual(await c.next(), { binary: false, text: "received héllo ✓" }, "UTF-8 echo");
  } finally {
    c.ws.close();
  }
  await until("the disconnect entry", async () => {
    const entries = await rc.xRange("sioc:up:/echo:0", "-", "+");
    return entries.some((e) => e.message.type === "disconnect" && e.message.reason === "client namespace disconnect" ||
      e.message.type === "disconnect" && e.message.reason === "transport close");
  });
  const entries = await rc.xRange("sioc:up:/echo:0", "-", "+");
  const connect = entries.find((e) => e.message.type === "connect");
  assert(connect && connect.message.uid === "", "anonymous connect entry");
  const events = entries.filter((e) => e.message.type === "event");
  assertEqual(events.map((e) => e.message.event), ["message", "message", "message"], "events named message");
  assertEqual(entries.filter((e) => e.message.type === "disconnect").map((e) => e.message.reason), ["transport close"], "reason");
});

test("{user} routes: the user's id, its room, GET /v1/users on the broker", async () => {
  const c = await plain(gw1.port, "/ws/al%20ice?x=1");
  try {
    const me = await whoami(c);
    assertEqual(me.uid, "al ice", "the worker sees the decoded user");
    emitter.of("/ws").to("user:al ice").emit("message", "to the user");
    assertEqual(await c.next(), { binary: false, text: "to the user" }, "user room broadcast");
    const api = async () => JSON.parse((await get(broker.port, `/v1/users/${encodeURIComponent("al ice")}`)).body);
    await until("the broker's mirror", async () => (await api()).online);
    const u = await api();
    assertEqual(u.sockets.length, 1, "one socket");
    assertEqual([u.sockets[0].sid, u.sockets[0].nsp, u.sockets[0].node], [me.sid, "/ws", "gw1"], "socket");
    // the mirror leaves out the own-id room (docs/contracts.md)
    assertEqual(u.sockets[0].rooms, ["user:al ice"], "rooms");
    const pushed = await post(broker.port, "/v1/emit", JSON.stringify({ nsp: "/ws", event: "message", args: [{ from: "api" }], users: ["al ice"] }),
      "Content-Type: application/json\r\n");
    assertEqual(pushed.status, 200, `POST /v1/emit: ${pushed.body}`);
    assertEqual(await c.next(), { binary: false, text: '{"from":"api"}' }, "the broker's push");
  } finally {
    c.ws.close();
  }
});

test("one broadcast reaches a plain client and a Socket.IO client on two gateways", async () => {
  const p = await plain(gw1.port, "/ws");
  const s = await sio(gw2.port, "/ws");
  try {
    p.ws.send("join lobby");
    assertEqual(await p.next(), { binary: false, text: "joined lobby" }, "plain joined");
    s.socket.emit("message", "join lobby");
    await until("sio joined", () => s.got.length === 1);
    assertEqual(s.got.shift(), ["joined lobby"], "sio joined");
    emitter.of("/ws").to("lobby").emit("message", "hello lobby");
    emitter.of("/ws").to("lobby").emit("message", { a: [1, "x"] }, "ignored");
    emitter.of("/ws").to("lobby").emit("message", Buffer.from([0, 255]));
    assertEqual(await p.next(), { binary: false, text: "hello lobby" }, "plain text");
    assertEqual(await p.next(), { binary: false, text: '{"a":[1,"x"]}' }, "plain JSON");
    assertEqual(await p.next(), { binary: true, text: "00ff" }, "plain binary");
    await until("sio got 3", () => s.got.length === 3);
    assertEqual(s.got[0], ["hello lobby"], "sio text");
    assertEqual(s.got[1], [{ a: [1, "x"] }, "ignored"], "sio object");
    assertEqual(Buffer.from(s.got[2][0]).toString("hex"), "00ff", "sio binary");
    s.got.length = 0;
    p.ws.send("to lobby from the plain client");
    assertEqual(await p.next(), { binary: false, text: "from the plain client" }, "plain gets its own room message");
    await until("sio got it", () => s.got.length === 1);
    assertEqual(s.got[0], ["from the plain client"], "sio gets the plain client's room message");
  } finally {
    p.ws.close();
    s.socket.close();
  }
});

test("a Node socket.io server (redis-adapter) broadcasts to plain clients, counts them in fetchSockets and allRooms, joins and disconnects them", async () => {
  const p = await plain(gw2.port, "/ws/nodeuser");
  try {
    const { sid } = await whoami(p);
    p.ws.send("join noderoom");
    await p.next();
    nodeIo.of("/ws").to("noderoom").emit("message", "from node");
    assertEqual(await p.next(), { binary: false, text: "from node" }, "Node broadcast");
    const sockets = await nodeIo.of("/ws").in("noderoom").fetchSockets();
    assertEqual(sockets.map((x) => x.id), [sid], "fetchSockets finds the plain socket");
    assert(sockets[0].rooms.has("user:nodeuser") && sockets[0].rooms.has("noderoom"), "its rooms");
    assertEqual(sockets[0].handshake.url, "/ws/nodeuser", "its handshake url");
    const rooms = await nodeIo.of("/ws").adapter.allRooms();
    assert(rooms.has("noderoom") && rooms.has(sid), "allRooms has its rooms");
    nodeIo.of("/ws").in(sid).socketsJoin("joined-by-node");
    await until("socketsJoin", async () => (await nodeIo.of("/ws").in("joined-by-node").fetchSockets()).length === 1);
    nodeIo.of("/ws").to("joined-by-node").emit("message", 42);
    assertEqual(await p.next(), { binary: false, text: "42" }, "a number as JSON text");
    nodeIo.of("/ws").in(sid).disconnectSockets();
    assertEqual((await p.waitClose()).code, 1000, "disconnectSockets closes with 1000");
  } finally {
    p.ws.close();
  }
});

test("a worker's disconnect closes with 1000; the entries carry the reasons", async () => {
  const p = await plain(gw1.port, "/ws");
  const { sid } = await whoami(p);
  p.ws.send("bye");
  assertEqual((await p.waitClose()).code, 1000, "1000");
  await until("disconnect entry", async () => (await rc.xRange("sioc:up:/ws:0", "-", "+"))
    .some((e) => e.message.sid === sid && e.message.type === "disconnect"));
  const d = (await rc.xRange("sioc:up:/ws:0", "-", "+")).find((e) => e.message.sid === sid && e.message.type === "disconnect");
  assertEqual(d.message.reason, "server namespace disconnect", "reason");
});

test("HTTP answers before the upgrade: 404, 426, 405, 400, with log lines", async () => {
  const ws = (path, headers = "") => rawHttp(gw1.port, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n${headers}\r\n`);
  const key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
  assertEqual((await ws("/nope", `Sec-WebSocket-Version: 13\r\n${key}`)).status, 404, "not a route");
  assertEqual((await ws("/ws/", `Sec-WebSocket-Version: 13\r\n${key}`)).status, 404, "a trailing slash is another path");
  const plainGet = await get(gw1.port, "/ws");
  assertEqual(plainGet.status, 426, "a plain GET");
  assertEqual(plainGet.headers.upgrade, "websocket", "Upgrade: websocket");
  assertEqual((await post(gw1.port, "/ws", "x")).status, 405, "POST");
  const v = await ws("/ws", `Sec-WebSocket-Version: 8\r\n${key}`);
  assertEqual([v.status, v.headers["sec-websocket-version"]], [426, "13"], "bad version");
  assertEqual((await ws("/ws", "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n")).status, 400, "bad key");
  assertEqual((await ws("/ws/%FF", `Sec-WebSocket-Version: 13\r\n${key}`)).status, 400, "a user that is not UTF-8");
  await until("log lines", () => (gw1.log().match(/ws\.route_refused/g) || []).length >= 5);
});

test("RFC 6455 errors: oversized message 1009, invalid UTF-8 1007, unmasked frame 1002", async () => {
  const gw = await startServer(GATEWAY, gwArgs("gw-small", ["--max-payload", "1000", "--upstream", "off"]));
  try {
    let c = await rawWebSocket(gw.port, "/ws");
    assertEqual(c.status, 101, "upgraded");
    c.send(1, Buffer.alloc(1001, 0x61));
    let f = await c.next();
    assertEqual([f.opcode, f.code], [8, 1009], "too big");
    c = await rawWebSocket(gw.port, "/ws");
    c.send(1, Buffer.from([0x61, 0xff, 0x62]));
    f = await c.next();
    assertEqual([f.opcode, f.code], [8, 1007], "invalid UTF-8");
    c = await rawWebSocket(gw.port, "/ws");
    c.send(1, Buffer.from("hi"), { mask: false });
    f = await c.next();
    assertEqual([f.opcode, f.code], [8, 1002], "unmasked");
    c = await rawWebSocket(gw.port, "/ws");
    c.send(9, Buffer.from("ping!"));
    f = await c.next();
    assertEqual([f.opcode, f.text], [10, "ping!"], "a client ping gets its pong");
    c.send(8, Buffer.from([0x03, 0xe8]));
    f = await c.next();
    assertEqual([f.opcode, f.code], [8, 1000], "the close handshake echoes the code");
    await until("log lines", () => (gw.log().match(/ws\.protocol_error/g) || []).length >= 3);
  } finally {
    await gw.stop();
    assert(!/Sanitizer/.test(gw.log()), `no sanitizer report:\n${gw.log().slice(-3000)}`);
  }
});

test("a client that does not read is closed as a slow consumer (ws.slow_consumer); the others get everything", async () => {
  // a gateway of its own whose pings are far apart: the stalled client answers none, and with
  // the 1000/1000 of the others a loaded machine closes it by ping timeout before its queue fills
  const gw = await startServer(GATEWAY, gwArgs("gw-slow").map((a, i, all) =>
    (all[i - 1] === "--ping-interval" || all[i - 1] === "--ping-timeout" ? "60000" : a)));
  // a raw client with a small receive buffer that completes the upgrade and then never reads
  // (a Node socket cannot shrink SO_RCVBUF; Linux lets the window grow to 32 MB otherwise)
  const stalled = spawn("/usr/bin/python3", ["-c", `
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", ${gw.port}))
s.sendall(b"GET /ws/sleepy HTTP/1.1\\r\\nHost: x\\r\\nConnection: Upgrade\\r\\nUpgrade: websocket\\r\\n"
          b"Sec-WebSocket-Version: 13\\r\\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\n\\r\\n")
print(s.recv(200).split(b"\\r\\n")[0].decode(), flush=True)
time.sleep(60)
`], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  stalled.stdout.on("data", (d) => (out += d));
  const reader = await plain(gw.port, "/ws/sleepy");
  try {
    await until("the stalled client upgraded", () => out.includes("101"));
    await until("two sockets of sleepy", async () =>
      (await nodeIo.of("/ws").in("user:sleepy").fetchSockets()).length === 2);
    const big = "y".repeat(500000);
    for (let i = 0; i < 30; i++) {
      emitter.of("/ws").to("user:sleepy").emit("message", `${i} ${big}`);
      await sleep(100); // paced: the reader keeps up, and Redis's pub/sub output limit is not tested here
    }
    await until("the slow consumer closed", () => /ws\.slow_consumer/.test(gw.log()), 20000);
    await until("30 messages read", () => reader.messages.length === 30, 20000);
    assertEqual(reader.messages.map((m) => m.text.split(" ")[0]), Array.from({ length: 30 }, (_, i) => String(i)), "the reader got all, in order");
    assertEqual(reader.closed, null, "the reader stays");
    await until("the stalled connection dropped", async () =>
      (await nodeIo.of("/ws").in("user:sleepy").fetchSockets()).length === 1);
  } finally {
    stalled.kill("SIGKILL");
    reader.ws.close();
    await gw.stop();
    assert(!/Sanitizer/.test(gw.log()), `no sanitizer report:\n${gw.log().slice(-3000)}`);
  }
}, 45000);

test("a client that never answers pings is closed with 1001; one that does stays", async () => {
  const raw = await rawWebSocket(gw1.port, "/ws");
  const good = await plain(gw1.port, "/ws");
  let f;
  do f = await raw.next(6000); while (f && f.opcode === 9);
  assert(f, "a close frame");
  assertEqual([f.opcode, f.code, f.payload.subarray(2).toString()], [8, 1001, "ping timeout"], "closed for its silence");
  await sleep(1500);
  assertEqual(good.closed, null, "the ws client (it pongs) is still open");
  assert(/ws\.ping_timeout/.test(gw1.log()), "logged");
  good.ws.close();
}, 20000);

test("auth jwt: token in the query or Authorization; 401 without; 403 when {user} is another", async () => {
  const secret = "plain-secret";
  const jwt = (sub) => {
    const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
    const body = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ sub, exp: Math.floor(Date.now() / 1000) + 600 })}`;
    return `${body}.${crypto.createHmac("sha256", secret).update(body).digest("base64url")}`;
  };
  const gw = await startServer(GATEWAY, gwArgs("gw-jwt", ["--auth", "jwt", "--jwt-secret", secret]));
  try {
    await assertRejects(plain(gw.port, "/ws"), /status 401/, "no token");
    await assertRejects(plain(gw.port, `/ws?token=${jwt("x")}x`), /status 401/, "bad token");
    await assertRejects(plain(gw.port, `/ws/bob?token=${jwt("alice")}`), /status 403/, "another user");
    const a = await plain(gw.port, `/ws?token=${jwt("alice")}`);
    assertEqual((await whoami(a)).uid, "alice", "user from the token");
    const b = await plain(gw.port, "/ws/bob", { headers: { Authorization: `Bearer ${jwt("bob")}` } });
    assertEqual((await whoami(b)).uid, "bob", "Authorization header");
    emitter.of("/ws").to("user:alice").emit("message", "hi alice");
    assertEqual((await a.next()).text, "hi alice", "user room");
    a.ws.close();
    b.ws.close();
  } finally {
    await gw.stop();
  }
});

test("auth backend: the worker accepts (messages sent meanwhile wait) or refuses with 1008", async () => {
  const gw = await startServer(GATEWAY, gwArgs("gw-backend", ["--auth", "backend"]));
  try {
    const c = await plain(gw.port, "/ws/carol");
    c.ws.send("whoami"); // at once: queued until the worker's answer
    const me = (await c.next()).text;
    assert(me.endsWith(" carol"), `the route's user stays: ${me}`);
    const r = await plain(gw.port, "/ws?reject=1");
    const closed = await r.waitClose();
    assertEqual([closed.code, closed.reason], [1008, "Connection rejected by server"], "refused");
    const long = await (await plain(gw.port, "/ws?reject-long=1")).waitClose();
    // RFC 6455 5.5: at most 123 bytes of reason, cut between characters
    assertEqual([long.code, long.reason], [1008, "\u00e9".repeat(61)], "a long refusal message, cut");
  } finally {
    await gw.stop();
    assert(!/Sanitizer/.test(gw.log()), `no sanitizer report:\n${gw.log().slice(-3000)}`);
  }
});

test("wss: a plain route over TLS (tls-cert); the connect entry says secure", async () => {
  const { execFileSync } = await import("node:child_process");
  const { mkdtempSync, rmSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const path = await import("node:path");
  const dir = mkdtempSync(path.join(tmpdir(), "sioc-wss-"));
  const key = path.join(dir, "k.pem");
  const cert = path.join(dir, "c.pem");
  execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
    "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
  { stdio: "ignore", timeout: 20000 });
  const gw = await startServer(GATEWAY, gwArgs("gw-tls", ["--tls-cert", cert, "--tls-key", key]));
  try {
    const ws = new WebSocket(`wss://127.0.0.1:${gw.port}/test`, { ca: readFileSync(cert) });
    const got = new Promise((resolve) => ws.once("message", (d) => resolve(d.toString())));
    await within(5000, new Promise((resolve, reject) => { ws.once("open", resolve); ws.once("error", reject); }), "wss open");
    ws.send("over tls");
    assertEqual(await within(5000, got, "the echo"), "received over tls", "echo over wss");
    ws.close();
    const entries = await rc.xRange(commandOptions({ returnBuffers: true }), "sioc:up:/echo:0", "-", "+");
    const connect = entries.filter((e) => String(e.message.type) === "connect" && String(e.message.node) === "gw-tls");
    assertEqual(connect.length, 1, "one connect entry from gw-tls");
    // hs is MessagePack: the key "secure" followed by true (0xc3)
    const hs = connect[0].message.hs;
    assert(hs.includes(Buffer.from([0xa6, ...Buffer.from("secure"), 0xc3])), "hs.secure is true");
  } finally {
    await gw.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

async function assertRejects(promise, re, what) {
  let err = null;
  await promise.then((c) => c.ws.close(), (e) => (err = e));
  assert(err && re.test(String(err)), `${what}: ${err}`);
}

test("metrics count plain connections and messages; SIGTERM closes them with 1001", async () => {
  const gw = await startServer(GATEWAY, gwArgs("gw-metrics", ["--upstream", "off"]));
  const a = await plain(gw.port, "/ws");
  const b = await plain(gw.port, "/test");
  a.ws.send("one");
  await until("counted", async () => /sioc_plain_messages_total\{direction="in"\} 1\b/.test((await get(gw.port, "/metrics")).body));
  const m = (await get(gw.port, "/metrics")).body;
  assert(/sioc_plain_connections 2\b/.test(m), `two plain connections:\n${m}`);
  const stopped = gw.stop();
  assertEqual((await a.waitClose()).code, 1001, "drain closes with 1001");
  assertEqual((await b.waitClose()).code, 1001, "both");
  await stopped;
  assert(!/Sanitizer/.test(gw.log()), `no sanitizer report:\n${gw.log().slice(-3000)}`);
});

test("upstream back-pressure: plain clients' reading pauses, they are not closed, every message arrives", async () => {
  const red = await startRedis();
  const gw = await startServer(GATEWAY, ["--redis", red.url, "--namespaces", "/,/ws", "--ws-routes", "/ws=/ws",
    "--ping-interval", "1000", "--ping-timeout", "2000", "--log-level", "info"]);
  const clients = [];
  try {
    for (let i = 0; i < 10; i++) clients.push(await plain(gw.port, "/ws"));
    await sleep(300);
    await red.kill();
    // 10 x 90 x 10 KB = 9 MB: more than the 8 MiB the Redis link queues, so reading pauses
    const payload = "x".repeat(10000);
    for (const c of clients) {
      for (let i = 0; i < 90; i++) c.ws.send(`${i} ${payload}`);
      await sleep(10); // let this process answer the gateway's pings meanwhile
    }
    await until("reading paused", () => /pausing reading/.test(gw.log()), 10000);
    await sleep(5000); // more than ping-interval + ping-timeout
    if (clients.some((c) => c.closed)) console.log(gw.log().split("\n").filter((l) => !/connect_failed|Connection refused/.test(l)).join("\n"));
    assertEqual(clients.map((c) => c.closed), clients.map(() => null), "no client closed by the pause");
    await red.launch();
    const r2 = createClient({ url: red.url });
    r2.on("error", (e) => console.log(`r2: ${e}`));
    await r2.connect();
    await until("900 events", async () => (await r2.xLen("sioc:up:/ws:0")) >= 900, 20000).catch(async (e) => {
      console.log(gw.log().slice(-1500));
      console.log("xlen", await r2.xLen("sioc:up:/ws:0"), JSON.stringify(clients.map((c) => [c.closed, c.ws.bufferedAmount])));
      throw e;
    });
    const entries = await r2.xRange("sioc:up:/ws:0", "-", "+");
    await r2.quit();
    const events = entries.filter((e) => e.message.type === "event");
    // the restarted Redis kept nothing: these were queued by the gateway, in order per client
    assertEqual(events.length, 900, "every message upstream");
    const bySid = new Map();
    for (const e of events) bySid.set(e.message.sid, (bySid.get(e.message.sid) || 0) + 1);
    assertEqual([...bySid.values()], clients.map(() => 90), "90 from each client");
    assertEqual(clients.map((c) => c.closed), clients.map(() => null), "still open");
  } finally {
    for (const c of clients) c.ws.close();
    await gw.stop();
    await red.stop();
    assert(!/Sanitizer/.test(gw.log()), `no sanitizer report:\n${gw.log().slice(-3000)}`);
  }
}, 60000);

test("start-up errors name ws-routes", async () => {
  const { spawnSync } = await import("node:child_process");
  const check = (routes, nsps = "/,/ws") => spawnSync(GATEWAY, ["--namespaces", nsps, "--ws-routes", routes, "--check-config"], { encoding: "utf8" });
  for (const [routes, want] of [["/ws", "expected PATH=NAMESPACE"], ["/ws=/chat", "not accepted by the namespaces"],
    ["/ws=/ws,/ws=/ws", "the same path twice"], ["/a/{user}/{user}=/ws", "more than one {user}"], ["/socket.io/x=/ws", "Engine.IO path"]]) {
    const r = check(routes);
    assert(r.status === 2 && r.stderr.includes("ws-routes") && r.stderr.includes(want), `${routes}: ${r.status} ${r.stderr}`);
  }
  assertEqual(check("/ws=/ws,/ws/{user}=/ws").status, 0, "a valid list");
});

const ok = await run();
await worker.stop();
for (const s of [gw1, gw2, broker]) await s.stop();
for (const s of [gw1, gw2]) if (/Sanitizer/.test(s.log())) {
  console.log(`sanitizer report:\n${s.log().slice(-3000)}`);
}
nodeIo.close();
for (const c of [rc, pub, sub]) await c.quit().catch(() => {});
await redis.stop();
process.exit(ok && ![gw1, gw2].some((s) => /Sanitizer/.test(s.log())) ? 0 : 1);
