// harness.mjs: shared helpers for the integration tests: start a sioc binary on a random port
// (by pid, bounded waits), a tiny test runner that prints "<name>: N passed, M failed", and raw
// HTTP / WebSocket clients for byte-level checks.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, existsSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import net from "node:net";
import crypto from "node:crypto";
import path from "node:path";

export const repo = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../..");

// The binaries under test: the sanitizer builds unless SIOC_GATEWAY / SIOC_BROKER name others
// (relative paths are from the repository).
export const GATEWAY = process.env.SIOC_GATEWAY || "build/asan/sioc-gateway";
export const BROKER = process.env.SIOC_BROKER || "build/asan/sioc-broker";

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

// Resolves with `value` or rejects after `ms` with a message naming what was awaited.
export function within(ms, promise, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// Starts `binary` with `args` plus --listen 127.0.0.1:0 --port-file; resolves {port, pid, stop, log}.
// `prefix` is a command that execs the binary in the same process (e.g. prlimit --nofile=256 --).
export async function startServer(binary, args = [], { prefix = [] } = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), "sioc-test-"));
  const portFile = path.join(dir, "port");
  const bin = path.isAbsolute(binary) ? binary : path.join(repo, binary);
  const argv = [bin, "--listen", "127.0.0.1:0", "--port-file", portFile, ...args];
  const child = spawn(prefix.length ? prefix[0] : argv[0], [...prefix.slice(1), ...(prefix.length ? argv : argv.slice(1))], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let log = "";
  child.stdout.on("data", (d) => (log += d));
  child.stderr.on("data", (d) => (log += d));
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  const deadline = Date.now() + 10000;
  while (!existsSync(portFile) || readFileSync(portFile, "utf8").trim() === "") {
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill("SIGKILL");
      throw new Error(`${binary} did not start:\n${log}`);
    }
    await sleep(20);
  }
  const port = Number(readFileSync(portFile, "utf8").trim());
  return {
    port,
    pid: child.pid,
    log: () => log,
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      const result = await within(10000, exited, `${binary} to exit`).catch(() => {
        child.kill("SIGKILL");
        return { code: null, signal: "SIGKILL" };
      });
      rmSync(dir, { recursive: true, force: true });
      return result;
    },
  };
}

// A minimal runner: test(name, fn) registers; run(suite) executes in order with a per-test bound.
export function createRunner(suite) {
  const tests = [];
  return {
    // SIOC_TEST_FILTER (a regular expression) runs only the tests whose name matches.
    test(name, fn, ms = 15000) {
      if (process.env.SIOC_TEST_FILTER && !new RegExp(process.env.SIOC_TEST_FILTER).test(name)) return;
      tests.push({ name, fn, ms });
    },
    async run() {
      let passed = 0;
      let failed = 0;
      for (const t of tests) {
        const start = Date.now();
        try {
          await within(t.ms, Promise.resolve().then(t.fn), t.name);
          passed++;
          console.log(`ok   ${t.name} (${Date.now() - start} ms)`);
        } catch (err) {
          failed++;
          console.log(`FAIL ${t.name}: ${err && err.stack ? err.stack : err}`);
        }
      }
      console.log(`${suite}: ${passed} passed, ${failed} failed`);
      return failed === 0;
    },
  };
}

// Polls fn (sync or async) until it returns something truthy, which it returns; throws once
// `ms` have passed. `what` names the wait in the error.
export async function until(what, fn, ms = 5000, { every = 25 } = {}) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(every);
  }
}

// Runs body(cl), then always cl.stop(). A failure of body is thrown with stop's failure (if any)
// and the last 15 lines of each process in cl.workers ({file, pid, output()}) added to its
// message; otherwise stop's failure, if any, is thrown.
export async function runThenStop(cl, body) {
  let failure = null;
  let stopFailure = null;
  try {
    await body(cl);
  } catch (e) {
    failure = e;
  }
  try {
    await cl.stop();
  } catch (e) {
    stopFailure = e;
  }
  if (failure) {
    const tails = cl.workers.map((w) => `--- ${w.file} (pid ${w.pid}) ---\n${w.output().split("\n").slice(-15).join("\n")}`);
    failure.message += `\n${stopFailure ? stopFailure.message + "\n" : ""}${tails.join("\n")}`;
    throw failure;
  }
  if (stopFailure) throw stopFailure;
}

// Headless Chromium (playwright-core, the system's /usr/bin/chromium) with nothing running in
// the background; the caller closes it.
export async function launchChromium() {
  const { chromium } = await import("playwright-core");
  return chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
}

