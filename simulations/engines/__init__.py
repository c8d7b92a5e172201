"""Simulation engines, found by kind.

Every module in this package other than ``base`` and ``runner`` defines engines;
each ``Engine`` subclass with a ``kind`` is registered when the package loads.
"""

from __future__ import annotations

import importlib
import pkgutil

from .base import Engine, EngineError

_SKIP = {"base", "runner"}
REGISTRY: dict[str, type[Engine]] = {}


def _discover() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name in _SKIP or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, Engine)
                and value.kind
                and value.__module__ == module.__name__
            ):
                if value.kind in REGISTRY:
                    raise RuntimeError(f"engine kind {value.kind!r} registered twice")
                REGISTRY[value.kind] = value


def get_engine(kind: str) -> type[Engine]:
    """Return the engine class for ``kind`` or raise EngineError naming the kinds."""
    try:
        return REGISTRY[kind]
    except KeyError:
        allowed = ", ".join(sorted(REGISTRY))
        raise EngineError(
            "kind", f"unknown engine kind {kind!r}; kinds: {allowed}"
        ) from None


def kinds() -> list[str]:
    return sorted(REGISTRY)


_discover()
