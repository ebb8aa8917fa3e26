// test_eio3_clients.mjs: issue 14 with the real socket.io-client 2.5.0 and 2.2.0 (the seeds'
// version; npm aliases socket.io-client-v2 and socket.io-client-v220) against sioc-gateway
// --allow-eio3 yes, the Python test worker (tests/integration/worker.py) and --auth backend.
// Over polling, WebSocket, polling + upgrade and forceBase64: connect (the implicit "/", the
// socket id is the Engine.IO id), namespaces (auth from the query, ids "/chat#<id>", a refusal as
// err.data), emit with ack both ways, binary both ways, rooms and broadcasts with a 4.x client,
// server disconnect, reconnect. Then a mixed room on one cluster: two gateways and a Node
// socket.io 4.8 server (@socket.io/redis-adapter, allowEIO3) with 2.5.0, 2.2.0, 4.x and
// python-socketio clients: every broadcast (from the Node server, from a worker, binary) reaches
// each client once, each in its own encoding. forceJSONP needs a browser: test_eio3_browser.mjs.
import crypto from "node:crypto";
import http from "node:http";
import { createRequire } from "node:module";
import { Server } from "socket.io";
import { io as io4 } from "socket.io-client";
import { createClient } from "redis";
import { createAdapter } from "@socket.io/redis-adapter";
import { GATEWAY, assert, assertEqual, createRunner, sleep, startProcess, startRedis, startServer, within } from "./lib/harness.mjs";

const require = createRequire(import.meta.url);
const clients = { "2.5.0": require("socket.io-client-v2"), "2.2.0": require("socket.io-client-v220") };
const NAMESPACES = "/,/chat";
const WAIT = 5000;

const redis = await startRedis();
const { test, run } = createRunner("test_eio3_clients");
const gatewayArgs = (node) => ["--redis", redis.url, "--namespaces", NAMESPACES, "--node-id", node, "--allow-eio3", "yes",
  "--auth", "backend", "--ping-interval", "2000", "--ping-timeout", "2000", "--log-level", "warn"];
const gw1 = await startServer(GATEWAY, gatewayArgs("gw1"));
const gw2 = await startServer(GATEWAY, gatewayArgs("gw2"));
const worker = await startProcess("/usr/bin/python3", ["tests/integration/worker.py", "--redis", redis.url, "--namespaces", NAMESPACES], "worker ready");

// ---- the Node server of the mixed cluster: joins on "join", like the worker ----
const pub = createClient({ url: redis.url });
const sub = pub.duplicate();
for (const c of [pub, sub]) c.on("error", () => {});
await Promise.all([pub.connect(), sub.connect()]);
const httpServer = http.createServer();
const nodeIo = new Server(httpServer, { allowEIO3: true });
nodeIo.adapter(createAdapter(pub, sub));
nodeIo.of("/chat"); // fetchSockets of /chat asks the gateways too
nodeIo.on("connection", (socket) => {
  socket.on("join", (room, cb) => {
    socket.join(room);
    if (typeof cb === "function") cb(room);
  });
});
await new Promise((r) => httpServer.listen(0, "127.0.0.1", r));
const nodePort = httpServer.address().port;

const opened = [];
function connect2(version, url, opts = {}) {
  const socket = clients[version](url, { forceNew: true, reconnection: false, ...opts });
  opened.push(socket);
  const ready = within(WAIT, new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", reject);
    socket.once("error", reject);
  }), `${version} connect to ${url}`);
  return { socket, ready };
}
function connect4(url, opts = {}) {
  const socket = io4(url, { forceNew: true, reconnection: false, ...opts });
  opened.push(socket);
  return { socket, ready: within(WAIT, new Promise((r, j) => { socket.once("connect", r); socket.once("connect_error", j); }), `4.x connect to ${url}`) };
}
const once = (socket, event) => within(WAIT, new Promise((r) => socket.once(event, (...a) => r(a))), event);
const call = (socket, ...args) => within(WAIT, new Promise((r) => socket.emit(...args, (...a) => r(a))), `ack of ${args[0]}`);

const transportSets = {
  polling: { transports: ["polling"] },
  websocket: { transports: ["websocket"] },
  "polling+upgrade": { transports: ["polling", "websocket"] },
  "forceBase64 polling": { transports: ["polling"], forceBase64: true },
  "forceBase64 websocket": { transports: ["websocket"], forceBase64: true },
};

