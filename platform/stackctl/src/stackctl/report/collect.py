"""One JSON file of what the tiers measured, read from where each writes it under reports/:

| source | metrics |
| --- | --- |
| model/scorecard.json (`python -m mlpipe.scorecard`) | model.rmse/mae/r2, quarantine.share, quarantine.rows.<reason> |
| dags/parse.json (`python -m stackctl.report.dag_parse`) | dag.<file>.parse_seconds |
| load/<profile>.summary.json (`nox -s load`) | load.<profile>.p50_ms/p95_ms/p99_ms/rps/error_rate |
| integration/<backend>/timings.json (the integration tiers) | integration.<backend>.bring_up_seconds/session_seconds |
| images/builds.json (image builds) | image.<target>.size_mb/build_seconds |

A source that is absent is simply not in the report: the comparison says "missing" for it.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

Better = Literal["lower", "higher"]


class Metric(BaseModel):
    value: float
    unit: str = ""
    better: Better = "lower"
    # a change within this share of main's value is "same": timings are noisy, the model is not
    tolerance_percent: float = 0.0
    source: str = ""


class Report(BaseModel):
    """What one checkout measured; `context` holds what decides whether gates apply (the data
    fingerprint) and `series` the raw points behind the plots."""

    commit: str = ""
    recorded_at: str = ""
    metrics: dict[str, Metric] = Field(default_factory=dict)
    context: dict[str, str] = Field(default_factory=dict)
    series: dict[str, list[list[float]]] = Field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Report:
        return cls.model_validate_json(path.read_text(encoding="utf-8"))

    def dump(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ReportInputError(
            f"{path} is not valid JSON ({error}): re-run the tier that writes it."
        ) from None


class ReportInputError(ValueError):
    """A tier's output exists but cannot be read; the message names the file."""


def _model(report: Report, reports: Path) -> None:
    path = reports / "model" / "scorecard.json"
    if not path.is_file():
        return
    card, source = _read(path), str(path.relative_to(reports))
    for name, better in (("rmse", "lower"), ("mae", "lower"), ("r2", "higher")):
        report.metrics[f"model.{name}"] = Metric(
            value=card["model"][name], unit="USD" if name != "r2" else "", better=better,
            source=source,
        )  # fmt: skip
    report.metrics["quarantine.share"] = Metric(
        value=card["quarantine_share"], unit="share", source=source
    )
    for reason, count in card["quarantine_counts"].items():
        report.metrics[f"quarantine.rows.{reason}"] = Metric(
            value=count, unit="rows", source=source
        )
    report.context["data_fingerprint"] = card["data_fingerprint"]
    report.context["params_fingerprint"] = card["params_fingerprint"]
    report.series["actual_vs_predicted"] = [list(pair) for pair in card["sample"]]


def _dags(report: Report, reports: Path) -> None:
    path = reports / "dags" / "parse.json"
    if not path.is_file():
        return
    for file, stats in sorted(_read(path)["files"].items()):
        report.metrics[f"dag.{file}.parse_seconds"] = Metric(
            value=stats["seconds"], unit="s", tolerance_percent=25.0, source="dags/parse.json"
        )


def _load(report: Report, reports: Path) -> None:
    for path in sorted((reports / "load").glob("*.summary.json")):
        summary, source = _read(path), str(path.relative_to(reports))
        profile = summary["profile"]
        for name in ("p50_ms", "p95_ms", "p99_ms"):
            report.metrics[f"load.{profile}.{name}"] = Metric(
                value=summary[name], unit="ms", tolerance_percent=10.0, source=source
            )
        report.metrics[f"load.{profile}.rps"] = Metric(
            value=summary["rps"], unit="req/s", better="higher", tolerance_percent=10.0,
            source=source,
        )  # fmt: skip
        report.metrics[f"load.{profile}.error_rate"] = Metric(
            value=summary["error_rate"], unit="share", source=source
        )


def _integration(report: Report, reports: Path) -> None:
    for path in sorted((reports / "integration").glob("*/timings.json")):
        timings, source = _read(path), str(path.relative_to(reports))
        backend = timings["backend"]
        if "bring-up" in timings.get("phases", {}):  # the whole bring-up; its parts are apart
            report.metrics[f"integration.{backend}.bring_up_seconds"] = Metric(
                value=timings["phases"]["bring-up"], unit="s", tolerance_percent=10.0,
                source=source,
            )  # fmt: skip
        report.metrics[f"integration.{backend}.session_seconds"] = Metric(
            value=timings["session_seconds"], unit="s", tolerance_percent=10.0, source=source
        )


def _images(report: Report, reports: Path) -> None:
    path = reports / "images" / "builds.json"
    if not path.is_file():
        return
    for build in _read(path).values():
        target = build["target"]
        report.metrics[f"image.{target}.size_mb"] = Metric(
            value=round(build["size_bytes"] / 1e6, 1), unit="MB", tolerance_percent=1.0,
            source="images/builds.json",
        )  # fmt: skip
        report.metrics[f"image.{target}.build_seconds"] = Metric(
            value=build["seconds"], unit="s", tolerance_percent=20.0, source="images/builds.json"
        )


COLLECTORS = (_model, _dags, _load, _integration, _images)


def git_commit(repo: Path) -> str:
    result = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    )
    return result.stdout.strip() if result.returncode == 0 else ""


def collect(reports: Path, *, commit: str = "") -> Report:
    """The report of everything the tiers left under `reports`."""
    report = Report(commit=commit, recorded_at=datetime.now(UTC).isoformat(timespec="seconds"))
    for collector in COLLECTORS:
        try:
            collector(report, reports)
        except (KeyError, TypeError) as error:
            raise ReportInputError(
                f"A tier's output under {reports} lacks {error} ({collector.__name__.strip('_')}): "
                "re-run that tier with this checkout."
            ) from error
    return report
