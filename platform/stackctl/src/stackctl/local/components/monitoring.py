"""Prometheus and Pushgateway, when the host has them (Debian: prometheus, prometheus-pushgateway)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from stackcontract.private import write_private
from stackctl.local.components.base import Component, Launch, Status
from stackctl.local.context import HOST, RunContext, S3Flavor, which
from stackctl.local.ports import PortClaim
from stackctl.local.readiness import http_ok
from stackctl.prometheus import (
    PUSHGATEWAY_USER,
    alert_rule_files,
    prometheus_config,
    pushgateway_web_config,
    scrape_intervals,
)

INSTALL_HINT = "install with `apt-get install prometheus prometheus-pushgateway`"


def valid_rule_files(candidates: list[Path], status: Status) -> list[Path]:
    """Keep the rule files promtool accepts: a broken rule file must not stop Prometheus."""
    promtool = which("promtool")
    if promtool is None:
        return []
    valid = []
    for path in candidates:
        checked = subprocess.run(
            [promtool, "check", "rules", str(path)], capture_output=True, check=False, timeout=60
        )
        if checked.returncode == 0:
            valid.append(path)
        else:
            status(f"ignoring rule file {path.name}: promtool check rules failed")
    return valid


def _target(port: int) -> str:
    return f"{HOST}:{port}"


class Pushgateway(Component):
    name = "pushgateway"
    budget_seconds = 90.0

    def port_claims(self, ctx: RunContext) -> list[PortClaim]:
        return [PortClaim(self.name, "pushgateway_port", ctx.config.ports.pushgateway_port)]

    def skip_reason(self, ctx: RunContext) -> str | None:
        if which("prometheus-pushgateway") is None:
            return f"skipped: prometheus-pushgateway not on PATH, {INSTALL_HINT}"
        return None

    def url(self, ctx: RunContext) -> str:
        return ctx.pushgateway_url

    def launches(self, ctx: RunContext) -> list[Launch]:
        binary = which("prometheus-pushgateway") or "prometheus-pushgateway"
        data = ctx.paths.data / "pushgateway"
        argv = [
            binary,
            *self.declared_args(ctx),
            f"--web.listen-address={_target(ctx.config.ports.pushgateway_port)}",
            f"--persistence.file={data / 'metrics.store'}",
            f"--web.config.file={ctx.paths.generated / 'pushgateway-web.yml'}",
        ]
        return [Launch(self.name, argv, {}, health=(self.service(ctx).health,))]

    def bring_up(self, ctx: RunContext, status: Status) -> None:
        (ctx.paths.data / "pushgateway").mkdir(parents=True, exist_ok=True)
        password = ctx.credentials.pushgateway_password.get_secret_value()
        write_private(
            ctx.paths.generated / "pushgateway-web.yml",
            yaml.safe_dump(pushgateway_web_config(password)),
        )
        write_private(ctx.paths.generated / "pushgateway-password", password)
        (launch,) = self.launches(ctx)
        status("starting prometheus-pushgateway")
        self.spawn(ctx, launch.argv, env=launch.env)
        health = http_ok(
            f"{ctx.pushgateway_url}{launch.health[0]}", auth=(PUSHGATEWAY_USER, password)
        )
        self.wait(ctx, health, status, budget=None)


# Prometheus scrapes MLflow's /metrics as the stack's MLflow user, password read from this file.
MLFLOW_PASSWORD_FILE = "mlflow-password"


class Prometheus(Component):
    name = "prometheus"
    budget_seconds = 90.0

    def __init__(self, *, with_pushgateway: bool) -> None:
        super().__init__()
        self.with_pushgateway = with_pushgateway

    def port_claims(self, ctx: RunContext) -> list[PortClaim]:
        return [PortClaim(self.name, "prometheus_port", ctx.config.ports.prometheus_port)]

    def skip_reason(self, ctx: RunContext) -> str | None:
        if which("prometheus") is None:
            return f"skipped: prometheus not on PATH, {INSTALL_HINT}"
        return None

    def url(self, ctx: RunContext) -> str:
        return ctx.prometheus_url

    def config_for(self, ctx: RunContext, rule_files: list[Path]) -> dict[str, Any]:
        ports = ctx.config.ports
        if ctx.options.s3 is S3Flavor.seaweedfs:
            s3_metrics = (_target(ports.seaweed_metrics_port), "/metrics")
        else:
            s3_metrics = (_target(ports.s3_port), "/minio/v2/metrics/cluster")
        return prometheus_config(
            intervals=scrape_intervals(ctx.config.repo_root),
            model_server=_target(ports.model_server_port),
            mlflow=_target(ports.mlflow_port),
            s3_metrics=s3_metrics,
            pushgateway=_target(ports.pushgateway_port) if self.with_pushgateway else None,
            pushgateway_password_file=ctx.paths.generated / "pushgateway-password",
            mlflow_auth=(ctx.mlflow_username, ctx.paths.generated / MLFLOW_PASSWORD_FILE),
            rule_files=rule_files,
        )

    def launches(self, ctx: RunContext) -> list[Launch]:
        binary = which("prometheus") or "prometheus"
        argv = [
            binary,
            *self.declared_args(ctx),
            f"--config.file={ctx.paths.generated / 'prometheus.yml'}",
            f"--storage.tsdb.path={ctx.paths.data / 'prometheus'}",
            f"--web.listen-address={_target(ctx.config.ports.prometheus_port)}",
        ]
        return [Launch(self.name, argv, {}, health=(self.service(ctx).health,))]

    def bring_up(self, ctx: RunContext, status: Status) -> None:
        rules = valid_rule_files(alert_rule_files(ctx.config.repo_root), status)
        (launch,) = self.launches(ctx)
        password = ctx.credentials.mlflow_password.get_secret_value()
        write_private(ctx.paths.generated / MLFLOW_PASSWORD_FILE, password)
        config_file = ctx.paths.generated / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(self.config_for(ctx, rules), sort_keys=False))
        (ctx.paths.data / "prometheus").mkdir(parents=True, exist_ok=True)
        status("starting prometheus")
        self.spawn(ctx, launch.argv, env=launch.env)
        self.wait(ctx, http_ok(f"{ctx.prometheus_url}{launch.health[0]}"), status, budget=None)
