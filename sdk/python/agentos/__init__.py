"""AgentOS Python SDK: a stdlib-only client of the AgentOS kernel.

::

    from agentos import AgentOSClient

    with AgentOSClient() as c:        # $AGENTOS_SOCKET, else /tmp/agentos.sock
        c.echo("ping")
        c.write_file("notes.txt", "hello")
        print(c.read_file("notes.txt")["content"])

Kernel errors come back as dicts (``success: False``, ``code``, ``error``); transport failures
raise :class:`AgentOSConnectionError`.
"""
from .client import AgentOSClient, RawResponse, default_socket, is_error, raise_for_error
from .errors import (
    AgentOSConnectionError,
    AgentOSError,
    AgentOSKernelError,
    AgentOSProtocolError,
    PayloadTooLargeError,
)
from .protocol import (
    DEFAULT_SOCKET,
    ERROR_CODES,
    HEADER_LEN,
    MAGIC,
    MAX_PAYLOAD,
    OPS,
    ErrorCode,
    Op,
)

__version__ = "0.1.0"

__all__ = [
    "AgentOSClient",
    "RawResponse",
    "default_socket",
    "is_error",
    "raise_for_error",
    "AgentOSError",
    "AgentOSConnectionError",
    "AgentOSProtocolError",
    "AgentOSKernelError",
    "PayloadTooLargeError",
    "DEFAULT_SOCKET",
    "ERROR_CODES",
    "HEADER_LEN",
    "MAGIC",
    "MAX_PAYLOAD",
    "OPS",
    "ErrorCode",
    "Op",
    "__version__",
]
