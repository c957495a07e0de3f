"""Typed shapes of the kernel's responses (``TypedDict``\\ s, for editors and type checkers).

Every response is a plain ``dict`` at run time. All of them are declared ``total=False``
because an error response carries the op's usual fields with empty values plus ``success:
False``, ``code`` and ``error`` (see :class:`KernelError`).
"""
from __future__ import annotations

from typing import Any, Dict, List, Literal, Optional, TypedDict, Union

__all__ = [
    "JSONValue",
    "Level",
    "KernelError",
    "KernelStatus",
    "ShutdownResponse",
    "ExitResponse",
    "Usage",
    "ThinkResponse",
    "ImageInput",
    "ExecResponse",
    "ReadResponse",
    "WriteResponse",
    "Limits",
    "SpawnResponse",
    "KillResponse",
    "AgentInfo",
    "RegisterResponse",
    "SendResponse",
    "Message",
    "RecvResponse",
    "BroadcastResponse",
    "FilesystemPermissions",
    "LlmPermissions",
    "Permissions",
    "GetPermsResponse",
    "SetPermsResponse",
    "HttpResponse",
    "AgentList",
]

#: Any JSON value (messages are arbitrary JSON).
JSONValue = Any
#: A permission level name.
Level = Literal["unrestricted", "standard", "sandboxed", "readonly", "minimal"]


class KernelError(TypedDict, total=False):
    """A kernel-level error: ``success`` is False, ``code`` names it (``NOT_FOUND``,
    ``PERMISSION_DENIED``, ...), ``error`` is a sentence a person can act on."""

    success: bool
    code: str
    error: str


class KernelStatus(TypedDict, total=False):
    """KERNEL_STATUS (0xF0) response."""

    success: bool
    version: str
    pid: int
    uptime_ms: int
    socket: str
    state_dir: str
    connections: int
    identities: int
    agent_id: int
    level: str
    code: str
    error: str


class ShutdownResponse(TypedDict, total=False):
    """SHUTDOWN (0xF1) response."""

    success: bool
    stopping: bool
    code: str
    error: str


class ExitResponse(TypedDict, total=False):
    """EXIT (0xFF) response."""

    success: bool
    agent_id: int
    closing: bool
    code: str
    error: str


class Usage(TypedDict, total=False):
    """Token usage of one THINK call."""

    input_tokens: int
    output_tokens: int


class ImageInput(TypedDict):
    """THINK ``image``: base64 data and its MIME type (``image/png``, ...)."""

    data: str
    mime_type: str


class ThinkResponse(TypedDict, total=False):
    """THINK (0x01) response."""

    success: bool
    content: str
    tokens: int
    error: Optional[str]
    model: str
    stop_reason: Optional[str]
    usage: Usage
    code: str


class ExecResponse(TypedDict, total=False):
    """EXEC (0x02) response."""

    success: bool
    stdout: str
    stderr: str
    exit_code: Optional[int]
    signal: Optional[str]
    timed_out: bool
    truncated: bool
    duration_ms: int
    confinement: str
    code: str
    error: str


class ReadResponse(TypedDict, total=False):
    """READ (0x03) response; ``content`` is text, or base64 when ``encoding`` is base64."""

    success: bool
    content: str
    size: int
    encoding: str
    truncated: bool
    offset: int
    length: int
    code: str
    error: str


class WriteResponse(TypedDict, total=False):
    """WRITE (0x04) response."""

    success: bool
    bytes_written: int
    path: str
    code: str
    error: str


class Limits(TypedDict, total=False):
    """SPAWN ``limits`` (see docs/agents.md for units and which are enforced)."""

    memory_mb: int
    cpu_time_ms: int
    timeout_ms: int
    pids: int


class SpawnResponse(TypedDict, total=False):
    """SPAWN (0x10) response."""

    success: bool
    agent_id: int
    id: int
    name: str
    pid: int
    level: str
    code: str
    error: str


class KillResponse(TypedDict, total=False):
    """KILL (0x11) response."""

    success: bool
    killed: bool
    agent_id: int
    code: str
    error: str


class AgentInfo(TypedDict, total=False):
    """One entry of LIST (0x12)."""

    id: int
    name: str
    pid: Optional[int]
    state: str
    uptime_ms: int
    level: str
    parent_id: Optional[int]
    exit_code: Optional[int]
    exit_reason: Optional[str]
    restarts: int


class RegisterResponse(TypedDict, total=False):
    """REGISTER (0x23) response."""

    success: bool
    agent_id: int
    name: str
    code: str
    error: str


class SendResponse(TypedDict, total=False):
    """SEND (0x20) response: ``delivered_to`` is the recipient's id."""

    success: bool
    delivered_to: int
    seq: int
    code: str
    error: str


# ``from`` is a keyword, so Message uses the functional syntax.
Message = TypedDict(
    "Message",
    {"from": int, "from_name": Optional[str], "message": Any, "age_ms": int, "seq": int},
    total=False,
)
Message.__doc__ = "One received message: sender id and name, the JSON message, age, sequence."


class RecvResponse(TypedDict, total=False):
    """RECV (0x21) response."""

    success: bool
    count: int
    messages: List[Message]
    remaining: int
    code: str
    error: str


class BroadcastResponse(TypedDict, total=False):
    """BROADCAST (0x22) response."""

    success: bool
    delivered_count: int
    skipped: List[Dict[str, Any]]
    skipped_count: int
    code: str
    error: str


class FilesystemPermissions(TypedDict, total=False):
    """``filesystem`` part of a permission record."""

    read: List[str]
    write: List[str]
    blocked: List[str]


class LlmPermissions(TypedDict, total=False):
    """``llm`` part of a permission record: quotas (None = no limit) and usage."""

    max_tokens: Optional[int]
    max_calls: Optional[int]
    tokens_used: int
    calls_made: int


class Permissions(TypedDict, total=False):
    """A permission record (DESIGN section 4)."""

    level: str
    can_exec: bool
    can_read: bool
    can_write: bool
    can_think: bool
    can_spawn: bool
    can_http: bool
    filesystem: FilesystemPermissions
    exec: List[str]
    blocked_commands: List[str]
    network: List[str]
    llm: LlmPermissions
    max_exec_time_ms: int


class GetPermsResponse(TypedDict, total=False):
    """GET_PERMS (0x40) response."""

    success: bool
    agent_id: int
    permissions: Permissions
    code: str
    error: str


class SetPermsResponse(TypedDict, total=False):
    """SET_PERMS (0x41) response."""

    success: bool
    agent_id: int
    permissions: Permissions
    enforcement: str
    note: str
    code: str
    error: str


class HttpResponse(TypedDict, total=False):
    """HTTP (0x50) response."""

    success: bool
    status_code: int
    headers: Dict[str, str]
    body: str
    body_encoding: str
    truncated: bool
    url: str
    redirects: int
    code: str
    error: str


#: Either an error or a list (LIST's success answer is a JSON array).
AgentList = Union[List[AgentInfo], KernelError]
