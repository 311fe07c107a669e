"""DAG integrity: imports, conventions, exact task graphs, parse budget, no parse-time lookups."""

from __future__ import annotations

import datetime as dt
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
from dag_checks import REPO_ROOT, ParseOutcome, check_dag_folder, parse_dag_folder, problems

# Not `slow`, though parsing imports Airflow: DAG integrity is what the fast tier is for.

PARSE_BUDGET_SECONDS = 2.0  # Airflow's dagbag_import_timeout is 30 s; a DAG file should take < 1 s.
MAX_DB_STATEMENTS = 1  # Airflow's own example-DAG test allows at most one query per parse.

# Exact (upstream, downstream) edges of every DAG: a changed graph must change this table too.
EXPECTED_EDGES: dict[str, set[tuple[str, str]]] = {
    "ml_training": {
        ("ingest", "validate"),
        ("validate", "build_features"),
        ("build_features", "train"),
        ("train", "evaluate"),
        ("evaluate", "register"),
        ("register", "promote"),
        ("promote", "notify_model_server"),
    },
    "ml_monitoring": {
        ("select_batch", "score_batch"),
        ("score_batch", "publish_metrics"),
    },
}
HEAVY_TASKS = {"ml_training": {"build_features", "train"}, "ml_monitoring": {"score_batch"}}
DAG_IDS = sorted(EXPECTED_EDGES)


def _dag(parsed: ParseOutcome, dag_id: str) -> Any:
    assert dag_id in parsed.dags, (
        f"{dag_id} missing; parsed {sorted(parsed.dags)}: {problems(parsed)}"
    )
    return parsed.dags[dag_id]


def test_airflow_is_the_production_version() -> None:
    import airflow

    pinned = re.search(r'"apache-airflow==([^"]+)"', (REPO_ROOT / "pyproject.toml").read_text())
    assert pinned, "pyproject.toml must pin apache-airflow==X.Y.Z in the airflow group"
    assert airflow.__version__ == pinned.group(1)


def test_every_dag_file_imports_cleanly(parsed: ParseOutcome) -> None:
    found = problems(parsed)
    assert not found, "\n".join(found)


def test_the_expected_dags_and_only_those_exist(parsed: ParseOutcome) -> None:
    assert sorted(parsed.dags) == DAG_IDS


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_file_name_is_the_dag_id(parsed: ParseOutcome, dag_id: str) -> None:
    assert Path(_dag(parsed, dag_id).fileloc).stem == dag_id


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_dag_conventions(parsed: ParseOutcome, dag_id: str) -> None:
    dag = _dag(parsed, dag_id)
    assert dag.tags, "tag the DAG so it can be filtered in the UI"
    assert dag.owner not in {"", "airflow"}, "set default_args['owner'] to a real team"
    assert re.search(r"^# \S", dag.doc_md or "", re.M), "doc_md needs a Markdown # title"
    assert dag.catchup is False
    assert dag.start_date is not None
    assert dag.start_date.utcoffset() == dt.timedelta(0), "start_date must be timezone-aware UTC"
    assert dag.max_active_runs == 1, "runs share S3 prefixes and aliases: one at a time"


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_every_task_retries_with_exponential_backoff(parsed: ParseOutcome, dag_id: str) -> None:
    for task in _dag(parsed, dag_id).tasks:
        assert task.retries >= 2, f"{dag_id}.{task.task_id}: retries={task.retries}"
        assert task.retry_exponential_backoff, f"{dag_id}.{task.task_id}: no exponential backoff"
        assert task.owner == _dag(parsed, dag_id).owner


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_task_graph_is_exactly_the_expected_one(parsed: ParseOutcome, dag_id: str) -> None:
    dag = _dag(parsed, dag_id)
    edges = {(task.task_id, down) for task in dag.tasks for down in task.downstream_task_ids}
    assert edges == EXPECTED_EDGES[dag_id]
    assert {task.task_id for task in dag.tasks} == {node for edge in edges for node in edge}


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_no_cycles_and_the_dag_serializes(parsed: ParseOutcome, dag_id: str) -> None:
    from airflow.serialization.serialized_objects import DagSerialization

    dag = _dag(parsed, dag_id)
    dag.check_cycle()
    # What the DAG processor stores for the scheduler: must round-trip with the same tasks.
    restored = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    assert set(restored.task_ids) == set(dag.task_ids)


