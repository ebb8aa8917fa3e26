// lib.mjs: the fault suite of issue 10 (tests/chaos). Each scenario starts its own cluster (a
// private redis-server with an fsync-always AOF, sioc-broker, two sioc-gateways, the recording
// worker tests/chaos/recorder.py on the Python SDK), puts it under load (socket.io-client
// clients on both gateways sending numbered events with acks, a broadcast from the backend every
// 200 ms), injects one fault or one abusive client, and measures what happened: events sent and
// lost, false disconnects, recovery time, peak memory. `make chaos` (tests/chaos/run.mjs) runs
// the scenarios at size; tests/integration/test_faults.mjs runs them small and asserts targets.
//
// Clients behave like a socket.io-client behind a load balancer with at-least-once emits: on a
// disconnect they reconnect (the same gateway first, then the other one), and re-send the events
// that were not acked yet (attempt 2, 3, ...). "Lost" counts events the worker never saw in any
// attempt; "first copies lost" counts events whose first transmission never reached the worker
// (only a client's re-send saved them): for faults of Redis or of the broker both must be 0.
import { io } from "socket.io-client";
import { createClient } from "redis";
import { Emitter } from "@socket.io/redis-emitter";
import net from "node:net";
import crypto from "node:crypto";
import { readFileSync } from "node:fs";
import { get, repo, sleep, startProcess, startRedis, startServer, within } from "../integration/lib/harness.mjs";

export const GATEWAY = process.env.SIOC_GATEWAY_RELEASE || "build/sioc-gateway";
export const BROKER = process.env.SIOC_BROKER_RELEASE || "build/sioc-broker";

// ---------------------------------------------------------------- /proc helpers
export function rssKb(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}
function hwmKb(pid) {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}
// CPU time (utime + stime) in clock ticks of 10 ms.
export function cpuTicks(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    return Number(f[11]) + Number(f[12]);
  } catch {
    return 0;
  }
}

async function until(fn, ms, step = 50) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => null);
    if (v) return v;
    if (Date.now() > deadline) return null;
    await sleep(step);
  }
}

// ---------------------------------------------------------------- the cluster
// Every process a scenario starts is SIGKILLed when this process exits, whatever happened.
const children = new Set();
function track(x) {
  children.add(typeof x === "number" ? x : x.pid);
  return x;
}
process.on("exit", () => {
  for (const pid of children) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone already
    }
  }
});
// opts: nodeTimeout, gwArgs (extra), gwPrefix (e.g. prlimit), namespaces
export async function startCluster(opts = {}) {
  const nt = String(opts.nodeTimeout ?? 6000);
  const redis = await startRedis({ persist: true, fsync: "everysec", onSpawn: track });
  const brokerArgs = ["--redis", redis.url, "--node-timeout", nt, "--check-interval", String(opts.checkInterval ?? 200),
    "--log-level", "info"];
  const c = {
    redis,
    brokerArgs,
    broker: track(await startServer(BROKER, brokerArgs)),
    brokerLogs: [],
    gws: [],
    killed: new Map(), // node -> time of its kill -9
    rss: new Map(), // node -> {peak, base}
  };
  const names = ["gwA", "gwB"];
  for (const node of names) {
    const gw = await startServer(GATEWAY, ["--redis", redis.url, "--node-id", node, "--node-timeout", nt,
      "--namespaces", opts.namespaces || "/", "--log-level", "info", ...(opts.gwArgs || [])], { prefix: opts.gwPrefix || [] });
    track(gw);
    gw.node = node;
    c.gws.push(gw);
    c.rss.set(node, { peak: 0, base: 0 });
  }
  c.recorder = track(await startProcess("/usr/bin/python3", ["tests/chaos/recorder.py", "--redis", redis.url], "recorder ready",
    { cwd: repo }));
  c.rc = createClient({ url: redis.url, disableOfflineQueue: true, socket: { reconnectStrategy: () => 100, connectTimeout: 1000 } });
  c.rc.on("error", () => {});
  await c.rc.connect();
  // an emitter whose publishes fail quietly while Redis is away (broadcasts are at-most-once)
  c.emitter = new Emitter({ publish: (channel, msg) => c.rc.publish(channel, msg).catch(() => 0) });
  c.sampler = setInterval(() => sampleRss(c), 100);
  return c;
}

