"""Shared test support: a real kernel process, a probe for landed ops, loopback servers.

The kernel is started the way a user starts it:
``$AGENTOS_DENO run -A $AGENTOS_REPO/main.ts kernel --socket <tmp>/k.sock --state-dir <tmp>/state``.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional

from agentos import OPS, AgentOSClient, Op
from agentos.protocol import HEADER_LEN, MAGIC, encode_header

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.environ.get("AGENTOS_REPO") or os.path.abspath(os.path.join(HERE, "..", "..", ".."))
DENO = os.environ.get("AGENTOS_DENO") or shutil.which("deno") or "deno"
PYTHON_SDK = os.path.join(REPO, "sdk", "python")


class Kernel:
    """A kernel process on a private temporary socket and state directory."""

    def __init__(self, env: Optional[Dict[str, str]] = None, args: Optional[List[str]] = None):
        self.dir = tempfile.mkdtemp(prefix="aospy")
        self.socket = os.path.join(self.dir, "k.sock")
        self.state_dir = os.path.join(self.dir, "state")
        self.log_path = os.path.join(self.dir, "kernel.log")
        self._log = open(self.log_path, "wb")
        full_env = dict(os.environ)
        full_env.pop("AGENTOS_SOCKET", None)
        full_env.update(env or {})
        self.env = full_env
        self.process = subprocess.Popen(
            [
                DENO,
                "run",
                "-A",
                os.path.join(REPO, "main.ts"),
                "kernel",
                "--socket",
                self.socket,
                "--state-dir",
                self.state_dir,
                *(args or []),
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=full_env,
        )
        self._ops: Dict[int, bool] = {}
        try:
            self._wait_ready(60.0)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, limit: float) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the kernel exited at start:\n{self.logs()}")
            if probe(self.socket):
                break
            time.sleep(0.05)
        else:
            raise RuntimeError(f"the kernel did not answer within {limit} s:\n{self.logs()}")
        # The socket may answer before the kernel has finished starting (services such as the
        # agent supervisor start after the listener); "kernel listening" is logged at the end.
        settle = time.monotonic() + 10.0
        while "kernel listening" not in self.logs() and time.monotonic() < settle:
            time.sleep(0.02)

    def logs(self) -> str:
        """Everything the kernel has logged so far."""
        self._log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def client(self, timeout: Optional[float] = 60.0) -> AgentOSClient:
        """A new client connection (the caller closes it)."""
        return AgentOSClient(self.socket, timeout=timeout)

    def has_op(self, name: str) -> bool:
        """True if this kernel serves op ``name``. Probed once per op with an invalid-JSON
        payload, which has no side effects: a served op answers INVALID_MSG, an unknown op
        NOT_FOUND."""
        code = OPS[name]
        if code not in self._ops:
            with self.client() as c:
                r = c.call(code, b"{").json()
            self._ops[code] = not (
                r.get("success") is False
                and r.get("code") == "NOT_FOUND"
                and "unknown op" in str(r.get("error"))
            )
        return self._ops[code]

    def require(self, case: unittest.TestCase, *names: str) -> None:
        """Skip ``case`` with a reason unless every op in ``names`` has landed."""
        missing = [n for n in names if not self.has_op(n)]
        if missing:
            case.skipTest(f"op {', '.join(missing)} not served by this kernel yet (NOT_FOUND)")

    def stop(self) -> int:
        """SIGTERM the kernel, wait for it (SIGKILL after 20 s), remove its files."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        return self.process.returncode


def probe(path: str, timeout: float = 1.0) -> bool:
    """True if something answers a NOOP frame with a valid frame on ``path``."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        s.sendall(encode_header(Op.NOOP, 4) + b"ping")
        buf = b""
        while len(buf) < HEADER_LEN + 4:
            chunk = s.recv(HEADER_LEN + 4 - len(buf))
            if not chunk:
                return False
            buf += chunk
        return struct.unpack_from("<I", buf)[0] == MAGIC and buf[HEADER_LEN:] == b"ping"
    except OSError:
        return False
    finally:
        s.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class LoopbackHTTP:
    """A tiny HTTP server on 127.0.0.1 that records requests; subclasses answer them."""

    def __init__(self) -> None:
        self.requests: List[Dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                record = {
                    "method": self.command,
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body,
                }
                outer.requests.append(record)
                status, headers, payload = outer.answer(record)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, request: Dict[str, Any]) -> Any:
        """(status, headers, body bytes) for ``request``."""
        body = json.dumps(
            {
                "method": request["method"],
                "path": request["path"],
                "body": request["body"].decode("utf-8", "replace"),
                "x_test": request["headers"].get("x-test"),
            }
        ).encode()
        return 200, {"content-type": "application/json"}, body

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


FAKE_KEY = "sk-ant-test-fake-key-0123456789"


class FakeAnthropic(LoopbackHTTP):
    """A fake Anthropic Messages API (``POST /v1/messages``): answers
    ``"fake answer: <last user text>"`` and records each request it got."""

    def answer(self, request: Dict[str, Any]) -> Any:
        headers = request["headers"]
        if FAKE_KEY not in (headers.get("x-api-key"), headers.get("authorization", "")[7:]):
            err = {"type": "error", "error": {"type": "authentication_error", "message": "bad key"}}
            return 401, {"content-type": "application/json"}, json.dumps(err).encode()
        if request["method"] != "POST" or not request["path"].startswith("/v1/messages"):
            return 404, {"content-type": "application/json"}, b'{"type":"error","error":{}}'
        body = json.loads(request["body"] or b"{}")
        last = body.get("messages", [{}])[-1].get("content", "")
        if isinstance(last, list):
            last = " ".join(b.get("text", "") for b in last if b.get("type") == "text")
        message = {
            "id": "msg_fake_0001",
            "type": "message",
            "role": "assistant",
            "model": body.get("model", "fake-model"),
            "content": [{"type": "text", "text": f"fake answer: {last}"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 11, "output_tokens": 7},
        }
        return 200, {"content-type": "application/json"}, json.dumps(message).encode()

    def env(self) -> Dict[str, str]:
        """Environment that points a kernel at this fake."""
        return {"ANTHROPIC_BASE_URL": self.url, "ANTHROPIC_API_KEY": FAKE_KEY}

    @staticmethod
    def user_text(request: Dict[str, Any]) -> str:
        """The text of the last user message of a recorded Messages request."""
        content = request["messages"][-1]["content"]
        if isinstance(content, str):
            return content
        return " ".join(b.get("text", "") for b in content if b.get("type") == "text")

    def message_requests(self) -> List[Dict[str, Any]]:
        """The parsed JSON bodies of the Messages requests received so far."""
        return [
            json.loads(r["body"]) for r in self.requests if r["path"].startswith("/v1/messages")
        ]
