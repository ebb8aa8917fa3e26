"""AsyncWorker: python-socketio's ``AsyncServer`` style on a sioc worker.

    import sioc
    sio = sioc.AsyncWorker("redis://127.0.0.1:6379")

    @sio.event
    async def message(sid, data):
        await sio.emit("response", {"data": data}, room=sid)
        await sio.enter_room(sid, "chat_users")

    sio.run()

``async def`` handlers run on one asyncio event loop (a thread of the worker); plain ``def``
handlers still run on the handler threads. The engine is :class:`sioc.Worker`'s: the events of one
socket run in order, one at a time (its next handler starts when the coroutine has finished),
while the coroutines of different sockets interleave on the loop, so ``await asyncio.sleep(5)``
delays only its own socket. ``emit``, ``send``, ``enter_room``, ``leave_room``, ``close_room`` and
``disconnect`` take effect when called and return an awaitable, so code written with or without
``await`` (python-socketio changed some of these to coroutines) runs unchanged.
"""

import asyncio
import threading

from .worker import Worker

__all__ = ["AsyncWorker"]


class _Done:
    """An awaitable that is already complete (the action happened when it was called)."""

    __slots__ = ()

    def __await__(self):
        return iter(())


_DONE = _Done()


class AsyncWorker(Worker):
    """A :class:`sioc.Worker` whose handlers may be coroutines (see the module docstring)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._loop = None
        self._loop_lock = threading.Lock()

    def _event_loop(self):
        with self._loop_lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run():
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                threading.Thread(target=run, name="sioc-asyncio", daemon=True).start()
                ready.wait(5)
                self._loop = loop
            return self._loop

    def _invoke(self, handler, *args):
        result = handler(*args)
        if asyncio.iscoroutine(result):
            # the entry's context (contextvars) goes with the coroutine to the loop
            return asyncio.run_coroutine_threadsafe(result, self._event_loop()).result()
        return result

    # python-socketio's AsyncServer calls: done now, awaitable
    def emit(self, *args, **kwargs):
        super().emit(*args, **kwargs)
        return _DONE

    def send(self, *args, **kwargs):
        super().send(*args, **kwargs)
        return _DONE

    def enter_room(self, sid, room, namespace=None):
        super().join_room(sid, room, namespace=namespace)
        return _DONE

    join_room = enter_room

    def leave_room(self, sid, room, namespace=None):
        super().leave_room(sid, room, namespace=namespace)
        return _DONE

    def disconnect(self, sid=None, namespace=None):
        super().disconnect(sid, namespace=namespace)
        return _DONE

    async def call(self, event, *args, **kwargs):
        """``await sio.call(event, data, to=sid, timeout=60)``: the client's ack, waited for
        without blocking the loop (``to`` a room: the list of answers, see Worker.call)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, lambda: Worker.call(self, event, *args, **kwargs))

    async def sleep(self, seconds=0):
        await asyncio.sleep(seconds)

    def start_background_task(self, target, *args, **kwargs):
        """Runs coroutine function ``target(*args, **kwargs)`` on the worker's loop."""
        return asyncio.run_coroutine_threadsafe(target(*args, **kwargs), self._event_loop())

    def close(self):
        super().close()
        with self._loop_lock:
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._loop = None
