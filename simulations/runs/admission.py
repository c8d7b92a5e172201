"""Admission: may one more live run (or curve job) start? Counted under a lock.

Three counts, in this order, so a visitor is told first about what they can fix:
the visitor's own (429, stop one of yours: only runs someone watches count, and
those nobody watches are stopped to make room), the client address's (429, a flood
from one place) and the whole site's, sized to the workers (503, come back soon).

The counts and the insert that follows them must be one step, or parallel
requests all see room and all insert. SQLite transactions here begin ``IMMEDIATE``
(settings), so writers already go one at a time; on PostgreSQL a transaction-level
advisory lock per kind of job serialises them for as long as the transaction.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from scalelab.limits import LimitError

from ..transport import get_transport
from .errors import QuotaError


@dataclass(frozen=True)
class Caps:
    field: str  # the request field errors name: "runs", "curve"
    noun: str  # "live runs", "curve jobs being computed"
    per_visitor: int
    per_address: int
    site: int
    visitor_message: str
    site_retry_s: int
    reclaim: bool = False  # stop the visitor's unwatched ones rather than refuse


# A run just started has no viewer until its page connects; it counts meanwhile.
CONNECT = timedelta(seconds=10)


def _stop(run_ids: list[str]) -> None:
    transport = get_transport()
    for run_id in run_ids:
        transport.push_control(run_id, {"type": "stop"})


def serialise(name: str) -> None:
    """Inside a transaction: wait until no other transaction holds ``name``."""
    if connection.vendor != "postgresql":
        return
    key = int.from_bytes(
        hashlib.blake2b(f"scalelab:{name}".encode(), digest_size=8).digest(),
        "big",
        signed=True,
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def unwatched(runs: list[tuple[Any, datetime]], now: datetime) -> list[str]:
    """The ids of ``runs`` (id, created) nobody watches, past their time to connect."""
    settled = [str(i) for i, created in runs if now - created >= CONNECT]
    watched = get_transport().watched(settled) if settled else {}
    return [i for i in settled if not watched.get(i)]


def admit(
    live: QuerySet,
    caps: Caps,
    *,
    owner,
    visitor: str,
    client: str,
    client_cap: int | None = None,
) -> None:
    """Raise unless one more of ``live`` may start; call inside ``atomic()``.

    ``client`` is the client address, or a live class's key (``class:CODE``) for
    its members, whose allowance ``client_cap`` then replaces the address's.

    With ``caps.reclaim``, a visitor at their quota has their runs that nobody
    watches stopped (once the transaction commits) instead of being refused: only
    runs someone watches, or that were started a moment ago and are still being
    connected to, count.
    """
    serialise(caps.field)
    if owner is not None and owner.is_authenticated:
        mine = live.filter(owner=owner)
    else:
        mine = live.filter(owner__isnull=True, visitor=visitor)
    mine_now = list(mine.values_list("id", "created_at"))
    idle: list[str] = []
    if len(mine_now) >= caps.per_visitor and caps.reclaim:
        idle = unwatched(mine_now, timezone.now())
    if len(mine_now) - len(idle) >= caps.per_visitor:
        raise QuotaError(caps.field, caps.visitor_message)
    if idle:
        live = live.exclude(id__in=idle)
        transaction.on_commit(lambda: _stop(idle))
    cap = client_cap or caps.per_address
    if client and live.filter(client=client).count() >= cap:
        where = (
            f"in class {client[6:]}"
            if client.startswith("class:")
            else "from one address"
        )
        raise LimitError(
            caps.field,
            f"at most {cap} {caps.noun} {where}: try again when one has ended",
            retry_after=caps.site_retry_s,
        )
    if live.count() >= caps.site:
        raise LimitError(
            caps.field,
            f"ScaleLab is at its limit of {caps.site} {caps.noun}: "
            f"try again in {caps.site_retry_s} s",
            status=503,
            retry_after=caps.site_retry_s,
        )
