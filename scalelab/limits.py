"""Who is asking, and how much they may ask: client addresses and rate limits.

The client address is the peer's address (``REMOTE_ADDR`` for HTTP, the scope's
``client`` for websockets), unless the peer is a proxy listed in
``SCALELAB_TRUSTED_PROXIES``: then it is the address that proxy put in
``X-Forwarded-For``. The header is read from the right: each trusted proxy appends
the address it saw, so the first entry from the right that is not a trusted proxy
is the client. Entries further left were written by the client and prove nothing.

Rates are counted by django-ratelimit on the default cache (the process's memory
embedded, Redis distributed), one fixed window per rate, keyed by client address.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django_ratelimit.core import get_usage

log = logging.getLogger(__name__)


class LimitError(Exception):
    """A request refused by a limit: its status (429 or 503), field and wait."""

    def __init__(
        self, field: str, message: str, *, status: int = 429, retry_after: int = 0
    ) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.status = status
        self.retry_after = max(1, int(retry_after)) if retry_after else 0


def _address(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return None


def trusted_proxies() -> frozenset[str]:
    return frozenset(
        a for a in (_address(p) for p in settings.TRUSTED_PROXIES) if a is not None
    )


def client_address(peer: str | None, forwarded_for: Iterable[str] = ()) -> str:
    """Return the client's address from the peer and any X-Forwarded-For values."""
    address = _address(peer or "") or ""
    trusted = trusted_proxies()
    if address not in trusted:
        return address
    hops = [h for value in forwarded_for for h in value.split(",")]
    for hop in reversed(hops):
        hop_address = _address(hop)
        if hop_address is None:
            return address  # a header this proxy did not write well: trust the peer
        if hop_address not in trusted:
            return hop_address
        address = hop_address
    return address


def request_address(request) -> str:
    """The client address of a Django request."""
    meta: Mapping[str, Any] = request.META
    forwarded = meta.get("HTTP_X_FORWARDED_FOR")
    return client_address(meta.get("REMOTE_ADDR"), [forwarded] if forwarded else [])


def scope_address(scope: Mapping[str, Any]) -> str:
    """The client address of an ASGI (websocket) scope."""
    client = scope.get("client") or (None, None)
    forwarded = [
        value.decode("latin-1")
        for name, value in scope.get("headers", ())
        if name.lower() == b"x-forwarded-for"
    ]
    return client_address(client[0], forwarded)


def _by_address(group: str, request) -> str:
    return request_address(request) or "unknown"


def throttle(
    request, group: str, rate: str, *, field: str, what: str, key: str = ""
) -> None:
    """Count one ``group`` request from this client address; raise if over ``rate``.

    ``rate`` is django-ratelimit's ``"N/unit"`` (``"120/m"``, ``"100/h"``); ``what``
    names what is limited, for the message ("new runs"). A ``key`` other than the
    address (a class's, ``class:CODE``) counts the requests of that group instead.
    """
    try:
        usage = get_usage(
            request,
            group=group,
            key=(lambda _group, _request: key) if key else _by_address,
            rate=rate,
            increment=True,
        )
    except Exception:  # noqa: BLE001 - the cache is away: the service limits still hold
        log.warning("rate limit %s not checked: the cache cannot be reached", group)
        return
    if usage is None or not usage["should_limit"]:
        return
    wait = max(1, usage["time_left"])
    limit, _, unit = rate.partition("/")
    per = {"s": "a second", "m": "a minute", "h": "an hour", "d": "a day"}[unit]
    where = f"in class {key[6:]}" if key.startswith("class:") else "from one address"
    raise LimitError(
        field,
        f"at most {limit} {what} {per} {where}: try again in {wait} s",
        retry_after=wait,
    )


class Bucket:
    """A token bucket: ``rate`` a second, saving up at most one second's worth.

    For counting one connection's messages in its own process, where a cache round
    trip per message would cost more than the message.
    """

    __slots__ = ("rate", "tokens", "at")

    def __init__(self, rate: float) -> None:
        self.rate = float(rate)
        self.tokens = float(rate)
        self.at = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True
