// test_eio_echo.mjs: sioc-eio-echo (the gateway's Engine.IO transport code) against the official
// engine.io-client and against raw HTTP/WebSocket requests whose answers PROTOCOL.md §1 fixes
// byte for byte. Server config as the Engine.IO protocol suite wants it: pingInterval 300,
// pingTimeout 200, maxPayload 1000000, CORS *.
import { Socket } from "engine.io-client";
import {
  assert,
  assertEqual,
  createRunner,
  get,
  post,
  rawHttp,
  rawWebSocket,
  sleep,
  startServer,
  within,
} from "./lib/harness.mjs";

const binary = process.env.SIOC_EIO_ECHO || "build/asan/sioc-eio-echo";
const server = await startServer(binary, ["--ping-interval", "300", "--ping-timeout", "200"]);
const port = server.port;
const base = `/engine.io/?EIO=4`;
const { test, run } = createRunner("test_eio_echo");

function openClient(transports, extra = {}) {
  const socket = new Socket(`http://127.0.0.1:${port}`, { transports, ...extra });
  const opened = within(3000, new Promise((r) => socket.on("open", r)), "open");
  return { socket, opened };
}

function nextMessage(socket) {
  return within(3000, new Promise((r) => socket.once("message", r)), "a message");
}

async function echoRoundTrip(socket) {
  const text = "héllo 😀 \u2028 \"quoted\"";
  socket.send(text);
  assertEqual(await nextMessage(socket), text, "text echo");
  const bin = new Uint8Array([0, 1, 2, 253, 254, 255]);
  socket.send(bin);
  const back = await nextMessage(socket);
  assertEqual(Array.from(new Uint8Array(back)), Array.from(bin), "binary echo");
}

for (const transports of [["websocket"], ["polling"]]) {
  test(`engine.io-client ${transports[0]} only: text and binary echo`, async () => {
    const { socket, opened } = openClient(transports);
    await opened;
    assertEqual(socket.transport.name, transports[0], "transport");
    await echoRoundTrip(socket);
    socket.close();
  });
}

test("engine.io-client default: polling, then upgrade to websocket, then echo", async () => {
  const { socket, opened } = openClient(["polling", "websocket"]);
  await opened;
  await within(3000, new Promise((r) => socket.on("upgrade", r)), "upgrade");
  assertEqual(socket.transport.name, "websocket", "transport after upgrade");
  await echoRoundTrip(socket);
  socket.close();
});

test("websocket: a large message, then small ones, on one connection (the large buffer is released)", async () => {
  const { socket, opened } = openClient(["websocket"]);
  await opened;
  const big = "x".repeat(200000);
  socket.send(big);
  assertEqual((await nextMessage(socket)).length, big.length, "200 KB echo");
  socket.send("small after big");
  assertEqual(await nextMessage(socket), "small after big", "next message");
  const bin = new Uint8Array(100000).fill(7);
  socket.send(bin);
  assertEqual(new Uint8Array(await nextMessage(socket)).length, 100000, "100 KB binary echo");
  socket.send("and again");
  assertEqual(await nextMessage(socket), "and again", "after the binary one");
  socket.close();
});

test("heartbeat: a client that pongs stays connected through several pings", async () => {
  for (const transports of [["websocket"], ["polling"]]) {
    const { socket, opened } = openClient(transports);
    await opened;
    let pings = 0;
    let closed = null;
    socket.on("ping", () => pings++);
    socket.on("close", (reason) => (closed = reason));
    await sleep(1300);
    assert(closed === null, `${transports[0]} closed: ${closed}`);
    assert(pings >= 3, `${transports[0]}: ${pings} pings in 1.3 s with pingInterval 300`);
    socket.close();
  }
});

