"""The AgentOS client: one Unix-socket connection to a kernel, one method per syscall."""
from __future__ import annotations

import base64
import json
import os
import socket
import threading
from typing import (
    Any,
    Dict,
    Iterator,
    List,
    NamedTuple,
    Optional,
    Sequence,
    Union,
    cast,
    overload,
)

from .errors import (
    AgentOSConnectionError,
    AgentOSKernelError,
    AgentOSProtocolError,
    PayloadTooLargeError,
)
from .protocol import (
    DEFAULT_SOCKET,
    HEADER_LEN,
    MAGIC,
    MAX_PAYLOAD,
    Op,
    decode_header,
    encode_header,
    op_code,
    op_name,
)
from .types import (
    AgentList,
    BroadcastResponse,
    ExecResponse,
    ExitResponse,
    GetPermsResponse,
    HttpResponse,
    ImageInput,
    KernelStatus,
    KillResponse,
    Limits,
    Message,
    Permissions,
    ReadResponse,
    RecvResponse,
    RegisterResponse,
    SendResponse,
    SetPermsResponse,
    ShutdownResponse,
    SpawnResponse,
    ThinkResponse,
    WriteResponse,
)

__all__ = ["AgentOSClient", "RawResponse", "default_socket", "is_error", "raise_for_error"]

PathLike = Union[str, "os.PathLike[str]"]
Payload = Union[None, bytes, bytearray, memoryview, str, Dict[str, Any], List[Any]]


def default_socket() -> str:
    """The socket the client uses when given none: ``$AGENTOS_SOCKET``, else
    ``/tmp/agentos.sock``."""
    return os.environ.get("AGENTOS_SOCKET") or DEFAULT_SOCKET


def is_error(response: Any) -> bool:
    """True if ``response`` is a kernel error dict (``success`` False and a ``code``)."""
    return (
        isinstance(response, dict)
        and response.get("success") is False
        and isinstance(response.get("code"), str)
    )


def raise_for_error(response: Any) -> Any:
    """Return ``response`` unchanged, or raise :class:`AgentOSKernelError` if it is a kernel
    error dict. Handy when an exception suits the caller better than checking ``success``."""
    if is_error(response):
        raise AgentOSKernelError(cast(Dict[str, Any], response))
    return response


