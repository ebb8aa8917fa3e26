// test_eio_edges.mjs: the gateway's transport paths that end a session on the server's own
// initiative, each with a raw client: the upgrade timeout, the polling linger after a server
// close, the slow-consumer close (WebSocket and polling), and the Socket.IO pending-event
// overflow before a backend-auth answer. sioc-eio-echo runs with short timings (its test options
// --upgrade-timeout, --poll-linger, --out-hard-limit; the text "sioc-echo:close" makes it close
// the session); the last case runs the gateway with --auth backend and no worker.
import crypto from "node:crypto";
import net from "node:net";
import {
  GATEWAY,
  assert,
  assertEqual,
  createRunner,
  get,
  post,
  rawWebSocket,
  sleep,
  startRedis,
  startServer,
  until,
  within,
} from "./lib/harness.mjs";

const ECHO = process.env.SIOC_EIO_ECHO || "build/asan/sioc-eio-echo";
const UPGRADE_MS = 400;
const LINGER_MS = 600;
const HARD_LIMIT = 256 * 1024;
const echo = await startServer(ECHO, [
  "--ping-interval", "10000", "--ping-timeout", "10000", "--upgrade-timeout", String(UPGRADE_MS),
  "--poll-linger", String(LINGER_MS), "--out-hard-limit", String(HARD_LIMIT), "--log-level", "info",
]);
const port = echo.port;
const { test, run } = createRunner("test_eio_edges");

async function openPolling() {
  const res = await get(port, "/engine.io/?EIO=4&transport=polling");
  assertEqual(res.status, 200, "handshake status");
  assert(res.body.startsWith("0{"), `open packet: ${res.body}`);
  return JSON.parse(res.body.slice(1)).sid;
}

const unknownSid = '{"code":1,"message":"Session ID unknown"}';

test("upgrade timeout: a probe that never sends 5 is closed, the polling session goes on", async () => {
  const sid = await openPolling();
  const ws = await rawWebSocket(port, `/engine.io/?EIO=4&transport=websocket&sid=${sid}`);
  assertEqual(ws.status, 101, "probe accepted");
  ws.text("2probe");
  assertEqual((await ws.next()).text, "3probe", "probe answered");
  const started = Date.now();
  // no "5": the probe must be closed once the upgrade timeout passed (not before)
  const frame = await ws.next(UPGRADE_MS + 3000);
  assert(frame === null || frame.opcode === 8, `probe ends with a close, got ${JSON.stringify(frame)}`);
  const waited = Date.now() - started;
  assert(waited >= UPGRADE_MS - 50, `closed after ${waited} ms, before the ${UPGRADE_MS} ms timeout`);
  await until("the log line", () => echo.log().includes(`eio.upgrade_timeout`) && echo.log().includes(sid), 2000);
  // the session itself is untouched and still on polling
  assertEqual((await post(port, `/engine.io/?EIO=4&transport=polling&sid=${sid}`, "4still polling")).body, "ok", "POST");
  assertEqual((await get(port, `/engine.io/?EIO=4&transport=polling&sid=${sid}`)).body, "4still polling", "echo");
});

test("polling linger: after a server close the next GET gets the close packet, then the sid is gone", async () => {
  const sid = await openPolling();
  assertEqual((await post(port, `/engine.io/?EIO=4&transport=polling&sid=${sid}`, "4sioc-echo:close")).body, "ok", "POST");
  const last = await get(port, `/engine.io/?EIO=4&transport=polling&sid=${sid}`);
  // as Node's engine.io: a noop, then the close packet (polling.ts: "triggering empty send to
  // append close packet")
  assertEqual([last.status, last.body], [200, "6\x1e1"], "the lingering session's last GET");
  const after = await get(port, `/engine.io/?EIO=4&transport=polling&sid=${sid}`);
  assertEqual([after.status, after.body], [400, unknownSid], "a GET after the close packet");
});

test("polling linger expiry: a closed session whose GET never comes is forgotten after the linger", async () => {
  const sid = await openPolling();
  assertEqual((await post(port, `/engine.io/?EIO=4&transport=polling&sid=${sid}`, "4sioc-echo:close")).body, "ok", "POST");
  await sleep(LINGER_MS + 400);
  const res = await get(port, `/engine.io/?EIO=4&transport=polling&sid=${sid}`);
  assertEqual([res.status, res.body], [400, unknownSid], "GET after the linger");
});

