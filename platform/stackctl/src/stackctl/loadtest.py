"""Run the Locust profiles in tests/load headless against a stack's endpoints and gate on SLOs.

`python -m stackctl.loadtest run --endpoints .stack/local/endpoints.json` runs every profile of
tests/load/slo.toml, writes CSV, HTML and JSON reports under reports/load/, prints a table and exits
non-zero when any SLO is missed. Requests named "malformed: ..." are expected 422s: they are
excluded from the error rate and the latency percentiles (the locustfile fails them unless 422).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tomllib
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console
from rich.table import Table

from stackcontract.endpoints import Endpoints

MALFORMED_PREFIX = "malformed:"
REPO_ROOT = Path(__file__).resolve().parents[4]
LOAD_DIR = REPO_ROOT / "tests" / "load"
DEFAULT_ENDPOINTS = REPO_ROOT / ".stack" / "local" / "endpoints.json"
DEFAULT_REPORTS = REPO_ROOT / "reports" / "load"

console = Console(width=None if sys.stdout.isatty() else 160)  # CI logs: no wrapping
app = typer.Typer(help=__doc__, no_args_is_help=True)


@app.callback()
def main() -> None:
    """Load tests with SLO gates."""


class Profile(BaseModel):
    """One load profile and its SLO, as written in tests/load/slo.toml."""

    model_config = ConfigDict(extra="forbid")

    name: str
    locustfile: str
    target: str = Field(description="Endpoints field naming the host under load")
    users: int = Field(gt=0)
    spawn_rate: float = Field(gt=0)
    duration: str
    max_error_rate: float = Field(ge=0, le=1)
    p95_ms: float = Field(gt=0)
    p99_ms: float = Field(gt=0)
    min_rps: float = Field(ge=0)


class Summary(BaseModel):
    """What a profile run measured (malformed requests excluded) and the SLO verdict."""

    profile: str
    requests: int
    failures: int
    malformed_requests: int
    malformed_failures: int
    error_rate: float
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    violations: list[str]

    @property
    def passed(self) -> bool:
        return not self.violations


def load_profiles(path: Path) -> dict[str, Profile]:
    """Read the profiles of an SLO file, with a clear error naming a bad entry."""
    data = tomllib.loads(path.read_text())
    profiles = data.get("profiles")
    if not isinstance(profiles, dict) or not profiles:
        raise ValueError(f"{path}: no [profiles.<name>] tables found")
    return {name: Profile(name=name, **spec) for name, spec in profiles.items()}


def percentile(histogram: Counter[int], fraction: float) -> float:
    """The response time (ms) below which `fraction` of requests fall, from a ms histogram."""
    total = sum(histogram.values())
    if total == 0:
        return 0.0
    rank = fraction * total
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return float(value)
    return float(max(histogram))


def summarise(profile: Profile, entries: list[dict[str, Any]], elapsed_s: float) -> Summary:
    """Merge Locust's per-request-name stats into one SLO verdict for the profile."""
    histogram: Counter[int] = Counter()
    requests = failures = malformed = malformed_failures = 0
    for entry in entries:
        if entry["name"] == "Aggregated":
            continue
        if entry["name"].startswith(MALFORMED_PREFIX):
            malformed += entry["num_requests"]
            malformed_failures += entry["num_failures"]
            continue
        requests += entry["num_requests"]
        failures += entry["num_failures"]
        histogram.update({int(ms): count for ms, count in entry["response_times"].items()})
    error_rate = failures / requests if requests else 1.0
    rps = requests / elapsed_s if elapsed_s > 0 else 0.0
    p95, p99 = percentile(histogram, 0.95), percentile(histogram, 0.99)
    violations = []
    if requests == 0:
        violations.append("no requests completed: is the target up?")
    if error_rate > profile.max_error_rate:
        violations.append(f"error rate {error_rate:.2%} > {profile.max_error_rate:.2%}")
    if malformed_failures:
        violations.append(f"{malformed_failures} malformed payloads were not answered with 422")
    if p95 > profile.p95_ms:
        violations.append(f"p95 {p95:.0f} ms > {profile.p95_ms:.0f} ms")
    if p99 > profile.p99_ms:
        violations.append(f"p99 {p99:.0f} ms > {profile.p99_ms:.0f} ms")
    if rps < profile.min_rps:
        violations.append(f"throughput {rps:.1f} req/s < {profile.min_rps:.1f} req/s")
    return Summary(
        profile=profile.name,
        requests=requests,
        failures=failures,
        malformed_requests=malformed,
        malformed_failures=malformed_failures,
        error_rate=error_rate,
        rps=rps,
        p50_ms=percentile(histogram, 0.50),
        p95_ms=p95,
        p99_ms=p99,
        violations=violations,
    )


