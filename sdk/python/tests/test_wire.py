"""Wire-level tests of the Python client against scripted Unix-socket peers (no kernel):
exact header bytes, responses split across reads, corrupt frames, timeouts, connection
failures, and the client-side payload cap."""
from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import tempfile
import threading
import time
import unittest
from typing import Callable, List, Optional

from agentos import (
    MAX_PAYLOAD,
    AgentOSClient,
    AgentOSConnectionError,
    AgentOSProtocolError,
    Op,
    PayloadTooLargeError,
)
from agentos.protocol import HEADER_LEN, MAGIC, decode_header, encode_header

Script = Callable[[socket.socket, List[bytes]], None]


def read_frame(conn: socket.socket) -> Optional[bytes]:
    """Read one whole frame (header + payload) from ``conn``; None at EOF."""
    buf = b""
    while len(buf) < HEADER_LEN:
        chunk = conn.recv(HEADER_LEN - len(buf))
        if not chunk:
            return None
        buf += chunk
    need = decode_header(buf).payload_len
    while len(buf) < HEADER_LEN + need:
        chunk = conn.recv(min(65536, HEADER_LEN + need - len(buf)))
        if not chunk:
            return None
        buf += chunk
    return buf


class Peer:
    """A scripted server on a temporary Unix socket: accepts one connection and runs
    ``script(conn, received_frames)``."""

    def __init__(self, script: Script) -> None:
        self.dir = tempfile.mkdtemp(prefix="aoswire")
        self.path = os.path.join(self.dir, "peer.sock")
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        self.listener.listen(1)
        self.frames: List[bytes] = []
        self.error: Optional[BaseException] = None
        self.thread = threading.Thread(target=self._run, args=(script,), daemon=True)
        self.thread.start()

    def _run(self, script: Script) -> None:
        try:
            conn, _ = self.listener.accept()
            with conn:
                script(conn, self.frames)
        except BaseException as err:  # reported by close()
            self.error = err

    def close(self) -> None:
        self.thread.join(10)
        self.listener.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.error:
            raise self.error


def respond(conn: socket.socket, frames: List[bytes], chunks: Callable[[bytes], List[bytes]]):
    """Answer every request by echoing its payload, sent in the pieces ``chunks`` makes."""
    while True:
        frame = read_frame(conn)
        if frame is None:
            return
        frames.append(frame)
        h = decode_header(frame)
        out = encode_header(h.op, h.payload_len, agent_id=7) + frame[HEADER_LEN:]
        for piece in chunks(out):
            conn.sendall(piece)
            time.sleep(0.0005)


