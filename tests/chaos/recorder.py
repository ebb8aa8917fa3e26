#!/usr/bin/python3
"""Recording worker of the fault suite (tests/chaos): a sioc.Worker (sdk/python) that records
every upstream entry it handles, one line each on stdout, and acks numbered events.

    /usr/bin/python3 tests/chaos/recorder.py --redis redis://127.0.0.1:6379 [--namespaces /]

Handlers in every namespace given:
  n(client, seq, attempt)  a numbered event of the load: printed, acked with [client, seq]
Lines (ms timestamps of this machine's clock, written when the entry is handled):
  e <ms> <client> <seq> <attempt> <node> <stream id>
  c <ms> <nsp> <sid> <node>
  d <ms> <nsp> <sid> <node> <reason, spaces kept>
Prints "recorder ready" once consuming. SIGTERM/SIGINT stop it; exit status 0.
"""

import argparse
import faulthandler
import logging
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "sdk", "python"))

import sioc  # noqa: E402

_lock = threading.Lock()
_lines = []


def out(line):
    with _lock:
        _lines.append(line)


def flusher(stopped):
    """Writes the recorded lines every 50 ms (one write per batch, not per entry)."""
    while True:
        stop = stopped.wait(0.05)
        with _lock:
            batch = _lines[:]
            del _lines[:]
        if batch:
            sys.stdout.write("\n".join(batch) + "\n")
            sys.stdout.flush()
        if stop:
            return


def build(worker):
    for nsp in worker.namespaces:
        @worker.on("n", namespace=nsp)
        def numbered(sid, client=None, seq=None, attempt=None, *rest):
            r = worker.request
            out("e %d %s %s %s %s %s" % (time.time() * 1000, client, seq, attempt, r.node, r.id))
            return [client, seq]

    @worker.on_entry
    def record(entry):
        if entry.type == "connect":
            out("c %d %s %s %s" % (time.time() * 1000, entry.nsp, entry.sid, entry.node))
        elif entry.type == "disconnect":
            out("d %d %s %s %s %s" % (time.time() * 1000, entry.nsp, entry.sid, entry.node,
                                      entry.reason))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--redis", default="redis://127.0.0.1:6379")
    ap.add_argument("--prefix", default="sioc")
    ap.add_argument("--namespaces", default="/")
    ap.add_argument("--log-level", default="ERROR")
    args = ap.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    worker = sioc.Worker(redis_url=args.redis, key_prefix=args.prefix,
                         namespaces=[n for n in args.namespaces.split(",") if n],
                         count=256, block_ms=200, name="chaos-recorder")
    build(worker)
    stopped = threading.Event()

    def on_signal(signum, frame):
        worker.stop()

    faulthandler.register(signal.SIGUSR1)  # kill -USR1: where is it stuck (stderr)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not worker.stopped:
        try:
            worker.setup()
            break
        except Exception as exc:  # noqa: BLE001 - any failure here means "not yet"
            print("recorder: waiting for redis: %s" % exc, file=sys.stderr, flush=True)
            time.sleep(0.2)
    t = threading.Thread(target=flusher, args=(stopped,), daemon=True)
    t.start()
    print("recorder ready", flush=True)
    worker.run()
    stopped.set()
    t.join(2)
    worker.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