test("slow consumer, polling: queued output past the hard limit closes the session", async () => {
  const sid = await openPolling();
  const chunk = "4" + "p".repeat(100 * 1024);
  let refused = null;
  for (let i = 0; i < 6 && refused === null; i++) {
    const res = await post(port, `/engine.io/?EIO=4&transport=polling&sid=${sid}`, chunk);
    if (res.status !== 200) refused = { i, res };
  }
  assert(refused !== null, "POSTs went on being accepted with 600 KB queued and no GET");
  assert(refused.i >= 2, `closed after ${refused.i} POSTs of 100 KB (limit 256 KB)`);
  assertEqual([refused.res.status, refused.res.body], [400, unknownSid], "the POST after the close");
  await until("the log line", () => echo.log().includes("eio.slow_consumer") && echo.log().includes(sid), 2000);
});

// A WebSocket client that stops reading: its socket is paused, so the kernel buffers fill and
// the server's queue grows until the hard limit closes the connection.
test("slow consumer, WebSocket: a client that stops reading is closed at the hard limit", async () => {
  const sock = net.connect(port, "127.0.0.1");
  const key = crypto.randomBytes(16).toString("base64");
  let head = Buffer.alloc(0);
  await within(3000, new Promise((resolve) => {
    const onData = (d) => {
      head = Buffer.concat([head, d]);
      if (head.indexOf("\r\n\r\n") >= 0) {
        sock.off("data", onData);
        sock.pause(); // from here on, nothing is read
        resolve();
      }
    };
    sock.on("data", onData);
    sock.write(`GET /engine.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n` +
      `Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\n\r\n`);
  }), "the 101");
  assert(head.toString("latin1").startsWith("HTTP/1.1 101"), "upgraded");
  const count = () => echo.log().split("eio.slow_consumer").length - 1;
  const before = count();
  let closed = false;
  sock.on("close", () => (closed = true));
  sock.on("error", () => {});
  const payload = Buffer.alloc(500 * 1024, "w");
  payload[0] = 0x34; // "4": an Engine.IO message, echoed back whole
  const mask = Buffer.from([1, 2, 3, 4]);
  const masked = Buffer.from(payload.map((b, i) => b ^ mask[i & 3]));
  const frame = Buffer.concat([Buffer.from([0x81, 0xff, 0, 0, 0, 0, 0, payload.length >> 16, (payload.length >> 8) & 255, payload.length & 255]), mask, masked]);
  // 40 x 500 KB = 20 MB of echoes: more than the kernel's buffers on both sides and the limit
  for (let i = 0; i < 40 && !sock.destroyed; i++) {
    if (!sock.write(frame)) await within(5000, new Promise((r) => sock.once("drain", r)).catch(() => {}), "drain").catch(() => {});
    if (count() > before) break;
  }
  await until("the slow-consumer close (its log line)", () => count() > before, 5000);
  sock.resume(); // read what was sent before the close: the connection must end
  await until("the connection to end", () => closed, 5000);
});

test("pending events: more than 64 events before the worker's CONNECT answer close the session", async () => {
  const redis = await startRedis();
  const gw = await startServer(GATEWAY, ["--redis", redis.url, "--auth", "backend", "--auth-timeout", "10000",
    "--ping-interval", "10000", "--ping-timeout", "10000", "--log-level", "info"]);
  try {
    async function connected(n) {
      const ws = await rawWebSocket(gw.port, "/socket.io/?EIO=4&transport=websocket");
      assertEqual(ws.status, 101, "upgrade");
      assert((await ws.next()).text.startsWith("0{"), "open packet");
      ws.text("40"); // no worker answers: the socket waits, its events are kept
      for (let i = 0; i < n; i++) ws.text(`42["early",${i}]`);
      return ws;
    }
    const ok = await connected(64);
    const over = await connected(65);
    const end = await over.next(3000);
    assert(end === null || end.opcode === 8, `65 early events end the connection, got ${JSON.stringify(end)}`);
    await until("the log line", () => gw.log().includes("sio.pending_overflow"), 2000);
    // 64 are kept: that connection is still open and answers a ping
    ok.text("3"); // a stray pong is ignored; the connection must stay up
    await sleep(300);
    assert(!ok.closed, "64 early events were refused");
    ok.close();
    over.close();
  } finally {
    await gw.stop();
    await redis.stop();
  }
});

const ok = await run();
await echo.stop();
process.exit(ok ? 0 : 1);
