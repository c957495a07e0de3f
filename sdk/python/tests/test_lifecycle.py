"""Kernel lifecycle through the Python client: SHUTDOWN by an unrestricted caller stops the
kernel cleanly; a caller below unrestricted is refused. Each test starts its own kernel."""
from __future__ import annotations

import os
import subprocess
import unittest

from agentos import AgentOSConnectionError, is_error

from .support import Kernel


class Shutdown(unittest.TestCase):
    def test_shutdown_stops_the_kernel(self) -> None:
        k = Kernel()
        try:
            with k.client() as c:
                r = c.shutdown("python test")
                self.assertEqual(r, {"success": True, "stopping": True})
            try:
                code = k.process.wait(30)
            except subprocess.TimeoutExpired:
                self.fail(f"the kernel is still running after SHUTDOWN:\n{k.logs()}")
            self.assertEqual(code, 0, k.logs())
            self.assertFalse(os.path.exists(k.socket), "the socket file is removed")
            self.assertIn("python test", k.logs())
            with self.assertRaises(AgentOSConnectionError) as ctx:
                k.client()
            self.assertIn("agentos kernel", str(ctx.exception))
        finally:
            k.stop()

    def test_shutdown_refused_below_unrestricted(self) -> None:
        k = Kernel(args=["--client-level", "standard"])
        try:
            with k.client() as c:
                self.assertEqual(c.status()["level"], "standard")
                r = c.shutdown()
                self.assertTrue(is_error(r), r)
                self.assertEqual(r["code"], "PERMISSION_DENIED")
                self.assertTrue(r["error"].startswith("Permission denied"), r["error"])
                self.assertEqual(c.echo("still here"), "still here")
            self.assertIsNone(k.process.poll(), "a refused SHUTDOWN leaves the kernel running")
        finally:
            k.stop()


if __name__ == "__main__":
    unittest.main()
