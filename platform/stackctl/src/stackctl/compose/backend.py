"""`ComposeBackend`: the stack as containers on a Docker engine (`stackctl up --backend compose`).

`up()` builds the project's images (platform/images/Dockerfile; no-registry stand-ins where the
pinned base or a third-party image cannot be pulled), writes the stack's generated credentials
once (.stack/compose/secrets.env, 0600, kept until `down --purge`), runs `docker compose up
--wait` on platform/compose/compose.yaml with a live row per service, reports `Endpoints` (the
ports published on 127.0.0.1) and trains a first champion. `down` removes the containers and the
network, `--purge` the volumes and the state too.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from secrets import token_hex
from typing import Any

import yaml
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from stackcontract.airflow_api import AirflowClient, DagRun
from stackcontract.endpoints import Endpoints
from stackcontract.envfile import parse_env_file, write_env_file
from stackcontract.private import write_private
from stackcontract.services import Effective, load_repo_services
from stackcontract.settings import StackConfig
from stackctl.backend import options_from_choices
from stackctl.compose.effective import effective_settings
from stackctl.compose.tool import Compose, ComposeError, find_compose
from stackctl.images.build import BuiltImage
from stackctl.images.project import build_project_images, image_resolver
from stackctl.local.context import S3Flavor
from stackctl.progress import progress_display
from stackctl.prometheus import (
    PUSHGATEWAY_USER,
    prometheus_config,
    pushgateway_web_config,
    scrape_intervals,
)
from stackctl.training import (
    TrainingFailed,
    TrainingResult,
    TrainingTarget,
    champion_served,
    train_first_champion,
)

COMPOSE_DIR = Path("platform/compose")
COMPOSE_FILE = COMPOSE_DIR / "compose.yaml"
MINIO_FILE = COMPOSE_DIR / "compose.minio.yaml"
STACK_ENV = Path("platform/config/stack.env")
AIRFLOW_USERNAME = "admin"
HOST = "127.0.0.1"
# compose variable -> Dockerfile target
PROJECT_IMAGES = {
    "AIRFLOW_IMAGE": "airflow",
    "MLFLOW_IMAGE": "mlflow",
    "MODEL_SERVER_IMAGE": "model-server",
}
# compose variable -> pinned name (platform/images/kustomization.yaml); stand-ins exist for these
REQUIRED_IMAGES = {
    "POSTGRES_IMAGE": "postgres",
    "PROMETHEUS_IMAGE": "prom/prometheus",
    "PUSHGATEWAY_IMAGE": "prom/pushgateway",
}
S3_IMAGES = {
    S3Flavor.seaweedfs: ("SEAWEEDFS_IMAGE", "chrislusf/seaweedfs"),
    S3Flavor.minio: ("MINIO_IMAGE", "minio/minio"),
}
# profile -> (compose variable, pinned name): run where the image can be had, else skipped
OPTIONAL_IMAGES = {
    "statsd": ("STATSD_EXPORTER_IMAGE", "prom/statsd-exporter"),
    "grafana": ("GRAFANA_IMAGE", "grafana/grafana"),
}
# published ports: compose variable -> Ports field
PUBLISHED_PORTS = {
    "S3_PORT": "s3_port",
    "MLFLOW_PORT": "mlflow_port",
    "AIRFLOW_API_PORT": "airflow_api_port",
    "MODEL_SERVER_PORT": "model_server_port",
    "PROMETHEUS_PORT": "prometheus_port",
    "PUSHGATEWAY_PORT": "pushgateway_port",
    "GRAFANA_PORT": "grafana_port",
}
# components that are not services of services.toml but can be restarted too
EXTRA_COMPONENTS = ("postgres",)
WAIT_SECONDS = 600.0
BCRYPT_KEY = "PUSHGATEWAY_PASSWORD_BCRYPT_BASE64"


def write_readable_by(path: Path, content: str, uid: int) -> None:
    """A credential file the container user `uid` can read and no other host user can: 0600
    from creation, then owned by `uid` (as root; otherwise 0644 inside the 0700 state folder)."""
    write_private(path, content)
    try:
        os.chown(path, uid, -1)
    except PermissionError:
        path.chmod(0o644)
        path.parent.chmod(0o700)


class ComposeBackendError(RuntimeError):
    """The Compose backend cannot bring the stack up; the message says what failed and the fix."""


@dataclass
class ComposeOptions:
    train: bool = True
    train_timeout: float = 900.0
    s3: S3Flavor = S3Flavor.seaweedfs
    budget_scale: float = 1.0

    def __post_init__(self) -> None:
        self.s3 = S3Flavor(self.s3)

    @classmethod
    def from_choices(cls, choices: Mapping[str, Any] | ComposeOptions | None) -> ComposeOptions:
        return options_from_choices(
            cls,
            choices,
            backend="compose",
            hint="Compose runs MLflow and Airflow on the stack's own PostgreSQL",
        )


@dataclass
class ServiceRow:
    name: str
    state: str = "created"
    health: str = ""
    exit_code: int | None = None
    seconds: float | None = None


@dataclass
class PreparedImages:
    images: dict[str, str]  # compose variable -> reference
    profiles: list[str]  # optional services whose images can be had
    skipped: dict[str, str]  # optional service -> why not
    stand_ins: list[str]  # pinned names running as stand-ins
    built: list[BuiltImage]  # built by this `up`


@dataclass
class UpReport:
    endpoints: Endpoints
    services: list[ServiceRow]
    training: TrainingResult | None
    image_seconds: float
    images: PreparedImages


class ComposeBackend:
    name = "compose"

    def __init__(
        self,
        config: StackConfig,
        *,
        state_dir: Path | None = None,
        console: Console | None = None,
        options: Mapping[str, Any] | ComposeOptions | None = None,
    ) -> None:
        self.config = config
        self.options = ComposeOptions.from_choices(options)
        self.console = console or Console(stderr=True)
        self.root = config.repo_root
        self.state_dir = state_dir or config.state_dir / "compose"
        digest = hashlib.sha256(str(self.state_dir.resolve()).encode()).hexdigest()[:8]
        # one Compose project per state folder: the tests' stack never touches a developer's
        self.project = f"airflow-on-k8s-{digest}"
        self._up_phases: dict[str, float] = {}

    # -- files ------------------------------------------------------------------------------
    @property
    def secrets_file(self) -> Path:
        return self.state_dir / "secrets.env"

    @property
    def endpoints_file(self) -> Path:
        return self.state_dir / "endpoints.json"

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    def secrets(self) -> dict[str, str]:
        """The stack's credentials: generated on first use, the same until `down --purge`
        (the volumes keep the database passwords they were initialised with)."""
        from stackctl.k8s.manifests import dev_secrets

        fresh = dev_secrets(root=self.root)  # the keys of the Kubernetes Secret stack-secrets
        if self.secrets_file.is_file():
            kept = parse_env_file(self.secrets_file)
            # a key added since they were written is generated; the others are never rotated
            if missing := {key: value for key, value in fresh.items() if key not in kept}:
                write_env_file(self.secrets_file, kept | missing)
            return kept | missing
        values = fresh
        password = token_hex(16)
        values["PUSHGATEWAY_PASSWORD"] = password
        hashed = pushgateway_web_config(password)["basic_auth_users"][PUSHGATEWAY_USER]
        # kept (a new salt per `up` would recreate the Pushgateway), base64: bcrypt has `$`
        values[BCRYPT_KEY] = base64.b64encode(hashed.encode()).decode()
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.state_dir.chmod(0o700)
        write_env_file(self.secrets_file, values)  # 0600 from creation
        return values

    def _write_generated(self, values: Mapping[str, str]) -> dict[str, Path]:
        """The files the compose file mounts: Airflow Variables, the scrape configuration and the
        credential files (each readable by its container's user), from the stack's `values`."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        variables = self.state_dir / "airflow-variables.env"
        write_env_file(
            variables, {f"AIRFLOW_VAR_{key}": value for key, value in self.config.settings.items()}
        )
        variables.chmod(0o644)  # settings, not secrets: readable by the containers' users
        if self.options.s3 is S3Flavor.seaweedfs:
            s3_metrics = ("s3:9327", "/metrics")
        else:
            s3_metrics = ("s3:8333", "/minio/v2/metrics/cluster")
        scrape = prometheus_config(
            intervals=scrape_intervals(self.root),
            model_server="model-server:8000",
            mlflow="mlflow:5000",
            s3_metrics=s3_metrics,
            pushgateway="pushgateway:9091",
            pushgateway_password_file=Path("/run/secrets/pushgateway-password"),
            mlflow_auth=(values["MLFLOW_TRACKING_USERNAME"], Path("/run/secrets/mlflow-password")),
            rule_files=[Path("/etc/prometheus/rules/alerts.yaml")],
        )
        prometheus = self.state_dir / "prometheus.yml"
        prometheus.write_text(yaml.safe_dump(scrape, sort_keys=False))
        prometheus.chmod(0o644)
        hashed = base64.b64decode(values[BCRYPT_KEY]).decode()
        private = {
            # file -> (content, uid of the container user that reads it)
            "airflow-passwords.json": (
                json.dumps({AIRFLOW_USERNAME: values["AIRFLOW_ADMIN_PASSWORD"]}),
                50000,
            ),
            "pushgateway-web.yml": (
                yaml.safe_dump({"basic_auth_users": {PUSHGATEWAY_USER: hashed}}),
                65534,
            ),
            "pushgateway-password": (values["PUSHGATEWAY_PASSWORD"], 65534),
            "mlflow-password": (values["MLFLOW_TRACKING_PASSWORD"], 65534),
        }
        for name, (content, uid) in private.items():
            write_readable_by(self.state_dir / name, content, uid)
        return {
            "STACK_AIRFLOW_VARIABLES_ENV": variables,
            "STACK_PROMETHEUS_CONFIG": prometheus,
            "STACK_AIRFLOW_PASSWORDS_FILE": self.state_dir / "airflow-passwords.json",
            "STACK_PUSHGATEWAY_WEB_CONFIG": self.state_dir / "pushgateway-web.yml",
            "STACK_PUSHGATEWAY_PASSWORD_FILE": self.state_dir / "pushgateway-password",
            "STACK_MLFLOW_PASSWORD_FILE": self.state_dir / "mlflow-password",
        }

    def compose(
        self, images: Mapping[str, str] | None = None, profiles: list[str] | None = None
    ) -> Compose:
        """The `docker compose` of this stack, with every variable its file interpolates."""
        files = [self.root / COMPOSE_FILE]
        if self.options.s3 is S3Flavor.minio:
            files.append(self.root / MINIO_FILE)
        values = self.secrets()
        # the bcrypt hash reaches the Pushgateway as a file, not through the environment
        variables = {key: value for key, value in values.items() if key != BCRYPT_KEY}
        variables |= {key: str(path) for key, path in self._write_generated(values).items()}
        ports = self.config.ports
        variables |= {key: str(getattr(ports, f)) for key, f in PUBLISHED_PORTS.items()}
        state = self._state() if images is None or profiles is None else {}
        variables |= dict(images if images is not None else state.get("images", {}))
        for image_variable, _ in S3_IMAGES.values():  # both files are interpolated, one runs
            variables.setdefault(image_variable, "not-used-by-this-s3-flavour")
        chosen = profiles if profiles is not None else state.get("profiles", [])
        variables["COMPOSE_PROFILES"] = ",".join(chosen)
        variables["AIRFLOW_STATSD_ON"] = "True" if "statsd" in chosen else "False"
        return Compose(
            command=tuple(find_compose()),
            project=self.project,
            files=tuple(files),
            env_files=(self.root / STACK_ENV,),
            variables=variables,
        )

    def _state(self) -> dict[str, Any]:
        if not self.state_file.is_file():
            return {}
        data: dict[str, Any] = json.loads(self.state_file.read_text())
        return data

    # -- images -----------------------------------------------------------------------------
    def prepare_images(self, status: Callable[[str], None]) -> PreparedImages:
        """Image per compose variable, the profiles whose images can be had, why the others
        are skipped, the stand-ins in use and what was built."""

        def warn(message: str) -> None:
            self.console.print(f"[bold yellow]{message}", highlight=False)

        resolver = image_resolver(self.root, warn)
        built = build_project_images(  # layer-cached: seconds when nothing changed
            resolver, status=lambda target, line: status(f"{target}: {line[:70]}")
        )
        images = {
            variable: next(b.reference for b in built if b.target == target)
            for variable, target in PROJECT_IMAGES.items()
        }
        s3_variable, s3_image = S3_IMAGES[self.options.s3]
        wanted = {**REQUIRED_IMAGES, s3_variable: s3_image}
        for variable, name in wanted.items():
            status(f"third-party image {name}")
            resolved, why = resolver.available(name)
            if resolved is None:
                raise ComposeBackendError(str(why))
            images[variable] = resolved.reference
        profiles: list[str] = []
        skipped: dict[str, str] = {}
        for profile, (variable, name) in OPTIONAL_IMAGES.items():
            resolved, why = resolver.available(name)
            if resolved is None:
                skipped[profile] = str(why)
                continue
            images[variable] = resolved.reference
            profiles.append(profile)
        return PreparedImages(
            images, profiles, skipped, resolver.stand_ins, [*resolver.built, *built]
        )

    # -- Backend protocol -------------------------------------------------------------------
    def up(self) -> Endpoints:
        try:
            report = self.up_report()
        except TrainingFailed as exc:
            raise ComposeBackendError(f"First training run failed:\n{exc}") from None
        self._print_report(report)
        self._up_phases = {"images": report.image_seconds}
        self._up_phases |= {r.name: r.seconds for r in report.services if r.seconds is not None}
        if report.training is not None:
            self._up_phases["train"] = report.training.seconds
        return report.endpoints

    def up_phases(self) -> dict[str, float]:
        return dict(self._up_phases)

    def up_report(self) -> UpReport:
        started = time.monotonic()
        with progress_display(self.console) as progress:
            row = progress.add_task("building", component="images")
            prepared = self.prepare_images(
                lambda text: progress.update(row, description=f"[dim]{text}")
            )
            images, profiles = prepared.images, prepared.profiles
            image_seconds = time.monotonic() - started
            progress.update(row, description="[green]ready", completed=1, total=1)
            compose = self.compose(images, profiles)
            self.state_dir.mkdir(parents=True, exist_ok=True)
            self.state_file.write_text(
                json.dumps(
                    {
                        "project": self.project,
                        "images": images,
                        "profiles": profiles,
                        "s3": self.options.s3.value,
                    },
                    indent=2,
                )
                + "\n"
            )
            services = self._up_and_wait(compose, progress)
        for profile, why in prepared.skipped.items():
            self.console.print(f"[yellow]{profile} skipped: {why}", highlight=False)
        endpoints = self._endpoints(profiles)
        endpoints.dump(self.endpoints_file)
        training = None
        if self.options.train and champion_served(endpoints.model_server_url):
            self.console.print("The model server already serves a champion: no training run.")
        elif self.options.train:
            training = train_first_champion(self._training_target(endpoints), self.console)
        return UpReport(endpoints, services, training, image_seconds, prepared)

    def _up_and_wait(self, compose: Compose, progress: Any) -> list[ServiceRow]:
        """`up --wait`, with a row per service updated from `ps` until it is healthy (or done,
        for the init services)."""
        timeout = WAIT_SECONDS * self.options.budget_scale
        started = time.monotonic()
        process = compose.start(
            "up", "--detach", "--wait", "--wait-timeout", str(int(timeout)), "--remove-orphans"
        )
        output: list[str] = []
        reader = threading.Thread(target=lambda: output.extend(process.stdout or []), daemon=True)
        reader.start()
        rows: dict[str, ServiceRow] = {}
        tasks: dict[str, Any] = {}
        while True:
            finished = process.poll() is not None
            for current in self._ps(compose):
                row = rows.setdefault(current.name, current)
                row.state, row.health, row.exit_code = (
                    current.state,
                    current.health,
                    current.exit_code,
                )
                done = row.health == "healthy" or (row.state == "exited" and row.exit_code == 0)
                if done and row.seconds is None:
                    row.seconds = time.monotonic() - started
                if row.name not in tasks:
                    tasks[row.name] = progress.add_task("", component=row.name)
                label = row.health or row.state
                if row.state == "exited":
                    label = f"exited {row.exit_code}"
                progress.update(
                    tasks[row.name],
                    description=("[green]" if done else "[dim]") + label,
                    completed=1 if done else 0,
                    total=1,
                )
            if finished:
                break
            time.sleep(2)
        reader.join(timeout=5)
        if process.returncode != 0:
            raise ComposeBackendError(self._explain_failure(compose, rows, "".join(output)))
        return list(rows.values())

    def _ps(self, compose: Compose) -> list[ServiceRow]:
        result = compose.run("ps", "--all", "--format", "json", check=False, timeout=60)
        rows = []
        for line in result.stdout.splitlines():
            line = line.strip()
            if not line.startswith("{"):
                continue
            entry = json.loads(line)
            rows.append(
                ServiceRow(
                    name=str(entry.get("Service")),
                    state=str(entry.get("State") or ""),
                    health=str(entry.get("Health") or ""),
                    exit_code=entry.get("ExitCode"),
                )
            )
        return rows

    def _explain_failure(self, compose: Compose, rows: dict[str, ServiceRow], output: str) -> str:
        bad = [
            row
            for row in rows.values()
            if row.health in ("unhealthy", "starting")
            or (row.state == "exited" and row.exit_code not in (0, None))
            or row.state in ("restarting", "dead", "created")
        ]
        lines = [f"`docker compose up --wait` failed:\n{output.strip()[-1500:]}"]
        for row in bad:
            logs = compose.run("logs", "--no-color", "--tail", "40", row.name, check=False).stdout
            lines.append(f"--- {row.name}: {row.health or row.state} (exit {row.exit_code}) ---")
            lines.append(logs.strip()[-2500:])
        lines.append(
            "The containers are left as they are for debugging: `stackctl logs` does not read "
            f"them; use `docker compose -p {self.project} logs SERVICE`, then "
            "`stackctl down --backend compose`."
        )
        return "\n".join(lines)

    def _endpoints(self, profiles: list[str]) -> Endpoints:
        values = self.secrets()
        ports = self.config.ports

        def url(port: int) -> str:
            return f"http://{HOST}:{port}"

        return Endpoints(
            backend=self.name,
            s3_url=url(ports.s3_port),
            s3_access_key=values["AWS_ACCESS_KEY_ID"],
            s3_secret_key=SecretStr(values["AWS_SECRET_ACCESS_KEY"]),
            s3_bucket=self.config.bucket,
            mlflow_url=url(ports.mlflow_port),
            mlflow_username=values["MLFLOW_TRACKING_USERNAME"],
            mlflow_password=SecretStr(values["MLFLOW_TRACKING_PASSWORD"]),
            airflow_url=url(ports.airflow_api_port),
            airflow_username=AIRFLOW_USERNAME,
            airflow_password=SecretStr(values["AIRFLOW_ADMIN_PASSWORD"]),
            model_server_url=url(ports.model_server_port),
            model_server_reload_token=SecretStr(values["MODEL_SERVER_RELOAD_TOKEN"]),
            model_name=self.config.model_name,
            prometheus_url=url(ports.prometheus_port),
            pushgateway_url=url(ports.pushgateway_port),
            pushgateway_username=PUSHGATEWAY_USER,
            pushgateway_password=SecretStr(values["PUSHGATEWAY_PASSWORD"]),
            grafana_url=url(ports.grafana_port) if "grafana" in profiles else None,
        )

    def _training_target(self, endpoints: Endpoints) -> TrainingTarget:
        def explain(api: AirflowClient, outcome: DagRun) -> str:
            return (
                api.explain(outcome)
                + f"\nThe stack stays up for debugging: {endpoints.airflow_url} ; stop it with "
                "`stackctl down --backend compose`."
            )

        return TrainingTarget(
            airflow=lambda: endpoints.airflow_client(),
            model_server_url=endpoints.model_server_url,
            reload_token=self.secrets()["MODEL_SERVER_RELOAD_TOKEN"],
            timeout=self.options.train_timeout,
            explain=explain,
            missing_dag_hint=(
                "is it missing from the image's /opt/airflow/dags? See "
                f"`docker compose -p {self.project} logs airflow-dag-processor`."
            ),
            model_server_logs=f"`docker compose -p {self.project} logs model-server`",
        )

    def _print_report(self, report: UpReport) -> None:
        table = Table(title="Compose bring-up")
        for column in ("service", "state", "seconds"):
            table.add_column(column, justify="right" if column == "seconds" else "left")
        table.add_row("images", "built", f"{report.image_seconds:.1f}")
        for row in report.services:
            state = row.health or (
                f"exited {row.exit_code}" if row.state == "exited" else row.state
            )
            seconds = f"{row.seconds:.1f}" if row.seconds is not None else "-"
            table.add_row(row.name, state, seconds)
        if report.training is not None:
            table.add_row(
                "train",
                report.training.run.state,
                f"{report.training.seconds:.1f}",
            )
        self.console.print(table)
        if report.images.built:
            built = Table(title="Images built (reports/images/builds.json)")
            for column in ("image", "seconds", "MB"):
                built.add_column(column, justify="left" if column == "image" else "right")
            for image in report.images.built:
                built.add_row(
                    image.reference, f"{image.seconds:.1f}", f"{image.size_bytes / 1e6:.0f}"
                )
            self.console.print(built)
        if report.images.stand_ins:
            self.console.print(
                f"[bold yellow]Stand-ins in use (no registry): {', '.join(report.images.stand_ins)}",
                highlight=False,
            )
        self.console.print(f"Endpoints written to {self.endpoints_file}.")

    def endpoints(self) -> Endpoints:
        return Endpoints.load(self.endpoints_file)

    def collect_logs(self, dest: Path) -> Path:
        """Each container's log, `ps --all` and the rendered compose config under `dest`."""
        dest.mkdir(parents=True, exist_ok=True)
        index = dest / "index.md"
        lines = ["# Compose stack logs", "", f"project `{self.project}`", ""]
        try:
            compose = self.compose()
        except ComposeError as error:
            index.write_text("\n".join([*lines, f"Compose unavailable: {error}", ""]))
            return index
        ps = compose.run("ps", "--all", check=False).stdout
        (dest / "ps.txt").write_text(ps)
        lines += ["| service | state | health | exit | log |", "| --- | --- | --- | --- | --- |"]
        for row in self._ps(compose):
            log = dest / f"{row.name}.log"
            log.write_text(
                compose.run("logs", "--no-color", "--timestamps", row.name, check=False).stdout
            )
            lines.append(
                f"| {row.name} | {row.state} | {row.health} | {row.exit_code} | {log.name} |"
            )
        index.write_text("\n".join(lines) + "\n")
        return index

    def down(self, *, purge: bool = False) -> None:
        """Remove this project's containers and network (and with `purge` its volumes and state);
        works from the project name alone, so a half-written state still comes down."""
        started = time.monotonic()
        args = ["down", "--remove-orphans", "--timeout", "20"]
        if purge:
            args.append("--volumes")
        compose = Compose(
            command=tuple(find_compose()),
            project=self.project,
            files=(),
            env_files=(),
            variables={},
        )
        result = compose.run(*args, files=False, check=False, timeout=300)
        if result.returncode != 0:
            raise ComposeBackendError(
                f"`docker compose -p {self.project} down` failed:\n{result.stderr.strip()[-2000:]}"
            )
        self.endpoints_file.unlink(missing_ok=True)
        if purge and self.state_dir.exists():
            shutil.rmtree(self.state_dir)
        removed = [line.strip() for line in result.stderr.splitlines() if "Removed" in line]
        self.console.print(
            f"Compose project {self.project} down in {time.monotonic() - started:.1f}s"
            + (f" ({len(removed)} removed)" if removed else " (nothing was running)")
            + (f"; deleted {self.state_dir}" if purge else "")
        )

    # -- compose specifics ------------------------------------------------------------------
    def services_of(self, component: str) -> tuple[str, ...]:
        """The long-running compose services of a component (services.toml `compose`, init
        services such as airflow-db-migrate left out)."""
        declared = {s.name: s.compose for s in load_repo_services(self.root).on(self.name)}
        if component in EXTRA_COMPONENTS:
            return (component,)
        if component not in declared:
            known = ", ".join([*declared, *EXTRA_COMPONENTS])
            raise ComposeBackendError(
                f"The compose backend has no component {component!r} ({known})."
            )
        return tuple(name for name in declared[component] if not name.endswith("db-migrate"))

    def kill(self, component: str) -> list[str]:
        """SIGKILL the containers of `component` (a crash, not a stop); their names."""
        compose = self.compose()
        services = self.services_of(component)
        compose.run("kill", "--signal", "SIGKILL", *services)
        return [f"{self.project}-{service}-1" for service in services]

    def restart(self, component: str) -> float:
        """Start `component`'s containers again and wait until healthy; the seconds it took."""
        started = time.monotonic()
        services = self.services_of(component)
        timeout = str(int(WAIT_SECONDS * self.options.budget_scale))
        self.compose().run(
            "up",
            "--detach",
            "--wait",
            "--wait-timeout",
            timeout,
            "--no-deps",
            *services,
            timeout=float(timeout) + 60,
        )
        return time.monotonic() - started

    def effective_settings(self) -> dict[str, list[Effective]]:
        """Per declared service, what its containers run with (nothing is started): the drift
        check compares this with platform/config/services.toml."""
        return effective_settings(load_repo_services(self.root), self.rendered_config())

    def rendered_config(self) -> dict[str, Any]:
        """`docker compose config` (env files and interpolation resolved by Compose), with
        placeholder image names and this stack's (or fresh) credentials: no engine needed."""
        placeholders = {
            variable: f"airflow-on-k8s/{variable.lower()}"
            for variable in (*PROJECT_IMAGES, *REQUIRED_IMAGES, *(v for v, _ in S3_IMAGES.values()))
        }
        compose = self.compose(placeholders, profiles=list(OPTIONAL_IMAGES))
        rendered: dict[str, Any] = json.loads(compose.run("config", "--format", "json").stdout)
        return rendered
