"""The seed's python-socketio server (003, "代码案例": /chat rooms with join_room/message, and a
/test namespace), moved to a sioc cluster: ``socketio.Server`` becomes ``sioc.Worker``; the
handlers are unchanged. The seed's client1.py and client2.py (next to this file) work against
the gateways as they did against the eventlet server.

    SIOC_REDIS_URL=redis://127.0.0.1:6379 PYTHONPATH=sdk/python python3 examples/python_socketio_async/server.py
"""

import logging
import os

import sioc  # was: import socketio, eventlet, eventlet.wsgi

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

# 创建 SocketIO 服务器，并指定 namespace
# was: sio = socketio.Server()
# sioc: a worker names the namespaces it consumes (the gateways' namespaces option must accept
# them too); shards = the gateways' upstream-shards; name = this program's consumer group
sio = sioc.Worker(os.environ.get('SIOC_REDIS_URL', 'redis://127.0.0.1:6379'),
                  namespaces=['/chat', '/test'],
                  shards=int(os.environ.get('SIOC_UPSTREAM_SHARDS', '1')),
                  name='python_socketio_server')


# 定义连接事件
@sio.on('connect', namespace='/chat')
def connect(sid, environ):
    print('Client connected to /chat:', sid)


# 定义加入房间事件
@sio.on('join_room', namespace='/chat')
def join_room(sid, data):
    room = data['room']
    sio.enter_room(sid, room, namespace='/chat')
    print(f'Client {sid} joined room {room}')
    sio.emit('room_message', {'data': f'{sid} has joined the room {room}'}, room=room, namespace='/chat')


# 定义消息事件
@sio.on('message', namespace='/chat')
def message(sid, data):
    room = data['room']
    print(f'Message from {sid} in room {room}: {data["data"]}')
    sio.emit('response', {'data': f'Server received: {data["data"]}'}, room=room, namespace='/chat')


@sio.on("message", namespace="/test")
def test(sid, data):
    print(f"Test message received: {data}")


# 定义断开连接事件
@sio.on('disconnect', namespace='/chat')
def disconnect(sid):
    print('Client disconnected from /chat:', sid)


# was: app = socketio.WSGIApp(sio)   (sioc: the gateways serve /socket.io/)

# 启动服务器
if __name__ == '__main__':
    # was: eventlet.wsgi.server(eventlet.listen(('localhost', 5000)), app)
    sio.run()  # sioc: consumes the cluster's events until SIGINT/SIGTERM
