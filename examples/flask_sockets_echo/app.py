"""Flask-Sockets echo (seed 000, "Flask-Sockets"), moved to a sioc cluster: the gateways hold the
WebSocket connections (their option ws-routes), this process runs the handler for each one.

    SIOC_REDIS_URL=redis://127.0.0.1:6390 PYTHONPATH=sdk/python python3 examples/flask_sockets_echo/app.py

The gateways need `--ws-routes /test=/test` (printed at start). The page (seed 000's JavaScript)
is served on PORT (5000; 0 = any free port; empty = none) and connects to the gateway at
SIOC_PUBLIC_URL (default http://127.0.0.1:3000). See README.md.
"""

import logging
import os

from flask import Flask, render_template
# was: from flask_sockets import Sockets
from sioc.flask_sockets import Sockets
# was: from gevent import pywsgi
# was: from geventwebsocket.handler import WebSocketHandler

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

app = Flask(__name__)
# sioc: name = the consumer group (sioc-<name>) the processes of this program share
sockets = Sockets(app, name='flask_sockets_echo')


@sockets.route('/test')
def echo_socket(ws):
    while not ws.closed:
        message = ws.receive()
        ws.send('received' + message)


@app.route('/')
def index():
    # sioc: the seed's page, connecting to a gateway (ws://...) instead of this process
    public = os.environ.get('SIOC_PUBLIC_URL') or 'http://127.0.0.1:3000'
    return render_template('index.html', ws_base='ws' + public[len('http'):])


if __name__ == "__main__":
    # was: server = pywsgi.WSGIServer(('', 5000), app, handler_class=WebSocketHandler)
    #      server.serve_forever()
    port = os.environ.get('PORT', '5000')
    # sioc: runs the handlers until SIGINT/SIGTERM (and serves the page on port)
    sockets.run(app, host=os.environ.get('HOST', '127.0.0.1'), port=int(port) if port else None)
