"""Settings come from the environment and refuse bad values loudly."""

from __future__ import annotations

import os

import pytest

from scalelab import env
from tests import stack


def manage(*args, **changes):
    """Run manage.py in a clean environment with ``changes`` (None unsets)."""
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SCALELAB_", "REDIS_URL", "DATABASE_URL"))
    }
    for name, value in changes.items():
        if value is None:
            environ.pop(name, None)
        else:
            environ[name] = value
    return stack.manage(environ, *args, check=False)


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
    done = manage("check", **{name: value})
    assert done.returncode != 0
    assert words in done.stderr


def test_debug_off_needs_a_secret_key():
    done = manage("check", DEBUG="false", SECRET_KEY=None)
    assert done.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in done.stderr


def test_serving_an_unmigrated_database_stops_with_the_command_to_run(tmp_path):
    done = manage(
        "serve", "--port", "1", DATABASE_URL=f"sqlite:///{tmp_path / 'empty.sqlite3'}"
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
