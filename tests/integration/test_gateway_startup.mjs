// test_gateway_startup.mjs: sioc-gateway's start-up errors (issue 13): each step of the start-up
// that can fail says which one, naming the option and the cause, on one stderr line, and exits
// non-zero without a sanitizer report; none of these needs Redis (they fail before the loop).
// A generic "out of memory" or "out of memory or log file" was printed for them before.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { assert, assertEqual, createRunner } from "./lib/harness.mjs";

const GATEWAY = process.env.SIOC_GATEWAY || "build/asan/sioc-gateway";
const { test, run } = createRunner("test_gateway_startup");
const dir = mkdtempSync(path.join(os.tmpdir(), "sioc-startup-"));

function gateway(args) {
  const r = spawnSync(GATEWAY, ["--listen", "127.0.0.1:0", "--redis", "redis://127.0.0.1:1", ...args],
    { encoding: "utf8", timeout: 20000 });
  return { status: r.status, stderr: r.stderr || "" };
}

function expectOneLine(r, status, text, what) {
  assertEqual(r.status, status, `${what}: exit status (stderr: ${r.stderr})`);
  const lines = r.stderr.split("\n").filter((l) => l.startsWith("sioc-gateway:"));
  assertEqual(lines, [text], `${what}: the error line`);
  assert(!/Sanitizer|out of memory/.test(r.stderr), `${what}: nothing else: ${r.stderr}`);
}

test("log-file: a file that cannot be opened is named with the system's reason", () => {
  const file = path.join(dir, "no-such-dir", "gateway.log");
  expectOneLine(gateway(["--log-file", file]), 1,
    `sioc-gateway: cannot start: log-file: cannot open ${file}: No such file or directory`, "log-file");
});

test("namespaces: more than the adapter follows is a configuration error naming the limit", () => {
  const list = Array.from({ length: 300 }, (_, i) => `/n${i}`).join(",");
  expectOneLine(gateway(["--namespaces", list]), 2,
    "sioc-gateway: invalid configuration: namespaces: 300 listed, at most 256 (the adapter follows no more)",
    "300 namespaces");
  const check = gateway(["--namespaces", list, "--check-config"]);
  assertEqual(check.status, 2, "--check-config finds it too");
});

test("namespaces: a namespace the adapter cannot follow names the step and the option", () => {
  const long = "/" + "a".repeat(300);
  const r = gateway(["--namespaces", `/,${long}`]);
  assertEqual(r.status, 1, `exit status (stderr: ${r.stderr})`);
  assert(r.stderr.includes(`sioc-gateway: cannot start: adapter: namespaces "/,${long}": a namespace longer than 255 bytes`),
    `stderr: ${r.stderr}`);
  assert(!/Sanitizer/.test(r.stderr), `no sanitizer report: ${r.stderr}`);
});

test("listen: an address that cannot be bound names the option", () => {
  const r = gateway(["--listen", "256.1.1.1:80"]);
  assertEqual(r.status, 1, `exit status (stderr: ${r.stderr})`);
  assert(/^sioc-gateway: cannot start: listen: /m.test(r.stderr), `stderr: ${r.stderr}`);
  assert(!/Sanitizer/.test(r.stderr), `no sanitizer report: ${r.stderr}`);
});

const ok = await run();
rmSync(dir, { recursive: true, force: true });
process.exit(ok ? 0 : 1);
