"""The shape of one local component: ports it needs, how it starts, how it proves it is ready."""

from __future__ import annotations

import os
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from stackcontract.services import Effective, Service
from stackctl.local.context import RunContext
from stackctl.local.ports import PortClaim
from stackctl.local.readiness import Check, wait_until
from stackctl.local.supervisor import ProcessRecord

Status = Callable[[str], None]
VENV_BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Launch:
    """One process of a component as it will be started: argv, the environment the component
    sets (`spawn` adds the parent's, see `base_env`), and the HTTP paths it is waited on."""

    process: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    health: tuple[str, ...] = ()
    command_words: int = 1  # leading argv items that are the program (`python -m mlpipe.serve`)


class Component(ABC):
    """One service of the stack. `bring_up` starts it and returns once it is ready; its
    processes are built from the service's declaration (platform/config/services.toml)."""

    name: str
    budget_seconds: float = 60.0

    def __init__(self) -> None:
        self.records: list[ProcessRecord] = []

    def port_claims(self, ctx: RunContext) -> list[PortClaim]:
        return []

    def preflight(self, ctx: RunContext) -> str | None:
        """A problem that stops `up` before anything starts (None: fine)."""
        return None

    def skip_reason(self, ctx: RunContext) -> str | None:
        """Why this optional component is skipped (None: it runs)."""
        return None

    def url(self, ctx: RunContext) -> str | None:
        return None

    @abstractmethod
    def bring_up(self, ctx: RunContext, status: Status) -> None:
        """Start the processes and wait until ready (StartupError on failure)."""

    def service(self, ctx: RunContext) -> Service:
        """This component's declaration (services.toml)."""
        return ctx.services[self.name]

    def depends_on(self, ctx: RunContext) -> tuple[str, ...]:
        """Components that must be ready before this one starts (declared `depends_on`)."""
        return self.service(ctx).depends_on

    def declared_args(self, ctx: RunContext) -> list[str]:
        return list(self.service(ctx).args)

    def declared_env(self, ctx: RunContext) -> dict[str, str]:
        return dict(self.service(ctx).env)

    def launches(self, ctx: RunContext) -> list[Launch]:
        """The processes `bring_up` starts, computed without starting anything."""
        return []

    def effective(self, ctx: RunContext) -> list[Effective]:
        """What the drift check compares with the declaration: each launch's args and env, and
        the declared port and health paths on the process that carries them."""
        port = getattr(ctx.config.ports, self.service(ctx).port.lower())
        return [
            Effective(
                where=launch.process,
                args=launch.argv[launch.command_words :],
                env=launch.env,
                port=port if launch.health else None,
                health=launch.health,
            )
            for launch in self.launches(ctx)
        ]

    def budget(self, ctx: RunContext) -> float:
        return self.budget_seconds * ctx.options.budget_scale

    def spawn(
        self,
        ctx: RunContext,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        process: str | None = None,
        cwd: Path | None = None,
        stop_signal: int | None = None,
    ) -> ProcessRecord:
        """Start one process of this component under the supervisor."""
        name = process or self.name
        extra = {} if stop_signal is None else {"stop_signal": stop_signal}
        record = ctx.supervisor.start(
            name,
            self.name,
            argv,
            env={**base_env(), **env},
            log=ctx.paths.log(name),
            cwd=cwd,
            **extra,
        )
        self.records.append(record)
        return record

    def died(self, ctx: RunContext) -> str | None:
        """Describe the first process of this component that has exited, if any."""
        for record in self.records:
            if not ctx.supervisor.is_running(record):
                code = ctx.supervisor.exit_code(record)
                return f"process {record.name} (pid {record.pid}) exited with code {code}"
        return None

    def wait(self, ctx: RunContext, check: Check, status: Status, *, budget: float | None) -> None:
        wait_until(
            self.name,
            check,
            budget=self.budget(ctx) if budget is None else budget,
            died=lambda: self.died(ctx),
            cancel=ctx.cancel,
            on_wait=status,
        )


def base_env() -> dict[str, str]:
    """The parent environment minus proxies (all traffic is to 127.0.0.1), venv bin first."""
    env = dict(os.environ)
    for key in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        env.pop(key, None)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    return env
