"""Which pages may open a websocket, and what a path no route matches gets."""

from __future__ import annotations

import pytest
from channels.testing import WebsocketCommunicator

from scalelab.asgi import application
from scalelab.origin import origin_allowed

UNKNOWN_RUN = "/ws/runs/00000000-0000-0000-0000-000000000000/"


@pytest.fixture
def hosts(settings):
    settings.ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]", ".example.org"]
    settings.CSRF_TRUSTED_ORIGINS = ["https://app.example.com:8443"]
    return settings


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        ("http://localhost:8000", "localhost:8000"),
        ("http://127.0.0.1:8000", "127.0.0.1:8000"),
        ("http://[::1]:8000", "[::1]:8000"),
        ("HTTP://LocalHost:8000", "localhost:8000"),
        ("http://localhost", "localhost"),
        ("https://localhost", "localhost"),  # TLS ended by a proxy in front
        ("http://localhost", None),  # an allowed host on its default port
        ("https://www.example.org", "web:8000"),
        ("https://app.example.com:8443", "web:8000"),  # trusted for CSRF
    ],
)
def test_a_page_of_the_site_itself_may_open_a_socket(hosts, origin, host):
    assert origin_allowed(origin, host)


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        ("http://localhost:9999", "localhost:8000"),  # another program's page
        ("http://localhost:9999", "localhost"),
        ("http://localhost:9999", None),
        ("http://127.0.0.1:8001", "127.0.0.1:8000"),
        ("http://localhost:8000", "localhost"),
        ("https://app.example.com", "web:8000"),  # trusted only on port 8443
        ("http://app.example.com:8443", "web:8000"),  # and only over https
        ("http://evil.test:8000", "evil.test:8000"),  # a rebound name
        ("http://evil.test", "localhost"),
        ("null", "localhost"),
        ("file://", "localhost"),
        ("localhost:8000", "localhost:8000"),
        ("http://user@localhost", "localhost"),
        ("http://localhost:99999", "localhost"),
        ("http://localhost:0", "localhost"),
        pytest.param("http://localhost:" + "0" * 5000 + "80", "localhost", id="long"),
        pytest.param("http://localhost:8000", "localhost:" + "8" * 5000, id="long"),
        ("http://localhost/path", "localhost"),
        ("", "localhost"),
        (None, "localhost"),
    ],
)
def test_any_other_origin_is_refused(hosts, origin, host):
    assert not origin_allowed(origin, host)


def test_a_trusted_origin_may_name_every_subdomain(settings):
    settings.ALLOWED_HOSTS = ["web"]
    settings.CSRF_TRUSTED_ORIGINS = ["https://*.example.com"]
    assert origin_allowed("https://a.example.com", "web")
    assert not origin_allowed("https://a.example.com:444", "web")
    assert not origin_allowed("https://example.net", "web")


def test_a_wildcard_host_still_needs_the_request_s_own_origin(settings):
    settings.ALLOWED_HOSTS = ["*"]
    settings.CSRF_TRUSTED_ORIGINS = []
    assert origin_allowed("https://anything.test:8443", "anything.test:8443")
    assert not origin_allowed("https://anything.test", "other.test")


async def handshake(path: str, origin: bytes, host: bytes = b"localhost:8000"):
    comm = WebsocketCommunicator(
        application, path, headers=[(b"origin", origin), (b"host", host)]
    )
    connected, _ = await comm.connect(timeout=5)
    await comm.disconnect()
    return connected


@pytest.mark.django_db(transaction=True)
async def test_the_asgi_application_refuses_an_origin_on_another_port():
    assert not await handshake(UNKNOWN_RUN, b"http://localhost:9999")
    assert await handshake(UNKNOWN_RUN, b"http://localhost:8000")


@pytest.mark.parametrize(
    "path",
    [
        "/ws/runs/../../admin/",
        "/ws/runs/not-a-uuid/",
        "/ws/nothing/",
        "/admin/",
        "/",
        "/ws/runs/00000000-0000-0000-0000-000000000000/extra/",
    ],
)
async def test_a_path_no_route_matches_is_refused_at_the_handshake(path, caplog):
    assert not await handshake(path, b"http://localhost:8000")
    assert not [r for r in caplog.records if r.exc_info]