test("handshake body and headers (PROTOCOL.md 1.3)", async () => {
  const r = await get(port, `${base}&transport=polling&t=abc`);
  assertEqual(r.status, 200, "status");
  assertEqual(r.headers["content-type"], "text/plain; charset=UTF-8", "content-type");
  assertEqual(r.headers["cache-control"], "no-store", "cache-control");
  assertEqual(r.headers["access-control-allow-origin"], "*", "CORS *");
  const m = /^0\{"sid":"([A-Za-z0-9_-]{20})","upgrades":\["websocket"\],"pingInterval":300,"pingTimeout":200,"maxPayload":1000000\}$/.exec(r.body);
  assert(m, `open packet: ${r.body}`);
  const ws = await rawWebSocket(port, `${base}&transport=websocket`);
  assertEqual(ws.status, 101, "websocket status");
  const first = await ws.next();
  assert(/^0\{"sid":"[A-Za-z0-9_-]{20}","upgrades":\[\],"pingInterval":300/.test(first.text), first.text);
  ws.close();
});

test("request errors: exact status and body (PROTOCOL.md 1.2)", async () => {
  const cases = [
    [`/engine.io/?EIO=4&transport=tobi`, 400, '{"code":0,"message":"Transport unknown"}'],
    [`/engine.io/?EIO=4`, 400, '{"code":0,"message":"Transport unknown"}'],
    [`/engine.io/?EIO=4&transport=polling&sid=ABCDEFGHIJKLMNOPQRST`, 400, '{"code":1,"message":"Session ID unknown"}'],
    // issue 10: a sid too long to be one (over 64 characters) is unknown, not missing
    [`/engine.io/?EIO=4&transport=polling&sid=${"A".repeat(65)}`, 400, '{"code":1,"message":"Session ID unknown"}'],
    [`/engine.io/?EIO=4&transport=polling&sid=${"A".repeat(5000)}`, 400, '{"code":1,"message":"Session ID unknown"}'],
    [`/engine.io/?transport=polling`, 400, '{"code":5,"message":"Unsupported protocol version"}'],
    [`/engine.io/?EIO=3&transport=polling`, 400, '{"code":5,"message":"Unsupported protocol version"}'],
    [`/engine.io/?EIO=4&transport=websocket`, 400, '{"code":3,"message":"Bad request"}'],
  ];
  for (const [url, status, body] of cases) {
    const r = await get(port, url);
    assertEqual([r.status, r.body], [status, body], url);
    assertEqual(r.headers["content-type"], "application/json", `${url} content-type`);
    assertEqual(r.headers["access-control-allow-origin"], "*", `${url} carries CORS`);
  }
  const p = await post(port, `${base}&transport=polling`, "4hello");
  assertEqual([p.status, p.body], [400, '{"code":2,"message":"Bad handshake method"}'], "POST without sid");
});

async function handshakeSid() {
  const r = await get(port, `${base}&transport=polling`);
  return JSON.parse(r.body.slice(1)).sid;
}

test("polling: POST payload echoed on GET, 413 keeps the session, close packet ends it", async () => {
  const sid = await handshakeSid();
  const url = `${base}&transport=polling&sid=${sid}`;
  assertEqual((await post(port, url, "4hello\x1e4world\x1ebAQIDBA==")).body, "ok", "POST ok");
  const g = await get(port, url);
  assertEqual(g.body, "4hello\x1e4world\x1ebAQIDBA==", "GET returns everything queued");
  const big = await post(port, url, "4" + "x".repeat(1000000));
  assertEqual(big.status, 413, "oversized POST");
  assertEqual((await post(port, url, "4still")).body, "ok", "session kept after 413");
  assertEqual((await get(port, url)).body, "4still", "and still echoes");
  assertEqual((await post(port, url, "1")).body, "ok", "close packet");
  const after = await get(port, url);
  assertEqual([after.status, after.body], [400, '{"code":1,"message":"Session ID unknown"}'], "gone after close");
});

test("polling: invalid payloads close the session (1.5.3, 1.9)", async () => {
  for (const body of ["", "abc"]) {
    const sid = await handshakeSid();
    const url = `${base}&transport=polling&sid=${sid}`;
    const r = await post(port, url, body);
    assertEqual(r.status, body === "" ? 200 : 400, `POST ${JSON.stringify(body)}`);
    assertEqual((await get(port, url)).status, 400, "session gone");
  }
  const sid = await handshakeSid();
  const url = `${base}&transport=polling&sid=${sid}`;
  const r = await post(port, url, "4x", "Content-Type: application/octet-stream\r\n");
  assertEqual(r.status, 400, "octet-stream in v4");
  assertEqual((await get(port, url)).status, 400, "session closed by octet-stream");
});

test("polling: a second concurrent GET gets 400 and the first the close packet (1.5.4)", async () => {
  const sid = await handshakeSid();
  const url = `${base}&transport=polling&sid=${sid}`;
  const first = get(port, url);
  await sleep(100);
  const second = await get(port, url);
  assertEqual([second.status, second.body], [400, ""], "second GET");
  const f = await first;
  assertEqual([f.status, f.body], [200, "1"], "first GET");
  assertEqual((await get(port, url)).body, '{"code":1,"message":"Session ID unknown"}', "third GET");
});

test("polling: no pong within pingTimeout closes the session (1.7)", async () => {
  const sid = await handshakeSid();
  const url = `${base}&transport=polling&sid=${sid}`;
  const g = await get(port, url); // held until the ping at 300 ms
  assertEqual(g.body, "2", "ping");
  await sleep(400);
  assertEqual((await get(port, url)).status, 400, "closed by ping timeout");
});

test("upgrade: probe, noop for the held poll, upgrade, then polling refused (1.8)", async () => {
  const sid = await handshakeSid();
  const url = `${base}&transport=polling&sid=${sid}`;
  const held = get(port, url);
  await sleep(50);
  const ws = await rawWebSocket(port, `${base}&transport=websocket&sid=${sid}`);
  assertEqual(ws.status, 101, "101");
  ws.text("2probe");
  assertEqual((await ws.next()).text, "3probe", "probe answer");
  assertEqual((await held).body, "6", "held GET released with noop");
  ws.text("5");
  ws.text("4after");
  assertEqual((await ws.next()).text, "4after", "echo over the upgraded socket");
  const refused = await get(port, url);
  assertEqual([refused.status, refused.body], [400, '{"code":3,"message":"Bad request"}'], "polling after upgrade");
  const again = await rawWebSocket(port, `${base}&transport=websocket&sid=${sid}`);
  assertEqual(again.status, 101, "second websocket for the sid: 101");
  const closeFrame = await again.next();
  assert(closeFrame === null || closeFrame.opcode === 8, "then closed at once");
  ws.close();
});

test("websocket: protocol violations close with the RFC 6455 code (1002, 1007, 1009)", async () => {
  const unmasked = await rawWebSocket(port, `${base}&transport=websocket`);
  await unmasked.next(); // open packet
  unmasked.send(1, "4hi", { mask: false });
  let f = await unmasked.next();
  while (f && f.opcode !== 8) f = await unmasked.next();
  assertEqual(f && f.code, 1002, "unmasked client frame");

  const badUtf8 = await rawWebSocket(port, `${base}&transport=websocket`);
  await badUtf8.next();
  badUtf8.send(1, Buffer.from([0x34, 0xc3, 0x28]));
  f = await badUtf8.next();
  while (f && f.opcode !== 8) f = await badUtf8.next();
  assertEqual(f && f.code, 1007, "invalid UTF-8 text");

  const big = await rawWebSocket(port, `${base}&transport=websocket`);
  await big.next();
  big.send(1, "4" + "x".repeat(1000000));
  f = await big.next();
  while (f && f.opcode !== 8) f = await big.next();
  assertEqual(f && f.code, 1009, "message over maxPayload");
});

test("websocket: a close packet from the client closes at once; garbage text closes (1.6, 1.9)", async () => {
  const ws = await rawWebSocket(port, `${base}&transport=websocket`);
  await ws.next();
  ws.text("1");
  let f = await ws.next();
  while (f && f.opcode !== 8) f = await ws.next();
  assert(f === null || f.opcode === 8, "closed after 1");
  const bad = await rawWebSocket(port, `${base}&transport=websocket`);
  await bad.next();
  bad.text("abc");
  f = await bad.next();
  while (f && f.opcode !== 8) f = await bad.next();
  assertEqual(f && f.code, 1005, "parse error: close frame without status");
});

test("garbage HTTP gets 400 and the server lives on", async () => {
  const r = await rawHttp(port, "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03garbage\r\n\r\n");
  assertEqual(r.status, 400, "garbage");
  const ok = await get(port, `${base}&transport=polling`);
  assertEqual(ok.status, 200, "still serving");
});

test("CORS preflight (1.10)", async () => {
  const r = await rawHttp(
    port,
    `OPTIONS ${base}&transport=polling HTTP/1.1\r\nHost: x\r\nOrigin: http://a.example\r\n` +
      `Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type\r\n\r\n`,
  );
  assertEqual(r.status, 204, "status");
  assertEqual(r.headers["access-control-allow-origin"], "*", "origin");
  assertEqual(r.headers["access-control-allow-methods"], "GET,HEAD,PUT,PATCH,POST,DELETE", "methods");
  assertEqual(r.headers["access-control-allow-headers"], "content-type", "headers echoed");
});

test("CORS whitelist: a held poll answered later still reflects the allowed Origin (1.10)", async () => {
  const w = await startServer(binary, ["--cors-origin", "http://allowed.example"]);
  try {
    const origin = "Origin: http://allowed.example\r\n";
    const hs = await get(w.port, `${base}&transport=polling`, origin);
    assertEqual(hs.headers["access-control-allow-origin"], "http://allowed.example", "handshake");
    const sid = JSON.parse(hs.body.slice(1)).sid;
    const url = `${base}&transport=polling&sid=${sid}`;
    const held = get(w.port, url, origin); // nothing queued: held until the POST below
    await sleep(100);
    await post(w.port, url, "4late", `Content-Type: text/plain;charset=UTF-8\r\n${origin}`);
    const r = await held;
    assertEqual(r.body, "4late", "echo on the held poll");
    assertEqual(r.headers["access-control-allow-origin"], "http://allowed.example", "held poll reflects the Origin");
    assertEqual(r.headers["access-control-allow-credentials"], "true", "credentials");
    const other = await get(w.port, `${base}&transport=polling`, "Origin: http://evil.example\r\n");
    assertEqual(other.headers["access-control-allow-origin"], undefined, "an unlisted Origin is not reflected");
  } finally {
    await w.stop();
  }
});

const ok = await run();
const result = await server.stop();
if (result.code !== 0) {
  console.log(`server exit: ${JSON.stringify(result)}\n${server.log()}`);
}
process.exit(ok && result.code === 0 ? 0 : 1);
