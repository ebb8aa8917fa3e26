// test_eio3_reference.mjs: Engine.IO v3 / Socket.IO protocol v4 (socket.io-client 2.x) and JSONP
// bytes, sioc against Node. The same raw scenarios run against Node socket.io 4.8 with
// allowEIO3 (eio3_reference_server.mjs) and against sioc's Socket.IO layer with the same handlers
// (tests/fixtures/sio_reference.c --allow-eio3 yes); every HTTP response and WebSocket frame is
// recorded with ids, dates and WebSocket keys normalised, and the two transcripts must be equal,
// and equal to the recording in tests/data/eio3-transcripts/ (SIOC_RECORD=1 rewrites it from
// Node; see its README). Also: EIO=3 without allow-eio3 gets code 5 exactly as before, and the
// v3 heartbeat timeout (no client ping for pingInterval + pingTimeout).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import net from "node:net";
import { createRequire } from "node:module";
import path from "node:path";
import { assert, assertEqual, createRunner, rawHttp, rawWebSocket, repo, sleep, startServer, within } from "./lib/harness.mjs";

const FIXTURE = process.env.SIOC_SIO_REFERENCE || "build/asan/fixtures/sio_reference";
const DATA = path.join(repo, "tests/data/eio3-transcripts");
const RECORD = process.env.SIOC_RECORD === "1";
const ORIGIN = "Origin: http://allowed.example\r\n";
const { test, run } = createRunner("test_eio3_reference");

const servers = {
  node: await startServer("tests/integration/eio3_reference_server.mjs", [], { prefix: ["node"] }),
  sioc: await startServer(FIXTURE, ["--allow-eio3", "yes", "--cors-origin", "http://allowed.example"]),
};
const siocDefault = await startServer(FIXTURE, ["--cors-origin", "http://allowed.example"]);

// `<len>:<packet>` with len in UTF-16 units (JavaScript's length), PROTOCOL.md 1.12.
const v3 = (...packets) => packets.map((p) => `${p.length}:${p}`).join("");
// What engine.io-client 3's JSONP transport posts: escaped newlines doubled, then the form field.
const jsonpBody = (payload) => "d=" + encodeURIComponent(payload.replace(/\\n/g, "\\\n").replace(/\n/g, "\\n"));

// The status line and the header lines, sorted, without Date, Connection and Keep-Alive: header
// order and Node's keep-alive headers are the HTTP layer's (common/net/http_server.c, the same
// for EIO=4 and outside this issue); everything Engine.IO decides is compared.
function normHead(head) {
  const [status, ...fields] = head.split("\r\n").filter((l) => l !== "");
  const kept = fields.filter((l) => !/^(date|connection|keep-alive):/i.test(l)).sort();
  return [status, ...kept].join("\n");
}

// A recorder: one scenario's lines, ids replaced by <sid> (Engine.IO) and <id> (socket ids).
function recorder() {
  const lines = [];
  const ids = new Map();
  const norm = (text) => {
    let t = text.replace(/^Date: .*$/gim, "Date: <date>").replace(/^Sec-WebSocket-Accept: .*$/gim, "Sec-WebSocket-Accept: <accept>");
    t = t.replace(/(\\?"sid\\?":\\?")([A-Za-z0-9_-]{20})/g, (m, pre, id) => {
      if (!ids.has(id)) ids.set(id, `<id${ids.size}>`);
      return pre + ids.get(id);
    });
    for (const [id, name] of ids) t = t.split(id).join(name);
    return t;
  };
  return {
    lines,
    http(label, res) {
      const raw = res.raw;
      const end = raw.indexOf("\r\n\r\n");
      const head = raw.subarray(0, end < 0 ? raw.length : end + 4).toString("latin1");
      const body = end < 0 ? Buffer.alloc(0) : raw.subarray(end + 4);
      let text = body.toString("utf8");
      const utf8 = Buffer.from(text, "utf8").equals(body);
      let h = normHead(norm(head));
      if (!/ 200 OK/.test(h)) {
        // error answers: Node's are chunked, sioc's carry a Content-Length (the HTTP layer's
        // choice, as for EIO=4); the body itself is compared
        h = h.split("\n").filter((l) => !/^(content-length|transfer-encoding):/i.test(l)).join("\n");
        if (/^[0-9a-f]+\r\n/.test(text)) text = text.replace(/^[0-9a-f]+\r\n/, "").replace(/\r\n0\r\n\r\n$/, "");
        if (text === "0\r\n\r\n") text = "";
      }
      const line = { step: label, kind: "http-response", head: h };
      if (utf8) line.body = norm(text);
      else line.body_hex = body.toString("hex");
      lines.push(line);
      return res;
    },
    frame(label, f) {
      if (f === null) {
        lines.push({ step: label, kind: "closed" });
        return f;
      }
      const line = { step: label, kind: "ws-frame", opcode: f.opcode };
      if (f.opcode === 1) line.text = norm(f.text);
      else line.hex = f.payload.toString("hex");
      lines.push(line);
      return f;
    },
  };
}

