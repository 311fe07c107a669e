"""The dags_test scenario, run in a background thread while the rest of the local tier runs: it
uses no backend and mostly waits on its own processes, so it need not wait its turn.

In order: the mini stack (SeaweedFS + MLflow, bucket provisioned), landing/ seeded,
`airflow db migrate`, `airflow dags test ml_training`, then (where the Pushgateway is installed) a
Pushgateway and `airflow dags test ml_monitoring`, its metrics read back. The tests, run at the
end of the tier, wait for it and check what it left; the mini stack stays up until they are done.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from dagstest_stack import (
    ACCESS_KEY,
    BIN,
    PUSHGATEWAY_BINARY,
    REGION,
    REPO_ROOT,
    SECRET_KEY,
    Managed,
    MiniStack,
    http_ok,
    s3_answers,
    start_mlflow,
    start_pushgateway,
    start_seaweedfs,
    wait_until,
)

OUTER_VARIABLES = ("AIRFLOW", "MLFLOW_", "S3_", "AWS_", "MODEL_SERVER_URL", "PUSHGATEWAY_URL")
# the whole scenario measured 45-60 s on 2 cores beside the tier; this bounds a hung one
SCENARIO_TIMEOUT_SECONDS = 1800


def airflow_env(stack: MiniStack, home: Path) -> dict[str, str]:
    """Exactly what a backend hands Airflow, and nothing from the developer's own environment."""
    from mlpipe.config import STACK_ENV_RELATIVE
    from stackcontract.envfile import parse_env_file as read_env_file

    env = {k: v for k, v in os.environ.items() if not k.startswith(OUTER_VARIABLES)}
    host, port = stack.mlflow_url.removeprefix("http://").split(":")
    s3 = {
        "conn_type": "aws",
        "login": ACCESS_KEY,
        "password": SECRET_KEY,
        "extra": {"endpoint_url": stack.s3_endpoint, "region_name": REGION},
    }
    env |= {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "airflow" / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW_CONN_MLOPS_S3": json.dumps(s3),
        "AIRFLOW_CONN_MLOPS_MLFLOW": json.dumps(
            {"conn_type": "http", "host": host, "port": int(port), "schema": "http"}
        ),
    }
    for key, value in read_env_file(REPO_ROOT / STACK_ENV_RELATIVE).items():
        env[f"AIRFLOW_VAR_{key}"] = value
    return env


def seed_landing(stack: MiniStack) -> list[str]:
    """What every backend does after provisioning the bucket: `mlpipe seed-landing`."""
    from mlpipe.config import load_settings
    from mlpipe.data import seed_landing as seed

    settings = load_settings(
        env={
            "S3_ENDPOINT_URL": stack.s3_endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "S3_BUCKET": stack.bucket,
        },
        config_dir=REPO_ROOT / "platform" / "config",
    )
    result = seed(settings)
    return sorted(result.uploaded + result.unchanged)


def run_airflow(
    args: list[str], env: dict[str, str], log: Path, timeout: float, cancel: threading.Event
) -> float:
    """Run an `airflow` command; fail with the log tail if it fails (or is cancelled: then it
    is terminated); return its duration."""
    started = time.monotonic()
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [str(BIN / "airflow"), *args], env=env, cwd=log.parent,
            stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        while process.poll() is None:
            if cancel.is_set() or time.monotonic() - started > timeout:
                os.killpg(process.pid, signal.SIGTERM)  # its task processes too
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
                why = "cancelled" if cancel.is_set() else f"timed out after {timeout:.0f}s"
                pytest.fail(f"`airflow {' '.join(args)}` {why}")
            cancel.wait(0.5)
    seconds = time.monotonic() - started
    if process.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-80:])
        pytest.fail(
            f"`airflow {' '.join(args)}` exited {process.returncode} after {seconds:.0f}s:\n{tail}"
        )
    return seconds


@dataclass
class AirflowRun:
    """The Airflow home and environment in which ml_training ran once."""

    home: Path
    env: dict[str, str]
    landing: list[str]

    @property
    def database(self) -> Path:
        return self.home / "airflow.db"


@dataclass
class Outcome:
    stack: MiniStack
    trained: AirflowRun
    monitoring_metrics: str | None  # the Pushgateway's /metrics after ml_monitoring, if it ran


