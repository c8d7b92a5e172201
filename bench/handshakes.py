#!/usr/bin/env python
"""Memory of an embedded server across websocket handshakes, under several settings.

Starts ``manage.py serve`` (embedded mode, a SQLite file of its own) on 127.0.0.1 once
per variant, opens 20 websockets to warm it up, then ``--rounds`` batches of
``--batch`` websockets at once, each asking for a run that does not exist (the server
accepts, says so and closes), and prints the process's resident and private (RssAnon)
memory after each batch. A variant is a set of environment variables for the server,
such as an allocator preloaded or Python's own allocator turned off:

    .venv/bin/python bench/handshakes.py
    .venv/bin/python bench/handshakes.py --variant jemalloc=LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2

It prints figures; it asserts nothing.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stream import bench_parser  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
JEMALLOC = Path("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")
NO_RUN = "00000000-0000-0000-0000-000000000000"


def memory(pid: int) -> dict[str, float]:
    """Return VmRSS and RssAnon of ``pid`` in MiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "RssAnon"):
            out[name] = int(value.split()[0]) / 1024
    return out


async def handshake(port: int) -> None:
    url = f"ws://127.0.0.1:{port}/ws/runs/{NO_RUN}/"
    try:
        async with websockets.connect(
            url, origin=f"http://127.0.0.1:{port}", open_timeout=20
        ) as ws:
            await asyncio.wait_for(ws.recv(), 2)
    except (TimeoutError, OSError, websockets.WebSocketException):
        pass


async def batch(port: int, count: int) -> None:
    await asyncio.gather(*(handshake(port) for _ in range(count)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(name: str, changes: dict[str, str], rounds: int, size: int) -> list[str]:
    tmp = tempfile.mkdtemp(prefix="scalelab-handshakes-")
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL",)}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp}/db.sqlite3",
        DJANGO_SETTINGS_MODULE="scalelab.settings",
        **changes,
    )
    python = sys.executable
    subprocess.run(
        [python, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True
    )
    port = free_port()
    server = subprocess.Popen(
        [python, "manage.py", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rows = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        asyncio.run(batch(port, 20))
        time.sleep(2)
        start = memory(server.pid)
        rows.append(
            f"{name:<12} {0:>6} {start['VmRSS']:>8.1f} {start['RssAnon']:>8.1f}"
        )
        for n in range(1, rounds + 1):
            asyncio.run(batch(port, size))
            time.sleep(3)
            now = memory(server.pid)
            grew = now["RssAnon"] - start["RssAnon"]
            rows.append(
                f"{name:<12} {n * size:>6} {now['VmRSS']:>8.1f} {now['RssAnon']:>8.1f}"
                f"  (+{grew:.1f} private)"
            )
    finally:
        server.terminate()
        server.wait(timeout=20)
    return rows


def main() -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="batches (default 3)")
    parser.add_argument(
        "--batch", type=int, default=400, help="websockets at once (default 400)"
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=VAR=VALUE[,VAR=VALUE]",
        help="server environment to compare (repeatable); default: the plain "
        "server, ASGI_THREADS=2, and jemalloc with and without PYTHONMALLOC=malloc "
        "when it is installed",
    )
    args = parser.parse_args()
    variants: list[tuple[str, dict[str, str]]] = []
    for spec in args.variant:
        name, _, rest = spec.partition("=")
        pairs = dict(p.split("=", 1) for p in rest.split(",") if p)
        variants.append((name, pairs))
    if not variants:
        variants = [("plain", {}), ("threads-2", {"ASGI_THREADS": "2"})]
        if JEMALLOC.exists():
            variants += [
                ("jemalloc", {"LD_PRELOAD": str(JEMALLOC)}),
                (
                    "jemalloc-raw",
                    {"LD_PRELOAD": str(JEMALLOC), "PYTHONMALLOC": "malloc"},
                ),
            ]
    print(f"{'variant':<12} {'opened':>6} {'RSS MiB':>8} {'private':>8}")
    for name, changes in variants:
        for row in measure(name, changes, args.rounds, args.batch):
            print(row, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
