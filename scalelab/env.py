"""Read configuration from the environment, failing loudly on bad values."""

from __future__ import annotations

import os
from urllib.parse import urlparse


class ConfigError(RuntimeError):
    """An environment variable holds a value the settings cannot use."""


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(
        f"{name} must be one of 1/0, true/false, yes/no, on/off; got {raw!r}"
    )


def env_int(name: str, default: int, *, minimum: int, maximum: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(
            f"{name} must be an integer from {minimum} to {maximum}; got {raw!r}"
        ) from None
    if not minimum <= value <= maximum:
        raise ConfigError(
            f"{name} must be an integer from {minimum} to {maximum}; got {raw!r}"
        )
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_url(name: str, schemes: tuple[str, ...], default: str = "") -> str:
    """Return a URL whose scheme is one of ``schemes``, or "" when unset."""
    raw = os.environ.get(name, default).strip()
    if not raw:
        return ""
    scheme = urlparse(raw).scheme
    if scheme not in schemes:
        # What comes before an "@" may be a password, even in a malformed URL.
        shown = "...@" + raw.rpartition("@")[2] if "@" in raw else raw
        raise ConfigError(
            f"{name} must be a URL starting with {' or '.join(s + '://' for s in schemes)}; got {shown!r}"
        )
    return raw
