"""The model server (`python -m mlpipe.serve`): serves the registry's champion."""

from __future__ import annotations

import sys

from stackctl.local.components.base import Component, Status, base_env
from stackctl.local.context import HOST, RunContext
from stackctl.local.ports import PortClaim
from stackctl.local.readiness import http_ok


class ModelServer(Component):
    name = "model-server"
    depends_on = ("mlflow",)
    budget_seconds = 240.0

    def port_claims(self, ctx: RunContext) -> list[PortClaim]:
        return [PortClaim(self.name, "model_server_port", ctx.config.ports.model_server_port)]

    def url(self, ctx: RunContext) -> str:
        return ctx.model_server_url

    def bring_up(self, ctx: RunContext, status: Status) -> None:
        port = str(ctx.config.ports.model_server_port)
        env = {**base_env(), **ctx.mlpipe_env(pushgateway=False), "MODEL_SERVER_PORT": port}
        argv = [sys.executable, "-m", "mlpipe.serve", "--host", HOST, "--port", port]
        status("starting python -m mlpipe.serve")
        self.spawn(ctx, argv, env=env)
        # /ready stays 503 until a champion exists: liveness is what bring-up waits for.
        self.wait(ctx, http_ok(f"{ctx.model_server_url}/health"), status, budget=None)
