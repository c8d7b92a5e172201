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
