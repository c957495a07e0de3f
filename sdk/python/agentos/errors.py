"""Exceptions raised by the AgentOS Python SDK.

Only transport problems and misuse raise: an error *answered by the kernel* (permission
denied, not found, invalid message, ...) comes back as the kernel's dict with
``success: False``, ``code`` and ``error``. Use :func:`agentos.raise_for_error` to turn such a
dict into an :class:`AgentOSKernelError` when an exception suits the caller better.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

__all__ = [
    "AgentOSError",
    "AgentOSConnectionError",
    "AgentOSProtocolError",
    "PayloadTooLargeError",
    "AgentOSKernelError",
]


class AgentOSError(Exception):
    """Base class of every exception the SDK raises."""


class AgentOSConnectionError(AgentOSError, ConnectionError):
    """The kernel cannot be reached, or the connection to it broke or timed out.

    The message names the socket and, when no kernel listens there, says how to start one.
    """

    def __init__(self, message: str, socket_path: Optional[str] = None) -> None:
        super().__init__(message)
        #: The socket path the client used.
        self.socket_path = socket_path


class AgentOSProtocolError(AgentOSConnectionError):
    """The kernel sent something that is not a valid frame (bad magic, oversized length,
    wrong op, invalid JSON). The connection is closed: the stream cannot be resynchronised."""


class PayloadTooLargeError(AgentOSError, ValueError):
    """A request payload is over the 1 MiB protocol limit; nothing was sent."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"payload of {size} bytes is over the {limit}-byte protocol limit; nothing was sent"
        )
        #: Size of the refused payload in bytes.
        self.size = size
        #: The limit (``MAX_PAYLOAD``).
        self.limit = limit


class AgentOSKernelError(AgentOSError):
    """A kernel error response, raised by :func:`agentos.raise_for_error`."""

    def __init__(self, response: Dict[str, Any]) -> None:
        self.code: str = str(response.get("code", "ERROR"))
        self.error: str = str(response.get("error", "unknown error"))
        #: The whole error dict the kernel answered.
        self.response = response
        super().__init__(f"{self.code}: {self.error}")
