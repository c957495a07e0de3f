"""Wire-protocol constants of AgentOS: opcodes, error codes and the frame header.

Mirrors ``kernel/protocol.ts`` (DESIGN section 2). A frame is a 17-byte little-endian header
``magic u32, agent_id u32, op u8, payload_len u64`` followed by ``payload_len`` payload bytes.
"""
from __future__ import annotations

import struct
from typing import Dict, NamedTuple, Optional, Union

__all__ = [
    "MAGIC",
    "HEADER_FORMAT",
    "HEADER_LEN",
    "MAX_PAYLOAD",
    "DEFAULT_SOCKET",
    "Op",
    "OPS",
    "OP_NAMES",
    "ErrorCode",
    "ERROR_CODES",
    "Header",
    "encode_header",
    "decode_header",
    "op_code",
    "op_name",
]

#: ``"AGNT"`` read as a little-endian uint32: bytes ``54 4E 47 41`` on the wire.
MAGIC = 0x41474E54
#: ``struct`` format of the header: magic, agent_id, op, payload_len; little-endian, packed.
HEADER_FORMAT = "<IIBQ"
#: Size of the header in bytes (17).
HEADER_LEN = struct.calcsize(HEADER_FORMAT)
#: Largest payload accepted or sent, in both directions (1 MiB).
MAX_PAYLOAD = 1_048_576
#: Default path of the kernel's main socket.
DEFAULT_SOCKET = "/tmp/agentos.sock"

_HEADER = struct.Struct(HEADER_FORMAT)
assert HEADER_LEN == 17


class Op:
    """Every opcode the kernel knows, by name (``Op.READ == 0x03``)."""

    NOOP = 0x00
    THINK = 0x01
    EXEC = 0x02
    READ = 0x03
    WRITE = 0x04
    SPAWN = 0x10
    KILL = 0x11
    LIST = 0x12
    SEND = 0x20
    RECV = 0x21
    BROADCAST = 0x22
    REGISTER = 0x23
    GET_PERMS = 0x40
    SET_PERMS = 0x41
    HTTP = 0x50
    KERNEL_STATUS = 0xF0
    SHUTDOWN = 0xF1
    EXIT = 0xFF


#: Opcode by name.
OPS: Dict[str, int] = {
    name: value for name, value in vars(Op).items() if name.isupper() and isinstance(value, int)
}
#: Name by opcode.
OP_NAMES: Dict[int, str] = {value: name for name, value in OPS.items()}


class ErrorCode:
    """Error codes carried (by name) in the ``code`` field of an error response."""

    ERROR = 0x01
    INVALID_MSG = 0x02
    NOT_FOUND = 0x03
    TIMEOUT = 0x04
    PERMISSION_DENIED = 0x05
    QUOTA_EXCEEDED = 0x06


#: Error code value by name (``"PERMISSION_DENIED": 5``).
ERROR_CODES: Dict[str, int] = {
    name: value
    for name, value in vars(ErrorCode).items()
    if name.isupper() and isinstance(value, int)
}


class Header(NamedTuple):
    """A decoded frame header."""

    magic: int
    agent_id: int
    op: int
    payload_len: int


def encode_header(op: int, payload_len: int, agent_id: int = 0) -> bytes:
    """Pack a frame header. The kernel ignores ``agent_id`` in requests (identity is the
    connection's), so clients send 0."""
    return _HEADER.pack(MAGIC, agent_id, op, payload_len)


def decode_header(data: Union[bytes, bytearray, memoryview]) -> Header:
    """Unpack the frame header at the start of ``data`` (at least 17 bytes; the magic is
    returned, not checked)."""
    return Header(*_HEADER.unpack_from(data))


def op_code(op: Union[int, str]) -> int:
    """Turn an opcode or an op name (``"READ"``, case-insensitive) into an opcode 0..255.

    Raises ``ValueError`` for an unknown name or a number out of range.
    """
    if isinstance(op, bool):
        raise ValueError(f"unknown op {op!r}")
    if isinstance(op, int):
        if 0 <= op <= 255:
            return op
        raise ValueError(f"op {op} is out of range 0..255")
    if isinstance(op, str):
        code: Optional[int] = OPS.get(op.upper())
        if code is not None:
            return code
    raise ValueError(f"unknown op {op!r}; known ops: {', '.join(OPS)}")


def op_name(op: int) -> str:
    """The name of opcode ``op``, or ``0xNN`` if it has none."""
    return OP_NAMES.get(op, f"0x{op:02x}")
