"""The MLflow tracking server: runs and registry in SQL, artifacts proxied to S3, every route but
/health behind MLflow's basic-auth app."""

from __future__ import annotations

import shutil
from pathlib import Path

from stackcontract import mlflow_auth
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
            "MLFLOW_AUTH_CONFIG_PATH": str(ctx.services.config_dir / mlflow_auth.AUTH_CONFIG_FILE),
            "MLFLOW_AUTH_ADMIN_PASSWORD": ctx.credentials.mlflow_password.get_secret_value(),
            "MLFLOW_FLASK_SERVER_SECRET_KEY": (
                ctx.credentials.mlflow_flask_secret_key.get_secret_value()
            ),
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
        # The auth app's user store is relative to the working directory (mlflow-auth.ini).
        self.spawn(ctx, launch.argv, env=launch.env, cwd=ctx.paths.data / "mlflow")
        self.wait(ctx, http_ok(f"{ctx.mlflow_url}{launch.health[0]}"), status, budget=None)
