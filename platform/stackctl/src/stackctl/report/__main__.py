"""`python -m stackctl.report`: collect this checkout's report, compare it with main's, write
reports/report/{report.json,report.md,*.png}, print the table, exit 1 when a gate fails (2 when
an input cannot be read)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markdown import Markdown

from stackctl.report.baseline import BaselineUnavailable, fetch_main_report
from stackctl.report.collect import Report, ReportInputError, collect, git_commit
from stackctl.report.compare import GATES_FILE, Comparison, GateConfigError, compare, load_gates
from stackctl.report.render import markdown, plot_actual_vs_predicted, plot_latency

WATCHED = ("airflow/dags", "platform/k8s", "platform/compose", "platform/images")
app = typer.Typer(add_completion=False)
Reports = Annotated[Path, typer.Option(help="where the tiers wrote their outputs")]
Baseline = Annotated[Path, typer.Option(help="main's report.json")]
Gates = Annotated[Path, typer.Option(help="the regression gates")]
Out = Annotated[Path, typer.Option(help="where the report goes")]
Base = Annotated[
    str, typer.Option(help="git ref for the changed-files list (default: main's commit)")
]
FromGithub = Annotated[
    bool, typer.Option(help="first fetch main's report-main artifact to --baseline")
]
Summary = Annotated[
    Path | None, typer.Option(help="also append the Markdown here ($GITHUB_STEP_SUMMARY)")
]


def changed_files(repo: Path, base: str) -> list[str]:
    """The DAGs, manifests and image recipes that differ from `base` (empty if git cannot tell)."""
    if not base:
        return []
    result = subprocess.run(
        ["git", "-C", str(repo), "diff", "--name-only", f"{base}...HEAD", "--", *WATCHED],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return result.stdout.split() if result.returncode == 0 else []


def write(comparison: Comparison, out: Path, changed: list[str]) -> str:
    """report.json, the plots and report.md under `out`; returns the Markdown."""
    out.mkdir(parents=True, exist_ok=True)
    comparison.pr.dump(out / "report.json")
    plots = [plot(comparison, out) for plot in (plot_actual_vs_predicted, plot_latency)]
    text = markdown(comparison, plots=[p.name for p in plots if p], changed=changed)
    (out / "report.md").write_text(text, encoding="utf-8")
    return text


@app.command()
def main(
    reports: Reports = Path("reports"),
    baseline: Baseline = Path("reports/baseline/report.json"),
    gates: Gates = GATES_FILE,
    out: Out = Path("reports/report"),
    base: Base = "",
    from_github: FromGithub = False,
    summary: Summary = None,
) -> None:
    """Report what this checkout changed against main; fail when a regression gate fails."""
    console, repo = Console(), Path.cwd()
    if from_github:
        try:
            fetch_main_report(baseline)
        except BaselineUnavailable as error:
            console.print(f"[bold yellow]report: no baseline[/]: {error}")
    try:
        main_report = Report.load(baseline) if baseline.is_file() else None
        comparison = compare(
            main_report, collect(reports, commit=git_commit(repo)), load_gates(gates)
        )
    except (ReportInputError, GateConfigError, ValueError) as error:
        console.print(f"[bold red]report:[/] {error}")
        raise typer.Exit(2) from None
    ref = base or (main_report.commit if main_report else "")
    text = write(comparison, out, changed_files(repo, ref))
    if summary is not None:
        with summary.open("a", encoding="utf-8") as job_summary:
            job_summary.write(text)
    console.print(Markdown(text))
    console.print(f"report: {out / 'report.md'} and {out / 'report.json'}")
    for result in comparison.failed:
        console.print(f"[bold red]gate {result.gate.name} failed[/]: {result.metric} {result.why}")
    if comparison.failed:
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