export function assert(cond, message) {
  if (!cond) throw new Error(`assertion failed: ${message}`);
}

export function assertEqual(actual, expected, message) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${message}: got ${a}, want ${e}`);
}

// One raw HTTP/1.1 exchange on a fresh connection: resolves {status, headers, body, raw}.
export function rawHttp(port, request, { timeoutMs = 3000 } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, "127.0.0.1");
    const chunks = [];
    const timer = setTimeout(() => {
      sock.destroy();
      finish();
    }, timeoutMs);
    function finish() {
      clearTimeout(timer);
      const raw = Buffer.concat(chunks);
      const text = raw.toString("latin1");
      const end = text.indexOf("\r\n\r\n");
      if (end < 0) return resolve({ status: 0, headers: {}, body: "", raw, closed: true });
      const lines = text.slice(0, end).split("\r\n");
      const status = Number(lines[0].split(" ")[1]);
      const headers = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(":");
        headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
      }
      const bodyRaw = raw.subarray(Buffer.byteLength(text.slice(0, end + 4), "latin1"));
      const len = headers["content-length"] !== undefined ? Number(headers["content-length"]) : bodyRaw.length;
      resolve({ status, headers, body: bodyRaw.subarray(0, len).toString("utf8"), raw });
    }
    sock.on("data", (d) => {
      chunks.push(d);
      const text = Buffer.concat(chunks).toString("latin1");
      const end = text.indexOf("\r\n\r\n");
      if (end >= 0) {
        const m = /content-length:\s*(\d+)/i.exec(text.slice(0, end));
        if (m && Buffer.concat(chunks).length >= Buffer.byteLength(text.slice(0, end + 4), "latin1") + Number(m[1])) {
          sock.end();
          finish();
          sock.destroy();
        }
      }
    });
    sock.on("error", () => {});
    sock.on("close", () => finish());
    sock.write(request);
  });
}

export function get(port, pathAndQuery, headers = "") {
  return rawHttp(port, `GET ${pathAndQuery} HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers}\r\n`);
}

export function post(port, pathAndQuery, body, headers = "Content-Type: text/plain;charset=UTF-8\r\n") {
  const b = Buffer.from(body);
  return rawHttp(
    port,
    Buffer.concat([
      Buffer.from(`POST ${pathAndQuery} HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers}Content-Length: ${b.length}\r\n\r\n`),
      b,
    ]),
  );
}

// A raw WebSocket client: handshake, masked (or deliberately unmasked) frames, and a parser of
// server frames. Resolves once the 101 arrived.
export function rawWebSocket(port, pathAndQuery) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, "127.0.0.1");
    const key = crypto.randomBytes(16).toString("base64");
    let buf = Buffer.alloc(0);
    let upgraded = false;
    const frames = [];
    const waiters = [];
    let closed = false;
    const api = {
      status: 0,
      response: "",
      frames,
      get closed() {
        return closed;
      },
      send(opcode, payload, { mask = true, fin = true, rsv = 0 } = {}) {
        const data = Buffer.from(payload);
        const head = [((fin ? 0x80 : 0) | (rsv << 4) | opcode) & 0xff];
        const m = mask ? 0x80 : 0;
        if (data.length < 126) head.push(m | data.length);
        else if (data.length < 65536) head.push(m | 126, data.length >> 8, data.length & 255);
        else {
          head.push(m | 127, 0, 0, 0, 0);
          head.push((data.length >>> 24) & 255, (data.length >>> 16) & 255, (data.length >>> 8) & 255, data.length & 255);
        }
        let body = data;
        const parts = [Buffer.from(head)];
        if (mask) {
          const k = crypto.randomBytes(4);
          body = Buffer.from(data.map((b, i) => b ^ k[i & 3]));
          parts.push(k);
        }
        parts.push(body);
        sock.write(Buffer.concat(parts));
      },
      text(s) {
        api.send(1, Buffer.from(s));
      },
      // Resolves with the next frame (or null when the connection closed first).
      next(ms = 3000) {
        if (frames.length > 0) return Promise.resolve(frames.shift());
        if (closed) return Promise.resolve(null);
        return within(ms, new Promise((r) => waiters.push(r)), "a WebSocket frame");
      },
      close() {
        sock.destroy();
      },
    };
    function push(frame) {
      const w = waiters.shift();
      if (w) w(frame);
      else frames.push(frame);
    }
    sock.on("data", (d) => {
      buf = Buffer.concat([buf, d]);
      if (!upgraded) {
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        api.response = buf.subarray(0, end).toString("latin1");
        api.status = Number(api.response.split(" ")[1]);
        buf = buf.subarray(end + 4);
        upgraded = true;
        resolve(api);
      }
      for (;;) {
        if (buf.length < 2) return;
        const opcode = buf[0] & 15;
        let len = buf[1] & 127;
        let off = 2;
        if (len === 126) {
          if (buf.length < 4) return;
          len = buf.readUInt16BE(2);
          off = 4;
        } else if (len === 127) {
          if (buf.length < 10) return;
          len = Number(buf.readBigUInt64BE(2));
          off = 10;
        }
        if (buf.length < off + len) return;
        const payload = buf.subarray(off, off + len);
        buf = buf.subarray(off + len);
        const frame = { opcode, payload, text: payload.toString("utf8") };
        if (opcode === 8) frame.code = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
        push(frame);
      }
    });
    sock.on("error", () => {});
    sock.on("close", () => {
      closed = true;
      if (!upgraded) resolve(Object.assign(api, { response: buf.toString("latin1"), status: Number(buf.toString("latin1").split(" ")[1]) }));
      while (waiters.length) waiters.shift()(null);
    });
    sock.write(
      `GET ${pathAndQuery} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
        `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\n\r\n`,
    );
  });
}