@dataclass
class Scenario:
    work: Path
    timings: dict[str, float] = field(default_factory=dict)
    started: list[Managed] = field(default_factory=list)
    cancel: threading.Event = field(default_factory=threading.Event)
    _future: Future[Outcome] | None = None
    _stopping: threading.Thread | None = None
    _awaited: bool = False

    @property
    def logs(self) -> Path:
        return self.work / "logs"

    def start(self) -> None:
        """Start the scenario in a background thread (once; later calls do nothing)."""
        if self._future is not None:
            return
        self.logs.mkdir(parents=True, exist_ok=True)
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dags-test")
        self._future = pool.submit(self._run)
        pool.shutdown(wait=False)

    def outcome(self) -> Outcome:
        """Wait for the scenario; its failure (with the failing step's log) is raised here."""
        assert self._future is not None, "the dags_test scenario was never started"
        outcome = self._future.result(timeout=SCENARIO_TIMEOUT_SECONDS)
        self._awaited = True  # an interrupted wait leaves it False: finish() cancels then
        return outcome

    def stop_in_background(self) -> None:
        """Stop what the scenario started without waiting (SeaweedFS alone takes ~5 s)."""
        if self._stopping is None:
            self._stopping = threading.Thread(target=self.stop, name="dags-test-stop")
            self._stopping.start()

    def finish(self) -> dict[str, float]:
        """Stop (or wait for the background stop) and return every step's seconds. If no test
        waited for the scenario (an interrupted run), it is cancelled rather than waited for."""
        if not self._awaited:
            self.cancel.set()
        if self._stopping is not None:
            self._stopping.join()
        return self.stop()

    def stop(self) -> dict[str, float]:
        """Wait for the scenario to end (however it ended), stop what it started, and return
        every step's seconds."""
        if self._future is not None:
            with contextlib.suppress(TimeoutError):  # hung: stop its processes all the same
                self._future.exception(timeout=SCENARIO_TIMEOUT_SECONDS)
        while self.started:
            process = self.started.pop()
            self.timings[f"{process.name}_stop"] = process.stop()
        return self.timings

    def _timed(self, name: str, clock: float) -> None:
        self.timings[name] = time.monotonic() - clock

    def _mini_stack(self) -> MiniStack:
        from mlpipe.config import load_settings

        clock = time.monotonic()
        weed, s3_endpoint = start_seaweedfs(self.work, self.logs)
        self.started.append(weed)
        wait_until(weed, s3_answers(s3_endpoint), timeout=120)
        stack = MiniStack(s3_endpoint, "", load_settings().s3_bucket, self.work)
        stack.s3().create_bucket(Bucket=stack.bucket)
        self._timed("seaweedfs_start", clock)
        clock = time.monotonic()
        mlflow, mlflow_url = start_mlflow(self.work, self.logs, s3_endpoint, stack.bucket)
        self.started.append(mlflow)
        wait_until(mlflow, http_ok(f"{mlflow_url}/health"), timeout=180)
        stack.mlflow_url = mlflow_url
        self._timed("mlflow_start", clock)
        return stack

    def _train(self, stack: MiniStack) -> AirflowRun:
        landing = seed_landing(stack)
        home = self.work / "airflow-home"
        home.mkdir()
        env = airflow_env(stack, home)
        self.timings["airflow_db_migrate"] = run_airflow(
            ["db", "migrate"], env, self.logs / "airflow-db-migrate.log", 600, self.cancel
        )
        self.timings["dags_test_ml_training"] = run_airflow(
            ["dags", "test", "ml_training"], env,
            self.logs / "airflow-dags-test-ml_training.log", 1800, self.cancel,
        )  # fmt: skip
        return AirflowRun(home, env, landing)

    def _monitor(self, trained: AirflowRun) -> str:
        pushgateway, url = start_pushgateway(self.work, self.logs)
        self.started.append(pushgateway)
        wait_until(pushgateway, http_ok(f"{url}/-/ready"), timeout=60)
        host, port = url.removeprefix("http://").split(":")
        env = trained.env | {
            "AIRFLOW_CONN_MLOPS_PUSHGATEWAY": json.dumps(
                {"conn_type": "http", "host": host, "port": int(port), "schema": "http"}
            )
        }
        self.timings["dags_test_ml_monitoring"] = run_airflow(
            ["dags", "test", "ml_monitoring"], env,
            self.logs / "airflow-dags-test-ml_monitoring.log", 900, self.cancel,
        )  # fmt: skip
        return httpx.get(f"{url}/metrics", timeout=10).text

    def _run(self) -> Outcome:
        stack = self._mini_stack()
        trained = self._train(stack)
        metrics = self._monitor(trained) if PUSHGATEWAY_BINARY.exists() else None
        return Outcome(stack, trained, metrics)
