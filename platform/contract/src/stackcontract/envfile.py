"""The one parser of the stack's env files (`platform/config/**/*.env`).

The same files are read by kustomize's `configMapGenerator` (`envs:`), by Docker Compose's
`env_file:` and by Python (the local backend, mlpipe, the renderer). Those readers disagree on
quoting, `export`, surrounding spaces and `$` interpolation, so the format accepted here is the
subset on which they all agree, and anything else is an error naming the file and line:

    # a comment
    KEY=value as is, spaces inside are kept

Keys are shell-style names, each defined once; values carry no quotes, no surrounding spaces and
no `$` (Compose would interpolate it, kustomize would not).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from stackcontract.errors import ConfigError
from stackcontract.private import write_private

KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
QUOTES = ("'", '"')


class EnvFileError(ConfigError, ValueError):
    """A line of an env file is outside the shared format; the message gives file, line and fix."""


def _problem(key: str, value: str) -> str | None:
    if not KEY.fullmatch(key):
        if key.startswith("export "):
            return "drop `export ` (kustomize and Compose do not accept it)"
        return f"{key!r} is not a valid key (letters, digits and _, not starting with a digit)"
    if value != value.strip():
        return "the value has leading or trailing spaces (readers disagree on them)"
    if value[:1] in QUOTES:
        return "the value is quoted (Compose strips quotes, kustomize keeps them): drop the quotes"
    if "$" in value:
        return "the value contains `$` (Compose interpolates it, kustomize does not)"
    return None


def parse_env_text(text: str, source: str = "<env>") -> dict[str, str]:
    """Parse env-file text; `source` names it in errors (`source:line: ...`)."""
    values: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        key, sep, value = raw.partition("=")
        if not sep:
            raise EnvFileError(f"{source}:{number}: expected KEY=value, got {raw!r}.")
        if problem := _problem(key, value):
            raise EnvFileError(f"{source}:{number}: {problem}: {raw!r}.")
        if key in values:
            raise EnvFileError(
                f"{source}:{number}: {key} is already set on line {first_line[key]}; "
                "keep one definition."
            )
        values[key] = value
        first_line[key] = number
    return values


def parse_env_file(path: Path) -> dict[str, str]:
    """Parse one env file (see the module docstring for the format)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EnvFileError(f"{path} does not exist.") from None
    return parse_env_text(text, str(path))


def format_env(values: Mapping[str, str]) -> str:
    """`values` as env-file text that `parse_env_text` reads back unchanged."""
    lines = []
    for key, value in values.items():
        if problem := _problem(key, value):
            raise EnvFileError(f"cannot write {key}: {problem}.")
        lines.append(f"{key}={value}\n")
    return "".join(lines)


def write_env_file(path: Path, values: Mapping[str, str], *, private: bool = True) -> None:
    """Write `values` as an env file (owner-only when `private`: such files hold secrets)."""
    if private:
        write_private(path, format_env(values))
    else:
        path.write_text(format_env(values), encoding="utf-8")
