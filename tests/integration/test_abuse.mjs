// test_abuse.mjs: issue 10, the gateway and the broker under one abusive client each (release
// builds, so that resident memory is what a user would see; ASan's quarantine would hide it):
// pipelined requests that are never read, a WebSocket ping flood that never reads, more
// connections than file descriptors, namespaces under --namespaces '*' (ASan build). Each asserts that the server's memory (or CPU) stays
// bounded while the abuse goes on and that other clients or health checks are served meanwhile.
// Upstream back-pressure (clients paused while Redis is away) is in test_backpressure.mjs.
import net from "node:net";
import crypto from "node:crypto";
import { readFileSync } from "node:fs";
import { createClient } from "redis";
import { assert, assertEqual, createRunner, get, post, rawWebSocket, sleep, startRedis, startServer, within } from "./lib/harness.mjs";

const GATEWAY = process.env.SIOC_GATEWAY_RELEASE || "build/sioc-gateway";
const BROKER = process.env.SIOC_BROKER_RELEASE || "build/sioc-broker";
const GATEWAY_ASAN = process.env.SIOC_GATEWAY || "build/asan/sioc-gateway";
const redis = await startRedis();
const { test, run } = createRunner("test_abuse");

function rssKb(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) : 0;
}

// A raw connection that writes `bytes` (as fast as the server takes them) and never reads.
// Resolves with the socket once everything is handed to the kernel or `ms` passed.
function floodNeverRead(port, bytes, { prefix = null, ms = 3000 } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect(port, "127.0.0.1");
    sock.on("error", () => {});
    sock.on("connect", () => {
      sock.pause(); // never read: responses pile up on the server's side
      if (prefix) sock.write(prefix);
      sock.write(bytes);
      const timer = setTimeout(() => resolve(sock), ms);
      sock.once("drain", () => {
        clearTimeout(timer);
        resolve(sock);
      });
    });
  });
}

async function pipelineFlood(server, what) {
  const base = rssKb(server.pid);
  const one = Buffer.from("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  const flood = await floodNeverRead(server.port, Buffer.concat(Array(20000).fill(one)));
  await sleep(500);
  const health = await within(3000, get(server.port, "/healthz"), "/healthz during the flood");
  assert(health.status === 200, `${what}: /healthz answered during the flood (${health.status})`);
  const grown = rssKb(server.pid) - base;
  console.log(`  ${what}: RSS ${base} kB before, +${grown} kB with 20,000 pipelined /metrics unread`);
  flood.destroy();
  assert(grown < 16 * 1024, `${what}: memory grew ${grown} kB (limit 16 MB)`);
}

test("gateway: 20,000 pipelined /metrics never read cost at most the connection's limit", async () => {
  const gw = await startServer(GATEWAY, ["--redis", redis.url, "--log-level", "error"]);
  try {
    await pipelineFlood(gw, "gateway");
  } finally {
    await gw.stop();
  }
});

test("broker: 20,000 pipelined /metrics never read cost at most the connection's limit", async () => {
  const bk = await startServer(BROKER, ["--redis", redis.url, "--log-level", "error"]);
  try {
    await pipelineFlood(bk, "broker");
  } finally {
    await bk.stop();
  }
});

// Masked WebSocket ping frames with a 125-byte payload (the largest control frame).
function pings(n) {
  const frame = Buffer.alloc(2 + 4 + 125);
  frame[0] = 0x89;
  frame[1] = 0x80 | 125;
  crypto.randomBytes(4).copy(frame, 2);
  return Buffer.concat(Array(n).fill(frame));
}

test("gateway: a WebSocket ping flood that never reads costs at most the connection's limit", async () => {
  const gw = await startServer(GATEWAY, ["--redis", redis.url, "--log-level", "error"]);
  try {
    const base = rssKb(gw.pid);
    const key = crypto.randomBytes(16).toString("base64");
    const upgrade = `GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n` +
      `Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\n\r\n`;
    const flood = await floodNeverRead(gw.port, pings(300000), { prefix: upgrade });
    await sleep(500);
    const health = await within(3000, get(gw.port, "/healthz"), "/healthz during the flood");
    assert(health.status === 200, "/healthz answered during the flood");
    const grown = rssKb(gw.pid) - base;
    console.log(`  gateway: RSS ${base} kB before, +${grown} kB with 300,000 pings (39 MB) unread`);
    flood.destroy();
    assert(grown < 16 * 1024, `memory grew ${grown} kB (limit 16 MB)`);
  } finally {
    await gw.stop();
  }
});

// CPU time (utime + stime, in clock ticks of 10 ms) the process used so far.
function cpuTicks(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return Number(f[11]) + Number(f[12]);
}

// Opens `n` raw connections (as fast as they are accepted or refused); resolves with them.
async function openConnections(port, n) {
  const socks = [];
  await Promise.all(Array.from({ length: n }, () => new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    socks.push(s);
    s.on("error", () => resolve());
    s.on("connect", () => resolve());
    setTimeout(resolve, 3000);
  })));
  return socks;
}