function sampleRss(c) {
  for (const gw of c.gws) {
    if (c.killed.has(gw.node)) continue;
    const r = c.rss.get(gw.node);
    r.peak = Math.max(r.peak, rssKb(gw.pid));
  }
}
// Records the current RSS as each gateway's baseline (before the abuse starts).
export function rssBaseline(c) {
  for (const gw of c.gws) c.rss.get(gw.node).base = rssKb(gw.pid);
}

export async function killBroker(c) {
  try {
    process.kill(c.broker.pid, "SIGKILL");
  } catch {
    // already dead
  }
  await c.broker.stop();
  c.brokerLogs.push(c.broker.log());
}
export async function restartBroker(c) {
  c.broker = track(await startServer(BROKER, c.brokerArgs));
}
export function brokerLog(c) {
  return c.brokerLogs.join("") + c.broker.log();
}
export function killGateway(c, gw) {
  for (const g of c.gws) if (g === gw) c.rss.get(g.node).peak = Math.max(c.rss.get(g.node).peak, hwmKb(g.pid));
  c.killed.set(gw.node, Date.now());
  process.kill(gw.pid, "SIGKILL");
}
export async function stopCluster(c) {
  clearInterval(c.sampler);
  for (const gw of c.gws) if (!c.killed.has(gw.node)) c.rss.get(gw.node).peak = Math.max(c.rss.get(gw.node).peak, hwmKb(gw.pid));
  await c.rc.quit().catch(() => c.rc.disconnect().catch(() => {}));
  const w = await c.recorder.stop();
  const exits = {};
  for (const gw of c.gws) exits[gw.node] = await gw.stop();
  await c.broker.stop();
  await c.redis.stop();
  return { recorderExit: w, exits };
}

// ---------------------------------------------------------------- the recorder's view
// Parses the recorder's output into events seen and disconnect entries.
export function recorderView(c) {
  const seen = new Map(); // "L:seq" -> {t, attempts:Set, copies}
  const connects = [];
  const disconnects = [];
  for (const line of c.recorder.output().split("\n")) {
    const f = line.split(" ");
    if (f[0] === "e" && f.length >= 7) {
      const key = `${f[2]}:${f[3]}`;
      let s = seen.get(key);
      if (!s) seen.set(key, (s = { t: Number(f[1]), attempts: new Set(), copies: 0 }));
      s.attempts.add(Number(f[4]));
      s.copies++;
    } else if (f[0] === "c" && f.length >= 5) {
      connects.push({ t: Number(f[1]), nsp: f[2], sid: f[3], node: f[4] });
    } else if (f[0] === "d" && f.length >= 6) {
      disconnects.push({ t: Number(f[1]), nsp: f[2], sid: f[3], node: f[4], reason: f.slice(5).join(" ") });
    }
  }
  return { seen, connects, disconnects };
}

