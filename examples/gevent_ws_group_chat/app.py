"""gevent-websocket group chat (seed 002, "基于 websocket 实现群聊"), moved to a sioc cluster:
each message goes to every other connection of /ws, on every gateway, from any worker process.

    SIOC_REDIS_URL=redis://127.0.0.1:6390 PYTHONPATH=sdk/python python3 examples/gevent_ws_group_chat/app.py

The gateways need `--ws-routes /ws=/ws` (printed at start). The page, /wechat, is served on
PORT (9527; 0 = any free port; empty = none) and connects to SIOC_PUBLIC_URL (default
http://127.0.0.1:3000). See README.md.
"""

import logging
import os

from flask import Flask, request, render_template
# was: from geventwebsocket.handler import WebSocketHandler  # 请求处理 WSGI HTTP
# was: from geventwebsocket.server import WSGIServer  # 替换Flask原来的WSGI服务
# was: from geventwebsocket.websocket import WebSocket  # 语法提示
from sioc.flask_sockets import Sockets, WebSocket  # 语法提示

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

app = Flask(__name__)
sockets = Sockets(app, name='gevent_ws_group_chat')  # sioc: the gateways hold the connections

# was: socket_list = []  # 用于存储连接的socket对象
#      (one process's memory: clients on another server, or another process, are not in it)


@sockets.route("/ws")  # was: @app.route("/ws")
def my_ws():
    # print(request.environ)
    # 注意：type:WebSocket,是用来进行语法提示的，不然没有语法提示
    ws_socket = request.environ.get("wsgi.websocket")  # type:WebSocket
    # was: socket_list.append(ws_socket)  # 及那个获取到的对象添加到列表中
    # was: print(len(socket_list),socket_list)
    print(sockets.connections, ws_socket)  # sioc: the connections this process handles
    while True:
        msg = ws_socket.receive()  #多个线程会阻塞在这
        if msg is None:  # sioc: closed (the seed went on until receive() raised)
            break
        print(msg)
        # was: for usocket in socket_list:
        #          if usocket == ws_socket:  # 不给自己发消息
        #              continue
        #          try:
        #              usocket.send(msg)
        #          except:
        #              continue
        sockets.send(msg, skip=ws_socket)  # sioc: every other connection of /ws, 不给自己发消息


@app.route("/wechat")
def wechat():
    # sioc: the page connects to a gateway (ws://...) instead of this process
    public = os.environ.get('SIOC_PUBLIC_URL') or 'http://127.0.0.1:3000'
    return render_template("ws.html", ws_base='ws' + public[len('http'):])


if __name__ == '__main__':
    # app.run()
    # was: http_serv = WSGIServer(("0.0.0.0", 9527), app,
    #                            handler_class=WebSocketHandler)
    #      http_serv.serve_forever()
    port = os.environ.get('PORT', '9527')
    # sioc: runs the handlers until SIGINT/SIGTERM (and serves /wechat on port)
    sockets.run(app, host=os.environ.get('HOST', '127.0.0.1'), port=int(port) if port else None)