const NOFILE = ["prlimit", "--nofile=256:256", "--"];

test("max-connections from the fd limit: 300 connections at 256 fds, /healthz answers, others get 503", async () => {
  const gw = await startServer(GATEWAY, ["--redis", redis.url, "--log-level", "info"], { prefix: NOFILE });
  try {
    await sleep(200); // the start lines reach us through a pipe
    assert(/max-connections 192 .*file-descriptor limit 256/.test(gw.log()), `start line names the limit:\n${gw.log()}`);
    const socks = await openConnections(gw.port, 300);
    await sleep(300);
    const before = cpuTicks(gw.pid);
    await sleep(1000);
    const used = cpuTicks(gw.pid) - before;
    const health = await within(3000, get(gw.port, "/healthz"), "/healthz at the limit");
    assert(health.status === 200, `/healthz at the limit: ${health.status}`);
    const poll = await within(3000, get(gw.port, "/socket.io/?EIO=4&transport=polling"), "a handshake at the limit");
    assert(poll.status === 503, `a handshake at the limit is refused with 503 (${poll.status})`);
    const lines = gw.log().split("\n").filter((l) => /connection limit/.test(l)).length;
    console.log(`  CPU ${used * 10} ms in 1 s at the limit, ${lines} log lines about it`);
    assert(used < 30, `CPU ${used * 10} ms in 1 s at the limit`);
    assert(lines >= 1 && lines <= 2, `once per episode: ${lines} lines`);
    for (const s of socks) s.destroy();
    await sleep(300);
    const poll2 = await within(3000, get(gw.port, "/socket.io/?EIO=4&transport=polling"), "a handshake after");
    assert(poll2.status === 200, `served again below the limit (${poll2.status})`);
  } finally {
    await gw.stop();
  }
});

test("max-connections above the fd limit: warned at start; accept errors back off, logged once, no spin", async () => {
  const gw = await startServer(GATEWAY, ["--redis", redis.url, "--log-level", "info", "--max-connections", "5000"],
    { prefix: NOFILE });
  try {
    await sleep(200);
    assert(/max-connections 5000 exceeds the file-descriptor limit 256/.test(gw.log()), `warned at start:\n${gw.log()}`);
    const socks = await openConnections(gw.port, 400);
    await sleep(300);
    const before = cpuTicks(gw.pid);
    await sleep(1000);
    const used = cpuTicks(gw.pid) - before;
    const log = gw.log();
    const lines = log.split("\n").filter((l) => /accept failed|accepting again/.test(l)).length;
    console.log(`  CPU ${used * 10} ms in 1 s at EMFILE, ${lines} log lines about accept, ${log.length} bytes of log`);
    assert(!/Error from accept\(\) call/.test(log), "no libevent print");
    assert(used < 30, `CPU ${used * 10} ms in 1 s at EMFILE (spinning)`);
    assert(lines >= 1 && lines <= 2, `accept errors logged once per episode: ${lines} lines`);
    for (const s of socks) s.destroy();
    const health = await within(5000, (async () => {
      for (;;) {
        const r = await get(gw.port, "/healthz");
        if (r.status === 200) return r;
        await sleep(100);
      }
    })(), "/healthz after the episode");
    assert(health.status === 200, "accepting again");
    // the episode ends after accepts have gone 2 s without a failure (then it is logged once)
    for (let i = 0; i < 40 && !/accepting again/.test(gw.log()); i++) {
      await get(gw.port, "/healthz");
      await sleep(200);
    }
    assert(/accepting again/.test(gw.log()), `the end of the episode is logged:\n${gw.log().slice(-500)}`);
  } finally {
    await gw.stop();
  }
});

// ---- namespaces under '*' ----

// A raw Engine.IO WebSocket connection: resolves once the open packet arrived.
async function eioSocket(port) {
  const ws = await rawWebSocket(port, "/socket.io/?EIO=4&transport=websocket");
  const open = await ws.next();
  assert(open && open.text.startsWith("0{"), "Engine.IO open packet");
  return ws;
}

// Sends CONNECT for each name (raw bytes allowed) and resolves with the CONNECT / CONNECT_ERROR
// answers in order, as {nsp, ok, message}.
async function connectMany(ws, names) {
  for (const n of names) ws.send(1, Buffer.concat([Buffer.from("40"), Buffer.from(n, "latin1"), Buffer.from(",")]));
  const out = [];
  while (out.length < names.length) {
    const f = await ws.next(5000);
    if (f === null) throw new Error("connection closed");
    if (f.text === "2") {
      ws.text("3");
      continue;
    }
    const m = /^4([04])(\/[^,]*),(.*)$/s.exec(f.payload.toString("latin1"));
    if (!m) continue;
    out.push({ nsp: m[2], ok: m[1] === "0", message: m[1] === "4" ? JSON.parse(m[3]).message : null });
  }
  return out;
}

