#!/usr/bin/env python3
"""Drive an AgentOS kernel from outside, with the Python SDK.

    deno task start &                                  # a kernel on /tmp/agentos.sock
    PYTHONPATH=sdk/python python3 examples/drive_kernel.py [--socket PATH]

Shows the kernel's status, echoes a string, writes a file into this client's workspace and
reads it back, runs a command, lists the agents and prints this client's permission level.
Exit code 0 on success, 1 if the kernel refused something, 2 if no kernel answered.
"""
from __future__ import annotations

import argparse
import os
import sys

try:
    from agentos import AgentOSClient, AgentOSConnectionError, AgentOSKernelError, raise_for_error
except ImportError:  # run from a checkout without PYTHONPATH: use the SDK next door
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sdk", "python"))
    from agentos import AgentOSClient, AgentOSConnectionError, AgentOSKernelError, raise_for_error


def main(argv: list) -> int:
    parser = argparse.ArgumentParser(description="Drive an AgentOS kernel from Python.")
    parser.add_argument("--socket", help="kernel socket (default: $AGENTOS_SOCKET or /tmp/agentos.sock)")
    args = parser.parse_args(argv)

    try:
        with AgentOSClient(args.socket) as c:
            status = raise_for_error(c.status())
            print(f"kernel {status['version']} (pid {status['pid']}) on {status['socket']}, "
                  f"up {status['uptime_ms']} ms, {status['connections']} connection(s)")
            print(f"I am identity {status['agent_id']} at level {status['level']}")

            print(f"echo: {c.echo('hello, kernel')}")

            text = "written by drive_kernel.py\n"
            w = raise_for_error(c.write_file("drive_kernel/hello.txt", text, mkdirs=True))
            print(f"wrote {w['bytes_written']} bytes to drive_kernel/hello.txt (in my workspace)")
            r = raise_for_error(c.read_file("drive_kernel/hello.txt"))
            print(f"read back {r['size']} bytes: {r['content'].strip()!r}")

            e = raise_for_error(c.exec("echo $((6 * 7)) on $(uname -s)"))
            print(f"exec: exit {e['exit_code']}, stdout {e['stdout'].strip()!r}")

            agents = raise_for_error(c.list_agents())
            print(f"{len(agents)} agent(s)")
            for a in agents:
                print(f"  {a['id']:>4}  {a['name']:<24} {a['state']:<10} pid {a.get('pid')}")

            perms = raise_for_error(c.get_permissions())["permissions"]
            rights = [k[4:] for k, v in sorted(perms.items()) if k.startswith("can_") and v]
            print(f"permissions: level {perms['level']}, can {', '.join(rights) or 'nothing'}")
    except AgentOSConnectionError as err:
        print(f"drive_kernel: {err}", file=sys.stderr)
        return 2
    except AgentOSKernelError as err:
        print(f"drive_kernel: the kernel refused: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
