"""The one backend interface, and the one way to load a backend.

Every backend (local, kind, eks) brings a stack up, reports its endpoints, collects its logs,
and tears it down; tests only ever talk to `Endpoints`. Backends are registered under the entry
point group `stackctl.backends` (platform/stackctl/pyproject.toml) and built with one constructor
signature, `Backend(config, *, state_dir=None, console=None, options=None)`; `load_backend`
finds one by name for the CLI and the integration conftest alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol, TypeVar

from rich.console import Console

from stackcontract.endpoints import Endpoints
from stackcontract.settings import StackConfig

ENTRY_POINT_GROUP = "stackctl.backends"
OptionsT = TypeVar("OptionsT")


class BackendError(RuntimeError):
    """No backend of that name, or it cannot be loaded; the message names the ones there are."""


class Backend(Protocol):
    """What the local, kind and eks backends each implement."""

    name: str

    def up(self) -> Endpoints:
        """Bring the stack up (or reuse a matching running one) and return its endpoints."""
        ...

    def endpoints(self) -> Endpoints:
        """Endpoints of the stack this backend is already running."""
        ...

    def up_phases(self) -> dict[str, float]:
        """Seconds each phase of this object's last `up` took (empty before one): what the
        integration tier reports as bring-up time."""
        ...

    def collect_logs(self, dest: Path) -> Path:
        """Gather logs and diagnostics under `dest` and return the index file written there."""
        ...

    def down(self, *, purge: bool = False) -> None:
        """Stop everything this backend started (and delete its data with `purge`)."""
        ...


class BackendFactory(Protocol):
    """The one constructor signature. `options` are the `stackctl up` choices that apply to the
    backend (each backend validates them and refuses those it cannot honour); `state_dir` is where
    it keeps its state (default: under the checkout's `.stack/`)."""

    def __call__(
        self,
        config: StackConfig,
        *,
        state_dir: Path | None = None,
        console: Console | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Backend: ...


def options_from_choices(
    options_class: type[OptionsT],
    choices: Mapping[str, Any] | OptionsT | None,
    *,
    backend: str,
    hint: str,
) -> OptionsT:
    """A backend's options dataclass from the `stackctl up` choices; a choice the backend does not
    have is a `ValueError` naming it, the backend and `hint` (where that choice is made instead)."""
    if choices is not None and not isinstance(choices, Mapping):
        if not isinstance(choices, options_class):
            raise TypeError(f"{backend} backend options: expected a mapping or {options_class}")
        return choices
    values = dict(choices or {})
    known = {f.name for f in fields(options_class)}  # type: ignore[arg-type]
    if unknown := sorted(set(values) - known):
        raise ValueError(f"The {backend} backend has no option {', '.join(unknown)}: {hint}.")
    return options_class(**values)


def backend_names() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))


def load_backend(name: str) -> BackendFactory:
    """The backend registered as `name` under `stackctl.backends`."""
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not found:
        known = ", ".join(backend_names()) or "none: is stackctl installed (`uv sync`)?"
        raise BackendError(f"No backend {name!r}. Registered backends: {known}.")
    try:
        factory: BackendFactory = found[0].load()
    except (ImportError, AttributeError) as error:
        raise BackendError(
            f"The {name} backend ({found[0].value}) cannot be loaded: {error}"
        ) from None
    return factory
