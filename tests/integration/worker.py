#!/usr/bin/python3
"""Test worker for the end-to-end tests: a sioc.Worker with a fixed set of handlers.

    /usr/bin/python3 tests/integration/worker.py --redis redis://127.0.0.1:6379 \
        --prefix sioc --namespaces /,/chat,/test --shards 1 [--upstream stream|pubsub]

Handlers, in every namespace given:
  echo(*args)      emits 'echo' with the same args to the sender; acks with the same args
  ack(*args)       acks with the args
  bin(*args)       emits 'bin' with the same args (bytes stay binary); acks with the args
  join(room)       join_room(room), then emits 'joined'(room, sid) to the room (emitter
                   format); acks with room
  room_msg(room, *args)  emits 'room_msg'(*args) to the room; acks with no args
  whoami()         acks with one argument, the array [sid, uid]
  ask(*args)       emits 'question'(*args) to the sender with a callback; the client's ack
                   arguments come back as 'answer'(*ack_args)
  kick()           disconnects the sender (after acking with no args, if asked)
  join_room({room}), message({room, data}) in /chat and message(data) in /test: the server
                   of ../shared/seeds/003 (python-socketio client1.py/client2.py)
  connect(auth)    auth {"reject": msg} → refused with message msg, data {"reason": "test"};
                   auth {"uid": u} → accepted with uid u (auth backend); otherwise accepted
Prints "worker ready" once consuming, then one line per entry ("<type> <nsp> <sid> <stream id>
<event>"),
flushed. SIGTERM/SIGINT stop it; exit status 0.
"""

import argparse
import faulthandler
import logging
import os
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "sdk", "python"))

import sioc  # noqa: E402
import worker_serve  # noqa: E402  (this directory)


def build(worker):
    """Registers the test handlers on every namespace of the worker."""
    for nsp in worker.namespaces:
        def on(event, nsp=nsp):
            return worker.on(event, namespace=nsp)

        @on("echo")
        def echo(sid, *args):
            worker.emit("echo", *args)
            return args

        @on("ack")
        def ack(sid, *args):
            return args

        @on("bin")
        def binary(sid, *args):
            worker.emit("bin", *args)
            return args

        @on("join")
        def join(sid, room=None, *rest):
            if not isinstance(room, str):
                return "join needs a room name"
            worker.join_room(sid, room)
            worker.emit("joined", room, sid, to=room)
            return room

        @on("room_msg")
        def room_msg(sid, room=None, *args):
            if isinstance(room, str):
                worker.emit("room_msg", *args, to=room)

        @on("whoami")
        def whoami(sid, *args):
            return [sid, worker.request.uid]

        @on("ask")
        def ask(sid, *args, nsp=nsp):
            worker.emit("question", *args,
                        callback=lambda *ack: worker.emit("answer", *ack, to=sid, namespace=nsp))

        @on("kick")
        def kick(sid, *args):
            worker.disconnect(sid)

        @on("disconnect")
        def disconnect(sid, reason):
            print("handler disconnect %s %s" % (sid, reason), flush=True)

        @on("connect")
        def connect(sid, auth):
            print("handler connect %s" % sid, flush=True)
            if isinstance(auth, dict):
                if "reject" in auth:
                    raise sioc.ConnectionRefusedError(str(auth["reject"]), {"reason": "test"})
                if isinstance(auth.get("uid"), str):
                    return {"uid": auth["uid"]}
            return True

    # The server of ../shared/seeds/003 (python-socketio, client1.py/client2.py), handler for
    # handler: join_room and message in /chat, message in /test.
    @worker.on("join_room", namespace="/chat")
    def join_room(sid, data):
        room = data["room"]
        worker.enter_room(sid, room, namespace="/chat")
        worker.emit("room_message", {"data": f"{sid} has joined the room {room}"}, room=room,
                    namespace="/chat")

    @worker.on("message", namespace="/chat")
    def chat_message(sid, data):
        room = data["room"]
        worker.emit("response", {"data": f"Server received: {data['data']}"}, room=room,
                    namespace="/chat")

    @worker.on("message", namespace="/test")
    def test_message(sid, data):
        print(f"Test message received: {data}", flush=True)

    @worker.on_entry
    def log_entry(entry):
        print("%s %s %s %s %s%s" % (entry.type, entry.nsp, entry.sid, getattr(entry, "id", "-"),
                                     entry.event or "", " recovered" if entry.recovered else ""),
              flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--redis", default="redis://127.0.0.1:6379")
    ap.add_argument("--prefix", default="sioc")
    ap.add_argument("--namespaces", default="/")
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--upstream", choices=("stream", "pubsub"), default="stream")
    ap.add_argument("--adapter-key", default="socket.io")
    ap.add_argument("--adapter", choices=("classic", "sharded"), default="classic")
    ap.add_argument("--subscription-mode", default="dynamic")
    ap.add_argument("--group", default="workers")
    ap.add_argument("--consumer", default=None)
    ap.add_argument("--log-level", default="WARNING")
    ap.add_argument("--log-file", default=os.environ.get("SIOC_TEST_WORKER_LOG_FILE"),
                    help="log there (at --log-level) instead of stderr; env "
                         "SIOC_TEST_WORKER_LOG_FILE (%%p: the pid)")
    args = ap.parse_args(argv)
    if args.log_file:
        logging.basicConfig(level=args.log_level.upper(),
                            filename=args.log_file.replace("%p", str(os.getpid())),
                            format="%(asctime)s %(threadName)s %(levelname)s %(name)s: %(message)s")
    else:
        logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # SIGUSR1: every thread's stack on stderr (the tests ask for it when the worker is stuck)
    faulthandler.register(signal.SIGUSR1, all_threads=True)

    worker = sioc.Worker(redis_url=args.redis, key_prefix=args.prefix,
                         namespaces=[n for n in args.namespaces.split(",") if n],
                         shards=args.shards, group=args.group, consumer=args.consumer,
                         upstream=args.upstream, adapter_key=args.adapter_key, block_ms=500,
                         adapter=args.adapter, subscription_mode=args.subscription_mode)
    build(worker)
    return worker_serve.serve(worker, "worker ready")


if __name__ == "__main__":
    sys.exit(main())
