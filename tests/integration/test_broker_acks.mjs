// test_broker_acks.mjs: issue 18, "acks from any backend": POST /v1/emit with "ack" through
// sioc-broker (build/asan) and two real gateways with socket.io-client sockets on a private
// redis-server: a user's sockets on two gateways answer, a silent socket is a timeout, rooms,
// except and the whole namespace, errors (a socket that leaves, a gateway that is gone), bad
// bodies (400), too big selections (413), too many sockets awaited at once (429), and clients that
// hang up before the answer; the ASan broker must then exit without a leak or an error.
import { io } from "socket.io-client";
import { createClient } from "redis";
import notepack from "notepack.io";
import crypto from "node:crypto";
import net from "node:net";
import {
  BROKER,
  GATEWAY,
  assert,
  assertEqual,
  createRunner,
  post,
  sleep,
  startRedis,
  startServer,
  until,
  within,
} from "./lib/harness.mjs";

const redis = await startRedis();
const r = createClient({ url: redis.url });
await r.connect();
const broker = await startServer(BROKER, ["--redis", redis.url, "--check-interval", "200", "--log-level", "debug"]);
const gwArgs = (node) => ["--redis", redis.url, "--node-id", node, "--namespaces", "/,/chat", "--auth", "jwt",
  "--jwt-secret", "s", "--log-level", "warn"];
const gwA = await startServer(GATEWAY, gwArgs("ackA"));
const gwB = await startServer(GATEWAY, gwArgs("ackB"));
const { test, run } = createRunner("test_broker_acks");

// ---- helpers ----
function jwt(sub) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const body = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ sub, exp: Math.floor(Date.now() / 1000) + 600 })}`;
  return `${body}.${crypto.createHmac("sha256", "s").update(body).digest("base64url")}`;
}
const clients = [];
async function connect(gw, user, nsp = "/") {
  const socket = io(`http://127.0.0.1:${gw.port}${nsp}`, { forceNew: true, reconnection: false, transports: ["websocket"],
    auth: { token: jwt(user) } });
  clients.push(socket);
  await within(5000, new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", reject);
  }), `connect ${user} to ${gw.port}${nsp}`);
  return socket;
}
const inMirror = (sid) => until(`${sid} in the mirror`, async () => (await r.hGet(`sioc:sid:${sid}`, "node")) !== null);
const emit = (body) => post(broker.port, "/v1/emit", JSON.stringify(body), "Content-Type: application/json\r\n");
async function ackEmit(body) {
  const t0 = Date.now();
  const res = await emit(body);
  assertEqual(res.status, 200, `ack emit ${JSON.stringify(body)}: ${res.body}`);
  return { ...JSON.parse(res.body), ms: Date.now() - t0 };
}
const sortBySid = (list) => [...list].sort((a, b) => (a.sid < b.sid ? -1 : 1));

// ---- tests ----
test("a user on two gateways answers; a silent socket is reported in timeouts", async () => {
  const a = await connect(gwA, "u1");
  const b = await connect(gwB, "u1");
  const silent = await connect(gwA, "u1"); // no handler: never acknowledges
  a.on("ask", (n, obj, cb) => cb("a", n * 2, obj));
  b.on("ask", (n, obj, cb) => cb("b", n * 3));
  for (const s of [a, b, silent]) await inMirror(s.id);
  const got = await ackEmit({ event: "ask", args: [7, { deep: [1, null] }], users: ["u1"], ack: { timeout: 1500 } });
  assertEqual(sortBySid(got.acks), sortBySid([{ sid: a.id, args: ["a", 14, { deep: [1, null] }] }, { sid: b.id, args: ["b", 21] }]),
    "the acks of both gateways' sockets");
  assertEqual(got.timeouts, [silent.id], "the silent socket timed out");
  assertEqual(got.errors, [], "no errors");
  assert(got.ms >= 1400 && got.ms < 5000, `answered at the timeout (${got.ms} ms)`);
  // when every socket answers, the answer does not wait for the timeout
  const fast = await ackEmit({ event: "ask", args: [1, 0], sids: [a.id, b.id], ack: { timeout: 20000 } });
  assertEqual(fast.acks.length, 2, "both answered");
  assert(fast.ms < 5000, `answered before the timeout (${fast.ms} ms)`);
  const m = (await post(broker.port, "/metrics", "")).body;
  assert(/sioc_broker_acks_total\{result="timeout"\} 1\b/.test(m), "the timeout is counted");
  [a, b, silent].forEach((s) => s.close());
}, 20000);

