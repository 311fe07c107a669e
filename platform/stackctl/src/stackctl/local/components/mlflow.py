"""The MLflow tracking server: runs and registry in SQL, artifacts proxied to S3."""

from __future__ import annotations

import shutil

from stackctl.local.components.base import VENV_BIN, Component, Status, base_env
from stackctl.local.context import HOST, RunContext, which
from stackctl.local.ports import PortClaim
from stackctl.local.readiness import StartupError, http_ok


class MLflowServer(Component):
    name = "mlflow"
    depends_on = ("s3",)
    budget_seconds = 300.0

    def port_claims(self, ctx: RunContext) -> list[PortClaim]:
        return [PortClaim(self.name, "mlflow_port", ctx.config.ports.mlflow_port)]

    def url(self, ctx: RunContext) -> str:
        return ctx.mlflow_url

    def backend_store_uri(self, ctx: RunContext) -> str:
        if ctx.options.mlflow_backend_store_uri:
            return ctx.options.mlflow_backend_store_uri
        folder = ctx.paths.data / "mlflow"
        folder.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{folder / 'mlflow.db'}"

    def argv(self, ctx: RunContext) -> list[str]:
        mlflow = which("mlflow", VENV_BIN)
        if mlflow is None:
            raise StartupError(self.name, "`mlflow` not found: run `uv sync` in the checkout.")
        metrics_dir = ctx.paths.data / "mlflow-prometheus"
        # Multiprocess metric files of a previous run would be served as current values.
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        artifacts = f"s3://{ctx.config.bucket}/{ctx.config.setting('MLFLOW_ARTIFACTS_PREFIX')}"
        return [
            mlflow,
            "server",
            "--backend-store-uri",
            self.backend_store_uri(ctx),
            "--artifacts-destination",
            artifacts,
            "--serve-artifacts",
            "--expose-prometheus",
            str(metrics_dir),
            "--host",
            HOST,
            "--port",
            str(ctx.config.ports.mlflow_port),
            "--workers",
            "1",  # a 2-core dev machine: more workers only cost start-up time and memory
            # Open keep-alive/scrape connections must not hold `down` for the whole grace period.
            "--uvicorn-opts",
            "--timeout-graceful-shutdown 5",
        ]

    def bring_up(self, ctx: RunContext, status: Status) -> None:
        # MLflow's job runner (GenAI jobs, 7 huey processes) is not used here; it slows start-up
        # on two cores and respawns consumers while the server stops.
        env = {**base_env(), **ctx.s3_env(), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        status("starting mlflow server")
        self.spawn(ctx, self.argv(ctx), env=env)
        self.wait(ctx, http_ok(f"{ctx.mlflow_url}/health"), status, budget=None)