function client(port, rec) {
  let sid = "";
  const q = (extra) => `/socket.io/?EIO=3&transport=polling${sid ? `&sid=${sid}` : ""}${extra || ""}`;
  const request = (method, query, body, headers) => {
    const b = Buffer.from(body || "");
    const len = method === "POST" ? `Content-Length: ${b.length}\r\n` : "";
    const req = Buffer.concat([Buffer.from(`${method} ${query} HTTP/1.1\r\nHost: 127.0.0.1\r\n${ORIGIN}${headers || ""}${len}\r\n`), b]);
    return rawHttp(port, req, { timeoutMs: 6000 }); // a held GET may wait for the heartbeat
  };
  return {
    get sid() {
      return sid;
    },
    set sid(v) {
      sid = v;
    },
    q,
    async handshake(label, extra = "", eio = "3") {
      const res = await rawHttp(port, `GET /socket.io/?EIO=${eio}&transport=polling${extra} HTTP/1.1\r\nHost: 127.0.0.1\r\n${ORIGIN}\r\n`);
      sid = /\\?"sid\\?":\\?"([A-Za-z0-9_-]{20})/.exec(res.body)[1];
      rec.http(label, res);
      return res;
    },
    async get(label, extra) {
      return rec.http(label, await request("GET", q(extra)));
    },
    getPending(label, extra) {
      return request("GET", q(extra)).then((r) => rec.http(label, r));
    },
    async post(label, body, { extra, type = "text/plain;charset=UTF-8" } = {}) {
      const res = await request("POST", q(extra), body, `Content-Type: ${type}\r\n`);
      rec.http(label, res);
      await sleep(150); // everything the packets cause is queued before the next GET
      return res;
    },
  };
}

// Reads frames until `n` arrived (or the connection closed).
async function frames(ws, rec, label, n) {
  for (let i = 0; i < n; i++) if (rec.frame(label, await ws.next(3000)) === null) return;
}

