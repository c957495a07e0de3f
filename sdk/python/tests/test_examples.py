"""The examples in ``examples/`` run against a live kernel, the way the README shows.

The THINK example talks to a fake Anthropic Messages API on loopback: the kernel is started
with ``ANTHROPIC_BASE_URL`` and ``ANTHROPIC_API_KEY`` pointing at it. Examples whose syscalls
this kernel does not serve yet skip with the reason.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
import unittest
import uuid
from typing import List

from .support import DENO, PYTHON_SDK, REPO, FakeAnthropic, Kernel

EXAMPLES = os.path.join(REPO, "examples")

kernel: Kernel
fake_llm: FakeAnthropic


def setUpModule() -> None:
    global kernel, fake_llm
    fake_llm = FakeAnthropic()
    try:
        kernel = Kernel(env=fake_llm.env())
    except BaseException:
        fake_llm.close()
        raise


def tearDownModule() -> None:
    try:
        kernel.stop()
    finally:
        fake_llm.close()


def run(args: List[str], timeout: float = 180) -> subprocess.CompletedProcess:
    """Run an example as a user would, with ``AGENTOS_SOCKET`` naming the test kernel."""
    env = dict(os.environ)
    env["AGENTOS_SOCKET"] = kernel.socket
    env["PYTHONPATH"] = PYTHON_SDK
    env.pop("ANTHROPIC_API_KEY", None)  # the key lives in the kernel only
    return subprocess.run(
        args,
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class Examples(unittest.TestCase):
    def explain(self, p: subprocess.CompletedProcess) -> str:
        return f"exit {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}\nkernel:\n{kernel.logs()[-3000:]}"

    def test_drive_kernel_py(self) -> None:
        kernel.require(self, "READ", "WRITE", "EXEC", "LIST", "GET_PERMS")
        p = run([sys.executable, os.path.join(EXAMPLES, "drive_kernel.py")])
        self.assertEqual(p.returncode, 0, self.explain(p))
        out = p.stdout
        self.assertIn(f"on {kernel.socket}", out)
        self.assertIn("echo: hello, kernel", out)
        self.assertIn("read back 27 bytes: 'written by drive_kernel.py'", out)
        self.assertIn("exec: exit 0, stdout '42 on Linux'", out)
        self.assertIn("permissions: level unrestricted", out)

    def test_drive_kernel_py_without_a_kernel(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = PYTHON_SDK
        missing = os.path.join(kernel.dir, "no-such.sock")
        p = subprocess.run(
            [sys.executable, os.path.join(EXAMPLES, "drive_kernel.py"), "--socket", missing],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.assertEqual(p.returncode, 2, self.explain(p))
        self.assertIn(missing, p.stderr)
        self.assertIn("agentos kernel", p.stderr)

    def test_orchestrator_ts(self) -> None:
        kernel.require(self, "SPAWN", "KILL", "REGISTER", "SEND", "RECV")
        p = run([DENO, "run", "-A", os.path.join(EXAMPLES, "orchestrator.ts"), "3", "100000"])
        self.assertEqual(p.returncode, 0, self.explain(p))
        self.assertIn("primes below 100000: 9592 (3/3 workers answered)", p.stdout)
        self.assertIn("every worker's sandbox held: true", p.stdout)
        self.assertEqual(p.stdout.count("(id "), 3, p.stdout)

    def test_think_agent_ts_as_a_client(self) -> None:
        kernel.require(self, "THINK")
        before = len(fake_llm.message_requests())
        p = run([DENO, "run", "-A", os.path.join(EXAMPLES, "think_agent.ts"), "What is 2+2?"])
        self.assertEqual(p.returncode, 0, self.explain(p))
        self.assertEqual(p.stdout.strip(), "fake answer: What is 2+2?")
        self.assertIn("18 tokens", p.stderr)
        sent = fake_llm.message_requests()[before:]
        self.assertEqual(len(sent), 1)
        system = sent[0]["system"]
        text = system if isinstance(system, str) else " ".join(b["text"] for b in system)
        self.assertIn("concise assistant", text)

    def test_think_agent_ts_with_agentos_run(self) -> None:
        kernel.require(self, "THINK", "SPAWN", "LIST")
        before = len(fake_llm.message_requests())
        script = os.path.join(EXAMPLES, "think_agent.ts")
        main = os.path.join(REPO, "main.ts")
        p = run([DENO, "run", "-A", main, "run", script, "--", "What", "is", "2+2?"])
        self.assertEqual(p.returncode, 0, self.explain(p))
        self.assertIn("fake answer: What is 2+2?", p.stdout)
        sent = fake_llm.message_requests()[before:]
        self.assertEqual([fake_llm.user_text(s) for s in sent], ["What is 2+2?"])

    def test_think_agent_ts_as_a_spawned_agent(self) -> None:
        kernel.require(self, "THINK", "SPAWN", "LIST")
        before = len(fake_llm.message_requests())
        name = f"thinker-{uuid.uuid4().hex[:8]}"
        with kernel.client() as c:
            r = c.spawn(
                name, os.path.join(EXAMPLES, "think_agent.ts"), args=["Why", "is", "the", "sky", "blue?"]
            )
            self.assertIs(r.get("success"), True, r)
            deadline = time.monotonic() + 120
            while True:
                agent = [a for a in c.list_agents() if a["name"] == name]
                if agent and agent[0]["state"] in ("exited", "failed", "killed"):
                    break
                if time.monotonic() > deadline:
                    self.fail(f"the agent did not finish: {agent}\n{kernel.logs()[-3000:]}")
                time.sleep(0.1)
        self.assertEqual(agent[0]["exit_code"], 0, agent)
        sent = fake_llm.message_requests()[before:]
        self.assertEqual(len(sent), 1)
        self.assertEqual(fake_llm.user_text(sent[0]), "Why is the sky blue?")


if __name__ == "__main__":
    unittest.main()
