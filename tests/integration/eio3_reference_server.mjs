// eio3_reference_server.mjs: the Node reference for Engine.IO v3 / Socket.IO protocol v4 bytes:
// socket.io 4.8 with allowEIO3, pingInterval 2000, pingTimeout 1000, cors origin
// http://allowed.example with credentials, and the handlers of the reference transcripts
// (../shared/data/reference-transcripts/README.md "Handlers"), which tests/fixtures/sio_reference.c
// copies: welcome on connect; echo, ack, bin, join, bye, kick; /secure refuses every connection
// with Error("not authorized"), data {reason: "bad token"}. Writes its port to the file after
// --port-file. Stopped by SIGTERM.
import http from "node:http";
import { writeFileSync } from "node:fs";
import { Server } from "socket.io";

const httpServer = http.createServer();
const io = new Server(httpServer, {
  allowEIO3: true,
  pingInterval: 2000,
  pingTimeout: 1000,
  cors: { origin: ["http://allowed.example"], credentials: true },
});

function handlers(socket) {
  socket.emit("welcome", { n: 1 });
  socket.on("echo", (...args) => {
    if (typeof args[args.length - 1] === "function") args.pop(); // the ack is dropped
    socket.emit("echo", ...args);
  });
  socket.on("ack", (...args) => {
    const cb = typeof args[args.length - 1] === "function" ? args.pop() : null;
    if (cb) cb(...args);
  });
  socket.on("bin", (...args) => {
    const cb = typeof args[args.length - 1] === "function" ? args.pop() : null;
    socket.emit("bin", ...args);
    if (cb) cb(Buffer.from("binary-ack"));
  });
  socket.on("join", (room) => {
    socket.join(room);
    io.to(room).emit("joined", room);
  });
  socket.on("bye", () => socket.disconnect(true));
  socket.on("kick", () => socket.disconnect());
}
io.on("connection", handlers);
io.of("/chat").on("connection", handlers);
io.of("/secure").use((socket, next) => {
  const err = new Error("not authorized");
  err.data = { reason: "bad token" };
  next(err);
});
io.of("/secure").on("connection", handlers);

// the harness's startServer passes --listen 127.0.0.1:0 --port-file FILE
const portFile = process.argv[process.argv.indexOf("--port-file") + 1];
httpServer.listen(0, "127.0.0.1", () => writeFileSync(portFile, String(httpServer.address().port)));
process.on("SIGTERM", () => {
  io.close();
  process.exit(0);
});
