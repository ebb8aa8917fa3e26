# client2.py: the seed's (003) python-socketio client, unchanged but for the server's URL:
# a sioc gateway (argv[1], else $SIOC_URL, else make run's first gateway).
import os
import sys

import socketio

SERVER = sys.argv[1] if len(sys.argv) > 1 else os.environ.get('SIOC_URL', 'http://localhost:3000')

# 创建 SocketIO 客户端，并指定 namespace
sio = socketio.Client()

# 定义连接事件
@sio.on('connect', namespace='/chat')
def on_connect():
    print('Connected to server')
    sio.emit('join_room', {'room': 'room1'}, namespace='/chat')

# 定义消息事件
@sio.on('response', namespace='/chat')
def on_response(data):
    print('Response from server:', data)

# 定义房间消息事件
@sio.on('room_message', namespace='/chat')
def on_room_message(data):
    print('Room message:', data)

# 定义断开连接事件
@sio.on('disconnect', namespace='/chat')
def on_disconnect():
    print('Disconnected from server')

if __name__ == '__main__':
    # 连接到服务器
    sio.connect(SERVER, namespaces=['/chat', '/test'])  # was: 'http://localhost:5000'

    # 加入房间
    sio.emit('join_room', {'room': 'room1'}, namespace='/chat')

    # 发送消息
    sio.emit('message', {'room': 'room1', 'data': 'This is client 2.'}, namespace='/chat')

    # 一直等待
    sio.wait()

    # 关闭连接可用 sio.disconnect() 方法
