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
      connect          (auth backend) refused when the request target holds "reject"
                       ("reject-long": with a message of 100 "é", 200 bytes).
Prints "plain worker ready" once consuming, then "<type> <nsp> <sid> <uid> <args>" per entry.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "sdk", "python"))

import sioc  # noqa: E402
import worker_serve  # noqa: E402  (this directory)


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

    @worker.on("connect", namespace="/ws")
    def ws_connect(sid, auth):
        # auth backend: a request target with "reject" is refused, any other accepted (the
        # {user} of the route stays the user)
        url = (worker.request.handshake or {}).get("url", "")
        if "reject-long" in url:
            raise sioc.ConnectionRefusedError("\u00e9" * 100)  # 200 bytes: more than a close frame holds
        return "reject" not in url

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
    return worker_serve.serve(worker, "plain worker ready")


if __name__ == "__main__":
    sys.exit(main())
