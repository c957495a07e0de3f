"""The Python client against a live kernel: every method of the spec's Python SDK.

One kernel (pointed at a fake Anthropic API on loopback) serves the whole module. Tests of
syscalls this kernel does not serve yet skip with the reason (the kernel answers NOT_FOUND).
"""
from __future__ import annotations

import base64
import os
import threading
import time
import unittest
import uuid
from typing import Any, List, Optional

from agentos import (
    MAX_PAYLOAD,
    AgentOSClient,
    AgentOSConnectionError,
    AgentOSKernelError,
    Op,
    PayloadTooLargeError,
    is_error,
    raise_for_error,
)

from .support import FakeAnthropic, Kernel, LoopbackHTTP

kernel: Kernel
fake_llm: FakeAnthropic
web: LoopbackHTTP


def setUpModule() -> None:
    global kernel, fake_llm, web
    fake_llm = FakeAnthropic()
    web = LoopbackHTTP()
    try:
        kernel = Kernel(env=fake_llm.env())
    except BaseException:
        fake_llm.close()
        web.close()
        raise


def tearDownModule() -> None:
    try:
        kernel.stop()
    finally:
        fake_llm.close()
        web.close()


def unique(prefix: str) -> str:
    """A name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class ClientTest(unittest.TestCase):
    """Opens ``self.c`` on the module's kernel; ``self.more()`` opens further clients."""

    ops: tuple = ()

    def setUp(self) -> None:
        kernel.require(self, *self.ops)
        self._clients: List[AgentOSClient] = []
        # Registered first, so it runs after every other cleanup (which may still need a client).
        self.addCleanup(self._close_clients)
        self.c = self.more()

    def more(self) -> AgentOSClient:
        c = kernel.client()
        self._clients.append(c)
        return c

    def _close_clients(self) -> None:
        for c in self._clients:
            c.close()

    def assertOk(self, r: Any) -> Any:
        self.assertIsInstance(r, dict)
        self.assertIs(r.get("success"), True, f"expected success, got {r!r}")
        return r

    def assertKernelError(self, r: Any, code: Optional[str] = None) -> Any:
        self.assertIsInstance(r, dict)
        self.assertIs(r.get("success"), False, f"expected an error, got {r!r}")
        self.assertIsInstance(r.get("error"), str)
        self.assertTrue(r["error"])
        if code is not None:
            self.assertEqual(r.get("code"), code, r)
        self.assertTrue(is_error(r))
        return r


# --------------------------------------------------------------------------------- core


