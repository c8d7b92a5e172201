"""A secret key made on first start and kept in a file, for a machine with none set."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from .env import ConfigError


def secret_key_from_file(path: Path) -> str:
    """Return the key kept in ``path``, writing a new random one there first if none.

    The key is written whole to a private temporary file, which is then linked to
    ``path``: a link never replaces a file, so of processes starting together (web
    and worker) one wins, and all of them read its key, never a half-written one.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "w") as file:
                file.write(secrets.token_urlsafe(50))
                file.flush()
                os.fsync(file.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
        finally:
            temporary.unlink()
    key = path.read_text().strip()
    if len(key) < 50:
        raise ConfigError(
            f"{path} holds a SECRET_KEY shorter than 50 characters: "
            "delete it to have a new one made, or set SECRET_KEY"
        )
    return key