class WireFormat(unittest.TestCase):
    def test_sources_parse_as_python_3_9(self) -> None:
        """The package promises Python 3.9+: no newer syntax may creep in."""
        import ast

        import agentos

        root = os.path.dirname(agentos.__file__)
        for name in sorted(os.listdir(root)):
            if name.endswith(".py"):
                with open(os.path.join(root, name), encoding="utf-8") as f:
                    ast.parse(f.read(), filename=name, feature_version=(3, 9))

    def test_header_constants(self) -> None:
        self.assertEqual(HEADER_LEN, 17)
        self.assertEqual(MAGIC, 0x41474E54)
        self.assertEqual(MAX_PAYLOAD, 1_048_576)
        self.assertEqual(encode_header(Op.READ, 5)[:4], bytes([0x54, 0x4E, 0x47, 0x41]))

    def test_request_bytes_are_exact(self) -> None:
        peer = Peer(lambda c, f: respond(c, f, lambda out: [out]))
        try:
            with AgentOSClient(peer.path) as c:
                c.request(Op.KERNEL_STATUS, {"a": 1})
                c.call(Op.NOOP, b"")
        finally:
            peer.close()
        first, second = peer.frames
        payload = b'{"a":1}'
        self.assertEqual(
            first,
            b"\x54\x4e\x47\x41" + b"\x00\x00\x00\x00" + b"\xf0" + struct.pack("<Q", 7) + payload,
        )
        self.assertEqual(second, b"TNGA" + bytes(4) + b"\x00" + bytes(8))

    def test_response_split_byte_by_byte(self) -> None:
        def split(out: bytes) -> List[bytes]:
            return [out[i : i + 1] for i in range(len(out))]

        peer = Peer(lambda c, f: respond(c, f, split))
        try:
            with AgentOSClient(peer.path) as c:
                self.assertEqual(c.echo("héllo, split world"), "héllo, split world")
                r = c.call(Op.NOOP, b"abc")
                self.assertEqual((r.op, r.agent_id, r.payload), (Op.NOOP, 7, b"abc"))
                self.assertEqual(c.agent_id, 7)
        finally:
            peer.close()

    def test_large_response_in_uneven_pieces(self) -> None:
        sizes = [1, 16, 3, 65536, 7, 100_000, 13]

        def split(out: bytes) -> List[bytes]:
            pieces, i, k = [], 0, 0
            while i < len(out):
                n = sizes[k % len(sizes)]
                pieces.append(out[i : i + n])
                i, k = i + n, k + 1
            return pieces

        data = os.urandom(MAX_PAYLOAD)
        peer = Peer(lambda c, f: respond(c, f, split))
        try:
            with AgentOSClient(peer.path) as c:
                self.assertEqual(c.echo(data), data)
        finally:
            peer.close()

    def test_payload_over_max_is_refused_before_sending(self) -> None:
        peer = Peer(lambda c, f: respond(c, f, lambda out: [out]))
        try:
            with AgentOSClient(peer.path) as c:
                with self.assertRaises(PayloadTooLargeError) as ctx:
                    c.echo(b"x" * (MAX_PAYLOAD + 1))
                self.assertIn(str(MAX_PAYLOAD), str(ctx.exception))
                self.assertIsInstance(ctx.exception, ValueError)
                with self.assertRaises(PayloadTooLargeError):
                    c.write_file("big.txt", "y" * MAX_PAYLOAD)
                self.assertFalse(c.closed)
                self.assertEqual(c.echo("still fine"), "still fine")
        finally:
            peer.close()
        # Nothing of the refused payloads reached the peer.
        self.assertEqual([decode_header(f).payload_len for f in peer.frames], [10])


