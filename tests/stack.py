"""Start ScaleLab as real processes for whole-system tests (loopback only)."""

from __future__ import annotations

import contextlib
import http.cookiejar
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def manage(
    env: dict[str, str], *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        check=check,
        capture_output=True,
        text=True,
        timeout=180,
    )


class Process:
    """A child process in its own group, with its output kept in a log file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self.handle = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdout=self.handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill(self, sig: int = signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.kill(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill(signal.SIGKILL)
                self.proc.wait(10)
        self.handle.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def wait_for_http(url: str, timeout: float = 60.0, proc: Process | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.proc.poll() is not None:
            raise RuntimeError(f"server exited:\n{proc.output()}")
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - loopback test server
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


class Session:
    """An HTTP client with cookies and the CSRF token, as a browser page has."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar)
        )
        self.opener.open(f"{base}/sandbox/cache/", timeout=10).read()

    def cookie(self, name: str) -> str:
        return next(c.value for c in self.jar if c.name == name)

    def create_run(self, kind: str = "cache", **params) -> dict:
        request = urllib.request.Request(
            f"{self.base}/api/runs/",
            data=json.dumps({"kind": kind, "params": params}).encode(),
            headers={
                "Content-Type": "application/json",
                "X-CSRFToken": self.cookie("csrftoken"),
                "Origin": self.base,
                "Referer": f"{self.base}/",
            },
        )
        with self.opener.open(request, timeout=10) as response:
            return json.loads(response.read())


PG_BASE = "postgresql://postgres@127.0.0.1:5432"


def _psql(sql: str) -> None:
    subprocess.run(
        ["psql", f"{PG_BASE}/postgres", "-v", "ON_ERROR_STOP=1", "-qc", sql],
        check=True,
        capture_output=True,
        timeout=30,
    )


def fresh_postgres(name: str) -> str | None:
    """A new, empty Postgres database of this name if the local server is up."""
    try:
        _psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        _psql(f"CREATE DATABASE {name}")
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{PG_BASE}/{name}"


def celery_worker(
    name: str, env: dict[str, str], log: Path, threads: int = 8
) -> Process:
    return Process(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "scalelab",
            "worker",
            "--pool",
            "threads",
            "--concurrency",
            str(threads),
            "--hostname",
            f"{name}@%h",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
        ],
        env,
        log,
    )


def distributed_stack(
    tmp_path: Path,
    redis_url: str,
    pg_db: str,
    *,
    webs: tuple[str, ...] = ("web",),
    workers: tuple[str, ...] = ("w1", "w2"),
    env: dict[str, str] | None = None,
    setup: tuple[tuple[str, ...], ...] = (),
):
    """Daphne processes and Celery workers sharing one database and one Redis db.

    A generator: yields ``({web: base URL}, redis client, {name: Process})`` and
    stops everything, empties the Redis database and drops the Postgres one after.
    The database is Postgres ``pg_db`` when the local server is up, else a SQLite
    file; ``setup`` lists ``manage.py`` commands run after ``migrate``.
    """
    import pytest
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.fail("Redis is not running on 127.0.0.1:6379 (`.ci/run` starts it)")
    client.flushdb()
    database = fresh_postgres(pg_db) or f"sqlite:///{tmp_path / 'db.sqlite3'}"
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "DATABASE_URL": database,
        "SECRET_KEY_FILE": str(tmp_path / "secret_key"),
        "DJANGO_SETTINGS_MODULE": "scalelab.settings",
        **(env or {}),
    }
    procs: dict[str, Process] = {}
    try:
        manage(env, "migrate", "--noinput")
        for command in setup:
            manage(env, *command)
        bases = {}
        for name in webs:
            port = free_port()
            procs[name] = Process(
                [sys.executable, "manage.py", "serve", "--port", str(port)],
                env,
                tmp_path / f"{name}.log",
            )
            bases[name] = f"http://127.0.0.1:{port}"
        for name in workers:
            procs[name] = celery_worker(name, env, tmp_path / f"{name}.log")
        for name in webs:
            wait_for_http(f"{bases[name]}/", proc=procs[name])
        yield bases, client, procs
    finally:
        for proc in procs.values():
            proc.stop()
        client.flushdb()
        client.close()
        if database.startswith("postgresql"):
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                _psql(f"DROP DATABASE IF EXISTS {pg_db} WITH (FORCE)")
