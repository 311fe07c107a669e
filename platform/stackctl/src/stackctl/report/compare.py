"""A PR's report against main's: a verdict per metric and the regression gates of
platform/config/report-gates.toml.

Verdicts: `better`, `same` (within the metric's tolerance), `worse`, `missing on main`,
`missing on PR`. A gate names a metric (or a glob, `load.*.p99_ms`), the most it may regress (relative
`max_regression_percent` or absolute `max_regression`, in the metric's bad direction) and,
optionally, a context value that must be equal on both sides for the gate to apply
(`when_unchanged = "data_fingerprint"`: quarantine may not grow on unchanged data).
"""

from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ValidationError, model_validator

from stackctl.report.collect import Metric, Report

GATES_FILE = Path("platform/config/report-gates.toml")
Verdict = Literal["better", "same", "worse", "missing on main", "missing on PR"]
GateOutcome = Literal["passed", "failed", "not applied"]


class GateConfigError(ValueError):
    """The gates file is malformed; the message names the gate and the fix."""


class Gate(BaseModel, extra="forbid"):
    name: str
    metric: str
    max_regression_percent: float | None = None
    max_regression: float | None = None
    when_unchanged: str | None = None

    @model_validator(mode="after")
    def _one_limit(self) -> Gate:
        if (self.max_regression_percent is None) == (self.max_regression is None):
            raise ValueError("set exactly one of max_regression_percent and max_regression")
        return self

    def matches(self, metric: str) -> bool:
        return fnmatch.fnmatchcase(metric, self.metric)

    @property
    def limit(self) -> str:
        if self.max_regression_percent is not None:
            return f"{self.max_regression_percent:g} %"
        return f"{self.max_regression:g}"


def load_gates(path: Path) -> list[Gate]:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GateConfigError(f"{path} does not exist: it declares the report's gates.") from None
    except tomllib.TOMLDecodeError as error:
        raise GateConfigError(f"{path} is not valid TOML: {error}") from None
    gates = []
    for index, entry in enumerate(document.get("gate") or []):
        try:
            gates.append(Gate.model_validate(entry))
        except ValidationError as error:
            label = entry.get("name", f"gate[{index}]") if isinstance(entry, dict) else index
            problems = "; ".join(e["msg"] for e in error.errors())
            raise GateConfigError(f"{path}: {label}: {problems}") from None
    names = [gate.name for gate in gates]
    if len(names) != len(set(names)):
        raise GateConfigError(f"{path}: gate names must be unique, got {names}")
    return gates


def regression(main: Metric, pr: Metric) -> float:
    """How much worse the PR is, in the metric's unit (negative: better)."""
    delta = pr.value - main.value
    return delta if pr.better == "lower" else -delta


def relative_percent(main: Metric, pr: Metric) -> float | None:
    return None if main.value == 0 else (pr.value - main.value) / abs(main.value) * 100


def verdict(main: Metric | None, pr: Metric | None) -> Verdict:
    if main is None:
        return "missing on main"
    if pr is None:
        return "missing on PR"
    worse = regression(main, pr)
    tolerance = abs(main.value) * pr.tolerance_percent / 100
    if abs(worse) <= max(tolerance, 1e-12):
        return "same"
    return "worse" if worse > 0 else "better"


@dataclass(frozen=True)
class Row:
    metric: str
    main: Metric | None
    pr: Metric | None
    verdict: Verdict


@dataclass(frozen=True)
class GateResult:
    gate: Gate
    metric: str
    outcome: GateOutcome
    main: float | None
    pr: float | None
    why: str


def _gate(gate: Gate, metric: str, main: Report, pr: Report) -> GateResult:
    before, after = main.metrics.get(metric), pr.metrics.get(metric)
    values = (before.value if before else None, after.value if after else None)
    if before is None or after is None:
        side = "main" if before is None else "the PR"
        return GateResult(gate, metric, "not applied", *values, f"no value on {side}")
    if gate.when_unchanged:
        key = gate.when_unchanged
        if main.context.get(key) != pr.context.get(key) or key not in pr.context:
            return GateResult(gate, metric, "not applied", *values, f"{key} changed")
    worse = regression(before, after)
    if gate.max_regression_percent is not None:
        allowed = abs(before.value) * gate.max_regression_percent / 100
    else:
        allowed = gate.max_regression or 0.0
    change = relative_percent(before, after)
    moved = f"{before.value:g} -> {after.value:g}" + (f" ({change:+.2f} %)" if change else "")
    if worse > allowed + 1e-12:
        return GateResult(gate, metric, "failed", *values, f"{moved}, limit {gate.limit}")
    return GateResult(gate, metric, "passed", *values, moved)


@dataclass(frozen=True)
class Comparison:
    main: Report | None
    pr: Report
    rows: list[Row]
    gates: list[GateResult]

    @property
    def failed(self) -> list[GateResult]:
        return [result for result in self.gates if result.outcome == "failed"]


def compare(main: Report | None, pr: Report, gates: list[Gate]) -> Comparison:
    base = main or Report()
    names = sorted(set(base.metrics) | set(pr.metrics))
    rows = [
        Row(name, base.metrics.get(name), pr.metrics.get(name),
            verdict(base.metrics.get(name), pr.metrics.get(name)))
        for name in names
    ]  # fmt: skip
    results: list[GateResult] = []
    for gate in gates:
        matched = [name for name in names if gate.matches(name)] or [gate.metric]
        results.extend(_gate(gate, name, base, pr) for name in matched)
    return Comparison(main, pr, rows, results)
