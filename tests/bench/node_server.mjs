// node_server.mjs: the Node baseline of the benchmarks (issue 6): socket.io 4.8 behaving as the
// sioc gateway + bench worker do, but in-process:
//   "ack"(...args)            acks with the same args (S3 echo)
//   "join"(room)              joins the room, acks with no args (S4 room set-up)
//   "bcast"(room, ...args)    re-broadcasts "m"(...args) to the room, or to every other socket
//                             when room is "" (the S4/S6 broadcast source)
// With --redis URL it runs @socket.io/redis-adapter (S5: two processes, the emitter publishes).
// With --tls-cert FILE --tls-key FILE it serves https/wss (https.createServer; tls_bench.mjs).
//   node tests/bench/node_server.mjs --port 0 --port-file FILE [--redis redis://127.0.0.1:6379]
import { createServer } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { readFileSync, writeFileSync } from "node:fs";
import { Server } from "socket.io";

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};

const httpServer = opt("tls-cert", "")
  ? createHttpsServer({ cert: readFileSync(opt("tls-cert")), key: readFileSync(opt("tls-key")) })
  : createServer();
const io = new Server(httpServer, { pingInterval: 25000, pingTimeout: 20000 });

const redisUrl = opt("redis", "");
if (redisUrl) {
  const { createClient } = await import("redis");
  const { createAdapter } = await import("@socket.io/redis-adapter");
  const pub = createClient({ url: redisUrl });
  const sub = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);
  io.adapter(createAdapter(pub, sub));
}

io.on("connection", (socket) => {
  socket.on("ack", (...a) => {
    const cb = a.pop();
    if (typeof cb === "function") cb(...a);
  });
  socket.on("join", (room, cb) => {
    socket.join(room);
    if (typeof cb === "function") cb();
  });
  socket.on("bcast", (room, ...a) => {
    if (room) io.to(room).emit("m", ...a);
    else socket.broadcast.emit("m", ...a);
  });
});

httpServer.listen(Number(opt("port", "0")), "127.0.0.1", () => {
  const port = httpServer.address().port;
  const file = opt("port-file", "");
  if (file) writeFileSync(file, String(port));
  else console.log(port);
});
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => process.exit(0));
