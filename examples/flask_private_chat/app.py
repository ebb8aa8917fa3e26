"""Private chat to a user by name (seed 002's one-to-one chat, as a Flask-SocketIO program),
moved to a sioc cluster by changing the import.

The seed kept ``socket_dict = {username: connection}`` in the server's memory and sent each
message to ``socket_dict[receiver]``. That only works while every client is on one server
process. Here the name is the socket's *user* (the connect handler returns it), each gateway puts
its sockets into the room ``user:<name>``, and a message goes to ``to="user:<receiver>"``: it
reaches the receiver whichever gateway it is on, whichever worker process handled the sender,
and on every tab the receiver has open.

    SIOC_REDIS_URL=redis://127.0.0.1:6379 PYTHONPATH=sdk/python python3 examples/flask_private_chat/app.py
"""

import logging
import os

from flask import Flask, request, session
# was: from flask_socketio import SocketIO, emit
from sioc.flask import SocketIO, emit

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

app = Flask(__name__)
app.config['SECRET_KEY'] = 'secret!'
# sioc: shards = the gateways' upstream-shards; name = the consumer group of this program
socketio = SocketIO(app, message_queue=os.environ.get('SIOC_REDIS_URL'),
                    shards=int(os.environ.get('SIOC_UPSTREAM_SHARDS', '1')),
                    name='flask_private_chat')

# was: socket_dict = {}   # {username: sid}, filled in connect, read in private_message
#      (in memory: another process, or a client on another server, would not be in it)


@socketio.on('connect')
def connect(auth):
    username = (auth or {}).get('username')
    if not username:
        return False
    session['username'] = username
    # was: socket_dict[username] = request.sid
    return username  # sioc: the socket's user; its gateway puts it into room "user:<username>"


@socketio.on('private_message')
def private_message(msg):
    # msg = {"receiver": ..., "data": ...}, as the seed's page sends it
    receiver = msg.get('receiver')
    sender = session['username']  # not taken from the message: a client cannot forge it
    # was: emit('private_message', ..., to=socket_dict.get(receiver))
    emit('private_message', {'sender': sender, 'receiver': receiver, 'data': msg.get('data')},
         to='user:%s' % receiver)
    return 'sent'


@socketio.on('disconnect')
def disconnect():
    print('%s left (%s)' % (session.get('username'), request.sid))
    # was: socket_dict.pop(username)   (sioc: the gateway removes the socket from its rooms)


if __name__ == '__main__':
    socketio.run(app)  # sioc: no pages here: runs the worker until SIGINT/SIGTERM
