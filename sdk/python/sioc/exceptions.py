"""Exceptions a worker's handlers raise (python-socketio compatible names)."""

import builtins

__all__ = ["ConnectionRefusedError", "is_refusal"]


class ConnectionRefusedError(builtins.ConnectionRefusedError):
    """Raised by a connect handler to refuse the connection: ``(message[, data])``.

    The builtin ``ConnectionRefusedError`` and python-socketio's (which Flask-SocketIO
    re-exports, and which is not a subclass of the builtin) are treated the same way, so
    handlers written for either work unchanged (see :func:`is_refusal`).
    """


def is_refusal(exc):
    """True for an exception that refuses a connection: this module's, the builtin
    ``ConnectionRefusedError``, or python-socketio's ``socketio.exceptions.ConnectionRefusedError``
    (recognised by its name and ``error_args``, so python-socketio need not be installed)."""
    return isinstance(exc, builtins.ConnectionRefusedError) or (
        type(exc).__name__ == "ConnectionRefusedError" and hasattr(exc, "error_args"))
