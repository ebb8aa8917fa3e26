// test_backpressure.mjs: issue 10 item 4, upstream back-pressure on the ASan gateway: with Redis
// killed, ten clients send 9 MB, more than the Redis link queues, so the gateway pauses reading
// from clients; a pause shorter than --backpressure-timeout closes no client (their pongs wait
// unread, ping 1000/1000) and every event reaches the restarted Redis; a longer one closes them,
// with the reason logged. (Moved out of test_abuse.mjs.)
// test-run: alone (tests/run.sh): the gateway must read the 9 MB before the clients' 1 s ping
// timeout, so a CPU shared with other test files closes them before the pause begins.
import { createClient } from "redis";
import { assert, assertEqual, createRunner, get, sleep, startRedis, startServer, within } from "./lib/harness.mjs";

const GATEWAY_ASAN = process.env.SIOC_GATEWAY || "build/asan/sioc-gateway";
const { test, run } = createRunner("test_backpressure");

async function pausedClients(extra) {
  const { io } = await import("socket.io-client");
  const red = await startRedis();
  const gw = await startServer(GATEWAY_ASAN, ["--redis", red.url, "--ping-interval", "1000", "--ping-timeout", "1000",
    "--log-level", "info", ...extra]);
  return { io, red, gw };
}

test("upstream back-pressure: clients paused 4 s with ping 1000/1000 are not closed; every event arrives", async () => {
  const { io, red, gw } = await pausedClients([]);
  const clients = [];
  const reasons = [];
  try {
    for (let i = 0; i < 10; i++) {
      const s = io(`http://127.0.0.1:${gw.port}/`, { transports: ["websocket"], forceNew: true, reconnection: false });
      s.on("disconnect", (why) => reasons.push(why));
      clients.push(s);
      await within(5000, new Promise((res) => s.once("connect", res)), "connect");
    }
    await red.kill();
    // 10 x 90 x 10 KB = 9 MB: more than the 8 MiB the Redis link queues, so reading pauses
    const payload = "x".repeat(10000);
    for (const s of clients) for (let i = 0; i < 90; i++) s.emit("e", i, payload);
    const deadline = Date.now() + 10000;
    while (!/pausing reading/.test(gw.log()) && Date.now() < deadline) await sleep(50);
    assert(/pausing reading/.test(gw.log()), "reading paused");
    await sleep(4000); // twice ping-interval + ping-timeout
    await red.launch();
    const rc2 = createClient({ url: red.url });
    await rc2.connect();
    // the restarted Redis kept nothing: what is there was queued by the gateway
    const until2 = Date.now() + 20000;
    while ((await rc2.xLen("sioc:up:/:0")) < 900 && Date.now() < until2) await sleep(100);
    const events = (await rc2.xRange("sioc:up:/:0", "-", "+")).filter((e) => e.message.type === "event");
    await rc2.quit();
    assertEqual(reasons, [], "no client closed by its own pause");
    assertEqual(events.length, 900, "every event upstream");
    const metrics = (await get(gw.port, "/metrics")).body;
    assert(/sioc_upstream_dropped_total 0\b/.test(metrics), "nothing dropped");
  } finally {
    for (const s of clients) s.close();
    await gw.stop();
    await red.stop();
    assert(!/Sanitizer/.test(gw.log()), `no sanitizer report:\n${gw.log().slice(-3000)}`);
  }
}, 45000);

test("upstream back-pressure longer than backpressure-timeout: clients are closed, with a reason", async () => {
  const { io, red, gw } = await pausedClients(["--backpressure-timeout", "1500"]);
  const clients = [];
  const reasons = [];
  try {
    for (let i = 0; i < 10; i++) {
      const s = io(`http://127.0.0.1:${gw.port}/`, { transports: ["websocket"], forceNew: true, reconnection: false });
      s.on("disconnect", (why) => reasons.push(why));
      clients.push(s);
      await within(5000, new Promise((res) => s.once("connect", res)), "connect");
    }
    await red.kill();
    const payload = "x".repeat(10000);
    for (const s of clients) for (let i = 0; i < 90; i++) s.emit("e", i, payload);
    const deadline = Date.now() + 10000;
    while (reasons.length < 10 && Date.now() < deadline) await sleep(100);
    assertEqual(reasons.length, 10, "every paused client closed");
    assert(/eio\.backpressure_timeout/.test(gw.log()), "the reason is logged");
  } finally {
    for (const s of clients) s.close();
    await gw.stop();
    await red.stop();
    assert(!/Sanitizer/.test(gw.log()), `no sanitizer report:\n${gw.log().slice(-3000)}`);
  }
}, 30000);

const ok = await run();
process.exit(ok ? 0 : 1);
