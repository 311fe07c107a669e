"""Helpers for the kind-backend unit tests: recorded API objects, a recording runner, a fake docker
SDK client. (A uniquely named module: `conftest` is a name every test folder uses.)"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from stackctl.k8s.commands import CommandResult, checked

FIXTURES = Path(__file__).parent / "fixtures"


def load_fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


@dataclass
class RecordingRunner:
    """Records every command instead of running it; answers by argv prefix from `responses`."""

    responses: dict[tuple[str, ...], CommandResult | Exception] = field(default_factory=dict)
    calls: list[list[str]] = field(default_factory=list)
    timeouts: list[float | None] = field(default_factory=list)

    def __call__(
        self,
        args: Sequence[str],
        *,
        timeout: float | None = None,
        check: bool = True,
        input_text: str | None = None,
        stdout_path: Path | None = None,
    ) -> CommandResult:
        argv = list(args)
        self.calls.append(argv)
        self.timeouts.append(timeout)
        answer: CommandResult | Exception = CommandResult(argv, 0, "", "")
        for prefix, candidate in sorted(self.responses.items(), key=lambda kv: -len(kv[0])):
            if tuple(argv[: len(prefix)]) == prefix:
                answer = candidate
                break
        if isinstance(answer, Exception):
            raise answer
        result = checked(replace(answer, args=argv), check=check)
        if stdout_path is not None:
            stdout_path.write_text(result.stdout)
        return result

    def ran(self, *prefix: str) -> list[list[str]]:
        return [c for c in self.calls if tuple(c[: len(prefix)]) == prefix]


def ok(stdout: str = "") -> CommandResult:
    return CommandResult([], 0, stdout, "")


DIGEST = "sha256:" + "d4" * 32


@dataclass
class FakeImage:
    id: str
    attrs: dict[str, Any]
    tags: list[str] = field(default_factory=list)
    saved_as: list[Any] = field(default_factory=list)

    def save(self, named: Any = False) -> Iterator[bytes]:
        self.saved_as.append(named)
        yield b"tar-"
        yield self.id.encode()

    def tag(self, repository: str, tag: str) -> bool:
        self.tags.append(f"{repository}:{tag}")
        return True


@dataclass
class FakeImages:
    built: list[dict[str, Any]] = field(default_factory=list)
    pulled: list[tuple[str, str | None]] = field(default_factory=list)
    store: dict[str, FakeImage] = field(default_factory=dict)

    def build(self, **kwargs: Any) -> tuple[FakeImage, list[Any]]:
        self.built.append(kwargs)
        image = FakeImage("sha256:" + "b1" * 32, {})
        self.store[kwargs["tag"]] = image
        return image, []

    def get(self, reference: str) -> FakeImage:
        return self.store[reference]

    def pull(self, reference: str, platform: str | None = None) -> FakeImage:
        self.pulled.append((reference, platform))
        repo = reference.split(":", 1)[0]
        return FakeImage("sha256:" + "c2" * 32, {"RepoDigests": [f"{repo}@{DIGEST}"]})


@dataclass
class FakeDocker:
    images: FakeImages = field(default_factory=FakeImages)