class CorruptPeers(unittest.TestCase):
    def run_against(self, script: Script, expected: type) -> AgentOSConnectionError:
        peer = Peer(script)
        try:
            c = AgentOSClient(peer.path, timeout=10)
            with self.assertRaises(expected) as ctx:
                c.echo("hi")
            self.assertTrue(c.closed, "the client closes a connection it cannot trust")
            with self.assertRaises(AgentOSConnectionError):
                c.echo("again")
            c.close()
        finally:
            peer.close()
        return ctx.exception

    def test_bad_magic(self) -> None:
        def script(conn: socket.socket, frames: List[bytes]) -> None:
            read_frame(conn)
            conn.sendall(struct.pack("<IIBQ", 0xDEADBEEF, 1, 0, 2) + b"hi")

        err = self.run_against(script, AgentOSProtocolError)
        self.assertIn("bad magic", str(err))

    def test_oversized_announced_length(self) -> None:
        def script(conn: socket.socket, frames: List[bytes]) -> None:
            read_frame(conn)
            conn.sendall(struct.pack("<IIBQ", MAGIC, 1, 0, 1 << 40))
            time.sleep(0.2)

        err = self.run_against(script, AgentOSProtocolError)
        self.assertIn(str(1 << 40), str(err))

    def test_wrong_op_in_answer(self) -> None:
        def script(conn: socket.socket, frames: List[bytes]) -> None:
            read_frame(conn)
            conn.sendall(encode_header(Op.READ, 2) + b"hi")

        err = self.run_against(script, AgentOSProtocolError)
        self.assertIn("READ", str(err))

    def test_close_in_the_middle_of_a_response(self) -> None:
        def script(conn: socket.socket, frames: List[bytes]) -> None:
            read_frame(conn)
            conn.sendall(encode_header(Op.NOOP, 100) + b"only part")

        err = self.run_against(script, AgentOSConnectionError)
        self.assertIn("closed the connection", str(err))
        self.assertIn("middle", str(err))

    def test_non_json_answer_to_a_json_op(self) -> None:
        def script(conn: socket.socket, frames: List[bytes]) -> None:
            read_frame(conn)
            conn.sendall(encode_header(Op.KERNEL_STATUS, 3) + b"{{{")

        peer = Peer(script)
        try:
            with AgentOSClient(peer.path) as c:
                with self.assertRaises(AgentOSProtocolError) as ctx:
                    c.status()
                self.assertIn("not JSON", str(ctx.exception))
        finally:
            peer.close()

    def test_timeout_closes_the_connection(self) -> None:
        def script(conn: socket.socket, frames: List[bytes]) -> None:
            read_frame(conn)
            time.sleep(1.0)

        peer = Peer(script)
        try:
            c = AgentOSClient(peer.path, timeout=0.2)
            with self.assertRaises(AgentOSConnectionError) as ctx:
                c.echo("slow")
            self.assertIn("timed out", str(ctx.exception))
            self.assertTrue(c.closed)
        finally:
            peer.close()

    def test_close_from_another_thread_unblocks_a_request(self) -> None:
        def script(conn: socket.socket, frames: List[bytes]) -> None:
            read_frame(conn)
            time.sleep(1.0)

        peer = Peer(script)
        try:
            c = AgentOSClient(peer.path)
            threading.Timer(0.2, c.close).start()
            started = time.monotonic()
            with self.assertRaises(AgentOSConnectionError) as ctx:
                c.echo("blocked")
            self.assertLess(time.monotonic() - started, 5.0)
            self.assertIn("closed", str(ctx.exception))
        finally:
            peer.close()


