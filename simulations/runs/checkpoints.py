"""A run's saved state: sealed so that only what this app wrote is ever unpickled."""

from __future__ import annotations

import hashlib
import hmac
import pickle
from typing import Any

from django.conf import settings


def seal(state: dict[str, Any]) -> bytes:
    """Pickle ``state`` and sign it with the secret key."""
    blob = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
    mac = hmac.new(settings.SECRET_KEY.encode(), blob, hashlib.sha256).digest()
    return mac + blob


def unseal(data: bytes) -> dict[str, Any]:
    """Return the state sealed in ``data``, or raise ValueError if it is not ours."""
    data = bytes(data)
    mac, blob = data[:32], data[32:]
    expected = hmac.new(settings.SECRET_KEY.encode(), blob, hashlib.sha256).digest()
    if not hmac.compare_digest(mac, expected):
        raise ValueError("checkpoint signature does not match")
    return pickle.loads(blob)  # noqa: S301 - signed above
