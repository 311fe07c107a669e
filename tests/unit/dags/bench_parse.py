"""Benchmark: how long each DAG file takes to parse, as the DAG processor sees it.

The DAG processor imports Airflow once and parses every file in a fresh child process, so the figure
that matters (and that `dagbag_import_timeout` bounds) is the import of one DAG file in a process
where Airflow is already imported. Each repetition here is such a fresh process; the Airflow import
itself is timed separately and not charged to the file.

    .venv/bin/python tests/unit/dags/bench_parse.py            # 5 repetitions
    .venv/bin/python tests/unit/dags/bench_parse.py -n 10 --folder airflow/dags
    .venv/bin/python tests/unit/dags/bench_parse.py --bytecode-cache   # like an image with .pyc

Without `--bytecode-cache` the figures include compiling every imported module from source when the
environment sets PYTHONDONTWRITEBYTECODE (as CI sandboxes often do); with it, compiled bytecode is
cached in a private temp folder (never in the venv) and one untimed warm-up run fills it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

DEFAULT_FOLDER = Path(__file__).resolve().parents[3] / "airflow" / "dags"

# Runs in the child: pre-import what the DAG processor has already imported, then time one file.
_CHILD = """
import json, sys, time
from pathlib import Path
started = time.perf_counter()
from airflow.dag_processing.dagbag import BundleDagBag
import airflow.sdk
warm = time.perf_counter() - started
folder, target = Path(sys.argv[1]), sys.argv[2]
bag = BundleDagBag(dag_folder=str(folder), bundle_path=folder, bundle_name="bench", collect_dags=False)
started = time.perf_counter()
dags = bag.process_file(target, only_if_updated=False, safe_mode=False)
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "airflow_import": warm, "dags": [d.dag_id for d in dags],
                  "errors": bag.import_errors}))
"""


def dag_files(folder: Path) -> list[Path]:
    """The files the DAG processor would parse (honours .airflowignore)."""
    from airflow.dag_processing.importers.base import get_importer_registry

    return [
        Path(p) for p in sorted(get_importer_registry().list_dag_files(folder, safe_mode=False))
    ]


def parse_once(folder: Path, file: Path, env: dict[str, str]) -> dict[str, object]:
    """Parse `file` in a fresh interpreter; return the child's measurements."""
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, str(folder), str(file)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=120,
    )
    measured: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    if measured["errors"]:
        raise SystemExit(f"{file.name} failed to import: {measured['errors']}")
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--repetitions", type=int, default=5)
    parser.add_argument("--folder", type=Path, default=DEFAULT_FOLDER)
    parser.add_argument(
        "--bytecode-cache", action="store_true", help="cache .pyc in a temp folder (warm imports)"
    )
    args = parser.parse_args()
    folder = args.folder.resolve()
    home = tempfile.mkdtemp(prefix="airflow-home-bench-")
    env = {**os.environ, "AIRFLOW_HOME": home, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    if args.bytecode_cache:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="pycache-bench-")
    os.environ.update(AIRFLOW_HOME=home)
    files = dag_files(folder)
    if args.bytecode_cache:
        for file in files:
            parse_once(folder, file, env)  # warm-up: fills the bytecode cache
    cache = "bytecode cached" if args.bytecode_cache else "bytecode as the environment has it"
    print(
        f"DAG parse time, {args.repetitions} fresh processes per file (Airflow pre-imported, {cache})"
    )
    print(f"{'file':<28}{'min s':>9}{'median s':>10}{'max s':>9}  dags")
    warm: list[float] = []
    for file in files:
        runs = [parse_once(folder, file, env) for _ in range(args.repetitions)]
        seconds = [float(str(run["seconds"])) for run in runs]
        warm += [float(str(run["airflow_import"])) for run in runs]
        print(
            f"{file.relative_to(folder).as_posix():<28}{min(seconds):>9.3f}"
            f"{statistics.median(seconds):>10.3f}{max(seconds):>9.3f}  {runs[0]['dags']}"
        )
    if warm:
        print(
            f"(Airflow import in the child, not charged to files: median {statistics.median(warm):.2f} s)"
        )


if __name__ == "__main__":
    main()
