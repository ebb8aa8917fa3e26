#!/usr/bin/python3
"""client1.py and client2.py of ../shared/seeds/003 (python-socketio), run together against a
sioc gateway: both connect to /chat and /test, join room1 through the worker, send messages to
the room, and record what they receive. Prints one JSON object with everything each client got,
then exits 0 (the caller asserts). Every wait is bounded.

    /usr/bin/python3 tests/integration/seed_clients.py http://127.0.0.1:PORT [transport]
"""

import json
import sys
import threading
import time

import socketio


def make_client(name, got, url, transports):
    sio = socketio.Client(reconnection=False)
    joined = threading.Event()

    @sio.on("connect", namespace="/chat")
    def on_connect():
        got[name].append(["connect", "/chat"])
        sio.emit("join_room", {"room": "room1"}, namespace="/chat")

    @sio.on("response", namespace="/chat")
    def on_response(data):
        got[name].append(["response", data])

    @sio.on("room_message", namespace="/chat")
    def on_room_message(data):
        got[name].append(["room_message", data])
        if sio.get_sid("/chat") and data.get("data", "").startswith(sio.get_sid("/chat")):
            joined.set()

    @sio.on("disconnect", namespace="/chat")
    def on_disconnect():
        got[name].append(["disconnect", "/chat"])

    sio.connect(url, namespaces=["/chat", "/test"], transports=transports, wait_timeout=5)
    return sio, joined


def main():
    url = sys.argv[1]
    transports = [sys.argv[2]] if len(sys.argv) > 2 else None
    got = {"client1": [], "client2": []}
    c1, j1 = make_client("client1", got, url, transports)
    c2, j2 = make_client("client2", got, url, transports)
    ok = j1.wait(5) and j2.wait(5)
    sids = {"client1": c1.get_sid("/chat"), "client2": c2.get_sid("/chat")}
    # client1.py: message to room1 in /chat and to /test; client2.py: its own message
    c1.emit("message", {"room": "room1", "data": "Hello, server!"}, namespace="/chat")
    c1.emit("message", {"data": "Hello, server!"}, namespace="/test")
    c2.emit("message", {"room": "room1", "data": "This is client 2."}, namespace="/chat")
    deadline = time.time() + 5
    while time.time() < deadline:
        if all(sum(1 for e in got[n] if e[0] == "response") >= 2 for n in got):
            break
        time.sleep(0.05)
    c1.disconnect()
    c2.disconnect()
    print(json.dumps({"joined": bool(ok), "sids": sids, "got": got}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