class ConnectionFailures(unittest.TestCase):
    def setUp(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="aosnone")

    def tearDown(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_no_socket_file(self) -> None:
        path = os.path.join(self.dir, "missing.sock")
        with self.assertRaises(AgentOSConnectionError) as ctx:
            AgentOSClient(path)
        msg = str(ctx.exception)
        self.assertIn(path, msg)
        self.assertIn("agentos kernel", msg)
        self.assertEqual(ctx.exception.socket_path, path)
        self.assertIsInstance(ctx.exception, ConnectionError)

    def test_stale_socket_file(self) -> None:
        path = os.path.join(self.dir, "stale.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        s.close()  # the file stays, nobody listens
        with self.assertRaises(AgentOSConnectionError) as ctx:
            AgentOSClient(path)
        self.assertIn(path, str(ctx.exception))
        self.assertIn("agentos kernel", str(ctx.exception))

    def test_default_socket_comes_from_the_environment(self) -> None:
        path = os.path.join(self.dir, "env.sock")
        old = os.environ.get("AGENTOS_SOCKET")
        os.environ["AGENTOS_SOCKET"] = path
        try:
            with self.assertRaises(AgentOSConnectionError) as ctx:
                AgentOSClient()
            self.assertIn(path, str(ctx.exception))
        finally:
            if old is None:
                del os.environ["AGENTOS_SOCKET"]
            else:
                os.environ["AGENTOS_SOCKET"] = old

    def test_default_socket_without_environment(self) -> None:
        from agentos import DEFAULT_SOCKET, default_socket

        old = os.environ.pop("AGENTOS_SOCKET", None)
        try:
            self.assertEqual(default_socket(), DEFAULT_SOCKET)
            self.assertEqual(DEFAULT_SOCKET, "/tmp/agentos.sock")
        finally:
            if old is not None:
                os.environ["AGENTOS_SOCKET"] = old

    def test_unknown_op_name_is_refused(self) -> None:
        peer = Peer(lambda c, f: respond(c, f, lambda out: [out]))
        try:
            with AgentOSClient(peer.path) as c:
                with self.assertRaises(ValueError):
                    c.call("NOT_AN_OP")
                with self.assertRaises(ValueError):
                    c.call(256)
                self.assertEqual(c.call("noop", "x").payload, b"x")
        finally:
            peer.close()


class PayloadMapping(unittest.TestCase):
    """Each method sends its op with exactly the documented JSON payload (optional fields
    only when given). The peer records the frames and answers ``{"success": true}``."""

    def setUp(self) -> None:
        def script(conn: socket.socket, frames: List[bytes]) -> None:
            while True:
                frame = read_frame(conn)
                if frame is None:
                    return
                frames.append(frame)
                h = decode_header(frame)
                body = b"[]" if h.op == Op.LIST else b'{"success":true}'
                conn.sendall(encode_header(h.op, len(body), agent_id=3) + body)

        self.peer = Peer(script)
        self.c = AgentOSClient(self.peer.path)

    def tearDown(self) -> None:
        self.c.close()
        self.peer.close()

    def sent(self) -> tuple:
        frame = self.peer.frames[-1]
        h = decode_header(frame)
        self.assertEqual(h.payload_len, len(frame) - HEADER_LEN)
        return h.op, json.loads(frame[HEADER_LEN:] or b"{}")

    def test_every_method(self) -> None:
        c = self.c
        cases = [
            (lambda: c.status(), Op.KERNEL_STATUS, {}),
            (lambda: c.shutdown(), Op.SHUTDOWN, {}),
            (lambda: c.shutdown("bye"), Op.SHUTDOWN, {"reason": "bye"}),
            (lambda: c.think("What is 2+2?"), Op.THINK, {"prompt": "What is 2+2?"}),
            (
                lambda: c.think(
                    "p",
                    image={"data": "aGk=", "mime_type": "image/png"},
                    system_instruction="s",
                    thinking_level="high",
                    temperature=0.5,
                    model="m",
                    max_tokens=9,
                ),
                Op.THINK,
                {
                    "prompt": "p",
                    "image": {"data": "aGk=", "mime_type": "image/png"},
                    "system_instruction": "s",
                    "thinking_level": "high",
                    "temperature": 0.5,
                    "model": "m",
                    "max_tokens": 9,
                },
            ),
            (lambda: c.exec("ls -la"), Op.EXEC, {"command": "ls -la"}),
            (
                lambda: c.exec("cat", cwd="/tmp", timeout=5, env={"A": "b"}, stdin="in"),
                Op.EXEC,
                {"command": "cat", "cwd": "/tmp", "timeout": 5, "env": {"A": "b"}, "stdin": "in"},
            ),
            (lambda: c.read_file("/tmp/test.txt"), Op.READ, {"path": "/tmp/test.txt"}),
            (
                lambda: c.read_file("f", offset=1, length=2, encoding="base64"),
                Op.READ,
                {"path": "f", "offset": 1, "length": 2, "encoding": "base64"},
            ),
            (
                lambda: c.write_file("/tmp/out.txt", "data"),
                Op.WRITE,
                {"path": "/tmp/out.txt", "content": "data"},
            ),
            (
                lambda: c.write_file("f", "x", mode="append", mkdirs=True),
                Op.WRITE,
                {"path": "f", "content": "x", "mode": "append", "mkdirs": True},
            ),
            (
                lambda: c.write_file("b", b"\x00\xff"),
                Op.WRITE,
                {"path": "b", "content": "AP8=", "encoding": "base64"},
            ),
            (
                lambda: c.spawn("worker", "print('hi')"),
                Op.SPAWN,
                {"name": "worker", "script": "print('hi')"},
            ),
            (
                lambda: c.spawn(
                    None,
                    "w.ts",
                    level="sandboxed",
                    sandboxed=True,
                    network=("a.example.com",),
                    limits={"memory_mb": 64},
                    args=["x"],
                    env={"K": "v"},
                    restart_policy="on-failure",
                    max_restarts=2,
                    restart_window=60000,
                ),
                Op.SPAWN,
                {
                    "script": "w.ts",
                    "level": "sandboxed",
                    "sandboxed": True,
                    "network": ["a.example.com"],
                    "limits": {"memory_mb": 64},
                    "args": ["x"],
                    "env": {"K": "v"},
                    "restart_policy": "on-failure",
                    "max_restarts": 2,
                    "restart_window": 60000,
                },
            ),
            (lambda: c.spawn("n", "s", network=True), Op.SPAWN, {"name": "n", "script": "s", "network": True}),
            (lambda: c.kill(name="worker"), Op.KILL, {"name": "worker"}),
            (lambda: c.kill(id=4), Op.KILL, {"id": 4}),
            (lambda: c.kill(5), Op.KILL, {"id": 5}),
            (lambda: c.list_agents(), Op.LIST, {}),
            (lambda: c.register_name("orchestrator"), Op.REGISTER, {"name": "orchestrator"}),
            (
                lambda: c.send_message({"task": "go"}, to_name="worker"),
                Op.SEND,
                {"to_name": "worker", "message": {"task": "go"}},
            ),
            (lambda: c.send_message(None, to=2), Op.SEND, {"to": 2, "message": None}),
            (lambda: c.send_message(1, "w"), Op.SEND, {"to_name": "w", "message": 1}),
            (lambda: c.recv_messages(), Op.RECV, {}),
            (
                lambda: c.recv_messages(10, wait=True, timeout_ms=500),
                Op.RECV,
                {"max": 10, "wait": True, "timeout_ms": 500},
            ),
            (lambda: c.broadcast({"event": "done"}), Op.BROADCAST, {"message": {"event": "done"}}),
            (
                lambda: c.broadcast("x", include_self=True),
                Op.BROADCAST,
                {"message": "x", "include_self": True},
            ),
            (lambda: c.get_permissions(), Op.GET_PERMS, {}),
            (lambda: c.get_permissions(9), Op.GET_PERMS, {"agent_id": 9}),
            (lambda: c.set_permissions(level="sandboxed"), Op.SET_PERMS, {"level": "sandboxed"}),
            (
                lambda: c.set_permissions(7, permissions={"can_exec": False}),
                Op.SET_PERMS,
                {"agent_id": 7, "permissions": {"can_exec": False}},
            ),
            (
                lambda: c.http("https://api.example.com/data"),
                Op.HTTP,
                {"url": "https://api.example.com/data"},
            ),
            (
                lambda: c.http("http://h/", method="POST", headers={"a": "b"}, body="x", timeout=3),
                Op.HTTP,
                {"url": "http://h/", "method": "POST", "headers": {"a": "b"}, "body": "x", "timeout": 3},
            ),
        ]
        for call, op, payload in cases:
            with self.subTest(op=op, payload=payload):
                result = call()
                self.assertEqual(self.sent(), (op, payload))
                if op == Op.LIST:
                    self.assertEqual(result, [])
                else:
                    self.assertEqual(result, {"success": True})

    def test_exit_closes_the_client(self) -> None:
        self.assertEqual(self.c.exit(), {"success": True})
        self.assertEqual(self.sent(), (Op.EXIT, {}))
        self.assertTrue(self.c.closed)

    def test_missing_targets_are_refused_client_side(self) -> None:
        with self.assertRaises(TypeError):
            self.c.kill()
        with self.assertRaises(TypeError):
            self.c.send_message("x")
        with self.assertRaises(ValueError):
            self.c.write_file("f", b"x", encoding="utf8")
        with self.assertRaises(ValueError):
            self.c.request(Op.KERNEL_STATUS, {"bad": float("nan")})
        self.assertEqual(self.peer.frames, [])


if __name__ == "__main__":
    unittest.main()
