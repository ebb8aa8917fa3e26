"""The seed's long task (004): a handler that reports "start to process...", works for five
seconds and reports "processed", moved to a sioc cluster by changing the import.

The first message reaches the client at once (sioc publishes an emit when it is called, as
Flask-SocketIO does) and the second five seconds later; meanwhile every other client is served:
handlers run on a thread pool, and only this socket's next events wait for this one.

    SIOC_REDIS_URL=redis://127.0.0.1:6379 PYTHONPATH=sdk/python python3 examples/flask_long_task/app.py
"""

import logging
import os

from flask import Flask
# was: from flask_socketio import SocketIO, emit
from sioc.flask import SocketIO, emit

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

app = Flask(__name__)
app.config['SECRET_KEY'] = 'secret!'
# sioc: shards = the gateways' upstream-shards; name = the consumer group of this program;
# namespaces: the ones this program serves. Without it the worker also answers the connects of
# '/' (python-socketio's default), where another application of the cluster may be refusing
# sockets: the first answer wins.
socketio = SocketIO(app, message_queue=os.environ.get('SIOC_REDIS_URL'),
                    shards=int(os.environ.get('SIOC_UPSTREAM_SHARDS', '1')),
                    name='flask_long_task', namespaces=['/testnamespace'])


@socketio.on('request_for_response', namespace='/testnamespace')
def give_response(data):
    value = data.get('param')
    emit('response', {'code': '200', 'msg': 'start to process...', 'param': value})
    socketio.sleep(5)  # the seed's time.sleep(5) works the same: one handler thread waits
    emit('response', {'code': '200', 'msg': 'processed', 'param': value})


@socketio.on('status', namespace='/testnamespace')
def status():
    return {'code': '200', 'msg': 'idle'}  # the client's ack


if __name__ == '__main__':
    socketio.run(app)  # sioc: runs the worker until SIGINT/SIGTERM