class RawResponse(NamedTuple):
    """A response frame as received: the op it answers, the caller's kernel-assigned id, and
    the payload bytes."""

    op: int
    agent_id: int
    payload: bytes

    def text(self) -> str:
        """The payload decoded as UTF-8."""
        return self.payload.decode("utf-8")

    def json(self) -> Any:
        """The payload parsed as JSON (an empty payload is ``{}``).

        Raises :class:`AgentOSProtocolError` if it is not JSON.
        """
        if not self.payload:
            return {}
        try:
            return json.loads(self.payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as err:
            raise AgentOSProtocolError(
                f"the kernel answered {op_name(self.op)} with a payload that is not JSON: {err}"
            ) from err


def _fields(**fields: Any) -> Dict[str, Any]:
    """A payload dict of the given fields, leaving out those that are None."""
    return {k: v for k, v in fields.items() if v is not None}


def _encode(payload: Payload) -> bytes:
    if payload is None:
        return b""
    if isinstance(payload, (bytes, bytearray, memoryview)):
        return bytes(payload)
    if isinstance(payload, str):
        return payload.encode("utf-8")
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode(
        "utf-8"
    )


class AgentOSClient:
    """A client of one AgentOS kernel over one Unix-socket connection.

    ::

        from agentos import AgentOSClient

        with AgentOSClient() as c:
            print(c.status()["version"])
            print(c.echo("ping"))

    The connection is opened by the constructor and closed by :meth:`close` or at the end of a
    ``with`` block. One client may be shared by threads: requests are serialised by a lock,
    each getting its own response.

    Connection problems raise :class:`AgentOSConnectionError`. Errors *answered by the kernel*
    are returned, not raised: the kernel's dict with ``success: False``, ``code`` (``NOT_FOUND``,
    ``PERMISSION_DENIED``, ``INVALID_MSG``, ``TIMEOUT``, ``QUOTA_EXCEEDED``, ``ERROR``) and
    ``error``. See :func:`is_error` and :func:`raise_for_error`.
    """

    def __init__(self, socket_path: Optional[PathLike] = None, timeout: Optional[float] = None):
        """Connect to the kernel on ``socket_path`` (default ``$AGENTOS_SOCKET``, else
        ``/tmp/agentos.sock``).

        ``timeout`` (seconds, default none) bounds connecting and each response wait; when it
        passes, the connection is closed and :class:`AgentOSConnectionError` is raised. Leave
        it unset for long calls (blocking RECV, THINK, EXEC).
        """
        self._socket_path: str = os.fspath(socket_path) if socket_path is not None else ""
        if not self._socket_path:
            self._socket_path = default_socket()
        self._timeout = timeout
        self._lock = threading.Lock()
        self._closed = False
        self._agent_id: Optional[int] = None
        self._sock = self._connect()

    # ----------------------------------------------------------------- connection

    def _connect(self) -> socket.socket:
        path = self._socket_path
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self._timeout)
            sock.connect(path)
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            raise AgentOSConnectionError(
                f"no kernel on {path} — start one with `agentos kernel"
                + ("" if path == DEFAULT_SOCKET else f" --socket {path}")
                + "` (or set AGENTOS_SOCKET to the socket of a running kernel)",
                path,
            ) from None
        except PermissionError as err:
            sock.close()
            raise AgentOSConnectionError(
                f"not allowed to connect to {path} ({err.strerror}); the kernel's socket is "
                "only open to the user who started `agentos kernel`",
                path,
            ) from None
        except (OSError, ValueError) as err:
            sock.close()
            raise AgentOSConnectionError(
                f"cannot connect to {path}: {err}; is `agentos kernel` running there?", path
            ) from None
        return sock

    @property
    def socket_path(self) -> str:
        """The path of the socket this client is connected to."""
        return self._socket_path

    @property
    def agent_id(self) -> Optional[int]:
        """This connection's kernel-assigned id, known after the first response."""
        return self._agent_id

    @property
    def closed(self) -> bool:
        """True once the connection is closed (by :meth:`close`, EXIT, or a failure)."""
        return self._closed

    def close(self) -> None:
        """Close the connection. Safe to call more than once and from another thread (a
        request blocked in another thread then fails with :class:`AgentOSConnectionError`)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()

    def __enter__(self) -> "AgentOSClient":
        """``with AgentOSClient() as c:`` closes the connection at the end of the block."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the connection."""
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<AgentOSClient {self._socket_path} {state} agent_id={self._agent_id}>"

    # ----------------------------------------------------------------- transport

    def _fail(self, message: str, protocol: bool = False) -> AgentOSConnectionError:
        self.close()
        cls = AgentOSProtocolError if protocol else AgentOSConnectionError
        return cls(message, self._socket_path)

    def _recv_exact(self, n: int, what: str) -> bytes:
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            try:
                k = self._sock.recv_into(view[got:], n - got)
            except socket.timeout:
                raise self._fail(
                    f"timed out after {self._timeout} s waiting for the kernel on "
                    f"{self._socket_path} ({what}); the connection was closed"
                ) from None
            except OSError as err:
                if self._closed:
                    raise AgentOSConnectionError(
                        f"the connection to {self._socket_path} was closed", self._socket_path
                    ) from None
                raise self._fail(
                    f"lost the connection to {self._socket_path}: {err}"
                ) from None
            if k == 0:
                raise self._fail(
                    f"the kernel on {self._socket_path} closed the connection"
                    + (f" in the middle of a response ({what})" if got else "")
                )
            got += k
        return bytes(buf)

    def _roundtrip(self, op: int, payload: bytes) -> RawResponse:
        if len(payload) > MAX_PAYLOAD:
            raise PayloadTooLargeError(len(payload), MAX_PAYLOAD)
        frame = encode_header(op, len(payload)) + payload
        with self._lock:
            if self._closed:
                raise AgentOSConnectionError(
                    f"the connection to {self._socket_path} is closed", self._socket_path
                )
            try:
                self._sock.sendall(frame)
            except socket.timeout:
                raise self._fail(
                    f"timed out after {self._timeout} s sending to {self._socket_path}"
                ) from None
            except OSError as err:
                if self._closed:
                    raise AgentOSConnectionError(
                        f"the connection to {self._socket_path} was closed", self._socket_path
                    ) from None
                raise self._fail(f"lost the connection to {self._socket_path}: {err}") from None
            header = decode_header(self._recv_exact(HEADER_LEN, "header"))
            if header.magic != MAGIC:
                raise self._fail(
                    f"the kernel on {self._socket_path} sent a frame with bad magic "
                    f"0x{header.magic:08x}; the connection was closed",
                    protocol=True,
                )
            if header.payload_len > MAX_PAYLOAD:
                raise self._fail(
                    f"the kernel on {self._socket_path} announced a {header.payload_len}-byte "
                    f"payload, over the {MAX_PAYLOAD}-byte limit; the connection was closed",
                    protocol=True,
                )
            body = self._recv_exact(header.payload_len, f"{header.payload_len}-byte payload")
            if header.op != op:
                raise self._fail(
                    f"the kernel answered {op_name(op)} with a {op_name(header.op)} frame; "
                    "the connection was closed",
                    protocol=True,
                )
            self._agent_id = header.agent_id
            return RawResponse(header.op, header.agent_id, body)

    # ----------------------------------------------------------------- raw access

    def call(self, op: Union[int, str], payload: Payload = None) -> RawResponse:
        """Send any op with any payload and return the raw response frame.

        ``op`` is an opcode (``0x03``) or a name (``"READ"``). ``payload``: bytes are sent as
        they are, a str as UTF-8, a dict or list as JSON, None as an empty payload.
        Raises :class:`PayloadTooLargeError` (nothing sent) over 1 MiB.
        """
        return self._roundtrip(op_code(op), _encode(payload))

    def request(self, op: Union[int, str], payload: Optional[Dict[str, Any]] = None) -> Any:
        """Call a JSON syscall and return its parsed response (a dict, or a list for LIST).

        Kernel errors come back as the kernel's error dict.
        """
        return self.call(op, payload if payload is not None else {}).json()

    # ----------------------------------------------------------------- core

    @overload
    def echo(self, data: str) -> str: ...

    @overload
    def echo(self, data: bytes) -> bytes: ...

    def echo(self, data: Union[str, bytes]) -> Union[str, bytes]:
        """NOOP (0x00): the kernel echoes ``data`` unchanged; a str comes back as a str, bytes
        as bytes."""
        r = self.call(Op.NOOP, data)
        return r.payload.decode("utf-8") if isinstance(data, str) else r.payload

    def status(self) -> KernelStatus:
        """KERNEL_STATUS (0xF0): version, pid, uptime, socket, state directory, connection and
        identity counts, and this caller's id and level."""
        return cast(KernelStatus, self.request(Op.KERNEL_STATUS))

    def shutdown(self, reason: Optional[str] = None) -> ShutdownResponse:
        """SHUTDOWN (0xF1): stop the kernel cleanly (unrestricted callers only)."""
        return cast(ShutdownResponse, self.request(Op.SHUTDOWN, _fields(reason=reason)))

    def exit(self) -> ExitResponse:
        """EXIT (0xFF): the kernel acknowledges and closes this connection; so does the
        client."""
        try:
            return cast(ExitResponse, self.request(Op.EXIT))
        finally:
            self.close()

    # ----------------------------------------------------------------- LLM

    def think(
        self,
        prompt: str,
        *,
        image: Optional[ImageInput] = None,
        system_instruction: Optional[str] = None,
        thinking_level: Optional[str] = None,
        temperature: Optional[float] = None,
        model: Optional[str] = None,
        max_tokens: Optional[int] = None,
    ) -> ThinkResponse:
        """THINK (0x01): ask the kernel's model.

        ``image`` is ``{"data": <base64>, "mime_type": "image/png"}``; ``thinking_level`` is
        ``"low"``, ``"medium"`` or ``"high"`` (extended thinking). Returns ``content`` (the text),
        ``tokens`` (input plus output), ``model``, ``stop_reason`` and ``usage``.
        """
        return cast(
            ThinkResponse,
            self.request(
                Op.THINK,
                _fields(
                    prompt=prompt,
                    image=image,
                    system_instruction=system_instruction,
                    thinking_level=thinking_level,
                    temperature=temperature,
                    model=model,
                    max_tokens=max_tokens,
                ),
            ),
        )

    # ----------------------------------------------------------------- host

    def exec(
        self,
        command: str,
        *,
        cwd: Optional[str] = None,
        timeout: Optional[float] = None,
        env: Optional[Dict[str, str]] = None,
        stdin: Optional[str] = None,
    ) -> ExecResponse:
        """EXEC (0x02): run ``command`` with ``sh -c`` (confined per the caller's level).

        ``timeout`` is in seconds (kernel default 30, capped by the caller's
        ``max_exec_time_ms``); on expiry the whole process group is killed and ``timed_out`` is
        True. ``env`` adds environment variables, ``stdin`` is fed to the command. Returns
        ``stdout``, ``stderr``, ``exit_code``, ``timed_out`` and ``truncated``.
        """
        return cast(
            ExecResponse,
            self.request(
                Op.EXEC, _fields(command=command, cwd=cwd, timeout=timeout, env=env, stdin=stdin)
            ),
        )

    def read_file(
        self,
        path: str,
        *,
        offset: Optional[int] = None,
        length: Optional[int] = None,
        encoding: Optional[str] = None,
    ) -> ReadResponse:
        """READ (0x03): read a file (relative paths are in the caller's workspace).

        ``encoding`` is ``"utf8"`` (default) or ``"base64"`` (binary content; decode with
        ``base64.b64decode(r["content"])``). ``offset``/``length`` read a page; ``truncated``
        says whether more follows.
        """
        return cast(
            ReadResponse,
            self.request(
                Op.READ, _fields(path=path, offset=offset, length=length, encoding=encoding)
            ),
        )

    def write_file(
        self,
        path: str,
        content: Union[str, bytes],
        *,
        mode: Optional[str] = None,
        encoding: Optional[str] = None,
        mkdirs: Optional[bool] = None,
    ) -> WriteResponse:
        """WRITE (0x04): write ``content`` to ``path``.

        ``mode`` is ``"write"`` (default, atomic replace), ``"append"`` or ``"create"`` (fails if
        the file exists). Bytes are sent base64-encoded with ``encoding="base64"``. ``mkdirs``
        creates missing parent directories.
        """
        if isinstance(content, (bytes, bytearray, memoryview)):
            if encoding not in (None, "base64"):
                raise ValueError("bytes content is sent base64-encoded; leave encoding unset")
            content = base64.b64encode(bytes(content)).decode("ascii")
            encoding = "base64"
        return cast(
            WriteResponse,
            self.request(
                Op.WRITE,
                _fields(path=path, content=content, mode=mode, encoding=encoding, mkdirs=mkdirs),
            ),
        )

    def http(
        self,
        url: str,
        *,
        method: Optional[str] = None,
        headers: Optional[Dict[str, str]] = None,
        body: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> HttpResponse:
        """HTTP (0x50): make an HTTP request through the kernel (its domain allowlist applies,
        to every redirect hop too).

        ``timeout`` is in seconds (at most 600); expiry answers ``TIMEOUT``. Returns
        ``status_code``, ``headers``, ``body`` (base64 when ``body_encoding`` says so),
        ``truncated``, the final ``url`` and ``redirects``; ``success`` is True for a 2xx.
        """
        return cast(
            HttpResponse,
            self.request(
                Op.HTTP,
                _fields(url=url, method=method, headers=headers, body=body, timeout=timeout),
            ),
        )

    # ----------------------------------------------------------------- agents

    def spawn(
        self,
        name: Optional[str],
        script: str,
        *,
        level: Optional[str] = None,
        sandboxed: Optional[bool] = None,
        network: Union[None, bool, Sequence[str]] = None,
        limits: Optional[Limits] = None,
        args: Optional[Sequence[str]] = None,
        env: Optional[Dict[str, str]] = None,
        restart_policy: Optional[str] = None,
        max_restarts: Optional[int] = None,
        restart_window: Optional[int] = None,
    ) -> SpawnResponse:
        """SPAWN (0x10): start an agent, a sandboxed Deno subprocess.

        ``script`` is a path to a ``.ts``/``.js`` file (a relative path is taken in the
        caller's workspace, so pass absolute paths) or inline TypeScript (it imports the SDK as
        ``"agentos"``). ``name`` None lets the kernel pick one. ``level`` defaults to
        ``sandboxed`` (``standard`` with ``sandboxed=False``); ``network`` is True or a list of
        domains. Returns ``agent_id``, ``name``, ``pid`` and ``level``.
        """
        return cast(
            SpawnResponse,
            self.request(
                Op.SPAWN,
                _fields(
                    name=name,
                    script=script,
                    level=level,
                    sandboxed=sandboxed,
                    network=list(network) if isinstance(network, (list, tuple)) else network,
                    limits=limits,
                    args=list(args) if args is not None else None,
                    env=env,
                    restart_policy=restart_policy,
                    max_restarts=max_restarts,
                    restart_window=restart_window,
                ),
            ),
        )

    def kill(self, name: Union[None, str, int] = None, *, id: Optional[int] = None) -> KillResponse:
        """KILL (0x11): stop an agent by ``name`` or by ``id`` (an int given as ``name`` is
        taken as the id). Returns ``killed`` and ``agent_id``."""
        if isinstance(name, int) and not isinstance(name, bool) and id is None:
            name, id = None, name
        if name is None and id is None:
            raise TypeError("kill() needs name= or id=")
        return cast(KillResponse, self.request(Op.KILL, _fields(name=name, id=id)))

    def list_agents(self) -> AgentList:
        """LIST (0x12): the agents, as a list of dicts (``id``, ``name``, ``pid``, ``state``,
        ``uptime_ms``, ``level``, ``parent_id``, ``exit_code``, ``exit_reason``,
        ``restarts``); a kernel error dict if the call is refused."""
        return cast(AgentList, self.request(Op.LIST))

    # ----------------------------------------------------------------- IPC

    def register_name(self, name: str) -> RegisterResponse:
        """REGISTER (0x23): take ``name`` so others can SEND to it; released when this
        connection closes."""
        return cast(RegisterResponse, self.request(Op.REGISTER, {"name": name}))

    def send_message(
        self,
        message: Any,
        to: Union[None, int, str] = None,
        to_name: Optional[str] = None,
    ) -> SendResponse:
        """SEND (0x20): send any JSON value to the identity with id ``to`` or name ``to_name``
        (a str given as ``to`` is taken as a name). Returns ``delivered_to`` (the recipient's
        id); a full mailbox answers ``QUOTA_EXCEEDED``."""
        if isinstance(to, str) and to_name is None:
            to, to_name = None, to
        if to is None and to_name is None:
            raise TypeError("send_message() needs to= or to_name=")
        return cast(
            SendResponse,
            self.request(Op.SEND, {**_fields(to=to, to_name=to_name), "message": message}),
        )

    def recv_messages(
        self,
        max: Optional[int] = None,
        *,
        wait: Optional[bool] = None,
        timeout_ms: Optional[int] = None,
    ) -> RecvResponse:
        """RECV (0x21): take up to ``max`` messages from this identity's mailbox.

        With ``wait=True`` it blocks until a message arrives or ``timeout_ms`` passes (kernel
        default 30 s), then answers with what it has (possibly none). Returns ``count`` and
        ``messages`` (each ``from``, ``from_name``, ``message``, ``age_ms``, ``seq``).
        """
        return cast(
            RecvResponse,
            self.request(Op.RECV, _fields(max=max, wait=wait, timeout_ms=timeout_ms)),
        )

    def iter_messages(
        self, *, timeout_ms: Optional[int] = None, max: Optional[int] = None
    ) -> Iterator[Message]:
        """Yield messages forever, using blocking receives. Raises :class:`AgentOSKernelError`
        if a RECV is refused. Stop by breaking out of the loop."""
        while True:
            r = raise_for_error(self.recv_messages(max, wait=True, timeout_ms=timeout_ms))
            for m in r.get("messages", []):
                yield m

    def broadcast(self, message: Any, *, include_self: Optional[bool] = None) -> BroadcastResponse:
        """BROADCAST (0x22): send ``message`` to every live named identity (not to oneself
        unless ``include_self``). Returns ``delivered_count``."""
        return cast(
            BroadcastResponse,
            self.request(Op.BROADCAST, {"message": message, **_fields(include_self=include_self)}),
        )

    # ----------------------------------------------------------------- permissions

    def get_permissions(self, agent_id: Optional[int] = None) -> GetPermsResponse:
        """GET_PERMS (0x40): the permission record of this caller (or of ``agent_id``, one of
        its descendants) under ``permissions``: ``level``, the ``can_*`` rights,
        ``filesystem``, ``exec``, ``network``, ``llm`` quotas and usage, ..."""
        return cast(GetPermsResponse, self.request(Op.GET_PERMS, _fields(agent_id=agent_id)))

    def set_permissions(
        self,
        agent_id: Optional[int] = None,
        *,
        level: Optional[str] = None,
        permissions: Optional[Permissions] = None,
    ) -> SetPermsResponse:
        """SET_PERMS (0x41): change the permissions of ``agent_id`` (default: the caller) to a
        ``level`` or a full or partial ``permissions`` record. Never above the caller's own:
        an escalation answers ``PERMISSION_DENIED``. The answer's ``enforcement`` and ``note``
        say whether a running agent's process flags could follow the change."""
        return cast(
            SetPermsResponse,
            self.request(
                Op.SET_PERMS, _fields(agent_id=agent_id, level=level, permissions=permissions)
            ),
        )