test("rooms with except, and no selector: every socket of the namespace", async () => {
  const a = await connect(gwA, "r1");
  const b = await connect(gwB, "r2");
  const c = await connect(gwB, "r3");
  const chat = await connect(gwA, "r4", "/chat");
  for (const s of [a, b, c]) s.on("q", (cb) => cb(s.id.slice(0, 4)));
  chat.on("q", (cb) => cb("chat"));
  for (const s of [a, b, c, chat]) await inMirror(s.id);
  assertEqual((await post(broker.port, "/v1/join", JSON.stringify({ sids: [a.id, b.id, c.id], to: ["team"] }))).status, 200, "join");
  await until("team in the mirror", async () => (await r.sCard("sioc:room:/:team")) === 3);
  const got = await ackEmit({ event: "q", rooms: ["team"], except: [c.id], ack: { timeout: 5000 } });
  assertEqual(sortBySid(got.acks), sortBySid([{ sid: a.id, args: [a.id.slice(0, 4)] }, { sid: b.id, args: [b.id.slice(0, 4)] }]), "team but c");
  assertEqual([got.timeouts, got.errors], [[], []], "nothing else");
  const all = await ackEmit({ event: "q", nsp: "/chat", ack: { timeout: 5000 } });
  assertEqual(all.acks, [{ sid: chat.id, args: ["chat"] }], "every socket of /chat");
  const none = await ackEmit({ event: "q", rooms: ["nobody-here"], ack: { timeout: 5000 } });
  assertEqual([none.acks, none.timeouts, none.errors], [[], [], []], "an empty room answers at once");
  [a, b, c, chat].forEach((s) => s.close());
}, 20000);

test("errors: a socket that leaves instead of answering, a gateway that is gone", async () => {
  const quitter = await connect(gwB, "e1");
  const quitterId = quitter.id; // socket.io-client forgets it at disconnect
  quitter.on("ask", () => quitter.disconnect());
  await inMirror(quitterId);
  // a socket the mirror holds on a node nobody runs (written as a gateway would, DESIGN.md 3.4)
  const epoch = crypto.randomBytes(8).toString("hex");
  await r.set("sioc:hb:ghost", epoch, { PX: 60000 });
  await r.sendCommand(["XADD", "sioc:registry", "*", "node", "ghost", "epoch", epoch, "seq", "1", "op", "connect", "nsp", "/",
    "sid", "ghostsid", "uid", "e1", "rooms", notepack.encode(["user:e1"])]);
  await inMirror("ghostsid");
  const got = await ackEmit({ event: "ask", users: ["e1"], ack: { timeout: 5000 } });
  assertEqual(sortBySid(got.errors), sortBySid([{ sid: quitterId, error: "disconnected" }, { sid: "ghostsid", error: "gateway unreachable" }]),
    "both failures, with their reasons");
  assertEqual([got.acks, got.timeouts], [[], []], "no acks, no timeouts");
  assert(got.ms < 4000, `failures do not wait for the timeout (${got.ms} ms)`);
  await r.del("sioc:hb:ghost");
}, 20000);

test("bad ack bodies: 400 with a message; too many sockets: 413", async () => {
  const cases = [
    [{ event: "e", ack: 5 }, "field 'ack' must be an object with a 'timeout' (milliseconds)"],
    [{ event: "e", ack: {} }, "field 'ack.timeout' is required (milliseconds, 1 to 120000)"],
    [{ event: "e", ack: { timeout: 0 } }, "field 'ack.timeout' must be an integer from 1 to 120000 (milliseconds)"],
    [{ event: "e", ack: { timeout: 120001 } }, "field 'ack.timeout' must be an integer from 1 to 120000 (milliseconds)"],
    [{ event: "e", ack: { timeout: 1.5 } }, "field 'ack.timeout' must be an integer from 1 to 120000 (milliseconds)"],
    [{ event: "e", ack: { timeout: "5" } }, "field 'ack.timeout' must be an integer from 1 to 120000 (milliseconds)"],
    [{ event: "e", ack: { timeout: 5, retries: 2 } }, "unknown field 'ack.retries'"],
    [{ event: "e", ack: { timeout: 5 }, volatile: true }, "field 'volatile' cannot be used with 'ack'"],
    [{ event: "disconnect", ack: { timeout: 5 } }, "event 'disconnect' is reserved"],
  ];
  for (const [body, error] of cases) {
    const res = await emit(body);
    assertEqual([res.status, JSON.parse(res.body)], [400, { error }], JSON.stringify(body));
  }
  const join = await post(broker.port, "/v1/join", JSON.stringify({ sids: ["x"], to: ["y"], ack: { timeout: 5 } }));
  assertEqual([join.status, JSON.parse(join.body)], [400, { error: "unknown field 'ack'" }], "ack on /v1/join");
  // more than 10,000 sockets selected: refused before any call goes out
  const sids = Array.from({ length: 10001 }, (_, i) => `big${i}`);
  await r.sAdd("sioc:room:/:big", sids);
  const big = await emit({ event: "e", rooms: ["big"], ack: { timeout: 1000 } });
  assertEqual([big.status, JSON.parse(big.body)], [413, { error: "more than 10000 sockets selected for an ack emit: narrow the selection" }], "413");
  await r.del("sioc:room:/:big");
  assert(broker.log().includes("api.refused") && broker.log().includes("413"), "refusals are logged");
});

