"""The report's DAG parse timing on the real DAG folder (Airflow's own per-file statistics)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackctl.report.dag_parse import DagParseError, parse_times

DAGS = Path(__file__).resolve().parents[3] / "airflow" / "dags"


def test_every_dag_file_is_timed_with_its_tasks() -> None:
    files = parse_times(DAGS)
    assert set(files) == {"ml_training.py", "ml_monitoring.py"}
    assert files["ml_training.py"]["dags"] == 1
    assert files["ml_training.py"]["tasks"] >= 8
    assert all(stats["seconds"] > 0 for stats in files.values())


def test_a_dag_that_does_not_import_fails_with_its_error(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("from airflow.sdk import dag\nimport not_a_module\n")
    with pytest.raises(DagParseError, match="not_a_module"):
        parse_times(tmp_path)