const scenarios = {
  // v3 polling without b64: text payloads, XHR2 binary answers, client pings, namespaces with a
  // query, CONNECT_ERROR as a plain value, a room broadcast, a close and the request after it.
  async "v3-polling"(port, rec) {
    const c = client(port, rec);
    await c.handshake("handshake", "&t=a");
    await c.get("connect and welcome");
    await c.post("connect /chat with a query", v3("40/chat?x=1,"));
    await c.get("/chat connected");
    await c.post("connect /secure", v3("40/secure,"));
    await c.get("/secure refused: err.data");
    await c.post("connect /nope", v3("40/nope,"));
    await c.get("/nope refused");
    await c.post("echo with non-ASCII", v3('42["echo","héllo 😀 €"]'));
    await c.get("echo back");
    await c.post("ack", v3('421["ack","a",2]', '42/chat,7["ack",{"b":[1]}]'));
    await c.get("acks back");
    await c.post("binary event, base64 attachment", v3('451-3["bin",{"_placeholder":true,"num":0}]', "b4AQID"));
    await c.get("binary answer as XHR2");
    const xhr2 = Buffer.concat([
      Buffer.from([0, 4, 1, 255]),
      Buffer.from('451-["bin",{"_placeholder":true,"num":0}]'.padEnd(41)), // 41 bytes
      Buffer.from([1, 4, 255, 4, 9, 8, 7]),
    ]);
    assertEqual(xhr2.length, 4 + 41 + 7, "xhr2 body length");
    await c.post("an XHR2 POST", xhr2, { type: "application/octet-stream" });
    await c.get("its answer");
    await c.post("ping", v3("2"));
    await c.get("pong");
    await c.post("join", v3('42["join","r1"]'));
    await c.get("joined");
    await c.post("leave /chat", v3("41/chat,"));
    await c.post("kick on /", v3('42["kick"]'));
    await c.get("server namespace disconnect");
    await c.post("close", v3("1"));
    await c.get("after the close");
  },
  // b64=1 (forceBase64): binary goes out as b4<base64> in the text payload.
  async "v3-polling-b64"(port, rec) {
    const c = client(port, rec);
    await c.handshake("handshake", "&b64=1&t=b");
    await c.get("connect and welcome");
    await c.post("binary event with ack", v3('451-9["bin",{"_placeholder":true,"num":0},"x"]', "b4AQIDBA=="));
    await c.get("binary answer, base64");
    await c.post("bye", v3('42["bye"]'));
    await c.get("disconnect");
    await c.get("noop and close");
  },
  // a direct WebSocket: type byte on binary frames both ways, client ping, bye.
  async "v3-websocket"(port, rec) {
    const ws = await rawWebSocket(port, "/socket.io/?EIO=3&transport=websocket");
    rec.lines.push({ step: "101", kind: "status", status: ws.status });
    await frames(ws, rec, "open, connect, welcome", 3);
    ws.text("2");
    await frames(ws, rec, "pong", 1);
    ws.text("2probe");
    await frames(ws, rec, "pong to 2probe after the open", 1);
    ws.text('42["echo","ü"]');
    await frames(ws, rec, "echo", 1);
    ws.text('451-4["bin",{"_placeholder":true,"num":0}]');
    ws.send(2, Buffer.from([4, 1, 2, 3]));
    await frames(ws, rec, "binary event and binary ack", 4);
    ws.text('451-["bin",{"_placeholder":true,"num":0}]');
    ws.text("b4BQY=");
    await frames(ws, rec, "attachment as b4 text", 2);
    ws.text("40/chat?token=abc,");
    await frames(ws, rec, "/chat", 2);
    ws.text('42["bye"]');
    await frames(ws, rec, "bye", 3);
    ws.close();
  },
  // a binary attachment nobody announced closes the connection (an empty close frame)
  async "v3-websocket-unexpected-binary"(port, rec) {
    const ws = await rawWebSocket(port, "/socket.io/?EIO=3&transport=websocket");
    await frames(ws, rec, "open, connect, welcome", 3);
    ws.text("b4BQY=");
    await frames(ws, rec, "closed", 1);
    ws.close();
  },
  // polling, then the upgrade: 2probe/3probe, the held GET released with 1:6, then 5.
  async "v3-upgrade"(port, rec) {
    const c = client(port, rec);
    await c.handshake("handshake", "&t=c");
    await c.get("connect and welcome");
    const pending = c.getPending("held GET");
    await sleep(100);
    const ws = await rawWebSocket(port, `/socket.io/?EIO=3&transport=websocket&sid=${c.sid}`);
    rec.lines.push({ step: "101", kind: "status", status: ws.status });
    ws.text("2probe");
    await frames(ws, rec, "3probe", 1);
    await within(3000, pending, "the held GET");
    ws.text("5");
    await sleep(100);
    ws.text('42["echo","after"]');
    await frames(ws, rec, "on the WebSocket", 1);
    await c.get("polling after the upgrade");
    ws.close();
  },
  // JSONP (forceJSONP, which always sends b64=1): ___eio[j]("…"); and d= bodies.
  async "v3-jsonp"(port, rec) {
    const c = client(port, rec);
    await c.handshake("handshake", "&j=0&b64=1&t=d");
    await c.get("connect and welcome", "&j=0");
    const form = { extra: "&j=0", type: "application/x-www-form-urlencoded" };
    await c.post("echo with a newline and a backslash-n", jsonpBody(v3('42["echo","a\\nb\\\\nc\u2028"]')), form);
    await c.get("echo back", "&j=0");
    await c.post("binary event", jsonpBody(v3('451-["bin",{"_placeholder":true,"num":0}]', "b4AQID")), form);
    await c.get("binary back as b4", "&j=0");
    await c.post("no d field", "e=1", form);
    await c.post("ping", jsonpBody(v3("2")), form);
    await c.get("pong", "&j=0");
  },
  // JSONP with a v4 client: the same wrapping around the 0x1e payload.
  async "v4-jsonp"(port, rec) {
    const c = client(port, rec);
    c.q = undefined;
    let sid = "";
    const q = (extra) => `/socket.io/?EIO=4&transport=polling&j=1${sid ? `&sid=${sid}` : ""}${extra || ""}`;
    const send = (method, body, type) => {
      const b = Buffer.from(body || "");
      const len = method === "POST" ? `Content-Type: ${type}\r\nContent-Length: ${b.length}\r\n` : "";
      return rawHttp(port, Buffer.concat([Buffer.from(`${method} ${q()} HTTP/1.1\r\nHost: 127.0.0.1\r\n${ORIGIN}${len}\r\n`), b]));
    };
    const hs = await send("GET");
    sid = /\\"sid\\":\\"([A-Za-z0-9_-]{20})\\"/.exec(hs.body)[1];
    rec.http("handshake", hs);
    rec.http("connect", await send("POST", "d=" + encodeURIComponent('40/chat,{"token":"x"}\x1e40'), "application/x-www-form-urlencoded"));
    await sleep(150);
    rec.http("connected, welcome", await send("GET"));
    rec.http("binary", await send("POST", "d=" + encodeURIComponent('451-["bin",{"_placeholder":true,"num":0}]\x1ebAQID'), "application/x-www-form-urlencoded"));
    await sleep(150);
    rec.http("binary back", await send("GET"));
  },
};

