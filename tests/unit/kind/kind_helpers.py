"""Helpers for the kind-backend unit tests: recorded API objects, a recording runner, a fake docker
SDK client. (A uniquely named module: `conftest` is a name every test folder uses.)"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace
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
PUSHED_DIGEST = "sha256:" + "e5" * 32


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
    pushed: list[str] = field(default_factory=list)
    store: dict[str, FakeImage] = field(default_factory=dict)

    def build(self, **kwargs: Any) -> tuple[FakeImage, list[Any]]:
        self.built.append(kwargs)
        image = FakeImage("sha256:" + "b1" * 32, {})
        self.store[kwargs["tag"]] = image
        return image, []

    def get(self, reference: str) -> FakeImage:
        return self.store[reference]

    def push(self, repository: str, tag: str, **_kw: Any) -> Iterator[dict[str, Any]]:
        self.pushed.append(f"{repository}:{tag}")
        yield {"status": "Pushed"}
        yield {"aux": {"Tag": tag, "Digest": PUSHED_DIGEST}}

    def pull(self, reference: str, platform: str | None = None) -> FakeImage:
        self.pulled.append((reference, platform))
        repo = reference.split(":", 1)[0]
        return FakeImage("sha256:" + "c2" * 32, {"RepoDigests": [f"{repo}@{DIGEST}"]})


@dataclass
class FakeContainer:
    name: str
    attrs: dict[str, Any]
    status: str = "running"
    execs: list[list[str]] = field(default_factory=list)
    archives: dict[str, bytes] = field(default_factory=dict)
    removed: bool = False

    def reload(self) -> None:
        pass

    def start(self) -> None:
        self.status = "running"

    def logs(self, tail: int) -> bytes:
        return b"registry log line\n"

    def exec_run(self, command: list[str]) -> Any:
        self.execs.append(command)
        return SimpleNamespace(exit_code=0, output=b"")

    def put_archive(self, path: str, data: bytes) -> bool:
        self.archives[path] = data
        return True

    def remove(self, force: bool = False) -> None:
        self.removed = True


def registry_container(name: str, host_port: int) -> FakeContainer:
    """A running registry container publishing 5000 on `host_port`, on the bridge network."""
    bindings = {"5000/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(host_port)}]}
    return FakeContainer(
        name,
        {"HostConfig": {"PortBindings": bindings}, "NetworkSettings": {"Networks": {"bridge": {}}}},
    )


@dataclass
class FakeContainers:
    store: dict[str, FakeContainer] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)
    refuse_with: str | None = None  # an APIError explanation `run` raises

    def get(self, name: str) -> FakeContainer:
        from docker.errors import NotFound

        if name.endswith("-control-plane"):  # a kind node: there once `kind create` made it
            self.store.setdefault(name, FakeContainer(name, {}))
        if name not in self.store or self.store[name].removed:
            raise NotFound(f"No such container: {name}")
        return self.store[name]

    def run(self, image: str, **kwargs: Any) -> FakeContainer:
        from docker.errors import APIError

        if self.refuse_with:
            raise APIError("500 Server Error", explanation=self.refuse_with)
        self.runs.append({"image": image, **kwargs})
        host_port = kwargs["ports"]["5000/tcp"][1]
        self.store[kwargs["name"]] = registry_container(kwargs["name"], host_port)
        return self.store[kwargs["name"]]


@dataclass
class FakeNetworks:
    connects: list[tuple[str, str]] = field(default_factory=list)

    def get(self, name: str) -> Any:
        return SimpleNamespace(connect=lambda container: self._connect(name, container))

    def _connect(self, name: str, container: FakeContainer) -> None:
        self.connects.append((name, container.name))
        container.attrs["NetworkSettings"]["Networks"][name] = {}


@dataclass
class FakeVolumes:
    removed: list[str] = field(default_factory=list)

    def get(self, name: str) -> Any:
        return SimpleNamespace(remove=lambda force=False: self.removed.append(name))


@dataclass
class FakeDocker:
    images: FakeImages = field(default_factory=FakeImages)
    containers: FakeContainers = field(default_factory=FakeContainers)
    networks: FakeNetworks = field(default_factory=FakeNetworks)
    volumes: FakeVolumes = field(default_factory=FakeVolumes)
