"""The seed's python-socketio AsyncServer program (003, "FastAPI中使用 / 集成python-socketio"),
moved to a sioc cluster: ``socketio.AsyncServer`` becomes ``sioc.AsyncWorker``; the handlers are
unchanged.

    SIOC_REDIS_URL=redis://127.0.0.1:6379 PYTHONPATH=sdk/python python3 examples/python_socketio_async/app.py

The Socket.IO endpoint is the gateways' (no ``socketio.ASGIApp`` here). The FastAPI routes of
the seed are still this program's: when FastAPI and uvicorn are installed and PORT is set, they
are served on PORT (a load balancer sends /socket.io/ to the gateways, the rest here).
"""

import logging
import os
import threading

import sioc  # was: import socketio

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

try:  # sioc: FastAPI is optional here; the worker does not need it
    import uvicorn
    from fastapi import FastAPI
    from fastapi.middleware.cors import CORSMiddleware
except ImportError:
    FastAPI = None

if FastAPI is not None:
    app = FastAPI()

    # 配置 CORS（跨域资源共享）
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],  # 允许所有来源
        allow_credentials=True,
        allow_methods=["*"],
        allow_headers=["*"],
    )

    @app.post("/send")
    def send():
        return {"message": "OK"}

# 创建 Socket.IO 服务器实例
# was: sio = socketio.AsyncServer(async_mode='asgi', cors_allowed_origins="*")
#      app_asgi = socketio.ASGIApp(sio, other_asgi_app=app)
# sioc: the gateways are the server (CORS is their cors-origin option); shards = their
# upstream-shards; name = this program's consumer group
sio = sioc.AsyncWorker(os.environ.get('SIOC_REDIS_URL', 'redis://127.0.0.1:6379'),
                       shards=int(os.environ.get('SIOC_UPSTREAM_SHARDS', '1')),
                       name='python_socketio_async')


@sio.event
async def connect(sid, environ):
    print(f"Client {sid} connected")


@sio.event
async def disconnect(sid):
    print(f"Client {sid} disconnected")


@sio.event
async def message(sid, data):
    print(f"Message from {sid}: {data}")
    await sio.emit('response', {'data': f"Server received: {data}"}, room=sid)


if __name__ == "__main__":
    # was: uvicorn.run(app_asgi, host="0.0.0.0", port=8000)
    if FastAPI is not None and os.environ.get('PORT'):
        threading.Thread(target=uvicorn.run, args=(app,), daemon=True,
                         kwargs={'host': '0.0.0.0', 'port': int(os.environ['PORT'])}).start()
    sio.run()  # sioc: consumes the cluster's events until SIGINT/SIGTERM
