"""The secret key made on first start: one per machine, private, never half-written."""

from __future__ import annotations

import stat
import threading

from scalelab.secret import secret_key_from_file


def test_processes_starting_together_end_with_one_key(tmp_path):
    path = tmp_path / "secret"
    start = threading.Barrier(8)
    keys = []

    def begin():
        start.wait()
        keys.append(secret_key_from_file(path))

    starting = [threading.Thread(target=begin) for _ in range(8)]
    for thread in starting:
        thread.start()
    for thread in starting:
        thread.join()
    assert len(keys) == 8
    assert set(keys) == {path.read_text()}
    assert [p.name for p in tmp_path.iterdir()] == ["secret"]  # no temporary left


def test_the_key_file_is_readable_by_its_owner_only(tmp_path):
    path = tmp_path / "new" / "secret"
    secret_key_from_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_key_kept_from_before_is_used_again(tmp_path):
    path = tmp_path / "secret"
    path.write_text("k" * 60 + "\n")
    assert secret_key_from_file(path) == "k" * 60
