// procs.mjs: process helpers shared by the benchmark drivers (run.mjs, worker_echo.mjs).
import { spawn } from "node:child_process";
import { createServer } from "node:net";

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function freePort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

// Spawns cmd with the open-files soft limit raised to the hard limit (thousands of sockets);
// its output is collected in child.out.
export function start(cmd, args, name) {
  const quoted = [cmd, ...args].map((a) => `'${String(a).replace(/'/g, "'\\''")}'`).join(" ");
  const child = spawn("bash", ["-c", `ulimit -n $(ulimit -Hn); exec ${quoted}`], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.name = name;
  child.out = "";
  child.stdout.on("data", (d) => (child.out += d));
  child.stderr.on("data", (d) => (child.out += d));
  child.exited = new Promise((r) => child.on("exit", r));
  return child;
}

// SIGTERM, then SIGKILL after `graceMs`.
export async function stop(child, graceMs = 5000) {
  if (!child || child.exitCode !== null || child.signalCode) return;
  child.kill("SIGTERM");
  const t = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await child.exited;
  clearTimeout(t);
}

// Waits until pred() (sync or async) is true, at most `ms`.
export async function waitFor(pred, ms, what) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await pred()) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}
