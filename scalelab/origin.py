"""Which pages may open the site's websockets: the Origin is checked, port included.

Channels' ``AllowedHostsOriginValidator`` compares only the Origin's host with
``ALLOWED_HOSTS``, so a page served from any port of an allowed host (another
program on ``localhost:9999``) could open a socket with its visitor's cookies and
control their runs. Here an Origin is accepted only when its host and port are:

- the request's own, from its ``Host`` header (which must be an allowed host, so
  that a rebound DNS name gains nothing); a ``Host`` without a port means the
  Origin's default one, as a browser leaves it out of both, which keeps working
  behind a proxy that ends TLS;
- an entry of ``CSRF_TRUSTED_ORIGINS`` (scheme, host and port, ``*.`` for any
  subdomain), as Django's CSRF check takes them;
- or a host of ``ALLOWED_HOSTS`` on its scheme's default port (an entry names a
  host, not a port; ``*`` names no host here, only the request's own Origin).

A socket without a valid Origin is refused at the handshake.
"""

from __future__ import annotations

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils.http import is_same_domain

DEFAULT_PORTS = {"http": 80, "https": 443}
# What Django's own host check allows when DEBUG is on and ALLOWED_HOSTS is empty.
DEBUG_HOSTS = [".localhost", "127.0.0.1", "[::1]"]


def _host_port(netloc: str) -> tuple[str, int | None] | None:
    """Return (host, port or None) of ``host[:port]``, or None if it is malformed."""
    host, port = split_domain_port(netloc)
    if not host:
        return None
    if not port:
        return host, None
    number = int(port) if len(port) <= 5 else 0  # int() refuses 4300+ digits
    return (host, number) if 0 < number < 65_536 else None


def _origin(value: str) -> tuple[str, str, int] | None:
    """Return (scheme, host, port) of an origin ``scheme://host[:port]``, or None."""
    scheme, sep, netloc = value.partition("://")
    scheme = scheme.lower()
    found = _host_port(netloc) if sep and scheme in DEFAULT_PORTS else None
    if found is None:
        return None
    host, port = found
    return scheme, host, DEFAULT_PORTS[scheme] if port is None else port


def _allowed_hosts() -> list[str]:
    if not settings.ALLOWED_HOSTS and settings.DEBUG:
        return DEBUG_HOSTS
    return settings.ALLOWED_HOSTS


def _same_as_host(origin: tuple[str, str, int], host_header: str) -> bool:
    found = _host_port(host_header)
    if found is None or not validate_host(found[0], _allowed_hosts()):
        return False
    scheme, host, port = origin
    return (host, port) == (found[0], found[1] or DEFAULT_PORTS[scheme])


def _trusted(origin: tuple[str, str, int]) -> bool:
    # "https://*.example.com" trusts example.com's subdomains, as for CSRF.
    entries = (
        _origin(entry.replace("://*.", "://.", 1))
        for entry in settings.CSRF_TRUSTED_ORIGINS
    )
    return any(
        entry is not None
        and (entry[0], entry[2]) == (origin[0], origin[2])
        and is_same_domain(origin[1], entry[1])
        for entry in entries
    )


def _on_an_allowed_host(origin: tuple[str, str, int]) -> bool:
    scheme, host, port = origin
    hosts = [h for h in _allowed_hosts() if h != "*"]
    return port == DEFAULT_PORTS[scheme] and validate_host(host, hosts)


def origin_allowed(origin: str | None, host: str | None) -> bool:
    """Return whether a socket with these ``Origin`` and ``Host`` headers may open."""
    parsed = _origin(origin) if origin else None
    if parsed is None:
        return False
    return (
        (host is not None and _same_as_host(parsed, host))
        or _trusted(parsed)
        or _on_an_allowed_host(parsed)
    )


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


class OriginValidator:
    """ASGI middleware: refuse a websocket whose Origin is not the site's."""

    def __init__(self, application) -> None:
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and not origin_allowed(
            _header(scope, b"origin"), _header(scope, b"host")
        ):
            return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)
