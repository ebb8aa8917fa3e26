// test_tls.mjs: issue 16, TLS termination on the gateway and the broker's API. Certificates are
// made here with the openssl CLI in a temp dir (a test CA, a server certificate for 127.0.0.1,
// a second one for the reload, an expired one, one for another host name). Real peers only:
// socket.io-client (Node) over https polling, wss and polling + upgrade; python-socketio over
// wss; headless Chromium loading a page over HTTPS; openssl s_client for protocol versions,
// ALPN and renegotiation; Node's tls for resumption; raw sockets for plain HTTP, a stalled and an oversized
// handshake. SIGHUP reloads the certificate while an old connection keeps working.
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import https from "node:https";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import tls from "node:tls";
import notepack from "notepack.io";
import { createClient } from "redis";
import { io } from "socket.io-client";
import {
  BROKER,
  GATEWAY,
  assert,
  assertEqual,
  createRunner,
  rawHttp,
  repo,
  sleep,
  startProcess,
  startRedis,
  startServer,
  within,
} from "./lib/harness.mjs";

const WAIT = 8000;
const HANDSHAKE_TIMEOUT = 1000;

// ---- certificates ----
const dir = mkdtempSync(path.join(tmpdir(), "sioc-tls-"));
const f = (name) => path.join(dir, name);
function openssl(...args) {
  return execFileSync("openssl", args, { stdio: ["ignore", "pipe", "pipe"], timeout: 20000 });
}
openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", f("ca.key"),
  "-out", f("ca.pem"), "-days", "2", "-subj", "/CN=sioc test CA",
  "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign");
// leaf(name, cn, san, days): name.pem is the certificate followed by the CA (a chain), name.key
function leaf(name, cn, san, days = 1, keyType = ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"]) {
  openssl("req", "-newkey", ...keyType, "-nodes", "-keyout", f(`${name}.key`), "-out", f(`${name}.csr`), "-subj", `/CN=${cn}`);
  writeFileSync(f(`${name}.ext`), `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`);
  openssl("x509", "-req", "-in", f(`${name}.csr`), "-CA", f("ca.pem"), "-CAkey", f("ca.key"), "-CAcreateserial",
    "-out", f(`${name}.crt`), "-days", String(days), "-extfile", f(`${name}.ext`));
  writeFileSync(f(`${name}.pem`), readFileSync(f(`${name}.crt`)) + readFileSync(f("ca.pem")));
}
leaf("a", "sioc-a", "DNS:localhost,IP:127.0.0.1");
leaf("b", "sioc-b", "DNS:localhost,IP:127.0.0.1", 1, ["rsa:2048"]);
leaf("expired", "sioc-expired", "DNS:localhost,IP:127.0.0.1", -1);
leaf("other", "sioc-other", "DNS:other.example");
const ca = readFileSync(f("ca.pem"));
// Chromium trusts the server key by its SPKI hash (--ignore-certificate-errors-spki-list)
const spki = execFileSync("sh", ["-c", `openssl x509 -in '${f("a.crt")}' -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64`]).toString().trim();
// the page Chromium loads over HTTPS
mkdirSync(f("www"));
writeFileSync(f("www/index.html"), `<!doctype html><meta charset="utf-8"><title>loading</title>
<script src="/socket.io/socket.io.js"></script>
<script>
  const socket = io();
  socket.on("connect", () => { document.title = "connected " + socket.id; });
  socket.on("news", (m) => { document.title = "news " + m; });
</script>`);

// ---- processes ----
const stoppers = [];
const redis = await startRedis();
stoppers.push(redis);
const r = createClient({ url: redis.url });
await r.connect();
const { test, run } = createRunner("test_tls");
let ok = false;

const tlsArgs = (name) => ["--tls-cert", f(`${name}.pem`), "--tls-key", f(`${name}.key`)];
function gatewayArgs(extra = []) {
  return ["--redis", redis.url, "--log-level", "info", "--tls-handshake-timeout", String(HANDSHAKE_TIMEOUT),
    "--static", f("www"), "--client-js", path.join(repo, "node_modules/socket.io-client/dist/socket.io.min.js"), ...extra];
}