class Core(ClientTest):
    def test_status(self) -> None:
        s = self.assertOk(self.c.status())
        self.assertIsInstance(s["version"], str)
        self.assertEqual(s["pid"], kernel.process.pid)
        self.assertEqual(s["socket"], kernel.socket)
        self.assertGreaterEqual(s["uptime_ms"], 0)
        self.assertGreaterEqual(s["connections"], 1)
        self.assertEqual(s["level"], "unrestricted")
        self.assertEqual(s["agent_id"], self.c.agent_id)

    def test_each_connection_has_its_own_id(self) -> None:
        other = self.more()
        a, b = self.c.status()["agent_id"], other.status()["agent_id"]
        self.assertNotEqual(a, b)
        self.assertEqual((self.c.agent_id, other.agent_id), (a, b))

    def test_echo(self) -> None:
        self.assertEqual(self.c.echo("ping"), "ping")
        self.assertEqual(self.c.echo("héllo wörld ✓"), "héllo wörld ✓")
        self.assertEqual(self.c.echo(""), "")
        self.assertEqual(self.c.echo(b"\x00\xff\x01"), b"\x00\xff\x01")

    def test_echo_of_about_a_megabyte(self) -> None:
        data = os.urandom(1_000_000)
        self.assertEqual(self.c.echo(data), data)
        text = "x" * MAX_PAYLOAD
        self.assertEqual(self.c.echo(text), text)

    def test_payload_over_the_max_is_refused_client_side(self) -> None:
        with self.assertRaises(PayloadTooLargeError):
            self.c.echo(b"z" * (MAX_PAYLOAD + 1))
        # Nothing was sent: the connection is intact.
        self.assertEqual(self.c.echo("after"), "after")
        self.assertOk(self.c.status())

    def test_call_raw(self) -> None:
        r = self.c.call(Op.NOOP, b"raw")
        self.assertEqual((r.op, r.payload), (Op.NOOP, b"raw"))
        self.assertEqual(r.agent_id, self.c.agent_id)
        self.assertEqual(self.c.call("noop", "text").text(), "text")
        s = self.c.call("KERNEL_STATUS", {}).json()
        self.assertOk(s)
        self.assertOk(self.c.call(0xF0).json())  # empty payload means {}
        self.assertOk(self.c.request("KERNEL_STATUS"))

    def test_kernel_errors_come_back_as_dicts(self) -> None:
        r = self.assertKernelError(self.c.call(0x99, b"{}").json(), "NOT_FOUND")
        self.assertIn("0x99", r["error"])
        self.assertKernelError(self.c.call(Op.KERNEL_STATUS, b"{not json").json(), "INVALID_MSG")
        r = self.assertKernelError(self.c.request(Op.KERNEL_STATUS, {"bogus": 1}), "INVALID_MSG")
        self.assertIn("bogus", r["error"])
        # The connection stays usable after kernel-level errors.
        self.assertEqual(self.c.echo("ok"), "ok")

    def test_raise_for_error(self) -> None:
        ok = self.c.status()
        self.assertIs(raise_for_error(ok), ok)
        with self.assertRaises(AgentOSKernelError) as ctx:
            raise_for_error(self.c.call(0x98).json())
        self.assertEqual(ctx.exception.code, "NOT_FOUND")
        self.assertIn("NOT_FOUND", str(ctx.exception))

    def test_threads_share_one_client(self) -> None:
        errors: List[str] = []

        def worker(n: int) -> None:
            for i in range(50):
                msg = f"thread {n} message {i} " + "p" * (n * 997)
                got = self.c.echo(msg)
                if got != msg:
                    errors.append(f"{n}/{i}: got {got[:40]!r}")

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        self.assertEqual(self.c.echo("done"), "done")

    def test_default_socket_from_environment(self) -> None:
        old = os.environ.get("AGENTOS_SOCKET")
        os.environ["AGENTOS_SOCKET"] = kernel.socket
        try:
            with AgentOSClient() as c:
                self.assertEqual(c.socket_path, kernel.socket)
                self.assertEqual(c.status()["socket"], kernel.socket)
        finally:
            if old is None:
                del os.environ["AGENTOS_SOCKET"]
            else:
                os.environ["AGENTOS_SOCKET"] = old

    def test_context_manager_closes(self) -> None:
        with AgentOSClient(kernel.socket) as c:
            self.assertEqual(c.echo("in"), "in")
        self.assertTrue(c.closed)
        with self.assertRaises(AgentOSConnectionError) as ctx:
            c.echo("out")
        self.assertIn("closed", str(ctx.exception))

    def test_exit(self) -> None:
        c = self.more()
        r = self.assertOk(c.exit())
        self.assertEqual(r["agent_id"], c.agent_id)
        self.assertTrue(c.closed)
        with self.assertRaises(AgentOSConnectionError):
            c.status()


# --------------------------------------------------------------------------------- permissions


