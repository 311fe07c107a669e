"""The one writer of credential files: owner-only, also when the file existed with wider modes."""

from __future__ import annotations

import stat
from pathlib import Path

from stackcontract.private import write_private


def test_a_new_file_is_owner_only_and_parents_are_made(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "secret.json"
    write_private(path, "s3cret")
    assert path.read_text() == "s3cret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_an_existing_readable_file_is_narrowed_and_replaced(tmp_path: Path) -> None:
    path = tmp_path / "secret.env"
    path.write_text("old contents, much longer than the new ones")
    path.chmod(0o644)
    write_private(path, "new")
    assert path.read_text() == "new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