// GET over https with the test CA: {status, body, cert (the peer's subject CN), socket info}
function httpsGet(port, pathAndQuery, { ca: trust = ca, method = "GET", body = null, servername } = {}) {
  return within(WAIT, new Promise((resolve, reject) => {
    const req = https.request({ host: "127.0.0.1", port, path: pathAndQuery, method, ca: trust, servername, agent: false,
      headers: body ? { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) } : {} }, (res) => {
      const cn = res.socket.getPeerCertificate().subject?.CN;
      const chunks = [];
      res.on("data", (d) => chunks.push(d));
      res.on("end", () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString(), cn,
        protocol: res.socket.getProtocol(), alpn: res.socket.alpnProtocol }));
    });
    req.on("error", reject);
    if (body) req.write(body);
    req.end();
  }), `https ${method} ${pathAndQuery} on ${port}`);
}

// A TLS connection attempt: resolves {ok, cn} or {ok: false, code}.
function tlsProbe(port, opts = {}) {
  return within(WAIT, new Promise((resolve) => {
    const s = tls.connect({ host: "127.0.0.1", port, ca, ...opts }, () => {
      const cn = s.getPeerCertificate().subject?.CN;
      s.end();
      resolve({ ok: true, cn });
    });
    s.on("error", (e) => resolve({ ok: false, code: e.code, message: e.message }));
  }), `TLS connection to ${port}`);
}

function connectClient(port, opts) {
  const socket = io(`https://127.0.0.1:${port}`, { ca, reconnection: false, forceNew: true, ...opts });
  return within(WAIT, new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", reject);
  }), "socket.io-client connect").catch((e) => {
    socket.close();
    throw e;
  });
}

function nextEvent(socket, event) {
  return within(WAIT, new Promise((resolve) => socket.once(event, resolve)), `event ${event}`);
}

async function waitLog(server, text, ms = WAIT) {
  const deadline = Date.now() + ms;
  while (!server.log().includes(text)) {
    if (Date.now() > deadline) throw new Error(`no log line with "${text}" in:\n${server.log().slice(-3000)}`);
    await sleep(50);
  }
}

// The upstream connect entry of a socket: its hs map, as a worker reads it.
async function connectEntryHs(sid) {
  const deadline = Date.now() + WAIT;
  for (;;) {
    const entries = await r.sendCommand(["XRANGE", "sioc:up:/:0", "-", "+"], { returnBuffers: true });
    for (const [, fields] of entries) {
      const m = {};
      for (let i = 0; i < fields.length; i += 2) m[fields[i].toString()] = fields[i + 1];
      if (m.type?.toString() === "connect" && m.sid?.toString() === sid) return notepack.decode(m.hs);
    }
    if (Date.now() > deadline) throw new Error(`no connect entry for ${sid}`);
    await sleep(50);
  }
}

let broker;
async function emitTo(sids, event, args) {
  const res = await httpsGet(broker.port, "/v1/emit", { method: "POST", body: JSON.stringify({ nsp: "/", event, args, sids }) });
  assertEqual(res.status, 200, `POST /v1/emit over https: ${res.body}`);
}

