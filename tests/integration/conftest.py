"""Integration tier: a real stack on a backend, reached only through its `Endpoints`.

    pytest tests/integration -m integration                       # local backend, started here
    pytest tests/integration -m integration --backend compose
    pytest tests/integration -m integration --backend kind
    pytest tests/integration -m integration --stack-endpoints .stack/local/endpoints.json

The stack is started LAZILY, by the first test that asks for `endpoints` (tests/integration/
dags_test/ never does, so it runs without one), and torn down at session end unless
`--keep-stack` or `--stack-endpoints` (a stack someone else runs is never started or stopped).
The local and compose backends started here get their own state folder (a Compose project of
their own) and free ports, so they never collide with a developer's `stackctl up` stack.

The ml_training runs are session fixtures chained in a fixed order, so any selection of tests
sees the same story: the first champion (default parameters), a deliberately weak model
(registered, never promoted), then - with the weak model rolled in as champion - the default
model again on more data (clearly better: promoted).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from stack_clients import AirflowClient, DagRun, environment, mlflow_environment, s3_client
from stack_timings import TierTimings, tier_timings
from stack_training import (
    CHAMPION,
    WEAK_PARAMS,
    TrainingRun,
    existing_training,
    monitor,
    refuse_on_release,
    say,
    settle,
    train,
)

from stackcontract.endpoints import Endpoints
from stackctl.backend import Backend
from stackctl.k8s.preflight import PreflightError

REPO_ROOT = Path(__file__).resolve().parents[2]
STATE_ROOT = REPO_ROOT / ".stack" / "integration"
BACKENDS = ("local", "compose", "kind", "eks")
# backends whose stack runs on this machine: free host ports, a clean start, no first training
ON_THIS_MACHINE = ("local", "compose")
# backends whose `up` builds the project images
IMAGE_BUILDING_BACKENDS = ("compose", "kind")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("stack", "integration stack")
    group.addoption(
        "--backend",
        choices=BACKENDS,
        default="local",
        help="backend that brings the stack up for tests/integration (default: local)",
    )
    group.addoption(
        "--stack-endpoints",
        type=Path,
        default=None,
        metavar="PATH",
        help="use the running stack described by this endpoints.json; start and stop nothing",
    )
    group.addoption(
        "--keep-stack",
        action="store_true",
        default=False,
        help="leave the stack started by the tests running at the end of the session",
    )


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    import stack_hooks

    pluginmanager.add_hookspecs(stack_hooks)


def pytest_configure(config: pytest.Config) -> None:
    backend = config.getoption("--backend")
    path = REPO_ROOT / "reports" / "integration" / backend / "timings.json"
    TierTimings(backend, path).register(config)


# ------------------------------------------------------------------------------------- backends


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_backend(name: str, state_dir: Path) -> Backend:
    """The backend `name`, loaded the one way (entry point `stackctl.backends`). The local and
    compose ones run on free ports with a private state folder (`.stack/<backend>` is the
    developer's own stack) and without `up`'s training: the tests trigger every training run."""
    from rich.console import Console

    from stackcontract.settings import Ports, load_config
    from stackctl.backend import BackendError, load_backend

    environ = dict(os.environ)
    options: dict[str, Any] = {}
    if name in ON_THIS_MACHINE:
        environ |= {
            Ports.override_variable(field): str(free_port()) for field in Ports.model_fields
        }
        options = {"train": False, "budget_scale": 2.0}  # 2 shared cores: be patient
    try:
        factory = load_backend(name)
    except BackendError as error:
        pytest.fail(str(error))
    return factory(
        load_config(environ), state_dir=state_dir, console=Console(stderr=True), options=options
    )


@dataclass
class Stack:
    """The stack under test; `backend` is None when it is managed elsewhere (--stack-endpoints)."""

    endpoints: Endpoints
    backend_name: str
    backend: Backend | None
    stopped: bool = False

    @property
    def managed(self) -> bool:
        return self.backend is not None

    def local(self) -> Any:
        """The LocalBackend started by this session, or skip (with the reason) if there is none."""
        if self.backend_name != "local":
            pytest.skip(f"needs the local backend's processes (this run uses {self.backend_name})")
        if self.backend is None:
            pytest.skip("the stack came from --stack-endpoints: its processes are not ours")
        return self.backend

    def stop(self) -> None:
        if self.backend is not None and not self.stopped:
            self.backend.down(purge=False)
            self.stopped = True


@pytest.fixture(scope="session")
def stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    """Started on first use, stopped at session end (unless --keep-stack / --stack-endpoints)."""
    config = request.config
    backend_name: str = config.getoption("--backend")
    given: Path | None = config.getoption("--stack-endpoints")
    if given is not None:
        endpoints = Endpoints.load(given)
        say(config, f"using the running {endpoints.backend} stack of {given}")
        yield Stack(endpoints, endpoints.backend, None)
        return

    state_dir = STATE_ROOT / backend_name
    backend = make_backend(backend_name, state_dir)
    if backend_name in ON_THIS_MACHINE:
        backend.down(purge=True)  # leftovers of an interrupted session: start clean
    started = time.monotonic()
    try:
        endpoints = backend.up()
    except PreflightError as error:
        # The machine cannot run this backend: stop once, not once per test with the same text.
        pytest.exit(f"{backend_name} backend preflight failed:\n{error}", returncode=1)
    except BaseException:
        index = backend.collect_logs(STATE_ROOT / f"{backend_name}-logs")
        say(config, f"`up` failed; logs collected in {index}")
        backend.down(purge=False)
        raise
    up_seconds = time.monotonic() - started
    say(config, f"{backend_name} stack up in {up_seconds:.0f}s")
    tier_timings(config).phase("bring-up", up_seconds)
    for phase, seconds in backend.up_phases().items():
        tier_timings(config).phase(f"bring-up {phase}", seconds)
    running = Stack(endpoints, backend_name, backend)
    yield running
    index = backend.collect_logs(STATE_ROOT / f"{backend_name}-logs")
    say(config, f"stack logs collected in {index}")
    if config.getoption("--keep-stack"):
        endpoints_file = STATE_ROOT / f"{backend_name}-endpoints.json"
        endpoints.dump(endpoints_file)
        say(config, f"--keep-stack: left running; reuse with --stack-endpoints {endpoints_file}")
        return
    started = time.monotonic()
    running.stop()
    down_seconds = time.monotonic() - started
    tier_timings(config).phase("tear-down", down_seconds)
    say(config, f"stack down in {down_seconds:.0f}s")


@pytest.fixture(scope="session")
def endpoints(stack: Stack) -> Endpoints:
    return stack.endpoints


@pytest.fixture(scope="session")
def docker_client(stack: Stack) -> Any:
    """The Docker engine, once the session's stack is up, in the tiers whose backend builds the
    images the image tests run (elsewhere they would test whatever images happen to be there);
    skips, with the fix, where none answers."""
    if stack.backend_name not in IMAGE_BUILDING_BACKENDS:
        pytest.skip(
            f"the image tests run in the tiers that build the images "
            f"({', '.join(IMAGE_BUILDING_BACKENDS)}); this run: {stack.backend_name}"
        )
    docker = pytest.importorskip("docker", reason="the docker SDK is in the compose group")
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as error:
        pytest.skip(f"no Docker engine answers ({error}): `platform/docker-engine.sh start`")
    return client


# -------------------------------------------------------------------------------------- clients


@pytest.fixture(scope="session")
def airflow(endpoints: Endpoints, request: pytest.FixtureRequest) -> Iterator[AirflowClient]:
    with endpoints.airflow_client() as client:
        client.run_observers.append(tier_timings(request.config).dag_run)
        yield client


@pytest.fixture(scope="session")
def s3(endpoints: Endpoints) -> Any:
    return s3_client(endpoints)


@pytest.fixture(scope="session")
def mlflow_env(endpoints: Endpoints) -> Iterator[None]:
    """MLflow's client reads its server and S3 settings from the environment."""
    with environment(mlflow_environment(endpoints)):
        yield


@pytest.fixture(scope="session")
def registry(endpoints: Endpoints, mlflow_env: None) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=endpoints.mlflow_url, registry_uri=endpoints.mlflow_url)