// ---------------------------------------------------------------- the load
// N clients, alternately on gwA and gwB (websocket), each sending `rate` events per second
// ("n"(client, seq, attempt) with an ack), optionally with a payload of `payload` bytes.
export class Load {
  constructor(c, { clients, rate, payload = 0, oneGateway = false }) {
    this.c = c;
    this.rate = rate;
    this.pad = payload > 0 ? "x".repeat(payload) : null;
    this.clients = [];
    this.stopped = false;
    this.ticks = 0;
    this.tickTimer = null;
    for (let i = 0; i < clients; i++) {
      this.clients.push({ L: i, gwIndex: oneGateway ? 0 : i % c.gws.length, socket: null, seq: 0, first: [], acked: [], attempts: [],
        disconnects: [], connects: [], ticks: 0, timer: null, reconnecting: false });
    }
  }
  async start() {
    await Promise.all(this.clients.map((cl) => this.connect(cl)));
    for (const cl of this.clients) {
      const period = 1000 / this.rate;
      setTimeout(() => {
        if (this.stopped) return;
        cl.timer = setInterval(() => this.send(cl), period);
      }, Math.random() * period);
    }
    this.tickTimer = setInterval(() => {
      this.c.emitter.emit("tick", ++this.ticks);
    }, 200);
  }
  connect(cl) {
    const gw = this.c.gws[cl.gwIndex];
    return new Promise((resolve) => {
      const socket = io(`http://127.0.0.1:${gw.port}/`, { forceNew: true, reconnection: false, transports: ["websocket"], timeout: 2000 });
      let done = false;
      const fail = () => {
        if (done) return;
        done = true;
        socket.close();
        cl.gwIndex = (cl.gwIndex + 1) % this.c.gws.length; // the other gateway (as a load balancer would)
        resolve(false);
      };
      socket.once("connect_error", fail);
      const timer = setTimeout(fail, 3000);
      socket.once("connect", () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        cl.socket = socket;
        cl.node = gw.node;
        cl.sid = socket.id;
        cl.connects.push({ t: Date.now(), node: gw.node, sid: socket.id });
        socket.on("tick", () => cl.ticks++);
        socket.on("disconnect", (reason) => {
          if (reason === "io client disconnect") return;
          cl.disconnects.push({ t: Date.now(), node: cl.node, sid: cl.sid, reason });
          cl.socket = null;
          this.reconnect(cl);
        });
        // re-send what was not acked (at-least-once from the client)
        for (let s = 1; s <= cl.seq; s++) if (cl.acked[s] === undefined) this.emit(cl, s);
        resolve(true);
      });
    });
  }
  async reconnect(cl) {
    if (cl.reconnecting || this.stopped) return;
    cl.reconnecting = true;
    await sleep(100 + Math.random() * 400);
    for (let i = 0; i < 40 && !this.stopped; i++) {
      if (await this.connect(cl)) break;
      await sleep(250);
    }
    cl.reconnecting = false;
  }
  emit(cl, s) {
    const attempt = (cl.attempts[s] || 0) + 1;
    cl.attempts[s] = attempt;
    const args = ["n", cl.L, s, attempt];
    if (this.pad) args.push(this.pad);
    cl.socket.emit(...args, () => {
      if (cl.acked[s] === undefined) cl.acked[s] = Date.now();
    });
  }
  send(cl) {
    if (this.stopped || !cl.socket || !cl.socket.connected) return;
    const s = ++cl.seq;
    cl.first[s] = Date.now();
    this.emit(cl, s);
  }
  // Stops sending; waits (bounded) until the worker saw every event sent and every ack came back.
  async stop(drainMs = 15000) {
    this.stopped = true;
    clearInterval(this.tickTimer);
    for (const cl of this.clients) clearInterval(cl.timer);
    await until(async () => {
      const { seen } = recorderView(this.c);
      return this.clients.every((cl) => {
        for (let s = 1; s <= cl.seq; s++) if (!seen.has(`${cl.L}:${s}`) || cl.acked[s] === undefined) return false;
        return true;
      });
    }, drainMs, 200);
  }
  close() {
    for (const cl of this.clients) if (cl.socket) cl.socket.close();
  }
  sids() {
    return this.clients.filter((cl) => cl.socket && cl.socket.connected).map((cl) => ({ sid: cl.sid, node: cl.node }));
  }
}

