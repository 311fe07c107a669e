"""The model server (`python -m mlpipe.serve`): serves the registry's champion."""

from __future__ import annotations

import sys

from stackctl.local.components.base import Component, Launch, Status
from stackctl.local.context import HOST, RunContext
from stackctl.local.ports import PortClaim
from stackctl.local.readiness import http_ok

# mlpipe.serve reads its reload token from this variable (a secret: not in the env file).
RELOAD_TOKEN_ENV = "MODEL_SERVER_RELOAD_TOKEN"


class ModelServer(Component):
    name = "model-server"
    budget_seconds = 240.0

    def port_claims(self, ctx: RunContext) -> list[PortClaim]:
        return [PortClaim(self.name, "model_server_port", ctx.config.ports.model_server_port)]

    def url(self, ctx: RunContext) -> str:
        return ctx.model_server_url

    def launches(self, ctx: RunContext) -> list[Launch]:
        port = str(ctx.config.ports.model_server_port)
        token = ctx.credentials.model_server_reload_token.get_secret_value()
        env = {
            **ctx.mlpipe_env(pushgateway=False),
            **self.declared_env(ctx),
            RELOAD_TOKEN_ENV: token,
        }
        argv = [sys.executable, "-m", "mlpipe.serve", f"--host={HOST}", f"--port={port}"]
        health = (self.service(ctx).health,)
        return [Launch(self.name, argv, env, health=health, command_words=3)]

    def bring_up(self, ctx: RunContext, status: Status) -> None:
        (launch,) = self.launches(ctx)
        status("starting python -m mlpipe.serve")
        self.spawn(ctx, launch.argv, env=launch.env)
        # /ready stays 503 until a champion exists: liveness is what bring-up waits for.
        self.wait(ctx, http_ok(f"{ctx.model_server_url}{launch.health[0]}"), status, budget=None)
