"""Class-based namespaces and error handlers (seeds 000 and 001), moved to a sioc cluster by
changing the import: ``MyCustomNamespace('/test')`` of 001, ``TestNamespace('/socketTest')`` of
000 (messages, chat, rooms), ``@socketio.on_error()`` / ``on_error('/test')`` /
``on_error_default`` with ``request.event``.

    SIOC_REDIS_URL=redis://127.0.0.1:6379 PYTHONPATH=sdk/python python3 examples/flask_namespaces/app.py
"""

import logging
import os

from flask import Flask, request
# was: from flask_socketio import SocketIO, Namespace, emit, send, join_room, leave_room
from sioc.flask import SocketIO, Namespace, emit, send, join_room, leave_room

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

app = Flask(__name__)
app.config['SECRET_KEY'] = 'secret!'
# sioc: shards = the gateways' upstream-shards; name = the consumer group of this program
socketio = SocketIO(app, message_queue=os.environ.get('SIOC_REDIS_URL'),
                    shards=int(os.environ.get('SIOC_UPSTREAM_SHARDS', '1')),
                    name='flask_namespaces')


class MyCustomNamespace(Namespace):
    def on_connect(self):
        emit('my_response', {'data': 'Connected'})

    def on_disconnect(self):
        print('Client disconnected', request.sid)

    def on_my_event(self, data):
        emit('my_response', data)

    def on_my_error_event(self, data):
        raise ValueError('bad data: %r' % (data,))


class TestNamespace(Namespace):
    def on_connect(self):
        print('connected', request.sid)
        send('class conected!')

    def on_disconnect(self):
        print('disconnected')

    def on_message(self, msg):
        print('recv message', msg)
        send('received message')

    def on_chat(self, msg):
        print('recv chat', msg)
        emit('chat', 'received chat')

    def on_join(self, data):
        username = data['username']
        room = data['room']
        join_room(room)
        print(username + ' has entered the room.')
        send(username + ' has entered the room.', room=room)

    def on_leave(self, data):
        username = data['username']
        room = data['room']
        leave_room(room)
        print(username + ' has left the room.')
        send(username + ' has left the room.', room=room)

    def on_fail(self, data):
        return data['missing']  # KeyError: goes to on_error_default (no handler for this namespace)


socketio.on_namespace(MyCustomNamespace('/test'))
socketio.on_namespace(TestNamespace('/socketTest'))


@socketio.on('my error event')
def my_error_event(data):
    return 1 / data  # ZeroDivisionError for 0: goes to the '/' error handler


@socketio.on_error()        # Handles the default namespace
def error_handler(e):
    return {'namespace': '/', 'error': type(e).__name__}  # the return value is the client's ack


@socketio.on_error('/test')  # handles the '/test' namespace
def error_handler_test(e):
    return {'namespace': '/test', 'error': str(e)}


@socketio.on_error_default  # handles all namespaces without an explicit error handler
def default_error_handler(e):
    print(request.event["message"])  # "fail"
    print(request.event["args"])     # (data,)
    return {'namespace': request.namespace, 'event': request.event['message'],
            'args': list(request.event['args']), 'error': type(e).__name__}


if __name__ == '__main__':
    socketio.run(app)  # sioc: runs the worker until SIGINT/SIGTERM