// ---------------------------------------------------------------- the figures
// From the load and the recorder: sent, lost, first copies lost, duplicates, false disconnects,
// recovery (from faultEnd until the worker had seen, for every client, an event sent after it),
// backlog (until the worker saw every event sent before faultEnd), unacked (events the worker saw
// whose ack never reached the client), max latency (send to ack).
export function figures(c, load, { faultEnd = null, window = null } = {}) {
  const view = recorderView(c);
  let sent = 0;
  let lost = 0;
  let lostFirst = 0;
  let dup = 0;
  let backlogAt = 0;
  let maxLatency = 0;
  let recoveryAt = 0;
  let unacked = 0;
  const lostList = [];
  for (const cl of load.clients) {
    let firstAfter = null;
    for (let s = 1; s <= cl.seq; s++) {
      sent++;
      const key = `${cl.L}:${s}`;
      const v = view.seen.get(key);
      if (!v) {
        lost++;
        if (lostList.length < 10) lostList.push(key);
      } else {
        if (!v.attempts.has(1)) lostFirst++;
        if (v.copies > 1) dup += v.copies - 1;
        if (faultEnd !== null && cl.first[s] < faultEnd) backlogAt = Math.max(backlogAt, v.t);
      }
      // events flow again: the worker saw an event the client sent after the fault's end
      if (v && faultEnd !== null && cl.first[s] >= faultEnd && firstAfter === null) firstAfter = v.t;
      if (cl.acked[s] === undefined) {
        if (v) unacked++;
      } else if (window === null || (cl.first[s] >= window[0] && cl.first[s] <= window[1])) {
        maxLatency = Math.max(maxLatency, cl.acked[s] - cl.first[s]);
      }
    }
    if (faultEnd !== null) recoveryAt = Math.max(recoveryAt, firstAfter ?? Infinity);
  }
  // false disconnects: a client disconnected from, or a node-lost entry for, a node not killed
  const falseClient = [];
  const reasons = {};
  for (const cl of load.clients) {
    for (const d of cl.disconnects) {
      reasons[d.reason] = (reasons[d.reason] || 0) + 1;
      const k = c.killed.get(d.node);
      if (k === undefined || d.t < k - 50) falseClient.push(d);
    }
  }
  const nodeLost = view.disconnects.filter((d) => d.reason === "node lost");
  const falseNodeLost = nodeLost.filter((d) => !c.killed.has(d.node));
  const ticksPublished = load.ticks;
  const tickShare = ticksPublished > 0 ? load.clients.reduce((a, cl) => a + cl.ticks, 0) / (ticksPublished * load.clients.length) : 1;
  const rss = {};
  for (const [node, r] of c.rss) rss[node] = { peakMb: +(r.peak / 1024).toFixed(1), baseMb: +(r.base / 1024).toFixed(1) };
  return {
    sent,
    lost,
    lostFirst,
    duplicates: dup,
    unacked,
    lostSample: lostList,
    falseDisconnects: falseClient.length + falseNodeLost.length,
    falseClientDisconnects: falseClient.length,
    falseNodeLost: falseNodeLost.length,
    disconnectReasons: reasons,
    nodeLost,
    recoveryMs: faultEnd === null ? null : recoveryAt === Infinity ? Infinity : Math.max(0, recoveryAt - faultEnd),
    backlogMs: faultEnd === null ? null : Math.max(0, backlogAt - faultEnd),
    maxLatencyMs: maxLatency,
    broadcastShare: +tickShare.toFixed(3),
    rss,
  };
}

// ---------------------------------------------------------------- abusive raw clients
// A raw connection that writes `bytes` (as fast as the server takes them) and never reads.
export function floodNeverRead(port, bytes, { prefix = null, ms = 3000 } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect(port, "127.0.0.1");
    sock.on("error", () => {});
    sock.on("connect", () => {
      sock.pause();
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

export function pings(n) {
  const frame = Buffer.alloc(2 + 4 + 125);
  frame[0] = 0x89;
  frame[1] = 0x80 | 125;
  crypto.randomBytes(4).copy(frame, 2);
  return Buffer.concat(Array(n).fill(frame));
}

export function wsUpgrade() {
  const key = crypto.randomBytes(16).toString("base64");
  return `GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n` +
    `Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\n\r\n`;
}

// A masked client text frame.
export function wsText(s) {
  const data = Buffer.from(s, "latin1");
  const head = data.length < 126 ? Buffer.from([0x81, 0x80 | data.length])
    : Buffer.from([0x81, 0x80 | 126, data.length >> 8, data.length & 255]);
  const k = crypto.randomBytes(4);
  return Buffer.concat([head, k, Buffer.from(data.map((b, i) => b ^ k[i & 3]))]);
}

// A Socket.IO client on "/" over a raw WebSocket that learns its sid, then never reads again.
export function stuckReader(port) {
  return within(5000, new Promise((resolve) => {
    const sock = net.connect(port, "127.0.0.1");
    let text = "";
    const state = { sock, closed: false, sid: null };
    let connectSent = false;
    sock.on("error", () => {});
    sock.on("close", () => (state.closed = true));
    sock.on("data", (d) => {
      text += d.toString("latin1");
      if (!connectSent && /\r\n\r\n[\s\S]*0\{/.test(text)) {
        connectSent = true;
        sock.write(wsText("40"));
      }
      const m = /40\{"sid":"([^"]+)"/.exec(text);
      if (m && state.sid === null) {
        state.sid = m[1];
        sock.pause(); // from now on the client reads nothing
        resolve(state);
      }
    });
    sock.write(wsUpgrade());
  }), "the stuck reader's CONNECT");
}

// Opens `n` raw connections (as fast as they are accepted or refused); resolves with them.
export async function openConnections(port, n) {
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

export async function statusOf(port, path) {
  return (await within(3000, get(port, path), `GET ${path}`).catch(() => ({ status: 0 }))).status;
}

export { sleep, until };
