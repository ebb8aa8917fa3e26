#!/usr/bin/python3
"""python-socketio clients for tests/integration/test_examples.mjs: one scenario per example of
examples/, against two gateways (WebSocket clients on the first, polling-only clients on the
second, and the other way round). Prints "ok <check>" or "FAIL <check>: <why>" per check and
exits 1 if any failed. Every wait is bounded.

    /usr/bin/python3 tests/integration/examples_clients.py SCENARIO URL1 URL2
"""

import sys
import threading
import time

import socketio

WS, POLLING = ["websocket"], ["polling"]
failures = []
clients = []
T0 = time.monotonic()


def check(name, cond, detail=""):
    if cond:
        print("ok   %s (%.1f s)" % (name, time.monotonic() - T0), flush=True)
    else:
        failures.append(name)
        print("FAIL %s: %s" % (name, detail), flush=True)


def wait_for(cond, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return bool(cond())


class Recorder:
    """A python-socketio client that records (namespace, event, args, monotonic time)."""

    def __init__(self, url, transports, events, namespaces=("/",), auth=None, label=""):
        self.got = []
        self.label = label
        self.sio = socketio.Client(reconnection=False)
        for nsp in namespaces:
            for event in events:
                self.sio.on(event, self._recorder(nsp, event), namespace=nsp)
        self.sio.connect(url, namespaces=list(namespaces), transports=transports, auth=auth,
                         wait_timeout=10)
        clients.append(self)

    def _recorder(self, nsp, event):
        def record(*args):
            self.got.append((nsp, event, args, time.monotonic()))
        return record

    def events(self, event, nsp="/"):
        return [g[2] for g in self.got if g[0] == nsp and g[1] == event]

    def has(self, event, args, nsp="/"):
        return tuple(args) in self.events(event, nsp)

    def sid(self, nsp="/"):
        return self.sio.get_sid(nsp)


def refused(url, transports, auth, namespace="/"):
    """Connects with ``auth``; returns the connect_error data (None if it connected)."""
    c = socketio.Client(reconnection=False)
    errors = []
    c.on("connect_error", lambda data=None: errors.append(data), namespace=namespace)
    try:
        c.connect(url, namespaces=[namespace], transports=transports, auth=auth,
                  wait_timeout=1.5)  # python-socketio waits this long before it raises
    except socketio.exceptions.ConnectionError:
        wait_for(lambda: errors, 2)
        return errors[0] if errors else "ConnectionError"
    c.disconnect()
    return None


def message_of(err):
    return err.get("message") if isinstance(err, dict) else err


# ---- scenarios ----

def group_chat(url1, url2):
    for url, tr in ((url1, WS), (url2, POLLING)):
        err = refused(url, tr, {})
        check("group_chat: anonymous %s client refused" % tr[0],
              message_of(err) == "Connection rejected by server", repr(err))
    events = ("message", "text", "my response")
    amy = Recorder(url1, WS, events, auth={"name": "amy"})
    bob = Recorder(url2, POLLING, events, auth={"name": "bob"})
    cat = Recorder(url2, WS, events, auth={"name": "cat"})
    check("group_chat: connect handler emits to the new socket",
          wait_for(lambda: amy.has("my response", [{"data": "Connected", "name": "amy"}])))
    amy.sio.emit("join", {"username": "amy", "room": "lobby"})
    check("group_chat: the joiner gets its own entrance",
          wait_for(lambda: amy.has("message", ["amy has entered the room."])))
    bob.sio.emit("join", {"username": "bob", "room": "lobby"})
    check("group_chat: entrance reaches the room across gateways (ws and polling)",
          wait_for(lambda: amy.has("message", ["bob has entered the room."])
                   and bob.has("message", ["bob has entered the room."])))
    amy.sio.emit("text", {"room": "lobby", "text": "hi room"})
    said = {"name": "amy", "room": "lobby", "text": "hi room"}
    check("group_chat: a message to the room reaches its members",
          wait_for(lambda: bob.has("text", [said]) and amy.has("text", [said])))
    cat.sio.emit("my broadcast event", {"data": "hello all"})
    shout = {"data": "hello all", "name": "cat"}
    check("group_chat: broadcast=True reaches everyone",
          wait_for(lambda: all(c.has("my response", [shout]) for c in (amy, bob, cat))))
    check("group_chat: a socket outside the room got no room message", not cat.events("text"),
          repr(cat.events("text")))
    got = []
    check("group_chat: rooms() (broker mirror) lists the room, own sid first",
          wait_for(lambda: got.append(amy.sio.call("my rooms", timeout=5)) or
                   (got[-1] and got[-1][0] == amy.sid() and "lobby" in got[-1]), 8), repr(got[-1:]))
    bob.sio.emit("leave", {"username": "bob", "room": "lobby"})
    check("group_chat: leaving is announced to the room",
          wait_for(lambda: amy.has("message", ["bob has left the room."])))
    amy.sio.emit("text", {"room": "lobby", "text": "bob is gone"})
    gone = {"name": "amy", "room": "lobby", "text": "bob is gone"}
    wait_for(lambda: amy.has("text", [gone]))
    time.sleep(0.3)
    check("group_chat: after leave_room no room message", not bob.has("text", [gone]))


def private_chat(url1, url2):
    err = refused(url2, POLLING, {})
    check("private_chat: anonymous client refused",
          message_of(err) == "Connection rejected by server", repr(err))
    events = ("private_message",)
    alice = Recorder(url1, WS, events, auth={"username": "alice"})
    bob = Recorder(url2, POLLING, events, auth={"username": "bob"})
    bob2 = Recorder(url1, WS, events, auth={"username": "bob"})  # bob's second tab
    carol = Recorder(url2, WS, events, auth={"username": "carol"})
    ack = alice.sio.call("private_message", {"receiver": "bob", "data": "hi bob"}, timeout=5)
    check("private_chat: ack", ack == "sent", repr(ack))
    to_bob = {"sender": "alice", "receiver": "bob", "data": "hi bob"}
    check("private_chat: alice (ws, gw1) -> bob (polling, gw2) and bob's other tab",
          wait_for(lambda: bob.has("private_message", [to_bob])
                   and bob2.has("private_message", [to_bob])))
    bob.sio.emit("private_message", {"receiver": "alice", "data": "hi alice", "sender": "forged"})
    to_alice = {"sender": "bob", "receiver": "alice", "data": "hi alice"}
    check("private_chat: bob -> alice, sender from the session (not the message)",
          wait_for(lambda: alice.has("private_message", [to_alice])),
          repr(alice.events("private_message")))
    carol.sio.emit("private_message", {"receiver": "nobody", "data": "lost"})
    time.sleep(0.4)
    check("private_chat: only the target gets a message",
          carol.events("private_message") == [] and alice.events("private_message") == [(to_alice,)]
          and bob.events("private_message") == [(to_bob,)], repr([c.got for c in (alice, bob, carol)]))


def long_task(url1, url2):
    events = ("response",)
    a = Recorder(url1, WS, events, namespaces=["/testnamespace"])
    b = Recorder(url2, POLLING, events, namespaces=["/testnamespace"])
    b.sio.call("status", namespace="/testnamespace", timeout=5)  # warm
    t0 = time.monotonic()
    a.sio.emit("request_for_response", {"param": "py"}, namespace="/testnamespace")
    first = {"code": "200", "msg": "start to process...", "param": "py"}
    check("long_task: 'start to process...' at once",
          wait_for(lambda: a.has("response", [first], "/testnamespace"), 2))
    times = []
    for _ in range(3):
        t = time.monotonic()
        got = b.sio.call("status", namespace="/testnamespace", timeout=5)
        times.append((time.monotonic() - t) * 1000)
        time.sleep(0.2)
    check("long_task: another client (polling, other gateway) is served meanwhile",
          got == {"code": "200", "msg": "idle"} and max(times) < 250, repr(times))
    done = {"code": "200", "msg": "processed", "param": "py"}
    check("long_task: 'processed' about 5 s later",
          wait_for(lambda: a.has("response", [done], "/testnamespace"), 8))
    stamps = {g[2][0]["msg"]: g[3] for g in a.got}
    gap = stamps.get("processed", 0) - stamps.get("start to process...", 0)
    check("long_task: the two messages are 5 s apart (%.2f s)" % gap, 4.5 <= gap <= 6.5,
          repr(stamps))
    check("long_task: the first came before the wait (%.2f s)"
          % (stamps.get("start to process...", 99) - t0),
          stamps.get("start to process...", 99) - t0 < 1.0)


def namespaces(url1, url2):
    events = ("my_response", "message", "chat")
    nsps = ["/", "/test", "/socketTest"]
    c = Recorder(url1, WS, events, namespaces=nsps)
    d = Recorder(url2, POLLING, events, namespaces=["/socketTest"])
    check("namespaces: MyCustomNamespace.on_connect emits",
          wait_for(lambda: c.has("my_response", [{"data": "Connected"}], "/test")))
    check("namespaces: TestNamespace.on_connect sends",
          wait_for(lambda: c.has("message", ["class conected!"], "/socketTest")
                   and d.has("message", ["class conected!"], "/socketTest")))
    c.sio.emit("my_event", {"x": 1}, namespace="/test")
    check("namespaces: on_my_event", wait_for(lambda: c.has("my_response", [{"x": 1}], "/test")))
    got = c.sio.call("my error event", 0, timeout=5)
    check("namespaces: @socketio.on_error() answers for '/'",
          got == {"namespace": "/", "error": "ZeroDivisionError"}, repr(got))
    got = c.sio.call("my error event", 4, timeout=5)
    check("namespaces: no error, the handler's value", got == 0.25, repr(got))
    got = c.sio.call("my_error_event", "x", namespace="/test", timeout=5)
    check("namespaces: @socketio.on_error('/test') for a class method",
          got == {"namespace": "/test", "error": "bad data: 'x'"}, repr(got))
    got = d.sio.call("fail", {"a": 1}, namespace="/socketTest", timeout=5)
    check("namespaces: on_error_default with request.event",
          got == {"namespace": "/socketTest", "event": "fail", "args": [{"a": 1}],
                  "error": "KeyError"}, repr(got))
    d.sio.send("hello", namespace="/socketTest")
    d.sio.emit("chat", "hi", namespace="/socketTest")
    check("namespaces: on_message / on_chat",
          wait_for(lambda: d.has("message", ["received message"], "/socketTest")
                   and d.has("chat", ["received chat"], "/socketTest")))
    for who, cl in (("c", c), ("d", d)):  # one after the other: c must be in before d says so
        cl.sio.emit("join", {"username": who, "room": "r"}, namespace="/socketTest")
        wait_for(lambda: cl.has("message", [who + " has entered the room."], "/socketTest"))
    check("namespaces: TestNamespace rooms across gateways",
          wait_for(lambda: c.has("message", ["d has entered the room."], "/socketTest")
                   and d.has("message", ["d has entered the room."], "/socketTest")),
          repr([c.events("message", "/socketTest"), d.events("message", "/socketTest")]))
    d.sio.emit("leave", {"username": "d", "room": "r"}, namespace="/socketTest")
    check("namespaces: leave announced",
          wait_for(lambda: c.has("message", ["d has left the room."], "/socketTest")))


def python_socketio(url1, url2):
    for url, tr in ((url1, WS), (url2, POLLING)):
        c = Recorder(url, tr, ("response",))
        c.sio.emit("message", "hello " + tr[0])
        want = {"data": "Server received: hello " + tr[0]}
        check("python_socketio: AsyncWorker message -> response (%s)" % tr[0],
              wait_for(lambda: c.has("response", [want])), repr(c.got))


SCENARIOS = {"group_chat": group_chat, "private_chat": private_chat, "long_task": long_task,
             "namespaces": namespaces, "python_socketio": python_socketio}


def main():
    scenario, url1, url2 = sys.argv[1:4]
    try:
        SCENARIOS[scenario](url1, url2)
    except Exception as exc:  # a client error ends the scenario as one failure
        import traceback
        traceback.print_exc()
        check("%s: ran to the end" % scenario, False, repr(exc))
    finally:
        for c in clients:
            try:
                c.sio.disconnect()
            except Exception:
                pass
    print("%s: %d failed" % (scenario, len(failures)), flush=True)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
