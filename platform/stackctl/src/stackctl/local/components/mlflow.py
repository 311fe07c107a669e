"""The MLflow tracking server: runs and registry in SQL, artifacts proxied to S3."""

from __future__ import annotations

import shutil
from pathlib import Path

from stackctl.local.components.base import VENV_BIN, Component, Launch, Status
from stackctl.local.context import HOST, RunContext, which
from stackctl.local.ports import PortClaim
from stackctl.local.readiness import StartupError, http_ok


class MLflowServer(Component):
    name = "mlflow"
    budget_seconds = 300.0

    def port_claims(self, ctx: RunContext) -> list[PortClaim]:
        return [PortClaim(self.name, "mlflow_port", ctx.config.ports.mlflow_port)]

    def url(self, ctx: RunContext) -> str:
        return ctx.mlflow_url

    def backend_store_uri(self, ctx: RunContext) -> str:
        if ctx.options.mlflow_backend_store_uri:
            return ctx.options.mlflow_backend_store_uri
        return f"sqlite:///{ctx.paths.data / 'mlflow' / 'mlflow.db'}"

    def launches(self, ctx: RunContext) -> list[Launch]:
        """`mlflow server` configured by environment (services/mlflow.env plus what differs
        locally: loopback, ports.env, SQLite, the state folder)."""
        mlflow = which("mlflow", VENV_BIN) or "mlflow"
        metrics_dir = ctx.paths.data / "mlflow-prometheus"
        artifacts = f"s3://{ctx.config.bucket}/{ctx.config.setting('MLFLOW_ARTIFACTS_PREFIX')}"
        env = {
            **ctx.s3_env(),
            **self.declared_env(ctx),
            "MLFLOW_HOST": HOST,
            "MLFLOW_PORT": str(ctx.config.ports.mlflow_port),
            "MLFLOW_BACKEND_STORE_URI": self.backend_store_uri(ctx),
            "MLFLOW_ARTIFACTS_DESTINATION": artifacts,
            "MLFLOW_EXPOSE_PROMETHEUS": str(metrics_dir),
        }
        health = (self.service(ctx).health,)
        return [Launch(self.name, [mlflow, *self.declared_args(ctx)], env, health=health)]

    def bring_up(self, ctx: RunContext, status: Status) -> None:
        if which("mlflow", VENV_BIN) is None:
            raise StartupError(self.name, "`mlflow` not found: run `uv sync` in the checkout.")
        (ctx.paths.data / "mlflow").mkdir(parents=True, exist_ok=True)  # the default SQLite store
        (launch,) = self.launches(ctx)
        metrics_dir = Path(launch.env["MLFLOW_EXPOSE_PROMETHEUS"])
        # Multiprocess metric files of a previous run would be served as current values.
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        status("starting mlflow server")
        self.spawn(ctx, launch.argv, env=launch.env)
        self.wait(ctx, http_ok(f"{ctx.mlflow_url}{launch.health[0]}"), status, budget=None)