const rc = createClient({ url: redis.url });
await rc.connect();
async function numsub(...channels) {
  const r = await rc.sendCommand(["PUBSUB", "NUMSUB", ...channels]);
  const counts = [];
  for (let i = 1; i < r.length; i += 2) counts.push(Number(r[i]));
  return counts;
}

const NSP_ARGS = ["--redis", redis.url, "--namespaces", "*", "--log-level", "info", "--empty-namespace-timeout", "500"];

test("namespaces *: above 256 a namespace is refused with CONNECT_ERROR, never accepted unsubscribed; empty ones are freed", async () => {
  const gw = await startServer(GATEWAY_ASAN, NSP_ARGS);
  try {
    const conns = [];
    const answers = [];
    for (let c = 0; c < 5; c++) {
      const ws = await eioSocket(gw.port);
      conns.push(ws);
      answers.push(...await connectMany(ws, Array.from({ length: 60 }, (_, i) => `/n${c * 60 + i}`)));
    }
    const accepted = answers.filter((a) => a.ok).map((a) => a.nsp);
    const refused = answers.filter((a) => !a.ok);
    console.log(`  ${accepted.length} accepted, ${refused.length} refused (${refused[0] && refused[0].message})`);
    assertEqual(accepted.length, 256, "namespaces accepted (CLUSTER_MAX_NAMESPACES)");
    assert(refused.every((a) => a.message === "Namespace limit reached"), "refused with a clear message");
    await sleep(300);
    const subs = await numsub(...accepted.map((n) => `socket.io-request#${n}#`));
    assert(subs.every((n) => n === 1), `every accepted namespace answers requests (${subs.filter((n) => n !== 1).length} do not)`);
    const refusedLines = gw.log().split("\n").filter((l) => /namespace_refused/.test(l)).length;
    assert(refusedLines <= 2, `the limit is logged once per episode, not per namespace (${refusedLines} lines)`);
    const late = await eioSocket(gw.port);
    assertEqual(await connectMany(late, ["/legit_chat"]), [{ nsp: "/legit_chat", ok: false, message: "Namespace limit reached" }],
      "at the limit a new namespace is refused");
    for (const ws of conns) ws.close();
    await sleep(1500); // empty-namespace-timeout 500 ms
    assertEqual(await numsub("socket.io-request#/n0#", "socket.io-request#/n255#"), [0, 0], "empty namespaces unsubscribed");
    const [legit] = await connectMany(late, ["/legit_chat"]);
    assert(legit.ok, "a namespace is accepted again once others were freed");
    await sleep(200);
    assertEqual(await numsub("socket.io-request#/legit_chat#"), [1], "and subscribed");
    late.close();
  } finally {
    await gw.stop();
    assert(!/Sanitizer/.test(gw.log()), `no sanitizer report:\n${gw.log().slice(-3000)}`);
  }
}, 30000);

test("namespaces *: at most 64 on one connection", async () => {
  const gw = await startServer(GATEWAY_ASAN, NSP_ARGS);
  try {
    const ws = await eioSocket(gw.port);
    const answers = await connectMany(ws, Array.from({ length: 70 }, (_, i) => `/c${i}`));
    assertEqual(answers.filter((a) => a.ok).length, 64, "namespaces joined by one connection");
    assert(answers.slice(64).every((a) => a.message === "Too many namespaces on this connection"),
      `beyond: ${JSON.stringify(answers.slice(64, 65))}`);
    ws.close();
  } finally {
    await gw.stop();
    assert(!/Sanitizer/.test(gw.log()), `no sanitizer report:\n${gw.log().slice(-3000)}`);
  }
});

test("namespaces *: names with NUL or invalid UTF-8 are refused (Invalid namespace)", async () => {
  const gw = await startServer(GATEWAY_ASAN, NSP_ARGS);
  try {
    const ws2 = await eioSocket(gw.port);
    const [nul] = await connectMany(ws2, ["/ch\0at"]);
    assertEqual(nul, { nsp: "/ch\0at", ok: false, message: "Invalid namespace" }, "a NUL in the name");
    ws2.close();
    // invalid UTF-8 can only arrive through polling (WebSocket text frames are checked)
    const hs = await get(gw.port, "/socket.io/?EIO=4&transport=polling");
    const sid = JSON.parse(hs.body.slice(1)).sid;
    const sent = await post(gw.port, `/socket.io/?EIO=4&transport=polling&sid=${sid}`, Buffer.from([0x34, 0x30, 0x2f, 0xff, 0xfe, 0x2c]));
    assertEqual(sent.status, 200, "POST accepted");
    const answer = await get(gw.port, `/socket.io/?EIO=4&transport=polling&sid=${sid}`);
    assert(answer.body.startsWith("44/") && answer.body.includes("Invalid namespace"), `invalid UTF-8: ${answer.body}`);
  } finally {
    await gw.stop();
    assert(!/Sanitizer/.test(gw.log()), `no sanitizer report:\n${gw.log().slice(-3000)}`);
  }
});

const ok = await run();
await rc.quit();
await redis.stop();
process.exit(ok ? 0 : 1);
