"""Project-wide headers: the content security policy and the proxy's scheme."""

from __future__ import annotations

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from scalelab.middleware import ContentSecurityPolicyMiddleware, TrustedProxyMiddleware


@pytest.mark.django_db
def test_pages_may_open_websockets_to_this_site_only(client):
    policy = client.get("/sandbox/cache/").headers["Content-Security-Policy"]
    connect = next(d for d in policy.split("; ") if d.startswith("connect-src"))
    assert connect.split() == [
        "connect-src",
        "'self'",
        "ws://testserver",
        "wss://testserver",
    ]


def test_a_view_that_sets_its_own_policy_keeps_it(rf):
    own = HttpResponse(headers={"Content-Security-Policy": "default-src 'none'"})
    middleware = ContentSecurityPolicyMiddleware(lambda request: own)
    response = middleware(rf.get("/"))
    assert response.headers["Content-Security-Policy"] == "default-src 'none'"


@pytest.mark.parametrize(("peer", "secure"), [("10.0.0.2", True), ("10.0.0.9", False)])
def test_https_is_believed_from_a_trusted_proxy_only(settings, peer, secure):
    settings.TRUSTED_PROXIES = ["10.0.0.2"]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    request = RequestFactory().get(
        "/", REMOTE_ADDR=peer, headers={"x-forwarded-proto": "https"}
    )
    seen = []
    TrustedProxyMiddleware(lambda r: seen.append(r.is_secure()) or HttpResponse())(
        request
    )
    assert seen == [secure]
