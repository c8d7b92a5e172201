"""Settings come from the environment and refuse bad values loudly."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from scalelab import env
from tests.stack import ROOT


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("DEBUG", "maybe", "DEBUG must be one of 1/0, true/false"),
        (
            "SCALELAB_RUNS_PER_VISITOR",
            "0",
            "SCALELAB_RUNS_PER_VISITOR must be an integer from 1 to 1000",
        ),
        (
            "SCALELAB_FRAME_HZ",
            "fast",
            "SCALELAB_FRAME_HZ must be an integer from 1 to 30",
        ),
        (
            "REDIS_URL",
            "localhost:6379",
            "REDIS_URL must be a URL starting with redis://",
        ),
        (
            "DATABASE_URL",
            "mysql://db/x",
            "DATABASE_URL must be a URL starting with sqlite://",
        ),
    ],
)
def test_a_bad_value_stops_the_app_at_start_naming_the_variable(name, value, words):
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SCALELAB_", "REDIS_URL", "DATABASE_URL"))
    }
    environ[name] = value
    done = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert words in done.stderr


def test_debug_off_needs_a_secret_key():
    environ = {**os.environ, "DEBUG": "false"}
    environ.pop("SECRET_KEY", None)
    done = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in done.stderr


def test_serving_an_unmigrated_database_stops_with_the_command_to_run(tmp_path):
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SCALELAB_", "REDIS_URL", "DATABASE_URL"))
    }
    environ["DATABASE_URL"] = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    done = subprocess.run(
        [sys.executable, "manage.py", "serve", "--port", "1"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "migration(s) not applied" in done.stderr
    assert "python manage.py migrate" in done.stderr
    assert "serving at" not in done.stdout


def test_the_helpers_read_good_values(monkeypatch):
    monkeypatch.setenv("X_BOOL", "on")
    monkeypatch.setenv("X_INT", " 42")
    monkeypatch.setenv("X_LIST", "a, b,,c")
    assert env.env_bool("X_BOOL", False) is True
    assert env.env_int("X_INT", 1, minimum=1, maximum=100) == 42
    assert env.env_list("X_LIST", []) == ["a", "b", "c"]
    assert env.env_int("X_MISSING", 7, minimum=1, maximum=10) == 7
