"""Exceptions a worker's handlers raise (python-socketio compatible names)."""

import builtins

__all__ = ["ConnectionRefusedError"]


class ConnectionRefusedError(builtins.ConnectionRefusedError):
    """Raised by a connect handler to refuse the connection: ``(message[, data])``.

    The builtin ``ConnectionRefusedError`` (and python-socketio's, which subclasses it) is
    treated the same way, so handlers written for python-socketio work unchanged.
    """
