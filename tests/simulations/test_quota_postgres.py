"""The quotas hold under concurrency on PostgreSQL, where transactions overlap.

(On SQLite, writers already take turns: transactions there begin IMMEDIATE.) Thirty
threads, each with its own connection, start at one barrier and all ask at once;
before the quota was counted under a lock, 30 parallel requests of one visitor got
7, 4 or 15 runs against a quota of 3.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]
BASE = "postgresql://postgres@127.0.0.1:5432"
PG_DB = "scalelab_test_quota"
THREADS = 30  # connections: one each, well under the server's limit

SCRIPT = r"""
import json, threading
from django.db import connection
from simulations.curves import curve_create
from simulations.engines.base import EngineError
from scalelab.limits import LimitError
from simulations.runs.lifecycle import run_create

def race(make):
    barrier = threading.Barrier(%(threads)d)
    made, refused = [], []
    def one(n):
        try:
            barrier.wait()
            made.append(make(n).id)
        except (EngineError, LimitError) as exc:
            refused.append(exc.field)
        finally:
            connection.close()
    threads = [threading.Thread(target=one, args=(n,)) for n in range(%(threads)d)]
    for t in threads: t.start()
    for t in threads: t.join()
    return {"made": len(made), "refused": sorted(set(refused)), "all": len(made) + len(refused)}

print(json.dumps({
    "one_visitor": race(lambda n: run_create(kind="cache", visitor="one", client="192.0.2.1")),
    "one_address": race(lambda n: run_create(kind="cache", visitor=f"v{n}", client="192.0.2.2")),
    "site": race(lambda n: run_create(kind="cache", visitor=f"w{n}", client=f"198.51.100.{n}")),
    "curves": race(lambda n: curve_create({"keys": 100, "requests": 10000}, visitor="c", client="192.0.2.3")),
}))
"""


def psql(sql: str) -> None:
    subprocess.run(
        ["psql", f"{BASE}/postgres", "-v", "ON_ERROR_STOP=1", "-qc", sql],
        check=True,
        capture_output=True,
        timeout=30,
    )


@pytest.fixture
def database():
    try:
        psql(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
        psql(f"CREATE DATABASE {PG_DB}")
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"no PostgreSQL on 127.0.0.1:5432 ({exc})")
    yield f"{BASE}/{PG_DB}"
    psql(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")


def test_parallel_requests_never_pass_a_quota(database, tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SCALELAB_", "DJANGO_")) and k != "REDIS_URL"
    }
    env.update(
        {
            "DATABASE_URL": database,
            "SCALELAB_RUNS_PER_VISITOR": "3",
            "SCALELAB_ADDRESS_LIVE_RUNS": "5",
            # The site cap counts every live run: the 8 of the first two races too.
            "SCALELAB_MAX_LIVE_RUNS": "20",
            "LOG_LEVEL": "WARNING",
        }
    )
    manage = [sys.executable, "manage.py"]
    subprocess.run(
        [*manage, "migrate", "--noinput"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    done = subprocess.run(
        [*manage, "shell", "-c", SCRIPT % {"threads": THREADS}],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["one_visitor"] == {"made": 3, "refused": ["runs"], "all": THREADS}
    assert result["one_address"] == {"made": 5, "refused": ["runs"], "all": THREADS}
    assert result["site"] == {"made": 12, "refused": ["runs"], "all": THREADS}
    assert result["curves"] == {"made": 1, "refused": ["curve"], "all": THREADS}
