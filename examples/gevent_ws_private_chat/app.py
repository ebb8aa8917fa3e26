"""gevent-websocket private chat (seed 002, "Websocket单点聊天时的转发"), moved to a sioc
cluster: a message {"sender", "receiver", "data"} goes to the receiver by name, on whatever
gateway, from any worker process.

    SIOC_REDIS_URL=redis://127.0.0.1:6390 PYTHONPATH=sdk/python python3 examples/gevent_ws_private_chat/app.py

The gateways need `--ws-routes /ws/{user}=/ws` (printed at start): the name in the URL becomes
the connection's user, in room "user:<name>". The page, /wechat, is served on PORT (9527; 0 =
any free port; empty = none) and connects to SIOC_PUBLIC_URL (default http://127.0.0.1:3000).
"""

import json
import logging
import os

from flask import Flask, request, render_template
# was: from geventwebsocket.handler import WebSocketHandler  # 请求处理 WSGI HTTP
# was: from geventwebsocket.server import WSGIServer  # 替换Flask原来的WSGI服务
# was: from geventwebsocket.websocket import WebSocket  # 语法提示
from sioc.flask_sockets import Sockets, WebSocket  # 语法提示

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

app = Flask(__name__)
sockets = Sockets(app, name='gevent_ws_private_chat')  # sioc: the gateways hold the connections

# socket_list = []
# socket_dict = {"xiaobanghzu":akjsdlfsadkfj,"shangjia":asudhfkjasdhfkjahs}
# was: socket_dict = {}
#      (one process's memory: a receiver on another server, or another process, is not in it)


@sockets.route("/ws/<username>")  # was: @app.route("/ws/<username>")
def my_ws(username):
    # print(request.environ)
    ws_socket = request.environ.get("wsgi.websocket")  # type:WebSocket
    # was: socket_dict[username] = ws_socket
    #      (sioc: the gateway puts the connection into room "user:<username>")
    print(username, ws_socket)

    while True:
        msg = ws_socket.receive()
        if msg is None:  # sioc: closed (the seed went on until json.loads(None) raised)
            break
        msg_dict = json.loads(msg)
        receiver = msg_dict.get("receiver")  #获取接收值的值
        # was: receiver_socket = socket_dict.get(receiver)
        receiver_socket = sockets.user(receiver)  # sioc: the receiver's connections, anywhere
        receiver_socket.send(msg) #向接受者发送消息


@app.route("/wechat")
def wechat():
    # sioc: the page connects to a gateway (ws://...) instead of this process
    public = os.environ.get('SIOC_PUBLIC_URL') or 'http://127.0.0.1:3000'
    return render_template("ws.html", ws_base='ws' + public[len('http'):])


if __name__ == '__main__':
    # app.run()
    # was: http_serv = WSGIServer(("0.0.0.0", 9527), app,
    #                            handler_class=WebSocketHandler)  # handler_class=WSGIHandler / HTTPHandler
    #      http_serv.serve_forever()
    port = os.environ.get('PORT', '9527')
    # sioc: runs the handlers until SIGINT/SIGTERM (and serves /wechat on port)
    sockets.run(app, host=os.environ.get('HOST', '127.0.0.1'), port=int(port) if port else None)