def test_parse_time_per_file_is_within_budget(parsed: ParseOutcome) -> None:
    print("\nDAG parse time per file (in-process, first file pays shared imports):")
    for file, seconds in sorted(parsed.seconds_per_file.items()):
        print(f"  {file:<24} {seconds:.3f} s")
    slow = {
        f: s
        for f, s in parsed.seconds_per_file.items()
        if f != "<total>" and s > PARSE_BUDGET_SECONDS
    }
    assert not slow, f"over the {PARSE_BUDGET_SECONDS} s parse budget: {slow}"


def test_parsing_reads_no_variable_connection_network_or_database(parsed: ParseOutcome) -> None:
    assert parsed.forbidden_calls == []
    assert len(parsed.db_statements) <= MAX_DB_STATEMENTS, parsed.db_statements


def _write_dag(folder: Path, name: str, body: str) -> None:
    header = """
        import pendulum
        from airflow.sdk import dag, task
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(textwrap.dedent(header) + textwrap.dedent(body))


_VALID_DAG = """
    @dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False)
    def {dag_id}():
        @task
        def noop():
            return None

        noop()

    {dag_id}()
"""


def test_a_broken_dag_file_is_reported_with_its_name_and_cause(tmp_path: Path) -> None:
    _write_dag(tmp_path, "fine_dag.py", _VALID_DAG.format(dag_id="fine_dag"))
    _write_dag(tmp_path, "broken_dag.py", "import no_such_module_for_dag_checks\n")
    with pytest.raises(AssertionError) as failure:
        check_dag_folder(tmp_path)
    message = str(failure.value)
    assert "1 problem(s)" in message
    assert "broken_dag.py: import error: ModuleNotFoundError: No module named " in message
    assert "'no_such_module_for_dag_checks'" in message


def test_a_file_that_defines_no_dag_is_reported(tmp_path: Path) -> None:
    _write_dag(tmp_path, "forgot_call.py", "# the @dag function is never called\n")
    found = problems(parse_dag_folder(tmp_path))
    assert found == ["forgot_call.py: defines no DAG (call the @dag function at module level)"]


def test_the_guards_catch_parse_time_variable_and_network_access(tmp_path: Path) -> None:
    _write_dag(
        tmp_path,
        "reads_variable.py",
        """
        from airflow.sdk import Variable
        BUCKET = Variable.get("s3_bucket")
        """,
    )
    _write_dag(
        tmp_path,
        "opens_socket.py",
        """
        import socket
        try:
            socket.create_connection(("127.0.0.1", 9), timeout=1)
        except OSError:
            pass  # a DAG that swallows the error is still caught by the recorded call
        """,
    )
    found = "\n".join(problems(parse_dag_folder(tmp_path)))
    assert "reads_variable.py: import error: " in found
    assert "parse-time access: airflow.sdk.Variable.get('s3_bucket')" in found
    assert "parse-time access: socket.connect(" in found


def test_heavy_tasks_carry_pod_resources_under_the_kubernetes_executor(
    parsed: ParseOutcome,
) -> None:
    """The executor is read at parse time: pod overrides under KubernetesExecutor, none else."""
    requests = {
        dag_id: {
            t.task_id: t.executor_config["pod_override"].spec.containers[0].resources.requests
            for t in dag.tasks
            if t.executor_config
        }
        for dag_id, dag in parsed.dags.items()
    }
    if parsed.executor != "KubernetesExecutor":
        assert requests == {dag_id: {} for dag_id in DAG_IDS}
        return
    assert {dag_id: set(tasks) for dag_id, tasks in requests.items()} == HEAVY_TASKS
    assert requests["ml_training"]["train"] == {"cpu": "2", "memory": "3Gi"}