// A free TCP port on 127.0.0.1 (bind :0, read it, close).
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });
}

// Resolves true when something accepts a TCP connection on 127.0.0.1:port (closed at once).
export function portAccepts(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    s.on("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.on("error", () => resolve(false));
  });
}

// Resolves true when a plain-text Redis on 127.0.0.1:port answers PING with +PONG.
export function redisPing(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    s.on("connect", () => s.write("PING\r\n"));
    s.on("data", (d) => {
      s.destroy();
      resolve(d.toString().startsWith("+PONG"));
    });
    s.on("error", () => resolve(false));
  });
}

// A private redis-server on a random port, stopped by pid. restart() keeps the port; with
// {persist: true} it keeps the data too (append-only file, fsync on every write), so a
// SIGKILL + restart loses nothing Redis acknowledged.
// persist: an append-only file, fsync "always" (or `fsync`: "everysec" keeps what a kill -9 of
// the process loses at nothing Redis acknowledged, the page cache holds it); onSpawn(pid) is told
// every pid (a launch after a kill is a new process).
export async function startRedis({ persist = false, fsync = "always", onSpawn = null } = {}) {
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), "sioc-redis-"));
  let child = null;
  async function launch() {
    const durability = persist
      ? ["--appendonly", "yes", "--appendfsync", fsync, "--auto-aof-rewrite-percentage", "0", "--dir", dir]
      : ["--appendonly", "no"];
    child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", ...durability], {
      stdio: "ignore",
    });
    if (onSpawn) onSpawn(child.pid);
    const deadline = Date.now() + 5000;
    for (;;) {
      if (await redisPing(port)) return;
      if (Date.now() > deadline) throw new Error("redis-server did not start");
      await sleep(20);
    }
  }
  async function kill() {
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.on("exit", r));
      child.kill("SIGKILL");
      await within(5000, exited, "redis-server to exit");
    }
  }
  await launch();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get pid() {
      return child ? child.pid : 0;
    },
    async stop() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
    async restart() {
      await kill();
      await launch();
    },
    kill,
    launch,
  };
}

// Starts a long-running helper process (e.g. the test worker); resolves once `readyLine`
// appears on its stdout. Returns {pid, output(), stop()}.
export async function startProcess(command, args, readyLine, { cwd = repo, env = process.env } = {}) {
  const child = spawn(command, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const ready = new Promise((resolve) => {
    const check = (d) => {
      out += d;
      if (out.includes(readyLine)) resolve();
    };
    child.stdout.on("data", check);
    child.stderr.on("data", check);
  });
  const exited = new Promise((r) => child.on("exit", (code, signal) => r({ code, signal })));
  await within(10000, Promise.race([ready, exited.then((e) => { throw new Error(`${command} exited ${JSON.stringify(e)}: ${out}`); })]), `${command} ready`);
  return {
    pid: child.pid,
    output: () => out,
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      return within(10000, exited, `${command} to exit`).catch(() => {
        child.kill("SIGKILL");
        return { code: null, signal: "SIGKILL" };
      });
    },
  };
}
