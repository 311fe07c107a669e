"""Airflow 3 as local processes: api-server, scheduler (LocalExecutor), dag-processor, triggerer.

Airflow 3 permits SQLite with the LocalExecutor (it is what `airflow standalone` runs), so the
local stack needs no database server; runs are serialised by SQLite's single writer, which is
fine for one training DAG at a time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from stackcontract.airflow_api import AirflowClient
from stackcontract.envfile import parse_env_file
from stackcontract.private import write_private
from stackctl.local.components.base import VENV_BIN, Component, Launch, Status
from stackctl.local.context import AIRFLOW_USERNAME, HOST, RunContext, which
from stackctl.local.ports import PortClaim
from stackctl.local.readiness import StartupError
from stackctl.prometheus import PUSHGATEWAY_USER

# Task logs are local files the api-server reads directly: no serve-logs servers (which would
# listen on all interfaces) for the scheduler's workers or the triggerer.
PROCESSES = {
    "scheduler": ["--skip-serve-logs"],
    "dag-processor": [],
    "triggerer": ["--skip-serve-logs"],
    "api-server": [],
}
MIGRATE = "airflow-db-migrate"
# executor and its worker start-up, shared with the Compose backend
LOCAL_EXECUTOR_ENV = "services/airflow-local-executor.env"
HEALTHY_COMPONENTS = ("metadatabase", "scheduler", "dag_processor", "triggerer")


def http_connection(url_port: int, *, login: str | None = None, password: str | None = None) -> str:
    fields: dict[str, str | int] = {"conn_type": "http", "host": HOST, "port": url_port}
    fields["schema"] = "http"
    credentials = {"login": login, "password": password}
    return json.dumps(fields | {key: value for key, value in credentials.items() if value})


def airflow_env(ctx: RunContext, *, pushgateway: bool) -> dict[str, str]:
    """The declared Airflow settings (services/airflow.env), the LocalExecutor's
    (services/airflow-local-executor.env), what differs for local processes,
    the MLOPS_* connections and the stack.env Variables (the contract)."""
    home = ctx.paths.airflow_home
    ports = ctx.config.ports
    env: dict[str, str] = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ctx.config.dags_dir),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file(ctx)),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{ctx.airflow_url}/execution/",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__API__BASE_URL": ctx.airflow_url,
        "AIRFLOW__API__HOST": HOST,
        "AIRFLOW__API__PORT": str(ports.airflow_api_port),
        "AIRFLOW__API__SECRET_KEY": ctx.credentials.airflow_api_secret_key.get_secret_value(),
        "AIRFLOW__API_AUTH__JWT_SECRET": ctx.credentials.airflow_jwt_secret.get_secret_value(),
        "AIRFLOW_CONN_MLOPS_S3": json.dumps(
            {
                "conn_type": "aws",
                "login": ctx.credentials.s3_access_key,
                "password": ctx.credentials.s3_secret_key.get_secret_value(),
                "extra": {"endpoint_url": ctx.s3_url, "region_name": ctx.config.region},
            }
        ),
        # The tasks' MLflow client authenticates with the connection's login and password.
        "AIRFLOW_CONN_MLOPS_MLFLOW": http_connection(
            ports.mlflow_port,
            login=ctx.mlflow_username,
            password=ctx.credentials.mlflow_password.get_secret_value(),
        ),
        # The password is the model server's reload token (the notify task's bearer token).
        "AIRFLOW_CONN_MLOPS_MODEL_SERVER": http_connection(
            ports.model_server_port,
            password=ctx.credentials.model_server_reload_token.get_secret_value(),
        ),
    }
    if pushgateway:
        # The monitoring job pushes with basic auth.
        env["AIRFLOW_CONN_MLOPS_PUSHGATEWAY"] = http_connection(
            ports.pushgateway_port,
            login=PUSHGATEWAY_USER,
            password=ctx.credentials.pushgateway_password.get_secret_value(),
        )
    for key, value in ctx.config.settings.items():
        env[f"AIRFLOW_VAR_{key}"] = value
    # Tasks run in this venv: give mlpipe its settings too (same values as the connections).
    declared = ctx.services["airflow"].env
    local_executor = parse_env_file(ctx.services.config_dir / LOCAL_EXECUTOR_ENV)
    return {**ctx.mlpipe_env(pushgateway=pushgateway), **declared, **local_executor, **env}


def passwords_file(ctx: RunContext) -> Path:
    return ctx.paths.airflow_home / "simple_auth_manager_passwords.json.generated"


def write_passwords_file(ctx: RunContext) -> None:
    """The simple auth manager keeps passwords it finds; so the admin gets the generated one."""
    password = ctx.credentials.airflow_password.get_secret_value()
    write_private(passwords_file(ctx), json.dumps({AIRFLOW_USERNAME: password}))


def client(ctx: RunContext) -> AirflowClient:
    return AirflowClient(
        ctx.airflow_url, AIRFLOW_USERNAME, ctx.credentials.airflow_password.get_secret_value()
    )


def unhealthy(health: dict[str, Any]) -> list[str]:
    """Names of the components /api/v2/monitor/health does not report healthy."""
    return [
        name for name in HEALTHY_COMPONENTS if (health.get(name) or {}).get("status") != "healthy"
    ]


class Airflow(Component):
    name = "airflow"
    budget_seconds = 480.0

    def __init__(self, *, with_pushgateway: bool) -> None:
        super().__init__()
        self.with_pushgateway = with_pushgateway

    def port_claims(self, ctx: RunContext) -> list[PortClaim]:
        return [PortClaim(self.name, "airflow_api_port", ctx.config.ports.airflow_api_port)]

    def preflight(self, ctx: RunContext) -> str | None:
        if which("airflow", VENV_BIN) is None:
            return "`airflow` not found: install the airflow group (`uv sync --group airflow`)."
        return None

    def url(self, ctx: RunContext) -> str:
        return ctx.airflow_url

    def launches(self, ctx: RunContext) -> list[Launch]:
        """`airflow db migrate`, then the api-server (which carries port and health), scheduler,
        dag-processor and triggerer, all with the same environment."""
        airflow = which("airflow", VENV_BIN) or "airflow"
        env = airflow_env(ctx, pushgateway=self.with_pushgateway)
        declared = self.declared_args(ctx)
        health = (self.service(ctx).health,)
        launches = [Launch(MIGRATE, [airflow, *declared, "db", "migrate"], env)]
        for process, flags in PROCESSES.items():
            launches.append(
                Launch(
                    f"airflow-{process}",
                    [airflow, *declared, process, *flags],
                    env,
                    health=health if process == "api-server" else (),
                )
            )
        return launches

    def migrate(self, ctx: RunContext, launch: Launch, status: Status) -> None:
        status("airflow db migrate")
        record = self.spawn(ctx, launch.argv, env=launch.env, process=launch.process)
        # The check passes as soon as the process has exited; its exit code decides.
        self.wait(
            ctx,
            lambda: "migrating" if ctx.supervisor.is_running(record) else None,
            status,
            budget=None,
        )
        code = ctx.supervisor.exit_code(record)
        self.records.remove(record)
        ctx.supervisor.pid_file(record.name).unlink(missing_ok=True)
        if code not in (0, None):
            raise StartupError(MIGRATE, f"`airflow db migrate` exited with code {code}")

    def bring_up(self, ctx: RunContext, status: Status) -> None:
        write_passwords_file(ctx)
        migrate, *processes = self.launches(ctx)
        self.migrate(ctx, migrate, status)
        for launch in processes:
            status(f"starting {launch.process}")
            self.spawn(ctx, launch.argv, env=launch.env, process=launch.process)
        self.wait(ctx, lambda: self.ready(ctx), status, budget=None)

    def ready(self, ctx: RunContext) -> str | None:
        with client(ctx) as api:
            return self._ready(ctx, api)

    def _ready(self, ctx: RunContext, api: AirflowClient) -> str | None:
        if missing := unhealthy(api.health()):
            return f"not healthy yet: {', '.join(missing)}"
        if errors := api.import_errors():
            details = "; ".join(
                f"{error['filename']}: {str(error['stack_trace']).strip().splitlines()[-1]}"
                for error in errors
            )
            raise StartupError(self.name, f"DAG import errors: {details}")
        dag_files = [p for p in ctx.config.dags_dir.glob("*.py") if not p.name.startswith("_")]
        if dag_files and not api.dag_ids():
            return "waiting for the dag-processor to parse the DAGs"
        return None
