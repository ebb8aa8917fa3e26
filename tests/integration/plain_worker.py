#!/usr/bin/python3
"""Test worker for plain WebSocket routes (ws-routes, test_ws_routes.mjs): the SDK's own
sioc.Worker handling the `message` events plain clients send.

    /usr/bin/python3 tests/integration/plain_worker.py --redis redis://127.0.0.1:6379

Handlers:
  /echo message(data)  sends "received " + data back to the sender (bytes: b"received " + data)
  /ws   message(data)  "join <room>": joins the room and answers "joined <room>";
                       "to <room> <text>": emits <text> to the room;
                       "whoami": answers "<sid> <uid>" (the entry's uid);
                       "bye": disconnects the sender;
                       anything else: emits {"from": sid, "data": data} (a JSON object) to the
                       sender.
Prints "plain worker ready" once consuming, then "<type> <nsp> <sid> <uid> <args>" per entry.
"""

import argparse
import os
import signal
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "sdk", "python"))

import sioc  # noqa: E402


def build(worker):
    @worker.on("message", namespace="/echo")
    def echo(sid, data):
        if isinstance(data, bytes):
            worker.emit("message", b"received " + data)
        else:
            worker.emit("message", "received " + str(data))

    @worker.on("message", namespace="/ws")
    def ws(sid, data):
        if not isinstance(data, str):
            worker.emit("message", {"from": sid, "bytes": len(data)})
        elif data.startswith("join "):
            worker.join_room(sid, data[5:])
            worker.emit("message", "joined " + data[5:])
        elif data.startswith("to "):
            _, room, text = data.split(" ", 2)
            worker.emit("message", text, to=room)
        elif data == "whoami":
            worker.emit("message", "%s %s" % (sid, worker.request.uid))
        elif data == "bye":
            worker.disconnect(sid)
        else:
            worker.emit("message", {"from": sid, "data": data})

    @worker.on_entry
    def log_entry(entry):
        print("%s %s %s %s %s" % (entry.type, entry.nsp, entry.sid, entry.uid or "-",
                                   entry.event or ""), flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--redis", default="redis://127.0.0.1:6379")
    args = ap.parse_args(argv)
    worker = sioc.Worker(redis_url=args.redis, namespaces=["/echo", "/ws"], group="plain",
                         block_ms=200)
    build(worker)
    stopped = threading.Event()

    def on_signal(signum, frame):
        stopped.set()
        worker.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while True:
        try:
            worker.setup()
            break
        except Exception as exc:  # noqa: BLE001 - any failure here means "not yet"
            print("worker: waiting for redis: %s" % exc, file=sys.stderr, flush=True)
            stopped.wait(0.5)
            if stopped.is_set():
                return 0
    print("plain worker ready", flush=True)
    worker.run()
    worker.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