@pytest.fixture(scope="session")
def model_server(endpoints: Endpoints) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=endpoints.model_server_url, timeout=30) as client:
        yield client


# ---------------------------------------------------------------------------- training runs


@pytest.fixture(scope="session")
def first_training(
    airflow: AirflowClient, registry: Any, endpoints: Endpoints, request: pytest.FixtureRequest
) -> TrainingRun:
    """The run that made the current champion: on a fresh stack the catch-up run that unpausing
    ml_training schedules, else one triggered here with the default parameters."""
    settle(airflow)
    existing = existing_training(airflow, registry, endpoints)
    if existing is not None:
        say(
            request.config,
            f"reusing ml_training run {existing.run.run_id} (champion v{existing.version})",
        )
    trained = existing or train(airflow, registry, endpoints, {}, request.config)
    request.config.hook.pytest_integration_stack_trained(config=request.config)
    return trained


@pytest.fixture(scope="session")
def monitoring_run(
    first_training: TrainingRun, airflow: AirflowClient, request: pytest.FixtureRequest
) -> DagRun:
    """ml_monitoring run once the first champion exists: publishes its quality/drift figures."""
    return monitor(airflow, request.config)


@pytest.fixture(scope="session")
def weak_training(
    first_training: TrainingRun,
    airflow: AirflowClient,
    registry: Any,
    endpoints: Endpoints,
    request: pytest.FixtureRequest,
) -> TrainingRun:
    """A deliberately weak model on one more batch: must be registered but never promoted."""
    return train(airflow, registry, endpoints, {"model_params": WEAK_PARAMS}, request.config)


@pytest.fixture(scope="session")
def better_training(
    weak_training: TrainingRun,
    airflow: AirflowClient,
    registry: Any,
    endpoints: Endpoints,
    request: pytest.FixtureRequest,
) -> TrainingRun:
    """The default model trained against a weak incumbent: the champion is first rolled back to
    the weak version (as an operator could), so "clearly better" holds on any stack."""
    refuse_on_release(endpoints, "will not roll the champion back to a weak model")
    registry.set_registered_model_alias(endpoints.model_name, CHAMPION, weak_training.version)
    return train(airflow, registry, endpoints, {}, request.config)
