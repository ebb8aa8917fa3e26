"""Flask-SocketIO group chat (seeds 000/001: join/leave rooms, messages to a room, broadcast,
connect-time auth), moved to a sioc cluster by changing the import of SocketIO & co.

    SIOC_REDIS_URL=redis://127.0.0.1:6379 PYTHONPATH=sdk/python python3 examples/flask_group_chat/app.py

The page is served on PORT (5000; 0 = any free port) and its browser connects to the gateways at
SIOC_PUBLIC_URL (default: the page's own origin, i.e. a load balancer that routes /socket.io/ to
the gateways). See README.md.
"""

import logging
import os

from flask import Flask, render_template, request, session
# was: from flask_socketio import SocketIO, emit, send, join_room, leave_room, rooms
from sioc.flask import SocketIO, emit, send, join_room, leave_room, rooms

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

app = Flask(__name__)
app.config['SECRET_KEY'] = 'secret!'
# sioc: this process is a worker of the cluster. message_queue defaults to $SIOC_REDIS_URL;
# shards must equal the gateways' upstream-shards (several processes share the work through
# them); name is the consumer group (sioc-<name>): the processes of one program share it, and
# it defaults to the file name, which every example here shares ('app').
socketio = SocketIO(app, message_queue=os.environ.get('SIOC_REDIS_URL'),
                    shards=int(os.environ.get('SIOC_UPSTREAM_SHARDS', '1')),
                    name='flask_group_chat', cors_allowed_origins='*')


@app.route('/')
def index():
    # sioc: the page connects to the gateways, not to this process
    return render_template('index.html', public_url=os.environ.get('SIOC_PUBLIC_URL', ''))


@socketio.on('connect')
def on_connect(auth):
    name = (auth or {}).get('name')
    if not name:
        return False  # not allowed here: the client gets connect_error
    session['username'] = name
    emit('my response', {'data': 'Connected', 'name': name})
    # sioc: returning the name makes it the socket's user (room "user:<name>" on its gateway)
    return name


@socketio.on('join')
def on_join(data):
    username = data['username']
    room = data['room']
    join_room(room)
    send(username + ' has entered the room.', to=room)


@socketio.on('leave')
def on_leave(data):
    username = data['username']
    room = data['room']
    leave_room(room)
    send(username + ' has left the room.', to=room)


@socketio.on('text')
def on_text(data):
    # a message to everyone in one room, the sender included
    emit('text', {'name': session['username'], 'room': data['room'], 'text': data['text']},
         to=data['room'])


@socketio.on('my broadcast event')
def on_broadcast(data):
    emit('my response', {'data': data['data'], 'name': session['username']}, broadcast=True)


@socketio.on('my rooms')
def my_rooms():
    # sioc: read from the broker's registry mirror (needs sioc-broker); a join made a moment
    # ago may not be there yet
    return rooms()


@socketio.on('disconnect')
def on_disconnect():
    print('Client disconnected', request.sid)


if __name__ == '__main__':
    port = os.environ.get('PORT', '5000')
    # sioc: serves this app's routes (the page) on port and runs the worker until SIGINT/SIGTERM
    socketio.run(app, host=os.environ.get('HOST', '127.0.0.1'), port=int(port) if port else None)
