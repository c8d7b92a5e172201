"""Settings come from the environment and refuse bad values loudly."""

from __future__ import annotations

import json
import os
import stat
import sys
import urllib.request

import pytest
from django.core.cache import cache

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


def setting(name, **changes):
    """Return the value of setting ``name`` in a process started with ``changes``."""
    done = manage(
        "shell",
        "--no-imports",
        "-c",
        f"import json; from django.conf import settings; print(json.dumps(settings.{name}))",
        **changes,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_debug_is_off_unless_set():
    assert setting("DEBUG", DEBUG=None) is False


def test_without_a_secret_key_one_is_made_on_first_start_and_kept(tmp_path):
    path = tmp_path / "keys" / "secret"
    first = setting("SECRET_KEY", SECRET_KEY=None, SECRET_KEY_FILE=str(path))
    assert len(first) >= 50
    assert path.read_text() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert setting("SECRET_KEY", SECRET_KEY=None, SECRET_KEY_FILE=str(path)) == first


def test_a_set_secret_key_is_used_and_no_file_is_made(tmp_path):
    path = tmp_path / "secret"
    key = "set-in-the-environment-" * 3
    assert setting("SECRET_KEY", SECRET_KEY=key, SECRET_KEY_FILE=str(path)) == key
    assert not path.exists()


def test_a_key_file_too_short_to_be_safe_stops_the_app(tmp_path):
    path = tmp_path / "secret"
    path.write_text("short")
    done = manage("check", SECRET_KEY=None, SECRET_KEY_FILE=str(path))
    assert done.returncode != 0
    assert "holds a SECRET_KEY shorter than 50 characters" in done.stderr


def test_a_bad_url_is_refused_without_showing_its_password():
    done = manage("check", REDIS_URL="redis//:hunter2@cache.internal:6379")
    assert done.returncode != 0
    assert "REDIS_URL must be a URL starting with redis://" in done.stderr
    assert "@cache.internal:6379" in done.stderr
    assert "hunter2" not in done.stderr


def test_the_deployment_check_passes_with_https_on(tmp_path):
    done = manage(
        "check",
        "--deploy",
        DEBUG="false",
        SECRET_KEY=None,
        SECRET_KEY_FILE=str(tmp_path / "key"),
        ALLOWED_HOSTS="scalelab.example.org",
        HTTPS="true",
    )
    assert done.returncode == 0, done.stderr
    assert "System check identified no issues" in done.stdout + done.stderr


def test_without_https_the_deployment_check_says_what_is_missing():
    done = manage(
        "check",
        "--deploy",
        DEBUG="false",
        ALLOWED_HOSTS="scalelab.example.org",
        HTTPS=None,
    )
    for warning in ("W004", "W008", "W012", "W016"):
        assert f"security.{warning}" in done.stderr


def test_https_makes_cookies_secure_and_sets_hsts_of_the_length_asked():
    assert setting("SESSION_COOKIE_SECURE", HTTPS="true") is True
    assert setting("CSRF_COOKIE_SECURE", HTTPS="true") is True
    assert setting("SECURE_SSL_REDIRECT", HTTPS="true") is True
    assert setting("SECURE_HSTS_SECONDS", HTTPS="true") == 31_536_000
    assert setting("SECURE_HSTS_SECONDS", HTTPS="true", HSTS_SECONDS="3600") == 3600
    assert setting("SECURE_HSTS_SECONDS", HTTPS=None, HSTS_SECONDS="3600") == 0


def test_the_proxy_header_is_believed_only_with_https_and_a_trusted_proxy():
    proxy = {"SCALELAB_TRUSTED_PROXIES": "10.0.0.2"}
    header = ["HTTP_X_FORWARDED_PROTO", "https"]
    assert setting("SECURE_PROXY_SSL_HEADER", HTTPS="true", **proxy) == header
    assert setting("SECURE_PROXY_SSL_HEADER", HTTPS="true") is None
    assert setting("SECURE_PROXY_SSL_HEADER", HTTPS=None, **proxy) is None


@pytest.mark.django_db
def test_a_visitor_keeps_control_of_their_run_when_redis_loses_the_sessions(
    client, settings
):
    # The session engine of distributed mode, on this test's cache: clearing the
    # cache is what a Redis restart does to it.
    settings.SESSION_ENGINE = setting(
        "SESSION_ENGINE", REDIS_URL="redis://127.0.0.1:6379/0"
    )
    created = client.post(
        "/api/runs/", data={"kind": "cache"}, content_type="application/json"
    )
    assert created.status_code == 201
    cache.clear()
    detail = client.get(f"/api/runs/{created.json()['id']}/")
    assert detail.json()["can_control"] is True


def test_make_run_serves_static_files_and_pages_with_debug_off(tmp_path):
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SCALELAB_", "REDIS_URL", "DEBUG", "SECRET_KEY"))
    }
    environ.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        SECRET_KEY_FILE=str(tmp_path / "key"),
    )
    stack.manage(environ, "migrate", "--noinput")
    port = stack.free_port()
    command = [sys.executable, "manage.py", "serve", "--port", str(port)]
    server = stack.Process(command, environ, tmp_path / "serve.log")
    base = f"http://127.0.0.1:{port}"
    try:
        stack.wait_for_http(f"{base}/static/js/client.js", proc=server)
        with urllib.request.urlopen(f"{base}/static/plotly/plotly.min.js") as plotly:
            assert plotly.status == 200
            assert len(plotly.read()) > 1_000_000
        with urllib.request.urlopen(f"{base}/sandbox/cache/") as page:
            policy = page.headers["Content-Security-Policy"]
        assert (
            f"connect-src 'self' ws://127.0.0.1:{port} wss://127.0.0.1:{port};"
            in policy
        )
    finally:
        server.stop()