for (const [name, scenario] of Object.entries(scenarios)) {
  test(`${name}: sioc's bytes are Node's (ids normalised)`, async () => {
    const got = {};
    for (const [who, srv] of Object.entries(servers)) {
      const rec = recorder();
      await scenario(srv.port, rec);
      got[who] = rec.lines;
    }
    const file = path.join(DATA, `${name}.jsonl`);
    const lines = (l) => l.map((x) => JSON.stringify(x));
    if (RECORD) {
      mkdirSync(DATA, { recursive: true });
      writeFileSync(file, lines(got.node).join("\n") + "\n");
    }
    assert(existsSync(file), `${file} exists (SIOC_RECORD=1 records it)`);
    const recorded = readFileSync(file, "utf8").trim().split("\n");
    const compare = (a, b, what) => {
      for (let i = 0; i < Math.max(a.length, b.length); i++)
        if (a[i] !== b[i]) throw new Error(`${what}: line ${i + 1} differs:\n  ${a[i]}\n  ${b[i]}`);
    };
    compare(lines(got.node), recorded, "Node vs the recording");
    compare(lines(got.sioc), lines(got.node), "sioc vs Node");
  });
}

// ---- the real clients (socket.io-client 2.5.0 and 2.2.0) over WebSocket, through a recording proxy ----
const require = createRequire(import.meta.url);
const realClients = { "2.5.0": require("socket.io-client-v2"), "2.2.0": require("socket.io-client-v220") };

// A TCP proxy to `port` that keeps every byte of each direction.
function recordingProxy(port) {
  const streams = { c2s: [], s2c: [] };
  const server = net.createServer((down) => {
    const up = net.connect(port, "127.0.0.1");
    down.on("data", (d) => { streams.c2s.push(d); up.write(d); });
    up.on("data", (d) => { streams.s2c.push(d); down.write(d); });
    down.on("close", () => up.destroy());
    up.on("close", () => down.destroy());
    down.on("error", () => {});
    up.on("error", () => {});
  });
  return new Promise((r) => server.listen(0, "127.0.0.1", () => r({ port: server.address().port, streams, close: () => server.close() })));
}

