"""The PR report on recorded tier outputs: what is collected, each verdict, the gates (a planted
regression fails the command, naming the gate and both values), and clear errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from report_inputs import SCORECARD, write_reports
from typer.testing import CliRunner

from stackctl.report.__main__ import app
from stackctl.report.collect import Metric, Report, collect
from stackctl.report.compare import GateConfigError, compare, load_gates, verdict

REPO = Path(__file__).resolve().parents[3]
GATES = REPO / "platform/config/report-gates.toml"


def test_collect_reads_every_tier_output(tmp_path: Path) -> None:
    report = collect(write_reports(tmp_path), commit="abc")
    values = {name: metric.value for name, metric in report.metrics.items()}
    assert values["model.rmse"] == 511.1
    assert values["quarantine.rows.duplicate"] == 37
    assert values["load.model-server.p99_ms"] == 3.0
    assert values["integration.local.bring_up_seconds"] == 15.0  # the whole, not its parts
    assert values["image.model-server.size_mb"] == 476.6
    assert values["dag.ml_training.py.parse_seconds"] == 0.021
    assert report.metrics["model.r2"].better == "higher"
    assert report.context["data_fingerprint"] == "f" * 64
    assert report.series["actual_vs_predicted"][0] == [500.0, 520.0]


def test_an_absent_tier_is_absent_from_the_report(tmp_path: Path) -> None:
    write_reports(tmp_path)
    (tmp_path / "load/model-server.summary.json").unlink()
    assert not [name for name in collect(tmp_path).metrics if name.startswith("load.")]


@pytest.mark.parametrize(
    ("main", "pr", "expected"),
    [
        (Metric(value=100), Metric(value=90), "better"),
        (Metric(value=100), Metric(value=100), "same"),
        (Metric(value=100, tolerance_percent=10), Metric(value=109, tolerance_percent=10), "same"),
        (Metric(value=100), Metric(value=101), "worse"),
        (Metric(value=0.9, better="higher"), Metric(value=0.8, better="higher"), "worse"),
        (Metric(value=0.9, better="higher"), Metric(value=0.95, better="higher"), "better"),
        (None, Metric(value=1), "missing on main"),
        (Metric(value=1), None, "missing on PR"),
    ],
)
def test_verdicts(main: Metric | None, pr: Metric | None, expected: str) -> None:
    assert verdict(main, pr) == expected


def test_the_committed_gates_cover_the_issue(tmp_path: Path) -> None:
    names = {gate.name for gate in load_gates(GATES)}
    assert {"model-rmse", "serving-p99", "quarantine-share"} <= names


def _outcomes(main_dir: Path, pr_dir: Path) -> dict[tuple[str, str], str]:
    comparison = compare(collect(main_dir), collect(pr_dir), load_gates(GATES))
    return {(r.gate.name, r.metric): r.outcome for r in comparison.gates}


def test_gates_pass_on_the_same_data_and_fail_past_their_limit(tmp_path: Path) -> None:
    main = write_reports(tmp_path / "main")
    same = write_reports(tmp_path / "same")
    assert set(_outcomes(main, same).values()) <= {"passed", "not applied"}
    rmse_up = {"model": {**SCORECARD["model"], "rmse": 511.1 * 1.03}}
    p99_up = {"p99_ms": 4.0}  # +33 %
    worse = write_reports(tmp_path / "worse", scorecard=rmse_up, load=p99_up)
    outcomes = _outcomes(main, worse)
    assert outcomes[("model-rmse", "model.rmse")] == "failed"
    assert outcomes[("serving-p99", "load.model-server.p99_ms")] == "failed"
    within = write_reports(
        tmp_path / "within", scorecard={"model": {**SCORECARD["model"], "rmse": 515.0}}
    )
    assert _outcomes(main, within)[("model-rmse", "model.rmse")] == "passed"


def test_more_quarantine_fails_only_on_unchanged_data(tmp_path: Path) -> None:
    main = write_reports(tmp_path / "main")
    more = {"quarantine_share": SCORECARD["quarantine_share"] * 2}
    same_data = write_reports(tmp_path / "same", scorecard=more)
    assert _outcomes(main, same_data)[("quarantine-share", "quarantine.share")] == "failed"
    new_data = write_reports(tmp_path / "new", scorecard={**more, "data_fingerprint": "e" * 64})
    assert _outcomes(main, new_data)[("quarantine-share", "quarantine.share")] == "not applied"


def _run(tmp_path: Path, pr: Path, baseline: Path | None) -> tuple[int, str]:
    args = ["--reports", str(pr), "--gates", str(GATES), "--out", str(tmp_path / "out")]
    args += ["--baseline", str(baseline or tmp_path / "absent.json")]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    return result.exit_code, result.output


def test_a_planted_regression_fails_the_command_naming_the_gate_and_both_values(
    tmp_path: Path,
) -> None:
    baseline = tmp_path / "main.json"
    collect(write_reports(tmp_path / "main"), commit="main").dump(baseline)
    worse = write_reports(
        tmp_path / "pr", scorecard={"model": {**SCORECARD["model"], "rmse": 530.0}}
    )
    code, output = _run(tmp_path, worse, baseline)
    assert code == 1
    assert "gate model-rmse failed" in output
    assert "511.1 -> 530" in output
    assert "limit 2 %" in output
    text = (tmp_path / "out/report.md").read_text()
    assert "| `model.rmse` | 511.1 USD | 530 USD | +3.70 % | 🔴 worse |" in text
    assert (tmp_path / "out/actual_vs_predicted.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "out/latency.png").is_file()


def test_without_a_baseline_everything_is_missing_on_main_and_nothing_fails(
    tmp_path: Path,
) -> None:
    code, output = _run(tmp_path, write_reports(tmp_path / "pr"), None)
    assert code == 0, output
    text = (tmp_path / "out/report.md").read_text()
    assert "No report of main to compare with" in text
    recorded = Report.load(tmp_path / "out/report.json")
    assert recorded.metrics["model.rmse"].value == 511.1


def test_a_malformed_tier_output_names_the_file(tmp_path: Path) -> None:
    pr = write_reports(tmp_path / "pr")
    (pr / "load/model-server.summary.json").write_text("{not json")
    code, output = _run(tmp_path, pr, None)
    assert code == 2
    assert "model-server.summary.json is not valid JSON" in output


def test_a_summary_without_a_field_names_what_is_missing(tmp_path: Path) -> None:
    pr = write_reports(tmp_path / "pr")
    summary = pr / "load/model-server.summary.json"
    summary.write_text(json.dumps({"profile": "model-server"}))
    code, output = _run(tmp_path, pr, None)
    assert code == 2
    assert "lacks 'p50_ms' (load)" in output


@pytest.mark.parametrize(
    ("gate", "message"),
    [
        ('name = "g"\nmetric = "m"', "g: Value error, set exactly one of"),
        (
            'name = "g"\nmetric = "m"\nmax_regression = 1\nmax_regression_percent = 1',
            "set exactly one",
        ),
        ('name = "g"\nmetric = "m"\nmax_regresion = 1', "Extra inputs are not permitted"),
    ],
)
def test_a_malformed_gate_is_named(tmp_path: Path, gate: str, message: str) -> None:
    path = tmp_path / "gates.toml"
    path.write_text(f"[[gate]]\n{gate}\n")
    with pytest.raises(GateConfigError, match=message):
        load_gates(path)