def locust_command(profile: Profile, host: str, prefix: Path) -> list[str]:
    """The headless Locust command line for a profile, writing CSV, HTML and JSON next to `prefix`."""
    return [
        sys.executable, "-m", "locust",
        "-f", str(LOAD_DIR / profile.locustfile),
        "--headless", "--only-summary",
        "--host", host,
        "--users", str(profile.users),
        "--spawn-rate", str(profile.spawn_rate),
        "--run-time", profile.duration,
        "--stop-timeout", "5",
        "--csv", str(prefix),
        "--html", f"{prefix}.html",
        "--json-file", str(prefix),
        "--exit-code-on-error", "0",
    ]  # fmt: skip


def locust_env(endpoints: Endpoints) -> dict[str, str]:
    """Environment for the locustfiles: hosts and credentials from the backend's endpoints."""
    return {
        "AIRFLOW_URL": endpoints.airflow_url,
        "AIRFLOW_USERNAME": endpoints.airflow_username,
        "AIRFLOW_PASSWORD": endpoints.airflow_password.get_secret_value(),
        "MLFLOW_URL": endpoints.mlflow_url,
        **endpoints.mlflow_client_env(),
        "MODEL_SERVER_URL": endpoints.model_server_url,
    }


def run_profile(
    profile: Profile, host: str, out_dir: Path, env: Mapping[str, str] | None = None
) -> Summary:
    """Run one profile against `host` with Locust and return its summary (also written as JSON)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    prefix = out_dir / profile.name
    started = time.monotonic()
    command = locust_command(profile, host, prefix)
    result = subprocess.run(command, env={**os.environ, **(env or {})}, check=False)
    elapsed = time.monotonic() - started
    json_file = prefix.with_suffix(".json")
    if result.returncode != 0 or not json_file.is_file():
        raise RuntimeError(
            f"locust exited with {result.returncode} for profile {profile.name} "
            f"(no {json_file}); see its output above"
        )
    # Run time includes spawn-up and stop; throughput is over the whole window (conservative).
    summary = summarise(profile, json.loads(json_file.read_text()), elapsed)
    (out_dir / f"{profile.name}.summary.json").write_text(summary.model_dump_json(indent=2))
    return summary


def target_host(profile: Profile, endpoints: Endpoints) -> str:
    """The URL of the endpoint a profile loads, with a clear error when the backend has none."""
    host = getattr(endpoints, profile.target, None)
    if not isinstance(host, str) or not host:
        raise ValueError(f"profile {profile.name}: endpoints have no {profile.target!r} URL")
    return host


def print_summaries(summaries: list[Summary], profiles: dict[str, Profile]) -> None:
    table = Table(title="Load test results (malformed 422s excluded)")
    for column in ("profile", "requests", "errors", "req/s", "p50 ms", "p95 ms", "p99 ms", "SLO"):
        table.add_column(column, justify="right" if column not in ("profile", "SLO") else "left")
    for s in summaries:
        slo = profiles[s.profile]
        verdict = "[green]met[/]" if s.passed else "[red]" + "; ".join(s.violations) + "[/]"
        table.add_row(
            s.profile,
            str(s.requests),
            f"{s.error_rate:.2%}",
            f"{s.rps:.1f} (>= {slo.min_rps:g})",
            f"{s.p50_ms:.0f}",
            f"{s.p95_ms:.0f} (<= {slo.p95_ms:g})",
            f"{s.p99_ms:.0f} (<= {slo.p99_ms:g})",
            verdict,
        )
    console.print(table)


@app.command()
def run(
    endpoints_file: Annotated[Path, typer.Option("--endpoints")] = DEFAULT_ENDPOINTS,
    slo_file: Annotated[Path, typer.Option("--slo")] = LOAD_DIR / "slo.toml",
    profile: Annotated[list[str] | None, typer.Option(help="Profiles to run (default all)")] = None,
    duration: Annotated[str | None, typer.Option(help="Override every profile's run time")] = None,
    users: Annotated[int | None, typer.Option(help="Override every profile's user count")] = None,
    out_dir: Annotated[Path, typer.Option("--out")] = DEFAULT_REPORTS,
) -> None:
    """Run the load profiles against a running stack and fail when an SLO is missed."""
    endpoints = Endpoints.load(endpoints_file)
    profiles = load_profiles(slo_file)
    chosen = profile or list(profiles)
    unknown = sorted(set(chosen) - set(profiles))
    if unknown:
        raise typer.BadParameter(
            f"unknown profile(s) {unknown}; {slo_file} defines {list(profiles)}"
        )
    overrides: dict[str, Any] = {}
    if duration:
        overrides["duration"] = duration
    if users:
        overrides["users"] = users
    summaries = []
    for name in chosen:
        chosen_profile = profiles[name].model_copy(update=overrides)
        host = target_host(chosen_profile, endpoints)
        summaries.append(run_profile(chosen_profile, host, out_dir, locust_env(endpoints)))
    print_summaries(summaries, profiles)
    console.print(f"Reports (CSV, HTML, JSON): {out_dir}")
    if not all(s.passed for s in summaries):
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