// The HTTP head and the WebSocket frames (unmasked) of one direction's bytes.
function parseWs(chunks) {
  let buf = Buffer.concat(chunks);
  const end = buf.indexOf("\r\n\r\n");
  const head = buf.subarray(0, end + 4).toString("latin1");
  buf = buf.subarray(end + 4);
  const frames = [];
  while (buf.length >= 2) {
    const opcode = buf[0] & 15;
    const masked = (buf[1] & 0x80) !== 0;
    let len = buf[1] & 127;
    let off = 2;
    if (len === 126) { len = buf.readUInt16BE(2); off = 4; } else if (len === 127) { len = Number(buf.readBigUInt64BE(2)); off = 10; }
    const key = masked ? buf.subarray(off, off + 4) : null;
    if (masked) off += 4;
    if (buf.length < off + len) break;
    let payload = Buffer.from(buf.subarray(off, off + len));
    if (key) payload = Buffer.from(payload.map((b, i) => b ^ key[i & 3]));
    frames.push({ opcode, payload });
    buf = buf.subarray(off + len);
  }
  return { head, frames };
}

async function realClientSession(version, port) {
  const proxy = await recordingProxy(port);
  const io2 = realClients[version];
  const socket = io2(`http://127.0.0.1:${proxy.port}/`, { forceNew: true, reconnection: false, transports: ["websocket"] });
  const once = (s, ev) => within(3000, new Promise((r) => s.once(ev, (...a) => r(a))), ev);
  await once(socket, "welcome");
  socket.emit("echo", "héllo 😀", { n: [1, null] });
  await once(socket, "echo");
  await within(3000, new Promise((r) => socket.emit("ack", 1, "two", (...a) => r(a))), "ack");
  const bin = once(socket, "bin");
  await within(3000, new Promise((r) => socket.emit("bin", Buffer.from([1, 2, 3]), { x: Buffer.from([4]) }, (...a) => r(a))), "bin ack");
  await bin;
  const chat = socket.io.socket("/chat", { query: "token=abc" });
  await once(chat, "welcome");
  chat.emit("echo", "in chat");
  await once(chat, "echo");
  const joined = once(socket, "joined");
  socket.emit("join", "r");
  await joined;
  const gone = once(socket, "disconnect");
  socket.emit("bye");
  await gone;
  await sleep(200);
  socket.close();
  proxy.close();
  const c2s = parseWs(proxy.streams.c2s);
  const s2c = parseWs(proxy.streams.s2c);
  const rec = recorder();
  const frameLine = (dir, f) => {
    const line = { dir, kind: "ws-frame", opcode: f.opcode };
    if (f.opcode === 1) line.text = f.payload.toString("utf8");
    else line.hex = f.payload.toString("hex");
    return line;
  };
  // the open packet's sid is what the ids are normalised by; then each direction in order
  const lines = [{ dir: "s2c", kind: "http-response", head: normHead(s2c.head.replace(/^Sec-WebSocket-Accept: .*$/gim, "Sec-WebSocket-Accept: <accept>")) },
    ...s2c.frames.map((f) => frameLine("s2c", f)),
    // the client's answer to the server's close frame is left out: Node waits for it before its
    // FIN, sioc sends its FIN after the close frame (ws_link.c, the same for EIO=4), so the proxy
    // may not see it
    ...c2s.frames.filter((f) => f.opcode !== 8).map((f) => frameLine("c2s", f))];
  // normalise through the recorder (Engine.IO sid first seen in the open packet)
  rec.lines.length = 0;
  for (const l of lines) {
    if (l.text !== undefined) rec.frame(l.dir, { opcode: 1, text: l.text, payload: Buffer.from(l.text) });
    else if (l.hex !== undefined) rec.frame(l.dir, { opcode: l.opcode, payload: Buffer.from(l.hex, "hex") });
    else rec.lines.push(l);
  }
  return rec.lines.map((l) => (l.step ? { dir: l.step, ...Object.fromEntries(Object.entries(l).filter(([k]) => k !== "step")) } : l));
}