class Permissions(ClientTest):
    ops = ("GET_PERMS", "SET_PERMS")

    def test_get_permissions(self) -> None:
        r = self.assertOk(self.c.get_permissions())
        p = r["permissions"]
        self.assertEqual(p["level"], "unrestricted")
        for right in ("can_exec", "can_read", "can_write", "can_think", "can_spawn", "can_http"):
            self.assertIs(p[right], True, right)
        self.assertEqual(set(p["filesystem"]), {"read", "write", "blocked"})
        self.assertIn("max_tokens", p["llm"])
        self.assertIsInstance(p["max_exec_time_ms"], int)
        for key in ("exec", "blocked_commands", "network"):
            self.assertIsInstance(p[key], list)

    def test_lower_own_level_then_no_way_back(self) -> None:
        c = self.more()
        r = self.assertOk(c.set_permissions(level="readonly"))
        self.assertEqual(r["agent_id"], c.agent_id)
        p = c.get_permissions()["permissions"]
        self.assertEqual(p["level"], "readonly")
        self.assertIs(p["can_write"], False)
        r = self.assertKernelError(c.set_permissions(level="unrestricted"), "PERMISSION_DENIED")
        self.assertTrue(r["error"].startswith("Permission denied"), r["error"])
        self.assertEqual(c.get_permissions()["permissions"]["level"], "readonly")
        # Other connections are untouched.
        self.assertEqual(self.c.get_permissions()["permissions"]["level"], "unrestricted")

    def test_partial_permissions_record(self) -> None:
        c = self.more()
        self.assertOk(c.set_permissions(permissions={"can_exec": False}))
        p = c.get_permissions()["permissions"]
        self.assertIs(p["can_exec"], False)
        self.assertIs(p["can_read"], True)

    def test_set_permissions_of_another_identity(self) -> None:
        other = self.more()
        other.status()
        r = self.assertOk(self.c.set_permissions(other.agent_id, level="minimal"))
        self.assertEqual(r["agent_id"], other.agent_id)
        self.assertEqual(other.get_permissions()["permissions"]["level"], "minimal")
        seen = self.assertOk(self.c.get_permissions(other.agent_id))
        self.assertEqual((seen["agent_id"], seen["permissions"]["level"]), (other.agent_id, "minimal"))
        # minimal cannot touch anyone else
        self.assertKernelError(other.set_permissions(self.c.agent_id, level="minimal"))


# --------------------------------------------------------------------------------- files


class Files(ClientTest):
    ops = ("READ", "WRITE")

    def test_write_then_read_in_workspace(self) -> None:
        name = f"{unique('notes')}/hello.txt"
        w = self.assertOk(self.c.write_file(name, "hello ✓\n", mkdirs=True))
        self.assertEqual(w["bytes_written"], len("hello ✓\n".encode()))
        r = self.assertOk(self.c.read_file(name))
        self.assertEqual(r["content"], "hello ✓\n")
        self.assertEqual(r["size"], len("hello ✓\n".encode()))
        self.assertIs(r.get("truncated", False), False)

    def test_absolute_path_on_disk(self) -> None:
        path = os.path.join(kernel.dir, unique("abs") + ".txt")
        self.assertOk(self.c.write_file(path, "on disk"))
        with open(path, encoding="utf-8") as f:
            self.assertEqual(f.read(), "on disk")
        with open(path, "a", encoding="utf-8") as f:
            f.write(" and more")
        self.assertEqual(self.c.read_file(path)["content"], "on disk and more")

    def test_append_and_create(self) -> None:
        name = unique("log") + ".txt"
        self.assertOk(self.c.write_file(name, "a\n", mode="create"))
        self.assertOk(self.c.write_file(name, "b\n", mode="append"))
        self.assertEqual(self.c.read_file(name)["content"], "a\nb\n")
        self.assertKernelError(self.c.write_file(name, "c\n", mode="create"))
        self.assertEqual(self.c.read_file(name)["content"], "a\nb\n")

    def test_binary_round_trip(self) -> None:
        name = unique("blob") + ".bin"
        data = bytes(range(256)) * 4
        w = self.assertOk(self.c.write_file(name, data))
        self.assertEqual(w["bytes_written"], len(data))
        r = self.assertOk(self.c.read_file(name, encoding="base64"))
        self.assertEqual(r["encoding"], "base64")
        self.assertEqual(base64.b64decode(r["content"]), data)

    def test_page(self) -> None:
        name = unique("page") + ".txt"
        self.assertOk(self.c.write_file(name, "0123456789"))
        r = self.assertOk(self.c.read_file(name, offset=2, length=3))
        self.assertEqual(r["content"], "234")
        self.assertIs(r["truncated"], True)

    def test_missing_file(self) -> None:
        self.assertKernelError(self.c.read_file(unique("nope") + ".txt"), "NOT_FOUND")

    def test_blocked_path(self) -> None:
        r = self.assertKernelError(self.c.read_file(kernel.socket))
        self.assertIn(r["code"], ("PERMISSION_DENIED", "NOT_FOUND", "ERROR", "INVALID_MSG"))


