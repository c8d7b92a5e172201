#!/usr/bin/env python
"""Page-weight benchmark: what a lesson page costs a student's browser.

Target: at most 1.5 MB over the wire for a lesson page and everything it loads.

It starts the server as ``make run`` does, as real processes on 127.0.0.1 in a
scratch directory of its own: ``collectstatic`` (hashed, brotli and gzip copies),
``migrate`` and ``loadlessons`` on a fresh SQLite file, then ``manage.py serve``
(embedded mode). The system Chromium (through Playwright) then opens the caching
lesson ``--repeat`` times: each time in a new browser context (an empty cache, the
**cold** load), then again in the same context (the **warm** load). An init script
in the page presses Run as soon as the panel is ready and watches, every animation
frame, for the first point on the first chart.

For each load it reports the bytes over the wire (from the DevTools protocol: the
encoded size of every HTTP response, headers included; the websocket's frames are
not counted), the number of requests and how many the cache answered, and, from
the navigation's start: the panel ready (plotly.js and the chart modules loaded,
the charts drawn empty) and the first chart point (the run created, its websocket
open and its first frame drawn). It does so on each link of ``--links``: loopback
as it is, and DevTools' network throttling to ``MBPS/RTT_MS`` (by default 10 Mbit/s
each way and 40 ms more round trip: one student's share of a school's Wi-Fi).

    .venv/bin/python bench/pageload.py                   # 5 cold + warm loads per link
    .venv/bin/python bench/pageload.py --links 2/100 --repeat 3
    .venv/bin/python bench/pageload.py --json

It prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stream import (  # noqa: E402 - the sibling benchmark's stack helpers
    PYTHON,
    ROOT,
    SERVE,
    UNLIMITED,
    free_port,
    log,
    stop_processes,
)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LESSON = "/lessons/caching-and-eviction/"
TARGET_BYTES = 1_500_000
# Runs in the page: press Run once the panel is ready, then note when the first
# chart has a point. performance.now() counts from the navigation's start.
PROBE = """
window.__pageload = {};
(() => {
  const marks = window.__pageload;
  const tick = () => {
    const sim = document.querySelector('.sim[data-ready="true"]');
    if (sim && marks.ready === undefined) {
      marks.ready = performance.now();
      sim.querySelector('.btn-primary').click();
    }
    const plot = document.querySelector('.chart-plot');
    if (marks.ready !== undefined && plot && plot.data && plot.data[0].x.length > 0) {
      marks.first = performance.now();
      return;
    }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
})();
"""


class Server:
    """``collectstatic``, ``migrate``, ``loadlessons``, then ``manage.py serve``."""

    def __init__(self) -> None:
        self.scratch = Path(tempfile.mkdtemp(prefix="scalelab-pageload-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SCALELAB_", "DJANGO_", "CELERY_"))
            and k not in ("REDIS_URL", "DATABASE_URL", "STATIC_ROOT")
        }
        env.update(
            {
                "DATABASE_URL": f"sqlite:///{self.scratch / 'pageload.sqlite3'}",
                "STATIC_ROOT": str(self.scratch / "static"),
                "SECRET_KEY": "bench-" + os.urandom(16).hex(),
                "DEBUG": "0",
                "ALLOWED_HOSTS": "127.0.0.1",
                **UNLIMITED,
                "LOG_LEVEL": "WARNING",
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    def manage(self, *args: str) -> float:
        started = time.monotonic()
        done = subprocess.run(
            [PYTHON, "manage.py", *args],
            cwd=ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode:
            raise RuntimeError(f"{args[0]} failed:\n{done.stdout}\n{done.stderr}")
        return time.monotonic() - started

    def start(self) -> dict[str, float]:
        log(f"server: SQLite and static files in {self.scratch}")
        timings = {"collectstatic_s": self.manage("collectstatic", "--noinput")}
        timings["collectstatic_again_s"] = self.manage("collectstatic", "--noinput")
        self.manage("migrate", "--noinput")
        self.manage("loadlessons")
        with open(self.scratch / "web.log", "wb") as out:
            self.proc = subprocess.Popen(
                [*SERVE, "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=ROOT,
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError((self.scratch / "web.log").read_text()[-3000:])
            try:
                with urllib.request.urlopen(f"{self.url}/", timeout=2):  # noqa: S310 - loopback
                    return timings
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"{self.url} did not answer within 60 s")

    def stop(self) -> None:
        if self.proc is not None:
            stop_processes([self.proc], grace=10)
        shutil.rmtree(self.scratch, ignore_errors=True)


def load(context, url: str, throttle: dict[str, float] | None) -> dict[str, Any]:
    """Open the lesson in a new page of ``context``; return what it cost."""
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    if throttle:
        cdp.send("Network.emulateNetworkConditions", throttle)
    responses: dict[str, dict[str, Any]] = {}
    wire: dict[str, int] = {}
    cached: set[str] = set()

    def received(event: dict[str, Any]) -> None:
        response = event["response"]
        headers = {k.lower(): v for k, v in response["headers"].items()}
        responses[event["requestId"]] = {
            "url": response["url"].removeprefix(url),
            "status": response["status"],
            "encoding": headers.get("content-encoding", ""),
            "cache_control": headers.get("cache-control", ""),
        }
        if response.get("fromDiskCache") or response.get("fromMemoryCache"):
            cached.add(event["requestId"])

    cdp.on("Network.responseReceived", received)
    cdp.on("Network.requestServedFromCache", lambda e: cached.add(e["requestId"]))
    cdp.on(
        "Network.loadingFinished",
        lambda e: wire.__setitem__(e["requestId"], int(e["encodedDataLength"])),
    )
    page.add_init_script(PROBE)
    page.goto(f"{url}{LESSON}")
    page.wait_for_function(
        "() => window.__pageload.first !== undefined", timeout=120_000
    )
    marks = page.evaluate("window.__pageload")
    page.click("#sim button:text('Stop')")
    page.wait_for_selector(".sim[data-status=stopped]", timeout=20_000)
    page.close()
    # Every HTTP response of the visit, the run's API calls included.
    resources = [
        {**responses[rid], "bytes": size, "cached": rid in cached}
        for rid, size in wire.items()
        if rid in responses
    ]
    return {
        "bytes": sum(r["bytes"] for r in resources),
        "requests": len(resources),
        "from_cache": sum(r["cached"] for r in resources),
        "ready_ms": marks["ready"],
        "first_point_ms": marks["first"],
        "resources": resources,
    }


def throttling(link: str) -> dict[str, float] | None:
    """Return DevTools' network conditions for ``loopback`` or ``MBPS/RTT_MS``."""
    if link == "loopback":
        return None
    mbps, _, rtt_ms = link.partition("/")
    per_s = float(mbps) * 1_000_000 / 8
    return {
        "offline": False,
        "latency": float(rtt_ms or 0),
        "downloadThroughput": per_s,
        "uploadThroughput": per_s,
    }


def measure(
    args: argparse.Namespace, url: str, link: str
) -> dict[str, list[dict[str, Any]]]:
    from playwright.sync_api import sync_playwright

    throttle = throttling(link)
    loads: dict[str, list[dict[str, Any]]] = {"cold": [], "warm": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        try:
            for i in range(args.repeat):
                context = browser.new_context(viewport={"width": 1400, "height": 900})
                loads["cold"].append(load(context, url, throttle))
                loads["warm"].append(load(context, url, throttle))
                context.close()
                log(
                    f"{link}, load {i + 1}/{args.repeat}: cold "
                    f"{loads['cold'][-1]['first_point_ms']:.0f} ms, warm "
                    f"{loads['warm'][-1]['first_point_ms']:.0f} ms"
                )
        finally:
            browser.close()
    return loads


def summary(loads: list[dict[str, Any]]) -> dict[str, float]:
    return {
        key: statistics.median(load[key] for load in loads)
        for key in ("bytes", "requests", "from_cache", "ready_ms", "first_point_ms")
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--repeat", type=int, default=5, help="cold + warm loads")
    parser.add_argument(
        "--links",
        default="loopback,10/40",
        help="comma-separated: loopback, or MBPS/RTT_MS to throttle the browser to",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()

    links = args.links.split(",")
    for link in links:
        throttling(link)  # a bad link fails before the server starts
    server = Server()
    try:
        timings = server.start()
        loads = {link: measure(args, server.url, link) for link in links}
    finally:
        server.stop()
    result: dict[str, Any] = {"setup": timings, "repeat": args.repeat, "links": {}}
    for link, by_cache in loads.items():
        result["links"][link] = {
            "cold": summary(by_cache["cold"]),
            "warm": summary(by_cache["warm"]),
            "resources_cold": by_cache["cold"][0]["resources"],
            "resources_warm": by_cache["warm"][0]["resources"],
        }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"collectstatic: {timings['collectstatic_s']:.1f} s first, "
        f"{timings['collectstatic_again_s']:.1f} s again"
    )
    print(f"lesson {LESSON}, median of {args.repeat} loads:")
    print(
        f"{'link':<16}{'cache':<6}{'bytes':>11}{'requests':>10}{'cached':>8}"
        f"{'ready ms':>10}{'first point ms':>16}"
    )
    for link, figures in result["links"].items():
        name = "loopback" if link == "loopback" else f"{link} Mbit/s/ms"
        for cache in ("cold", "warm"):
            s = figures[cache]
            print(
                f"{name:<16}{cache:<6}{s['bytes']:>11,.0f}{s['requests']:>10.0f}"
                f"{s['from_cache']:>8.0f}{s['ready_ms']:>10.0f}"
                f"{s['first_point_ms']:>16.0f}"
            )
    first = result["links"][links[0]]
    verdict = "meets" if first["cold"]["bytes"] <= TARGET_BYTES else "misses"
    print(f"target: at most {TARGET_BYTES:,} bytes cold: {verdict} it")
    for cache in ("cold", "warm"):
        print(f"{cache} load, by response:")
        for r in sorted(first[f"resources_{cache}"], key=lambda r: -r["bytes"]):
            print(
                f"  {r['bytes']:>10,}  {r['status']}  {r['encoding'] or '-':<5}"
                f"{'cache' if r['cached'] else '':<6} "
                f"{r['cache_control'] or '-':<37} {r['url'][:60]}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
