"""KeyedPool: a bounded thread pool that runs the tasks of one key in order, one at a time.

The worker submits each upstream entry under its socket's key ``(namespace, sid)``: the entries of
one socket are handled one after the other, in the order they were read (the order the client
sent them), while entries of different sockets run concurrently on up to ``size`` threads. A
handler that blocks (sleeps, waits on I/O) holds one thread and delays only its own socket.
"""

import collections
import threading

__all__ = ["KeyedPool"]


class KeyedPool:
    """``size`` threads; ``submit(key, fn)`` runs ``fn()`` after every earlier task of ``key``.

    ``pending`` counts tasks submitted and not finished (queued or running); ``wait_below(n,
    timeout)`` blocks until fewer than ``n`` are pending, so the caller bounds what it reads
    ahead. A task that raises is logged through ``on_error(exc)`` and never stops the pool.
    ``close()`` lets the tasks already submitted finish, then ends the threads.
    """

    def __init__(self, size, on_error=None, name="sioc-handler"):
        if int(size) < 1:
            raise ValueError("pool size must be >= 1")
        self.size = int(size)
        self._on_error = on_error
        self._lock = threading.Condition()
        self._queues = {}              # key -> deque of tasks; present while the key has work
        self._ready = collections.deque()  # keys whose next task may run now
        self._pending = 0
        self._closing = False
        self._threads = [threading.Thread(target=self._run, name="%s-%d" % (name, i), daemon=True)
                         for i in range(self.size)]
        for t in self._threads:
            t.start()

    @property
    def pending(self):
        with self._lock:
            return self._pending

    def submit(self, key, fn):
        with self._lock:
            if self._closing:
                raise RuntimeError("pool is closed")
            self._pending += 1
            queue = self._queues.get(key)
            if queue is not None:  # the key has a task queued or running: run after it
                queue.append(fn)
                return
            self._queues[key] = collections.deque([fn])
            self._ready.append(key)
            self._lock.notify()

    def wait_below(self, limit, timeout=None):
        """Waits until fewer than ``limit`` tasks are pending; returns whether that happened."""
        with self._lock:
            return self._lock.wait_for(lambda: self._pending < limit, timeout)

    def close(self, timeout=None):
        """Runs every submitted task, then stops the threads (waits at most ``timeout`` s)."""
        with self._lock:
            self._closing = True
            self._lock.notify_all()
        for t in self._threads:
            t.join(timeout)

    def _run(self):
        while True:
            with self._lock:
                self._lock.wait_for(lambda: self._ready or (self._closing and not self._queues))
                if not self._ready:
                    return  # closing and nothing left
                key = self._ready.popleft()
                fn = self._queues[key][0]  # stays queued while it runs: later tasks wait
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - a task's failure never ends the pool
                if self._on_error is not None:
                    self._on_error(exc)
            with self._lock:
                queue = self._queues[key]
                queue.popleft()
                if queue:
                    self._ready.append(key)
                else:
                    del self._queues[key]
                self._pending -= 1
                self._lock.notify_all()
