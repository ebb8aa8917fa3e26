"""ws_plain_client.py URL: a plain WebSocket client (python3-websocket) driven by lines on stdin,
for tests/integration/test_ws_examples.mjs. Prints "open" once connected, then one line per
message received: "text <json string>" or "binary <hex>", and "closed <code>" at the end.
Reads commands: "text <json string>" and "binary <hex>" send a message, "close" closes.
Exits when the connection closes or stdin ends (at most 60 s)."""

import json
import sys
import threading

import websocket


def main():
    ws = websocket.create_connection(sys.argv[1], timeout=60)
    print("open", flush=True)

    def commands():
        for line in sys.stdin:
            kind, _, rest = line.rstrip("\n").partition(" ")
            if kind == "text":
                ws.send(json.loads(rest))
            elif kind == "binary":
                ws.send_binary(bytes.fromhex(rest))
            elif kind == "close":
                ws.close()
                return
        ws.close()

    threading.Thread(target=commands, daemon=True).start()
    while True:
        try:
            opcode, data = ws.recv_data(control_frame=False)
        except websocket.WebSocketConnectionClosedException:
            print("closed 1006", flush=True)
            return
        except OSError as exc:
            print("closed error %s" % exc, flush=True)
            return
        if opcode == websocket.ABNF.OPCODE_TEXT:
            print("text", json.dumps(data.decode("utf-8")), flush=True)
        elif opcode == websocket.ABNF.OPCODE_BINARY:
            print("binary", data.hex(), flush=True)
        elif opcode == websocket.ABNF.OPCODE_CLOSE:
            print("closed", int.from_bytes(data[:2], "big") if len(data) >= 2 else 1005,
                  flush=True)
            return


if __name__ == "__main__":
    main()