# --------------------------------------------------------------------------------- exec


class Exec(ClientTest):
    ops = ("EXEC",)

    def test_output_and_exit_code(self) -> None:
        r = self.assertOk(self.c.exec("echo hello"))
        self.assertEqual(r["stdout"], "hello\n")
        self.assertEqual(r["stderr"], "")
        self.assertEqual(r["exit_code"], 0)
        r = self.c.exec("echo out; echo err >&2; exit 3")
        self.assertEqual((r["stdout"], r["stderr"], r["exit_code"]), ("out\n", "err\n", 3))

    def test_cwd_env_stdin(self) -> None:
        r = self.assertOk(self.c.exec("pwd", cwd=kernel.dir))
        self.assertEqual(os.path.realpath(r["stdout"].strip()), os.path.realpath(kernel.dir))
        r = self.assertOk(self.c.exec('printf %s "$AOS_TEST_VAR"', env={"AOS_TEST_VAR": "v 1"}))
        self.assertEqual(r["stdout"], "v 1")
        r = self.assertOk(self.c.exec("tr a-z A-Z", stdin="piped in"))
        self.assertEqual(r["stdout"], "PIPED IN")

    def test_timeout(self) -> None:
        started = time.monotonic()
        r = self.c.exec("sleep 30", timeout=1)
        self.assertIs(r["timed_out"], True, r)
        self.assertLess(time.monotonic() - started, 20)


# --------------------------------------------------------------------------------- http


class Http(ClientTest):
    ops = ("HTTP",)

    def test_get(self) -> None:
        r = self.assertOk(self.c.http(web.url + "/data?x=1"))
        self.assertEqual(r["status_code"], 200)
        self.assertIn('"path": "/data?x=1"', r["body"])
        self.assertEqual(web.requests[-1]["method"], "GET")

    def test_post_with_headers_and_body(self) -> None:
        r = self.assertOk(
            self.c.http(
                web.url + "/submit",
                method="POST",
                headers={"x-test": "yes", "content-type": "text/plain"},
                body="payload",
                timeout=10,
            )
        )
        self.assertEqual(r["status_code"], 200)
        seen = web.requests[-1]
        self.assertEqual((seen["method"], seen["body"]), ("POST", b"payload"))
        self.assertEqual(seen["headers"].get("x-test"), "yes")

    def test_bad_scheme(self) -> None:
        self.assertKernelError(self.c.http("file:///etc/passwd"))


# --------------------------------------------------------------------------------- agents

SLEEPER = "await new Promise((resolve) => setTimeout(resolve, 120_000));\n"


