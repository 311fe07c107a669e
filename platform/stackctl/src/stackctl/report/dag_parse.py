"""How long each DAG file takes to parse, as Airflow's DagBag measures it (its per-file load
statistics, in one process: the first file also pays for the helpers both import), written for
the report: `python -m stackctl.report.dag_parse --out FILE`. tests/unit/dags/bench_parse.py is
the finer benchmark (a fresh process per file, repeated).

Runs where Airflow is installed (the airflow dependency group); stackctl does not depend on it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

DAGS_FOLDER = Path("airflow/dags")


class DagParseError(RuntimeError):
    """The DAG folder does not parse; the message lists the import errors."""


def parse_times(dags_folder: Path) -> dict[str, dict[str, float]]:
    """file (relative to the folder) -> parse seconds, DAG and task counts."""
    try:
        from airflow.dag_processing.dagbag import BundleDagBag
    except ImportError:
        raise DagParseError(
            "Airflow is not installed in this environment: run `nox -s report`, which installs "
            "the airflow group."
        ) from None
    # the bundle-aware DagBag, as the DAG processor uses: helper packages beside the DAGs import
    bag = BundleDagBag(
        dag_folder=str(dags_folder), bundle_path=dags_folder, bundle_name="report", safe_mode=False
    )
    if bag.import_errors:
        raise DagParseError(f"DAG import errors: {bag.import_errors}")
    files: dict[str, dict[str, float]] = {}
    for stat in bag.dagbag_stats:
        name = Path(stat.file).name
        files[name] = {
            "seconds": round(stat.duration.total_seconds(), 4),
            "dags": stat.dag_num,
            "tasks": stat.task_num,
        }
    return files


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dags", type=Path, default=DAGS_FOLDER)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    files = parse_times(args.dags)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"files": files}, indent=2, sort_keys=True) + "\n")
    summary = ", ".join(f"{name} {stats['seconds']:.3f}s" for name, stats in files.items())
    print(f"DAG parse times: {summary} -> {args.out}")


if __name__ == "__main__":
    main()