for (const version of Object.keys(clients)) {
  for (const [name, opts] of Object.entries(transportSets)) {
    test(`${version} ${name}: implicit "/", ids, ack both ways, binary both ways, /chat with query auth`, async () => {
      const url = `http://127.0.0.1:${gw1.port}`;
      const { socket, ready } = connect2(version, `${url}/`, opts);
      await ready;
      if (name === "polling+upgrade" && socket.io.engine.transport.name !== "websocket")
        await within(WAIT, new Promise((r) => socket.io.engine.once("upgrade", r)), "upgrade");
      assertEqual(socket.io.engine.transport.name, name.includes("websocket") || name.includes("upgrade") ? "websocket" : "polling", "transport");
      assertEqual(socket.id, socket.io.engine.id, "the socket id on / is the Engine.IO id (PROTOCOL.md 2.7)");
      assertEqual(await call(socket, "whoami"), [[socket.id, ""]], "the worker saw this socket");
      const echo = once(socket, "echo");
      assertEqual(await call(socket, "echo", "héllo 😀", 2, { three: [true, null] }), ["héllo 😀", 2, { three: [true, null] }], "ack");
      assertEqual(await echo, ["héllo 😀", 2, { three: [true, null] }], "emit to the sender");
      // binary both ways: the client's Buffer reaches the worker and comes back as a Buffer
      const bin = once(socket, "bin");
      const ackBin = await call(socket, "bin", Buffer.from([1, 2, 3]), { nested: Buffer.from([255, 0]) });
      const got = await bin;
      assertEqual([...got[0]], [1, 2, 3], "binary event arg");
      assertEqual([...got[1].nested], [255, 0], "nested binary arg");
      assertEqual([...ackBin[0]], [1, 2, 3], "binary ack arg");
      // server -> client with an ack (the worker's emit with a callback)
      socket.once("question", (x, cb) => cb(`re:${x}`, Buffer.from([7])));
      const answer = await within(WAIT, new Promise((r) => { socket.once("answer", (...a) => r(a)); socket.emit("ask", "q1"); }), "answer");
      assertEqual(answer[0], "re:q1", "the client's ack reached the worker");
      assertEqual([...answer[1]], [7], "with its binary argument");
      // a second namespace on the same connection, auth from the query
      const chat = socket.io.socket("/chat", { query: "who=two&x=1" });
      await within(WAIT, new Promise((r, j) => { chat.once("connect", r); chat.once("error", j); }), "/chat connect");
      assertEqual(chat.id, `/chat#${socket.io.engine.id}`, "socket id outside / is nsp#engineId");
      assertEqual(await call(chat, "whoami"), [[chat.id, ""]], "the worker saw the /chat id");
      assertEqual(await call(chat, "ack", "in chat"), ["in chat"], "ack in /chat");
      socket.close();
    }, 20000);
  }

  test(`${version}: a refused namespace gets err.data; rooms and broadcasts with a 4.x client; kick; reconnect`, async () => {
    const url = `http://127.0.0.1:${gw1.port}`;
    const { socket, ready } = connect2(version, `${url}/`, { transports: ["websocket"] });
    await ready;
    // the worker's connect handler refuses auth {"reject": m} with data {"reason": "test"}
    const refused = socket.io.socket("/chat", { query: "reject=nope" });
    assertEqual(await once(refused, "error"), [{ reason: "test" }], "CONNECT_ERROR carries err.data for protocol v4");
    // a room shared with a 4.x client on the other gateway
    const v4 = connect4(`http://127.0.0.1:${gw2.port}/`, { transports: ["websocket"] });
    await v4.ready;
    const room = `r-${version}`;
    assertEqual(await call(socket, "join", room), [room], "2.x joined");
    const seen2 = once(socket, "joined");
    assertEqual(await call(v4.socket, "join", room), [room], "4.x joined");
    assertEqual(await seen2, [room, v4.socket.id], "the 2.x client hears the 4.x join broadcast across gateways");
    const a = once(socket, "room_msg");
    const b = once(v4.socket, "room_msg");
    await call(socket, "room_msg", room, "hi", Buffer.from([9, 8]));
    for (const [who, got] of [["2.x", await a], ["4.x", await b]]) {
      assertEqual(got[0], "hi", `${who}: text`);
      assertEqual([...got[1]], [9, 8], `${who}: binary`);
    }
    // server disconnect, then a reconnecting client comes back with a new id
    const gone = once(socket, "disconnect");
    socket.emit("kick");
    assertEqual(await gone, ["io server disconnect"], "kick");
    const again = clients[version](`${url}/`, { forceNew: true, transports: ["polling"], reconnectionDelay: 100, reconnectionDelayMax: 200 });
    opened.push(again);
    await within(WAIT, new Promise((r) => again.once("connect", r)), "first connect");
    const firstId = again.id;
    // the Manager's "reconnect" comes with the new transport, the socket's "connect" with its 40
    const reconnected = within(WAIT * 2, new Promise((r) => again.once("reconnect", () => again.once("connect", r))), "reconnect");
    again.io.engine.close(); // the transport goes away: the Manager reconnects
    await reconnected;
    assert(again.connected && again.id !== firstId, `reconnected with a new id (${firstId} -> ${again.id})`);
    assertEqual(await call(again, "whoami"), [[again.id, ""]], "the new socket works");
    for (const s of [socket, v4.socket, again]) s.close();
  }, 25000);
}