test("a client that hangs up before the answer cancels its request; the broker stays sound", async () => {
  const silent = await connect(gwA, "h1");
  const talker = await connect(gwB, "h1");
  talker.on("ask", (cb) => setTimeout(() => cb("here"), 400)); // after the hang-ups
  await inMirror(silent.id);
  await inMirror(talker.id);
  const body = JSON.stringify({ event: "ask", users: ["h1"], ack: { timeout: 1500 } });
  for (let i = 0; i < 3; i++) {
    const s = net.connect(broker.port, "127.0.0.1");
    await within(3000, new Promise((res) => s.once("connect", res)), "connect to the broker");
    s.write(`POST /v1/emit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    await sleep(100 + 50 * i);
    s.destroy();
  }
  await until("three cancellations logged", async () => (broker.log().match(/api\.ack_cancelled/g) || []).length === 3, 3000);
  // the late answers (and the silent socket's timers) hit no freed request
  await until("the late answers arrived", async () => (broker.log().match(/api\.ack_late/g) || []).length === 3, 3000);
  await sleep(1500);
  const got = await ackEmit({ event: "ask", users: ["h1"], ack: { timeout: 1000 } });
  assertEqual([got.acks, got.timeouts], [[{ sid: talker.id, args: ["here"] }], [silent.id]], "the next request works");
  silent.close();
  talker.close();
}, 20000);

test("100,000 sockets awaited at once: the next ack emit is refused with 429; hang-ups free them", async () => {
  // 10,000 sockets of a node whose "gateway" (this subscriber) never answers
  const fake = createClient({ url: redis.url });
  await fake.connect();
  let delivered = 0;
  await fake.subscribe("sioc:node:fake", () => delivered++);
  const sids = Array.from({ length: 10000 }, (_, i) => `crowd${String(i).padStart(5, "0")}`);
  const m = r.multi();
  for (const sid of sids) m.hSet(`sioc:sid:${sid}`, { node: "fake", nsp: "/" });
  m.sAdd("sioc:room:/:crowd", sids);
  await m.exec();
  const body = JSON.stringify({ event: "ask", rooms: ["crowd"], ack: { timeout: 60000 } });
  const held = [];
  try {
    for (let i = 0; i < 10; i++) {
      const s = net.connect(broker.port, "127.0.0.1");
      s.on("error", () => {});
      held.push(s);
      s.write(`POST /v1/emit HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    }
    await until("100,000 calls published", async () => delivered >= 100000, 60000);
    const res = await emit(JSON.parse(body));
    assertEqual([res.status, JSON.parse(res.body)], [429, { error: "too many sockets awaited by ack emits in progress, try again later" }], "429");
    const before = (broker.log().match(/api\.ack_cancelled/g) || []).length;
    held.forEach((s) => s.destroy());
    await until("ten cancellations", async () => (broker.log().match(/api\.ack_cancelled/g) || []).length === before + 10, 5000);
    const small = await ackEmit({ event: "ask", rooms: ["nobody-here"], ack: { timeout: 1000 } });
    assertEqual(small.acks, [], "accepted again once they are gone");
  } finally {
    held.forEach((s) => s.destroy());
    await r.del(["sioc:room:/:crowd", ...sids.map((sid) => `sioc:sid:${sid}`)]);
    await fake.quit();
  }
}, 90000);

test("the broker exits cleanly under ASan (no leak, no error) after all of this", async () => {
  clients.forEach((c) => c.close());
  await gwA.stop();
  await gwB.stop();
  const exit = await broker.stop();
  assert(exit.code === 0 && !/AddressSanitizer|LeakSanitizer|runtime error/.test(broker.log()),
    `broker exit ${JSON.stringify(exit)}:\n${broker.log().slice(-3000)}`);
});

const ok = await run();
clients.forEach((c) => c.close());
await gwA.stop();
await gwB.stop();
await broker.stop();
await r.quit();
await redis.stop();
process.exit(ok ? 0 : 1);
