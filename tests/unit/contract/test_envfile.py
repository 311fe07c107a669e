"""The one env-file parser: the format kustomize, Compose and Python agree on, strictly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stackcontract.envfile import EnvFileError, format_env, parse_env_file, parse_env_text
from stackcontract.errors import ConfigError

REPO = Path(__file__).resolve().parents[3]


def test_every_env_file_of_the_repo_parses() -> None:
    files = sorted(REPO.glob("platform/**/*.env"))
    assert len(files) >= 6
    for path in files:
        parse_env_file(path)


def test_values_are_kept_as_written() -> None:
    text = '# comment\n\nA=1\nOPTS=--timeout-graceful-shutdown 5\nJSON={"k":"v"}\nEMPTY=\n'
    assert parse_env_text(text) == {
        "A": "1",
        "OPTS": "--timeout-graceful-shutdown 5",
        "JSON": '{"k":"v"}',
        "EMPTY": "",
    }


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("not a pair", "expected KEY=value"),
        ("export A=1", "drop `export `"),
        ("A B=1", "not a valid key"),
        ("1A=1", "not a valid key"),
        ("A = 1", "not a valid key"),
        ("A=1 ", "leading or trailing spaces"),
        ("A='1'", "quoted"),
        ('A="1"', "quoted"),
        ("A=$HOME", "contains `$`"),
    ],
)
def test_a_line_outside_the_shared_format_names_file_line_and_fix(line: str, says: str) -> None:
    with pytest.raises(EnvFileError, match=rf"x\.env:3: .*{re.escape(says)}"):
        parse_env_text(f"# c\nOK=1\n{line}\n", "x.env")


def test_a_key_set_twice_names_both_lines() -> None:
    with pytest.raises(EnvFileError, match=r"x\.env:4: A is already set on line 2"):
        parse_env_text("# c\nA=1\nB=2\nA=3\n", "x.env")


def test_errors_are_config_errors_and_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.env does not exist"):
        parse_env_file(tmp_path / "nope.env")


def test_written_files_read_back_unchanged_and_bad_values_are_refused() -> None:
    values = {"A": "1", "B": "two words"}
    assert parse_env_text(format_env(values)) == values
    with pytest.raises(EnvFileError, match="cannot write B"):
        format_env({"B": " padded"})
