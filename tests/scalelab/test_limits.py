"""Client addresses behind trusted proxies, and the per-connection token bucket."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scalelab.limits import Bucket, client_address, scope_address

ROOT = Path(__file__).resolve().parents[2]


def test_without_a_trusted_proxy_the_peer_is_the_client(settings):
    settings.TRUSTED_PROXIES = []
    # A client writing its own X-Forwarded-For cannot pass for another address.
    assert client_address("203.0.113.9", ["198.51.100.1"]) == "203.0.113.9"


def test_behind_a_trusted_proxy_the_entry_it_added_is_the_client(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.2"]
    # The client forged the leftmost entry; the proxy appended what it saw.
    assert client_address("10.0.0.2", ["198.51.100.1, 203.0.113.9"]) == "203.0.113.9"
    # A peer that is not the proxy is the client, whatever it says.
    assert client_address("10.0.0.3", ["203.0.113.9"]) == "10.0.0.3"


def test_a_chain_of_trusted_proxies_is_walked_from_the_right(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.2", "10.0.0.1"]
    assert (
        client_address("10.0.0.2", ["198.51.100.1, 203.0.113.9", "10.0.0.1"])
        == "203.0.113.9"
    )


def test_a_garbled_header_from_a_trusted_proxy_counts_the_proxy(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.2"]
    assert client_address("10.0.0.2", ["not-an-address"]) == "10.0.0.2"
    assert client_address("10.0.0.2", []) == "10.0.0.2"


def test_a_websocket_scope_gives_the_same_address(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.2"]
    scope = {
        "client": ["10.0.0.2", 5555],
        "headers": [(b"x-forwarded-for", b"203.0.113.9")],
    }
    assert scope_address(scope) == "203.0.113.9"
    assert scope_address({"client": None, "headers": []}) == ""


def test_a_bucket_allows_its_rate_and_refills():
    bucket = Bucket(5)
    assert [bucket.take() for _ in range(6)] == [True] * 5 + [False]
    time.sleep(0.25)  # a quarter of a second refills one token
    assert bucket.take() is True


def test_a_trusted_proxy_that_is_not_an_address_stops_the_start():
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SCALELAB_", "DJANGO_"))
    }
    env["SCALELAB_TRUSTED_PROXIES"] = "10.0.0.2,proxy.example"
    done = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "scalelab.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "SCALELAB_TRUSTED_PROXIES" in done.stderr
    assert "'proxy.example' is not one" in done.stderr


@pytest.mark.parametrize("rate", [1, 20])
def test_a_bucket_never_saves_more_than_a_second(rate):
    bucket = Bucket(rate)
    time.sleep(0.1)
    assert sum(bucket.take() for _ in range(rate * 3)) == rate