try {
  test("start-up errors name the option: a missing file, a key that does not match", async () => {
    const run1 = spawnSync(path.join(repo, GATEWAY), ["--tls-cert", f("missing.pem"), "--tls-key", f("a.key"), "--check-config"], { timeout: 10000 });
    assertEqual(run1.status, 2, "exit status (missing cert)");
    assert(run1.stderr.toString().includes(`tls-cert: cannot read ${f("missing.pem")}`), `stderr: ${run1.stderr}`);
    const run2 = spawnSync(path.join(repo, GATEWAY), ["--tls-cert", f("a.pem"), "--tls-key", f("b.key"), "--check-config"], { timeout: 10000 });
    assertEqual(run2.status, 2, "exit status (key mismatch)");
    assert(run2.stderr.toString().includes("tls-key:") && run2.stderr.toString().includes("does not match"), `stderr: ${run2.stderr}`);
    const run3 = spawnSync(path.join(repo, BROKER), ["--tls-cert", f("a.pem"), "--tls-key", f("a.pem"), "--check-config"], { timeout: 10000 });
    assertEqual(run3.status, 2, "exit status (broker, no key in the file)");
    assert(run3.stderr.toString().includes("tls-key:"), `stderr: ${run3.stderr}`);
    const run4 = spawnSync(path.join(repo, GATEWAY), [...tlsArgs("a"), "--tls-groups", "nonsense", "--check-config"], { timeout: 10000 });
    assert(run4.status === 2 && run4.stderr.toString().includes("tls-groups:"), `tls-groups: ${run4.stderr}`);
    const help = spawnSync(path.join(repo, GATEWAY), ["--help"], { timeout: 10000 }).stdout.toString();
    for (const o of ["--tls-cert", "--tls-key", "--tls-ciphers", "--tls-groups", "--tls-handshake-timeout", "--tls-plain-health"])
      assert(help.includes(o), `--help lists ${o}`);
  });

  const gw = await startServer(GATEWAY, gatewayArgs(tlsArgs("a")));
  stoppers.push(gw);
  broker = await startServer(BROKER, ["--redis", redis.url, ...tlsArgs("a")]);
  stoppers.push(broker);

  test("the broker API over https: /v1/nodes lists the gateway; plain HTTP is refused", async () => {
    const deadline = Date.now() + WAIT;
    let nodes = [];
    while (nodes.length === 0 && Date.now() < deadline) {
      const res = await httpsGet(broker.port, "/v1/nodes");
      assertEqual(res.status, 200, "GET /v1/nodes status");
      nodes = JSON.parse(res.body);
      if (nodes.length === 0) await sleep(100);
    }
    assert(nodes.length === 1 && nodes[0].address.endsWith(`:${gw.port}`), `nodes ${JSON.stringify(nodes)}`);
    const plain = await rawHttp(broker.port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assertEqual(plain.status, 400, "plain HTTP to the broker's TLS port");
  });

  test("https: TLS 1.3 by default, ALPN http/1.1, the health check and static page answered", async () => {
    const res = await httpsGet(gw.port, "/healthz");
    assertEqual([res.status, res.body, res.cn, res.protocol], [200, "ok\n", "sioc-a", "TLSv1.3"], "GET /healthz");
    const alpn = await tlsProbe(gw.port, { ALPNProtocols: ["h2", "http/1.1"] });
    assert(alpn.ok, `ALPN probe: ${alpn.message}`);
    const s = tls.connect({ host: "127.0.0.1", port: gw.port, ca, ALPNProtocols: ["h2", "http/1.1"] });
    const proto = await within(WAIT, new Promise((resolve, reject) => {
      s.on("secureConnect", () => resolve(s.alpnProtocol));
      s.on("error", reject);
    }), "ALPN");
    s.destroy();
    assertEqual(proto, "http/1.1", "ALPN protocol chosen");
    const page = await httpsGet(gw.port, "/");
    assert(page.status === 200 && page.body.includes("socket.io.js"), "static page over https");
    const js = await httpsGet(gw.port, "/socket.io/socket.io.js");
    assert(js.status === 200 && js.body.length > 10000, "socket.io.js over https");
    const tls12 = await within(WAIT, new Promise((resolve, reject) => {
      const t = tls.connect({ host: "127.0.0.1", port: gw.port, ca, maxVersion: "TLSv1.2" }, () => {
        resolve([t.getProtocol(), t.getCipher().name]);
        t.end();
      });
      t.on("error", reject);
    }), "TLS 1.2");
    assertEqual(tls12[0], "TLSv1.2", "TLS 1.2 accepted");
    assert(/^ECDHE-ECDSA-(AES\d+-GCM|CHACHA20)/.test(tls12[1]), `TLS 1.2 cipher ${tls12[1]}`);
  });

  test("socket.io-client over https polling: connect, handshake data secure: true, events both ways", async () => {
    const socket = await connectClient(gw.port, { transports: ["polling"] });
    try {
      assertEqual(socket.io.engine.transport.name, "polling", "transport");
      const hs = await connectEntryHs(socket.id);
      assertEqual(hs.secure, true, "hs.secure a worker sees");
      const got = nextEvent(socket, "hello");
      await emitTo([socket.id], "hello", ["over https polling"]);
      assertEqual(await got, "over https polling", "downstream event");
    } finally {
      socket.close();
    }
  });

  test("socket.io-client over wss: a 300 KB message each way (many TLS records)", async () => {
    const socket = await connectClient(gw.port, { transports: ["websocket"] });
    try {
      assertEqual(socket.io.engine.transport.name, "websocket", "transport");
      assertEqual((await connectEntryHs(socket.id)).secure, true, "hs.secure");
      const big = "x".repeat(300000);
      const got = nextEvent(socket, "big");
      await emitTo([socket.id], "big", [big]);
      assertEqual((await got).length, big.length, "downstream 300 KB");
      socket.emit("up", big);
      const deadline = Date.now() + WAIT;
      for (;;) {
        const entries = await r.sendCommand(["XRANGE", "sioc:up:/:0", "-", "+"], { returnBuffers: true });
        const found = entries.some(([, fl]) => {
          const m = {};
          for (let i = 0; i < fl.length; i += 2) m[fl[i].toString()] = fl[i + 1];
          return m.sid?.toString() === socket.id && m.event?.toString() === "up" && notepack.decode(m.args)[0].length === big.length;
        });
        if (found) break;
        if (Date.now() > deadline) throw new Error("the 300 KB upstream event did not reach the stream");
        await sleep(50);
      }
    } finally {
      socket.close();
    }
  });

  test("socket.io-client polling + upgrade to wss", async () => {
    const socket = await connectClient(gw.port, {});
    try {
      if (socket.io.engine.transport.name !== "websocket")
        await within(WAIT, new Promise((resolve) => socket.io.engine.once("upgrade", resolve)), "upgrade");
      assertEqual(socket.io.engine.transport.name, "websocket", "upgraded transport");
      const got = nextEvent(socket, "hello");
      await emitTo([socket.id], "hello", ["after upgrade"]);
      assertEqual(await got, "after upgrade", "event after the upgrade");
    } finally {
      socket.close();
    }
  });

  test("python-socketio over wss with the test CA", async () => {
    const script = `
import sys, requests, socketio
session = requests.Session()
session.verify = sys.argv[1]
sio = socketio.Client(http_session=session)
@sio.on('hello')
def hello(m):
    print('got ' + m, flush=True)
    sio.disconnect()
sio.connect(sys.argv[2], transports=['websocket'], wait_timeout=5)
print('connected ' + sio.get_sid() + ' ' + sio.transport(), flush=True)
sio.wait()
`;
    writeFileSync(f("client.py"), script);
    const py = await startProcess("/usr/bin/python3", [f("client.py"), f("ca.pem"), `https://127.0.0.1:${gw.port}`], "connected ");
    try {
      const [, sid, transport] = py.output().match(/connected (\S+) (\S+)/);
      assertEqual(transport, "websocket", "python transport");
      await emitTo([sid], "hello", ["python"]);
      const deadline = Date.now() + WAIT;
      while (!py.output().includes("got python")) {
        if (Date.now() > deadline) throw new Error(`python did not get the event: ${py.output()}`);
        await sleep(50);
      }
    } finally {
      await py.stop();
    }
  });

  test("Chromium loads the page over HTTPS, connects (polling, then wss) and receives a push", async () => {
    const { chromium } = await import("playwright-core");
    const browser = await chromium.launch({
      executablePath: "/usr/bin/chromium",
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", `--ignore-certificate-errors-spki-list=${spki}`],
    });
    try {
      const page = await (await browser.newContext()).newPage();
      await page.goto(`https://127.0.0.1:${gw.port}/`, { timeout: WAIT });
      await page.waitForFunction(() => document.title.startsWith("connected "), null, { timeout: WAIT });
      await page.waitForFunction(() => socket.io.engine.transport.name === "websocket", null, { timeout: WAIT });
      const sid = await page.evaluate(() => socket.id);
      assertEqual(await page.evaluate(() => location.protocol), "https:", "page protocol");
      await emitTo([sid], "news", ["over wss"]);
      await page.waitForFunction(() => document.title === "news over wss", null, { timeout: WAIT });
      assertEqual((await connectEntryHs(sid)).secure, true, "hs.secure of the browser's socket");
    } finally {
      await browser.close();
    }
  }, 40000);

  test("session resumption with a ticket: the second connection resumes (TLS 1.3 and 1.2)", async () => {
    for (const maxVersion of ["TLSv1.3", "TLSv1.2"]) {
      const connectOnce = (session) => within(WAIT, new Promise((resolve, reject) => {
        let ticket = null;
        const s = tls.connect({ host: "127.0.0.1", port: gw.port, ca, maxVersion, session });
        s.on("session", (t) => (ticket = t));
        s.on("secureConnect", () => s.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
        s.on("data", () => {
          const reused = s.isSessionReused();
          s.end();
          resolve({ reused, ticket });
        });
        s.on("error", reject);
      }), `a ${maxVersion} connection`);
      const first = await connectOnce(undefined);
      assert(!first.reused && first.ticket, `${maxVersion}: a full handshake that gives a ticket`);
      const second = await connectOnce(first.ticket);
      assert(second.reused, `${maxVersion}: the second connection resumed`);
    }
  });

  for (const version of ["-tls1", "-tls1_1"]) {
    test(`a ${version} ClientHello is refused by the server, with a log line`, async () => {
      const before = gw.log().split("unsupported protocol").length;
      const out = spawnSync("openssl", ["s_client", "-connect", `127.0.0.1:${gw.port}`, version, "-cipher", "DEFAULT@SECLEVEL=0"],
        { input: "", timeout: 10000 });
      const text = out.stdout.toString() + out.stderr.toString();
      assert(/alert protocol version/.test(text), `s_client: ${text.slice(0, 600)}`);
      const deadline = Date.now() + WAIT;
      while (gw.log().split("unsupported protocol").length === before) {
        if (Date.now() > deadline) throw new Error(`no log line: ${gw.log().slice(-1000)}`);
        await sleep(50);
      }
    });
  }

  test("plain HTTP to the TLS port: a plain 400 and a log line", async () => {
    const res = await rawHttp(gw.port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assertEqual([res.status, res.body], [400, "this port speaks TLS: https"], "answer");
    await waitLog(gw, "not TLS (plain HTTP or garbage) on the TLS port");
  });

  test("a handshake stalled halfway is closed after tls-handshake-timeout; others are served meanwhile", async () => {
    const s = net.connect(gw.port, "127.0.0.1");
    const start = Date.now();
    const closed = new Promise((resolve) => s.on("close", resolve));
    s.on("error", () => {});
    s.on("connect", () => s.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01])));
    await sleep(100);
    const res = await httpsGet(gw.port, "/healthz");
    assertEqual(res.status, 200, "another client meanwhile");
    await within(HANDSHAKE_TIMEOUT + 4000, closed, "the stalled connection to close");
    const took = Date.now() - start;
    assert(took >= HANDSHAKE_TIMEOUT - 100, `closed after ${took} ms`);
    await waitLog(gw, "TLS handshake timeout");
  });

  test("an oversized ClientHello is refused at once with a log line", async () => {
    const s = net.connect(gw.port, "127.0.0.1");
    const closed = new Promise((resolve) => s.on("close", resolve));
    s.on("error", () => {});
    s.on("connect", () => {
      // a ClientHello that announces 64 KiB (OpenSSL alone would buffer up to 128 KiB), in full records
      const first = Buffer.concat([Buffer.from([0x16, 3, 1, 0x40, 0, 1, 0x01, 0, 0]), Buffer.alloc(16380)]);
      const more = Buffer.concat([Buffer.from([0x16, 3, 1, 0x40, 0]), Buffer.alloc(16384)]);
      s.write(Buffer.concat([first, more, more, more]));
    });
    await within(3000, closed, "the connection to close");
    await waitLog(gw, "TLS handshake failed: handshake messages too large");
  });

  test("TLS 1.2 renegotiation is refused and the connection closed, with a log line", async () => {
    const child = spawn("openssl", ["s_client", "-connect", `127.0.0.1:${gw.port}`, "-tls1_2", "-CAfile", f("ca.pem")],
      { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    const exited = new Promise((resolve) => child.on("exit", resolve));
    const deadline = Date.now() + WAIT;
    while (!out.includes("Verify return code")) {
      if (Date.now() > deadline) throw new Error(`no handshake: ${out}`);
      await sleep(50);
    }
    child.stdin.write("R\n"); // s_client: renegotiate; stdin stays open
    try {
      await within(5000, exited, "s_client to see the connection closed");
    } finally {
      child.kill("SIGKILL");
    }
    assert(out.includes("RENEGOTIATING"), `s_client renegotiated: ${out.slice(-500)}`);
    await waitLog(gw, "TLS renegotiation refused");
  });

  test("tls-plain-health: plain HTTP answers /healthz, /readyz, /metrics only; https serves all", async () => {
    const gp = await startServer(GATEWAY, gatewayArgs([...tlsArgs("a"), "--tls-plain-health", "yes"]));
    try {
      const h = await rawHttp(gp.port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
      assertEqual([h.status, h.body], [200, "ok\n"], "plain /healthz");
      const m = await rawHttp(gp.port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
      assertEqual(m.status, 200, "plain /metrics");
      const refused = await rawHttp(gp.port, "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n");
      assertEqual(refused.status, 400, "plain Engine.IO refused");
      await waitLog(gp, "plain HTTP on the TLS port");
      const res = await httpsGet(gp.port, "/socket.io/?EIO=4&transport=polling");
      assertEqual(res.status, 200, "https Engine.IO");
    } finally {
      await gp.stop();
    }
  });

  test("SIGHUP: new connections get the new certificate, an old connection keeps working; a bad file keeps the old one", async () => {
    copyFileSync(f("a.pem"), f("live.pem"));
    copyFileSync(f("a.key"), f("live.key"));
    const gr = await startServer(GATEWAY, gatewayArgs(["--tls-cert", f("live.pem"), "--tls-key", f("live.key")]));
    try {
      assertEqual((await tlsProbe(gr.port)).cn, "sioc-a", "before the reload");
      const old = await connectClient(gr.port, { transports: ["websocket"] });
      try {
        copyFileSync(f("b.pem"), f("live.pem"));
        copyFileSync(f("b.key"), f("live.key"));
        process.kill(gr.pid, "SIGHUP");
        await waitLog(gr, "tls.reload: new connections get subject /CN=sioc-b");
        assertEqual((await tlsProbe(gr.port)).cn, "sioc-b", "after the reload");
        const got = nextEvent(old, "hello");
        await emitTo([old.id], "hello", ["still here"]);
        assertEqual(await got, "still here", "the old connection still works");
        assert(old.connected, "old connection open");
        // a half-written key: the reload fails, names the option, and sioc-b stays
        writeFileSync(f("live.key"), "-----BEGIN PRIVATE KEY-----\nAAAA\n");
        process.kill(gr.pid, "SIGHUP");
        await waitLog(gr, "tls.reload: failed, the old certificate stays: tls-key:");
        assertEqual((await tlsProbe(gr.port)).cn, "sioc-b", "after the failed reload");
        // expired, then the wrong host name: clients refuse them
        copyFileSync(f("expired.pem"), f("live.pem"));
        copyFileSync(f("expired.key"), f("live.key"));
        process.kill(gr.pid, "SIGHUP");
        await waitLog(gr, "(EXPIRED)");
        const expired = await tlsProbe(gr.port);
        assertEqual([expired.ok, expired.code], [false, "CERT_HAS_EXPIRED"], "an expired certificate is refused by the client");
        const expiredIo = await connectClient(gr.port, { transports: ["websocket"] }).then(() => "connected", (e) => String(e.message));
        assert(expiredIo !== "connected", "socket.io-client refuses the expired certificate");
        copyFileSync(f("other.pem"), f("live.pem"));
        copyFileSync(f("other.key"), f("live.key"));
        process.kill(gr.pid, "SIGHUP");
        await waitLog(gr, "tls.reload: new connections get subject /CN=sioc-other");
        const wrong = await tlsProbe(gr.port);
        assertEqual([wrong.ok, wrong.code], [false, "ERR_TLS_CERT_ALTNAME_INVALID"], "a certificate for another host is refused");
        await waitLog(gr, "TLS handshake failed:");
      } finally {
        old.close();
      }
    } finally {
      await gr.stop();
    }
  }, 30000);

  ok = await run();
} catch (e) {
  console.log(`FAIL setup: ${e.stack || e}`);
  console.log("test_tls: 0 passed, 1 failed");
} finally {
  await r.quit().catch(() => {});
  for (const s of stoppers.reverse()) await s.stop().catch(() => {});
  rmSync(dir, { recursive: true, force: true });
}
process.exit(ok ? 0 : 1);