test("a namespace's query is its auth as Node makes it (a repeated key: its last value), seen by a Node server's fetchSockets", async () => {
  const query = "a=1&b=x%20y&a=2&c=";
  const onSioc = connect2("2.5.0", `http://127.0.0.1:${gw1.port}/`, { transports: ["websocket"] });
  await onSioc.ready;
  const chat = onSioc.socket.io.socket("/chat", { query });
  await within(WAIT, new Promise((r, j) => { chat.once("connect", r); chat.once("error", j); }), "/chat on sioc");
  const onNode = connect2("2.5.0", `http://127.0.0.1:${nodePort}/`, { transports: ["websocket"] });
  await onNode.ready;
  const nodeChat = onNode.socket.io.socket("/chat", { query });
  await within(WAIT, new Promise((r, j) => { nodeChat.once("connect", r); nodeChat.once("error", j); }), "/chat on Node");
  const all = await nodeIo.of("/chat").fetchSockets();
  const auth = (id) => {
    const s = all.find((x) => x.id === id);
    assert(s, `fetchSockets found ${id} (${all.map((x) => x.id).join(", ")})`);
    return JSON.parse(JSON.stringify(s.handshake.auth));
  };
  const want = { a: "2", b: "x y", c: "" }; // socket.io 4.8: objectFromEntries(URL.searchParams)
  assertEqual(auth(nodeChat.id), want, "Node's own protocol v4 socket");
  assertEqual(auth(chat.id), want, "the sioc socket, through the adapter (same id form /chat#<engine id>)");
  onSioc.socket.close();
  onNode.socket.close();
}, 20000);

function jwt(payload, secret = "eio3-secret") {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const head = `${b64({ alg: "HS256", typ: "JWT" })}.${b64(payload)}`;
  return `${head}.${crypto.createHmac("sha256", secret).update(head).digest("base64url")}`;
}

test("auth jwt: a 2.x client's token comes in the handshake query (it has no auth payload for /)", async () => {
  const jgw = await startServer(GATEWAY, ["--redis", redis.url, "--namespaces", NAMESPACES, "--node-id", "gw-jwt",
    "--allow-eio3", "yes", "--auth", "jwt", "--jwt-secret", "eio3-secret", "--log-level", "warn"]);
  try {
    for (const version of Object.keys(clients)) {
      const ok = connect2(version, `http://127.0.0.1:${jgw.port}/`, { transports: ["polling"], query: { token: jwt({ sub: "u14" }) } });
      await ok.ready;
      assertEqual(await call(ok.socket, "whoami"), [[ok.socket.id, "u14"]], `${version}: the uid from the query's token`);
      const bad = clients[version](`http://127.0.0.1:${jgw.port}/`, { forceNew: true, reconnection: false, transports: ["websocket"], query: { token: jwt({ sub: "x" }, "wrong") } });
      opened.push(bad);
      const err = await once(bad, "error");
      assertEqual(typeof err[0], "string", `${version}: refused with a plain string (protocol v4)`);
      ok.socket.close();
      bad.close();
    }
  } finally {
    await jgw.stop();
  }
}, 20000);

