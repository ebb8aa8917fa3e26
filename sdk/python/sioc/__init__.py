"""sioc: the backend worker library of the sioc Socket.IO cluster.

Handlers look like python-socketio / Flask-SocketIO ones::

    import sioc
    worker = sioc.Worker(namespaces=['/', '/chat'])

    @worker.on('chat', namespace='/chat')
    def chat(sid, data):
        worker.join_room(sid, data['room'])
        worker.emit('said', data, to=data['room'])
        return 'ok'                      # the ack

    worker.run()

The worker reads the gateways' upstream entries from Redis (streams with a consumer group, or
pub/sub) and answers each one with at most one directed reply; broadcasts go out in the Socket.IO
Redis adapter (redis-emitter) format. See ``sioc.worker`` for the delivery guarantees.
"""

from .aio import AsyncWorker
from .calls import CallError, CallTimeout
from .emitter import Emitter, encode_broadcast
from .exceptions import ConnectionRefusedError
from .protocol import Entry, ProtocolError, Reply, UnsupportedError
from .worker import Request, Worker

__all__ = ["Worker", "AsyncWorker", "Request", "Emitter", "encode_broadcast", "ConnectionRefusedError",
           "CallError", "CallTimeout",
           "Entry", "Reply", "ProtocolError", "UnsupportedError"]
__version__ = "0.2.0"