for (const version of Object.keys(realClients)) {
  test(`real socket.io-client ${version} over WebSocket: sioc's frames are Node's, both directions (ids normalised)`, async () => {
    const got = {};
    for (const [who, srv] of Object.entries(servers)) got[who] = (await realClientSession(version, srv.port)).map((x) => JSON.stringify(x));
    const file = path.join(DATA, `real-client-${version}-websocket.jsonl`);
    if (RECORD) writeFileSync(file, got.node.join("\n") + "\n");
    assert(existsSync(file), `${file} exists (SIOC_RECORD=1 records it)`);
    const recorded = readFileSync(file, "utf8").trim().split("\n");
    for (const [what, a, b] of [["Node vs the recording", got.node, recorded], ["sioc vs Node", got.sioc, got.node]]) {
      for (let i = 0; i < Math.max(a.length, b.length); i++)
        if (a[i] !== b[i]) throw new Error(`${what}: line ${i + 1} differs:\n  ${a[i]}\n  ${b[i]}`);
    }
  });
}

test("allow-eio3 off (the default): EIO=3 gets code 5, as before; EIO=4 works", async () => {
  const res = await rawHttp(siocDefault.port, "GET /socket.io/?EIO=3&transport=polling HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  assertEqual(res.status, 400, "polling: status");
  assertEqual(res.body.replace(/^[0-9a-f]+\r\n|\r\n0\r\n\r\n$/g, ""), '{"code":5,"message":"Unsupported protocol version"}', "polling: body");
  // refused before the 101, as before this option existed (Node sends 101, then the same raw 400)
  const ws = await rawWebSocket(siocDefault.port, "/socket.io/?EIO=3&transport=websocket");
  assert(/^HTTP\/1.1 400 Bad Request\r\n/.test(ws.response), `websocket: ${ws.response}`);
  ws.close();
  const ok = await rawHttp(siocDefault.port, "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  assertEqual(ok.status, 200, "EIO=4 handshake");
  const on = await rawHttp(servers.sioc.port, "GET /socket.io/?EIO=3&transport=polling HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  assert(on.status === 200 && /^\d+:0\{"sid"/.test(on.body), `with allow-eio3: ${on.body}`);
});

test("v3 heartbeat: a GET held with no client ping is answered 1:1 after pingInterval + pingTimeout", async () => {
  for (const [who, srv] of Object.entries(servers)) {
    const rec = recorder();
    const c = client(srv.port, rec);
    await c.handshake("handshake");
    const start = Date.now();
    await c.get("connect and welcome");
    const res = await within(6000, c.getPending("held"), "the held GET");
    const held = Date.now() - start;
    assertEqual(res.body, "3:1:1".slice(2), `${who}: close payload`);
    assert(held > 2500 && held < 4000, `${who}: closed after ${held} ms (pingInterval 2000 + pingTimeout 1000)`);
    const after = await c.get("after");
    assertEqual(after.status, 400, `${who}: the session is gone`);
  }
});

test("v3 heartbeat: client pings keep the session open past pingInterval + pingTimeout", async () => {
  const rec = recorder();
  const c = client(servers.sioc.port, rec);
  await c.handshake("handshake");
  await c.get("connect and welcome");
  for (let i = 0; i < 4; i++) {
    await sleep(1000);
    await c.post("ping", v3("2"));
    const res = await c.get("pong");
    assertEqual(res.body, "1:3", "pong");
  }
});

const ok = await run();
for (const srv of [...Object.values(servers), siocDefault]) await srv.stop();
// the sanitizer builds report leaks and errors when they exit: any report fails the suite
const sanitizer = /(AddressSanitizer|LeakSanitizer|runtime error)/;
for (const srv of [servers.sioc, siocDefault]) {
  if (sanitizer.test(srv.log())) {
    console.log(`sanitizer report:\n${srv.log()}`);
    console.log("test_eio3_reference: 0 passed, 1 failed");
    process.exit(1);
  }
}
process.exit(ok ? 0 : 1);