class Agents(ClientTest):
    ops = ("SPAWN", "KILL", "LIST")

    def spawn(self, prefix: str) -> Any:
        name = unique(prefix)
        r = self.assertOk(self.c.spawn(name, SLEEPER))
        self.addCleanup(self.c.kill, name=name)
        return r

    def test_spawn_list_kill_by_name(self) -> None:
        r = self.spawn("py-sleeper")
        self.assertIsInstance(r["agent_id"], int)
        self.assertIsInstance(r["pid"], int)
        self.assertEqual(r["level"], "sandboxed")
        agents = self.c.list_agents()
        self.assertIsInstance(agents, list)
        mine = [a for a in agents if a["id"] == r["agent_id"]]
        self.assertEqual(len(mine), 1, agents)
        self.assertEqual(mine[0]["name"], r["name"])
        self.assertIn(mine[0]["state"], ("starting", "running"))
        self.assertGreaterEqual(mine[0]["uptime_ms"], 0)
        k = self.c.kill(name=r["name"])
        self.assertIs(k["killed"], True, k)
        self.assertEqual(k["agent_id"], r["agent_id"])
        after = [a for a in self.c.list_agents() if a["id"] == r["agent_id"]]
        self.assertTrue(all(a["state"] in ("killed", "exited", "failed") for a in after), after)

    def test_kill_by_id(self) -> None:
        r = self.spawn("py-byid")
        k = self.c.kill(id=r["agent_id"])
        self.assertIs(k["killed"], True, k)
        self.assertEqual(k["agent_id"], r["agent_id"])

    def test_spawn_options(self) -> None:
        name = unique("py-opts")
        r = self.assertOk(
            self.c.spawn(
                name,
                SLEEPER,
                level="readonly",
                limits={"timeout_ms": 60_000},
                args=["one", "two"],
                env={"EXAMPLE_VAR": "1"},
                restart_policy="never",
            )
        )
        self.addCleanup(self.c.kill, name=name)
        self.assertEqual(r["level"], "readonly")

    def test_kill_unknown(self) -> None:
        self.assertKernelError(self.c.kill(name=unique("ghost")), "NOT_FOUND")


# --------------------------------------------------------------------------------- messaging


class Messaging(ClientTest):
    ops = ("REGISTER", "SEND", "RECV", "BROADCAST")

    def pair(self) -> Any:
        a, b = self.more(), self.more()
        na, nb = unique("py-a"), unique("py-b")
        ra = self.assertOk(a.register_name(na))
        self.assertOk(b.register_name(nb))
        self.assertEqual((ra["name"], ra["agent_id"]), (na, a.agent_id))
        return a, b, na, nb

    def test_register_send_recv(self) -> None:
        a, b, na, nb = self.pair()
        s = self.assertOk(a.send_message({"task": "go"}, to_name=nb))
        self.assertEqual(s["delivered_to"], b.agent_id)
        self.assertOk(a.send_message([1, 2, 3], to=b.agent_id))
        self.assertOk(a.send_message("by name", nb))
        r = self.assertOk(b.recv_messages())
        self.assertEqual(r["count"], 3)
        self.assertEqual([m["message"] for m in r["messages"]], [{"task": "go"}, [1, 2, 3], "by name"])
        first = r["messages"][0]
        self.assertEqual((first["from"], first["from_name"]), (a.agent_id, na))
        self.assertIsInstance(first["age_ms"], int)
        self.assertEqual(self.assertOk(b.recv_messages())["count"], 0)

    def test_order_and_max(self) -> None:
        a, b, _, nb = self.pair()
        for i in range(100):
            a.send_message(i, to_name=nb)
        got: List[int] = []
        while len(got) < 100:
            r = self.assertOk(b.recv_messages(30))
            self.assertLessEqual(r["count"], 30)
            self.assertGreater(r["count"], 0)
            got += [m["message"] for m in r["messages"]]
        self.assertEqual(got, list(range(100)))

    def test_blocking_recv(self) -> None:
        a, b, _, nb = self.pair()
        started = time.monotonic()
        r = self.assertOk(b.recv_messages(wait=True, timeout_ms=300))
        self.assertEqual(r["count"], 0)
        self.assertGreaterEqual(time.monotonic() - started, 0.25)
        threading.Timer(0.3, lambda: a.send_message("wake", to_name=nb)).start()
        r = self.assertOk(b.recv_messages(wait=True, timeout_ms=20_000))
        self.assertEqual([m["message"] for m in r["messages"]], ["wake"])

    def test_iter_messages(self) -> None:
        a, b, _, nb = self.pair()
        for i in range(3):
            a.send_message({"i": i}, to_name=nb)
        got = []
        for m in b.iter_messages(timeout_ms=5_000):
            got.append(m["message"]["i"])
            if len(got) == 3:
                break
        self.assertEqual(got, [0, 1, 2])

    def test_broadcast(self) -> None:
        a, b, _, _ = self.pair()
        r = self.assertOk(a.broadcast({"event": "done"}))
        self.assertGreaterEqual(r["delivered_count"], 1)
        self.assertIn({"event": "done"}, [m["message"] for m in b.recv_messages()["messages"]])
        self.assertEqual(a.recv_messages()["count"], 0)
        r2 = self.assertOk(a.broadcast("all", include_self=True))
        self.assertEqual(r2["delivered_count"], r["delivered_count"] + 1)
        self.assertEqual([m["message"] for m in a.recv_messages()["messages"]], ["all"])

    def test_unknown_target(self) -> None:
        self.assertKernelError(self.c.send_message("x", to_name=unique("nobody")), "NOT_FOUND")
        self.assertKernelError(self.c.send_message("x", to=999_999), "NOT_FOUND")

    def test_name_released_when_owner_leaves(self) -> None:
        name = unique("py-owner")
        first = self.more()
        self.assertOk(first.register_name(name))
        self.assertKernelError(self.more().register_name(name))
        first.close()
        second = self.more()
        deadline = time.monotonic() + 10
        while True:
            r = second.register_name(name)
            if r.get("success") or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertOk(r)