test("mixed room on one cluster (2 gateways + Node, allowEIO3): 2.5.0, 2.2.0, 4.x, python-socketio each get each broadcast once", async () => {
  const room = "mix";
  const members = {
    "2.5.0@gw1 polling": connect2("2.5.0", `http://127.0.0.1:${gw1.port}/`, { transports: ["polling"] }),
    "2.2.0@gw2 websocket": connect2("2.2.0", `http://127.0.0.1:${gw2.port}/`, { transports: ["websocket"] }),
    "2.2.0@gw1 forceBase64": connect2("2.2.0", `http://127.0.0.1:${gw1.port}/`, { transports: ["polling"], forceBase64: true }),
    "4.x@gw2 polling": connect4(`http://127.0.0.1:${gw2.port}/`, { transports: ["polling"] }),
    "2.5.0@node": connect2("2.5.0", `http://127.0.0.1:${nodePort}/`, { transports: ["websocket"] }),
    "4.x@node": connect4(`http://127.0.0.1:${nodePort}/`, { transports: ["websocket"] }),
  };
  const got = {};
  for (const [name, m] of Object.entries(members)) {
    await m.ready;
    got[name] = [];
    m.socket.on("m", (...args) => got[name].push(args));
    assertEqual(await call(m.socket, "join", room), [room], `${name} joined`);
  }
  const py = await startProcess("/usr/bin/python3", ["tests/integration/eio3_mixed_client.py", `http://127.0.0.1:${gw1.port}`, room], "joined");
  try {
    await sleep(300); // the adapter's room membership is local: nothing to propagate, but let joins settle
    nodeIo.to(room).emit("m", "from node", Buffer.from([1, 2]));
    await call(members["2.2.0@gw2 websocket"].socket, "room_msg", room, "unused"); // room_msg event, not "m"
    // a worker broadcast: the worker's room_msg emits "room_msg"; "m" comes from Node and from a
    // second Node emit carrying nested binary
    nodeIo.to(room).emit("m", { nested: Buffer.from([3]) }, "second");
    const deadline = Date.now() + WAIT;
    const pyEvents = () => py.output().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l).args);
    while (Date.now() < deadline && (Object.values(got).some((g) => g.length < 2) || pyEvents().length < 2)) await sleep(50);
    await sleep(300); // nothing arrives twice
    for (const [name, events] of Object.entries(got)) {
      assertEqual(events.length, 2, `${name}: each broadcast once`);
      assertEqual(events[0][0], "from node", `${name}: first`);
      assertEqual([...events[0][1]], [1, 2], `${name}: binary argument`);
      assertEqual([...events[1][0].nested], [3], `${name}: nested binary`);
      assertEqual(events[1][1], "second", `${name}: second`);
    }
    assertEqual(pyEvents(), [["from node", { $bin: "0102" }], [{ nested: { $bin: "03" } }, "second"]], "python-socketio");
  } finally {
    await py.stop();
  }
}, 30000);

test("mixed room: a worker broadcast from a 2.x client reaches 2.x, 4.x and python clients on both gateways", async () => {
  const room = "mix2";
  const members = {
    "2.2.0@gw1": connect2("2.2.0", `http://127.0.0.1:${gw1.port}/`, { transports: ["polling"] }),
    "2.5.0@gw2": connect2("2.5.0", `http://127.0.0.1:${gw2.port}/`, { transports: ["websocket"] }),
    "4.x@gw1": connect4(`http://127.0.0.1:${gw1.port}/`, { transports: ["websocket"] }),
    "4.x@node": connect4(`http://127.0.0.1:${nodePort}/`, { transports: ["polling"] }),
  };
  const got = {};
  for (const [name, m] of Object.entries(members)) {
    await m.ready;
    got[name] = [];
    m.socket.on("room_msg", (...args) => got[name].push(args));
    assertEqual(await call(m.socket, "join", room), [room], `${name} joined`);
  }
  await call(members["2.2.0@gw1"].socket, "room_msg", room, "to all", Buffer.from([4, 2]));
  const deadline = Date.now() + WAIT;
  while (Date.now() < deadline && Object.values(got).some((g) => g.length < 1)) await sleep(50);
  await sleep(300);
  for (const [name, events] of Object.entries(got)) {
    assertEqual(events.length, 1, `${name}: once`);
    assertEqual(events[0][0], "to all", `${name}: text`);
    assertEqual([...events[0][1]], [4, 2], `${name}: binary`);
  }
}, 20000);

const ok = await run();
for (const s of opened) s.close();
nodeIo.close();
await Promise.all([pub.quit().catch(() => {}), sub.quit().catch(() => {})]);
for (const p of [worker, gw1, gw2, redis]) await p.stop();
// the sanitizer builds report leaks and errors when they exit: any report fails the suite
const sanitizer = /(AddressSanitizer|LeakSanitizer|runtime error)/;
for (const srv of [gw1, gw2]) {
  if (sanitizer.test(srv.log())) {
    console.log(`sanitizer report:\n${srv.log()}`);
    console.log("test_eio3_clients: 0 passed, 1 failed");
    process.exit(1);
  }
}
process.exit(ok ? 0 : 1);
