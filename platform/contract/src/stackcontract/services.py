"""Each service of the stack, declared once in `platform/config/services.toml`, and the drift
check that holds every backend to that declaration.

A backend reports, per service, the `Effective` settings it really runs with (the environment and
argv of its processes, or of its containers in the rendered manifests); `drift` compares them with
the declaration and names every difference that the declaration does not allow.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stackcontract.envfile import EnvFileError, parse_env_file
from stackcontract.errors import ConfigError
from stackcontract.repo import CONFIG_DIR

SERVICES_FILE = "services.toml"


class ServiceError(ConfigError):
    """services.toml (or an env file it names) is malformed; the message says where."""


class Service(BaseModel):
    """One entry of services.toml (see the comment at its top)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    command: str
    args: tuple[str, ...] = ()
    env_file: str | None = None
    port: str
    health: str
    depends_on: tuple[str, ...] = ()
    kubernetes: tuple[str, ...] = ()
    compose: tuple[str, ...] = ()
    absent_on: dict[str, str] = Field(default_factory=dict)
    per_backend: dict[str, str] = Field(default_factory=dict)
    env: dict[str, str] = Field(default_factory=dict, exclude=True)

    def flags(self) -> dict[str, str]:
        return split_args(self.args)[1]

    def positionals(self) -> list[str]:
        return split_args(self.args)[0]


@dataclass(frozen=True)
class Services:
    """Every declared service plus the keys any service may set per backend."""

    services: dict[str, Service]
    per_backend: dict[str, str]
    config_dir: Path

    def __getitem__(self, name: str) -> Service:
        try:
            return self.services[name]
        except KeyError:
            raise ServiceError(
                f"No service {name!r} in {self.config_dir / SERVICES_FILE} "
                f"(declared: {', '.join(sorted(self.services))})."
            ) from None

    def __iter__(self) -> Iterator[Service]:
        return iter(self.services.values())

    def on(self, backend: str) -> list[Service]:
        """The services `backend` runs (all but those `absent_on` it)."""
        return [service for service in self.services.values() if backend not in service.absent_on]

    def may_differ(self, service: Service, key: str) -> bool:
        return key in service.per_backend or key in self.per_backend


def load_services(config_dir: Path) -> Services:
    """Read services.toml and the env files it names, from `config_dir` (platform/config)."""
    path = config_dir / SERVICES_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ServiceError(f"{path} does not exist.") from None
    except tomllib.TOMLDecodeError as error:
        raise ServiceError(f"{path}: {error}") from None
    services: dict[str, Service] = {}
    for name, raw in (data.get("services") or {}).items():
        try:
            service = Service.model_validate({"name": name, **raw})
        except ValidationError as error:
            raise ServiceError(f"{path}: [services.{name}]: {error}") from None
        if service.env_file is not None:
            try:
                env = parse_env_file(config_dir / service.env_file)
            except EnvFileError as error:
                raise ServiceError(f"{path}: [services.{name}] env: {error}") from None
            service = service.model_copy(update={"env": env})
        services[name] = service
    for service in services.values():
        if unknown := [dep for dep in service.depends_on if dep not in services]:
            raise ServiceError(
                f"{path}: [services.{service.name}] depends_on names undeclared {unknown}."
            )
    return Services(services, dict(data.get("per_backend") or {}), config_dir)


def load_repo_services(repo_root: Path) -> Services:
    return load_services(repo_root / CONFIG_DIR)


def split_args(args: Iterable[str]) -> tuple[list[str], dict[str, str]]:
    """Positionals, and flags as `{"-flag": "value"}` (`""` for a flag without a value).

    Flags are read in `-flag=value` form only: `-flag value` is ambiguous without each program's
    grammar, so every backend writes its flags with `=`."""
    positionals: list[str] = []
    flags: dict[str, str] = {}
    for arg in args:
        if arg.startswith("-"):
            flag, _, value = arg.partition("=")
            flags[flag] = value
        else:
            positionals.append(arg)
    return positionals, flags


@dataclass
class Effective:
    """What one process or container of a service really runs with on one backend."""

    where: str  # e.g. "airflow-scheduler" or "Deployment/mlflow:mlflow"
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    port: int | None = None  # only for the process/container that carries the service's port
    health: tuple[str, ...] = ()  # HTTP paths it is probed on (same)
    missing: bool = False  # declared for this backend but not found there


def drift(
    services: Services,
    service: Service,
    backend: str,
    effective: Effective,
    *,
    stack_settings: Mapping[str, str],
    ports: Mapping[str, str],
) -> list[str]:
    """Every difference between `effective` and the declaration that the declaration does not
    allow, as `backend/service (where): problem` lines; empty when there is none."""
    problems: list[str] = []

    def report(problem: str) -> None:
        problems.append(f"{backend}/{service.name} ({effective.where}): {problem}")

    if effective.missing:
        report("declared but not running on this backend (list it under absent_on, with why)")
        return problems

    positionals, flags = split_args(effective.args)
    declared_positionals = service.positionals()
    if positionals[: len(declared_positionals)] != declared_positionals:
        report(f"positional arguments {positionals} do not start with {declared_positionals}")
    for flag, value in service.flags().items():
        if flag not in flags:
            report(f"flag {flag} is declared but not passed")
        elif flags[flag] != value and not services.may_differ(service, flag):
            report(f"flag {flag}={flags[flag]!r}, declared {value!r}")
    for flag in sorted(set(flags) - set(service.flags())):
        if not services.may_differ(service, flag):
            report(f"flag {flag} is passed but neither declared nor listed under per_backend")

    for key, value in service.env.items():
        if key not in effective.env:
            report(f"env {key} is declared but not set")
        elif effective.env[key] != value and not services.may_differ(service, key):
            report(f"env {key}={effective.env[key]!r}, declared {value!r}")
    owned = {*service.env, *service.per_backend}
    prefixes = _prefixes(service)
    for key in sorted(effective.env):
        value = effective.env[key]
        if key in stack_settings:
            if value != stack_settings[key]:
                report(f"env {key}={value!r}, stack.env says {stack_settings[key]!r}")
            continue
        if key in owned or key in services.per_backend:
            continue
        if key.startswith(prefixes):
            report(f"env {key} is set but neither declared nor listed under per_backend")

    if effective.port is not None and str(effective.port) != ports.get(service.port):
        report(f"port {effective.port}, ports.env {service.port}={ports.get(service.port)}")
    if effective.health and service.health not in effective.health:
        report(f"probed on {list(effective.health)}, declared health {service.health}")
    return problems


def _prefixes(service: Service) -> tuple[str, ...]:
    """The env namespace a service owns: the prefixes of its declared and per-backend keys
    (`AIRFLOW__`, `MLFLOW_`, `MODEL_`, ...), so an undeclared key in that namespace is caught."""
    keys = [key for key in (*service.env, *service.per_backend) if not key.startswith("-")]
    return tuple(
        sorted(
            {key.split("__")[0] + "__" if "__" in key else key.split("_")[0] + "_" for key in keys}
        )
    )
