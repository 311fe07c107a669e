"""Parse a DAG folder the way Airflow's DAG processor does, with parse-time guards, and report.

Shared by the DAG-integrity tests (which parse `airflow/dags` once per session) and by the test that
proves a broken DAG file is reported with its file name and cause. Importing this module does not
import Airflow: call `configure_airflow_home` first so Airflow never touches ~/airflow.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

REPO_ROOT = Path(__file__).resolve().parents[3]
DAGS_FOLDER = REPO_ROOT / "airflow" / "dags"
BUNDLE_NAME = "dags-folder"
# The executors the backends run: LocalExecutor (local, compose), KubernetesExecutor (kind, eks).
EXECUTORS = ("LocalExecutor", "KubernetesExecutor")


def configure_airflow_home(home: Path | None = None) -> Path:
    """Point Airflow at a throw-away home (SQLite, no examples); call before importing Airflow."""
    os.environ["AIRFLOW_HOME"] = str(home or tempfile.mkdtemp(prefix="airflow-home-dag-checks-"))
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS_FOLDER)
    return Path(os.environ["AIRFLOW_HOME"])


class ParseTimeAccessError(RuntimeError):
    """A DAG file reached for a Variable, Connection or the network while being parsed."""


@dataclass
class ParseOutcome:
    """What parsing one folder produced."""

    folder: Path
    executor: str
    dags: dict[str, Any]
    import_errors: dict[str, str]
    seconds_per_file: dict[str, float]
    dags_per_file: dict[str, list[str]]
    forbidden_calls: list[str] = field(default_factory=list)
    db_statements: list[str] = field(default_factory=list)

    def files_without_dags(self) -> list[str]:
        """Parsed files that raised nothing but defined no DAG (e.g. a forgotten `dag()` call)."""
        return sorted(
            name
            for name, dag_ids in self.dags_per_file.items()
            if not dag_ids and not any(Path(error).name == name for error in self.import_errors)
        )


def _forbid(what: str, calls: list[str]) -> Any:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        shown = ", ".join([*map(repr, args), *(f"{k}={v!r}" for k, v in kwargs.items())])
        calls.append(f"{what}({shown})")
        raise ParseTimeAccessError(
            f"{what}({shown}) called while parsing: read Variables, Connections and the network "
            "inside a task (run time), never at module level."
        )

    return refuse


@contextmanager
def parse_guards() -> Iterator[tuple[list[str], list[str]]]:
    """Make Variable/Connection/hook getters and outbound sockets raise; count DB statements."""
    import airflow.settings
    from airflow.models.connection import Connection as CoreConnection
    from airflow.models.variable import Variable as CoreVariable
    from airflow.sdk import BaseHook, Connection, Variable
    from sqlalchemy import event

    calls: list[str] = []
    statements: list[str] = []
    targets = [
        (Variable, "get", "airflow.sdk.Variable.get"),
        (Connection, "get", "airflow.sdk.Connection.get"),
        (BaseHook, "get_connection", "BaseHook.get_connection"),
        (BaseHook, "get_hook", "BaseHook.get_hook"),
        (CoreVariable, "get", "airflow.models.Variable.get"),
        (CoreConnection, "get_connection_from_secrets", "Connection.get_connection_from_secrets"),
        (socket.socket, "connect", "socket.connect"),
        (socket.socket, "connect_ex", "socket.connect_ex"),
    ]

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(" ".join(statement.split())[:200])

    engine = airflow.settings.engine
    with ExitStack() as stack:
        for owner, attribute, label in targets:
            stack.enter_context(mock.patch.object(owner, attribute, _forbid(label, calls)))
        if engine is not None:
            event.listen(engine, "before_cursor_execute", record)
            stack.callback(event.remove, engine, "before_cursor_execute", record)
        yield calls, statements


@contextmanager
def configured_executor(executor: str) -> Iterator[None]:
    """`[core] executor` set to `executor` for the block (as the backend's config sets it)."""
    key = "AIRFLOW__CORE__EXECUTOR"
    previous = os.environ.get(key)
    os.environ[key] = executor
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = previous


def parse_dag_folder(folder: Path = DAGS_FOLDER, *, executor: str = EXECUTORS[0]) -> ParseOutcome:
    """Parse every DAG file under `folder` (respecting .airflowignore) like the DAG processor
    of a deployment running `executor`.

    Uses the bundle-aware DagBag, as the DAG processor and the task runner do, so the folder is on
    sys.path and helper packages next to the DAG files import the same way as in production.
    """
    from airflow.dag_processing.dagbag import BundleDagBag

    started = time.perf_counter()
    with configured_executor(executor), parse_guards() as (calls, statements):
        bag = BundleDagBag(
            dag_folder=str(folder), bundle_path=folder, bundle_name=BUNDLE_NAME, safe_mode=False
        )
    total = time.perf_counter() - started
    seconds = {stat.file: stat.duration.total_seconds() for stat in bag.dagbag_stats}
    per_file: dict[str, list[str]] = {stat.file: [] for stat in bag.dagbag_stats}
    for dag in bag.dags.values():
        per_file.setdefault(Path(dag.fileloc).relative_to(folder).as_posix(), []).append(dag.dag_id)
    seconds.setdefault("<total>", total)
    return ParseOutcome(
        folder=folder,
        executor=executor,
        dags=dict(bag.dags),
        import_errors=dict(bag.import_errors),
        seconds_per_file=seconds,
        dags_per_file=per_file,
        forbidden_calls=calls,
        db_statements=statements,
    )


def _cause(stacktrace: str) -> str:
    """The final `ExceptionType: message` line of a formatted traceback."""
    lines = [line for line in stacktrace.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else stacktrace


def problems(outcome: ParseOutcome) -> list[str]:
    """Human-readable problems, each naming the file and the cause; empty when the folder is sound."""
    found = [
        f"{file}: import error: {_cause(trace)}\n{trace}"
        for file, trace in sorted(outcome.import_errors.items())
    ]
    found += [
        f"{file}: defines no DAG (call the @dag function at module level)"
        for file in outcome.files_without_dags()
    ]
    found += [f"parse-time access: {call}" for call in outcome.forbidden_calls]
    return found


def check_dag_folder(folder: Path = DAGS_FOLDER) -> ParseOutcome:
    """Parse `folder`; raise AssertionError listing every problem (file + cause) if any."""
    outcome = parse_dag_folder(folder)
    found = problems(outcome)
    if found:
        raise AssertionError(
            f"DAG folder {folder} has {len(found)} problem(s):\n" + "\n".join(found)
        )
    return outcome