# --------------------------------------------------------------------------------- think


class Think(ClientTest):
    ops = ("THINK",)

    def test_think(self) -> None:
        before = len(fake_llm.message_requests())
        r = self.assertOk(self.c.think("What is 2+2?"))
        self.assertEqual(r["content"], "fake answer: What is 2+2?")
        self.assertEqual(r["tokens"], 18)
        self.assertEqual(r["usage"], {"input_tokens": 11, "output_tokens": 7})
        self.assertEqual(r["stop_reason"], "end_turn")
        self.assertIsInstance(r["model"], str)
        sent = fake_llm.message_requests()[before:]
        self.assertEqual(len(sent), 1)
        self.assertEqual(sent[0]["messages"][-1]["role"], "user")
        self.assertEqual(fake_llm.user_text(sent[0]), "What is 2+2?")

    def test_options_are_mapped(self) -> None:
        before = len(fake_llm.message_requests())
        pixel = base64.b64encode(bytes.fromhex(
            "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
            "1f15c4890000000d49444154789c6360000002000154a24f5f0000000049454e44ae426082"
        )).decode()
        r = self.assertOk(
            self.c.think(
                "Describe the image",
                image={"data": pixel, "mime_type": "image/png"},
                system_instruction="Be brief.",
                temperature=0.25,
                model="claude-test-model",
                max_tokens=321,
            )
        )
        self.assertEqual(r["model"], "claude-test-model")
        sent = fake_llm.message_requests()[before:][0]
        self.assertEqual(sent["model"], "claude-test-model")
        self.assertEqual(sent["max_tokens"], 321)
        self.assertEqual(sent["temperature"], 0.25)
        system = sent["system"]
        text = system if isinstance(system, str) else " ".join(b["text"] for b in system)
        self.assertEqual(text, "Be brief.")
        blocks = sent["messages"][-1]["content"]
        image = [b for b in blocks if b.get("type") == "image"]
        self.assertEqual(image[0]["source"]["data"], pixel)
        self.assertEqual(image[0]["source"]["media_type"], "image/png")

    def test_thinking_level(self) -> None:
        before = len(fake_llm.message_requests())
        self.assertOk(self.c.think("Think hard", thinking_level="low"))
        sent = fake_llm.message_requests()[before:][0]
        self.assertEqual(sent["thinking"]["type"], "enabled")
        self.assertGreater(sent["thinking"]["budget_tokens"], 0)

    def test_invalid_option(self) -> None:
        self.assertKernelError(self.c.think("x", thinking_level="enormous"), "INVALID_MSG")


if __name__ == "__main__":
    unittest.main()
