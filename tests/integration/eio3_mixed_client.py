#!/usr/bin/python3
"""A python-socketio client for tests/integration/test_eio3_clients.mjs (the mixed room):

    /usr/bin/python3 tests/integration/eio3_mixed_client.py URL ROOM

Connects to URL (websocket), emits join(ROOM) with an ack (the test worker joins the room), prints
"joined" once acked, then one JSON line per 'm' event received: {"args": [...]} with bytes as
{"$bin": hex}. Runs until SIGTERM (or 60 s)."""

import json
import sys
import threading
import time

import socketio


def plain(v):
    if isinstance(v, (bytes, bytearray)):
        return {"$bin": bytes(v).hex()}
    if isinstance(v, list):
        return [plain(x) for x in v]
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    return v


def main():
    url, room = sys.argv[1], sys.argv[2]
    sio = socketio.Client(reconnection=False)

    @sio.on("m")
    def on_m(*args):
        print(json.dumps({"args": plain(list(args))}), flush=True)

    sio.connect(url, transports=["websocket"], wait_timeout=10)
    done = threading.Event()
    sio.emit("join", room, callback=lambda *a: (print("joined", flush=True), done.set()))
    if not done.wait(10):
        print("join not acked", flush=True)
        sys.exit(1)
    time.sleep(60)
    sio.disconnect()


if __name__ == "__main__":
    main()
