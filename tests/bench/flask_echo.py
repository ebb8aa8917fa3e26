#!/usr/bin/python3
"""The echo handler of the worker benchmark (issue 12), as one Flask-SocketIO program that runs
either on Flask-SocketIO 5.3 + eventlet (the system the seeds run today) or, by changing its
import, as a sioc worker behind the gateways:

    flask_echo.py flask PORT                 Flask-SocketIO serves Socket.IO on 127.0.0.1:PORT
    flask_echo.py sioc REDIS_URL SHARDS      a sioc worker (gateways with upstream-shards SHARDS)

Event "ack" (what tests/bench/loadgen's echo sends) is acknowledged with its own arguments.
"""

import os
import sys

MODE = sys.argv[1]
if MODE == "flask":
    import eventlet
    eventlet.monkey_patch()
    from flask_socketio import SocketIO
else:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                    "sdk", "python"))
    from sioc.flask import SocketIO

from flask import Flask  # noqa: E402

app = Flask(__name__)
if MODE == "flask":
    socketio = SocketIO(app, async_mode="eventlet")
else:
    socketio = SocketIO(app, message_queue=sys.argv[2], shards=int(sys.argv[3]),
                        name="bench-echo")


@socketio.on("ack")
def ack(*args):
    return args


if __name__ == "__main__":
    print("worker ready", flush=True)
    if MODE == "flask":
        socketio.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_output=False)
    else:
        socketio.run(app)
