"""The comparison as Markdown (for the job summary and reports/report/report.md) and as PNG plots
where a picture reads better than a number: predicted against actual prices on the held-out rows,
and latency percentiles of main and the PR side by side."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stackctl.report.collect import Metric, Report
from stackctl.report.compare import Comparison, GateResult, relative_percent

MARKS = {"better": "🟢 better", "same": "⚪ same", "worse": "🔴 worse"}
PLOT_ACTUAL = "actual_vs_predicted.png"
PLOT_LATENCY = "latency.png"
PERCENTILES = ("p50_ms", "p95_ms", "p99_ms")


def _value(metric: Metric | None) -> str:
    if metric is None:
        return "—"
    value = metric.value
    text = f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{text} {metric.unit}".strip() if metric.unit not in {"", "share"} else text


def _change(main: Metric | None, pr: Metric | None) -> str:
    if main is None or pr is None:
        return ""
    percent = relative_percent(main, pr)
    if percent is None:
        return f"{pr.value - main.value:+.4g}"
    return f"{percent:+.2f} %"


def _gate_line(result: GateResult) -> str:
    mark = {"passed": "✅", "failed": "❌", "not applied": "⚪"}[result.outcome]
    return f"| {mark} {result.gate.name} | `{result.metric}` | {result.outcome} | {result.why} |"


def markdown(
    comparison: Comparison, *, plots: Sequence[str] = (), changed: Sequence[str] = ()
) -> str:
    main, pr = comparison.main, comparison.pr
    lines = ["## What this change did", ""]
    if main is None:
        lines += [
            "No report of main to compare with (pass `--baseline FILE`; in CI it is main's "
            "`report-main` artifact), so every row says *missing on main* and no gate applies.",
            "",
        ]
    else:
        lines += [f"main `{main.commit[:12] or 'unknown'}` ({main.recorded_at}) against this "
                  f"change `{pr.commit[:12] or 'unknown'}` ({pr.recorded_at}).", ""]  # fmt: skip
    failed = comparison.failed
    if failed:
        lines += [f"**{len(failed)} regression gate(s) failed:** "
                  + ", ".join(f"`{r.gate.name}` ({r.metric}: {r.why})" for r in failed), ""]  # fmt: skip
    lines += [
        "| metric | main | this change | change | verdict |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for row in comparison.rows:
        lines.append(
            f"| `{row.metric}` | {_value(row.main)} | {_value(row.pr)} | "
            f"{_change(row.main, row.pr)} | {MARKS.get(row.verdict, row.verdict)} |"
        )
    if comparison.gates:
        lines += ["", "### Regression gates (platform/config/report-gates.toml)", "",
                  "| gate | metric | outcome | values |", "| --- | --- | --- | --- |"]  # fmt: skip
        lines += [_gate_line(result) for result in comparison.gates]
    if changed:
        lines += ["", "### DAGs, manifests and images changed", ""]
        lines += [f"- `{path}`" for path in changed]
    if plots:
        lines += ["", "### Plots", ""]
        lines += [f"![{Path(plot).stem}]({plot})" for plot in plots]
    return "\n".join(lines) + "\n"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def _save(plt: Any, figure: Any, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def plot_actual_vs_predicted(comparison: Comparison, out: Path) -> Path | None:
    points = comparison.pr.series.get("actual_vs_predicted")
    if not points:
        return None
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(5, 5), dpi=100)
    base = comparison.main.series.get("actual_vs_predicted") if comparison.main else None
    if base:
        actual, predicted = zip(*base, strict=True)
        axes.scatter(actual, predicted, s=4, alpha=0.35, color="grey", label="main")
    actual, predicted = zip(*points, strict=True)
    axes.scatter(actual, predicted, s=4, alpha=0.5, label="this change")
    top = max(max(a, p) for a, p in points)
    axes.plot([0, top], [0, top], color="black", linewidth=0.8)
    axes.set(xlabel="actual price (USD)", ylabel="predicted price (USD)",
             title="Held-out rows of the fixed batches")  # fmt: skip
    axes.legend(loc="upper left")
    return _save(plt, figure, out / PLOT_ACTUAL)


def _latencies(report: Report | None, profile: str) -> list[float] | None:
    """p50, p95, p99 of a load profile, from the report's metrics (None if any is absent)."""
    if report is None:
        return None
    metrics = [report.metrics.get(f"load.{profile}.{name}") for name in PERCENTILES]
    return [m.value for m in metrics if m is not None] if all(metrics) else None


def plot_latency(comparison: Comparison, out: Path) -> Path | None:
    loaded = {name.split(".")[1] for name in comparison.pr.metrics if name.startswith("load.")}
    profiles = sorted(p for p in loaded if _latencies(comparison.pr, p))
    if not profiles:
        return None
    plt = _pyplot()
    figure, axes = plt.subplots(
        1, len(profiles), figsize=(4 * len(profiles), 3.5), dpi=100, squeeze=False
    )
    for axis, profile in zip(axes[0], profiles, strict=True):
        sides = [(label, values) for label, values in (
            ("main", _latencies(comparison.main, profile)),
            ("this change", _latencies(comparison.pr, profile)),
        ) if values]  # fmt: skip
        width = 0.8 / len(sides)
        for offset, (label, values) in enumerate(sides):
            positions = [i + offset * width for i in range(len(PERCENTILES))]
            axis.bar(positions, values, width=width, label=label)
        ticks = [i + width * (len(sides) - 1) / 2 for i in range(len(PERCENTILES))]
        axis.set_xticks(ticks, [name.removesuffix("_ms") for name in PERCENTILES])
        axis.set(title=profile, ylabel="ms")
        axis.legend()
    return _save(plt, figure, out / PLOT_LATENCY)
