"""The main loop the Python test workers share (worker.py, plain_worker.py): stop on
SIGTERM/SIGINT, wait for Redis (set-up retried every 0.5 s; the caller's own timeout bounds
it), announce readiness on stdout, consume until stopped, close."""

import signal
import sys
import threading


def serve(worker, ready_line):
    """Runs `worker` (a built sioc.Worker) as described above; prints `ready_line` once it
    consumes. Returns the exit status (0)."""
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
    print(ready_line, flush=True)
    worker.run()
    worker.close()
    return 0
