"""Which metric names exist, where each comes from, and which names the dashboards and alerts use.

Sources of exported series (each read from the real thing, never typed by hand where it can be read):
- ``model-server``: the prometheus_client registry of ``mlpipe.serve.ServerMetrics``;
- ``ml_monitoring``: the registry ``mlpipe.monitoring.metrics_registry`` pushes to the Pushgateway;
- ``airflow``: what ``statsd-mapping.yaml`` makes of the metrics in Airflow's own registry
  (``airflow/_shared/observability/metrics/metrics_template.yaml`` of the installed Airflow);
- ``mlflow``, ``seaweedfs``, ``pushgateway``: recorded scrapes (``stack-record-metrics``);
- ``kubernetes``: kube-state-metrics/cAdvisor/node-exporter, a list written from their docs;
- ``prometheus``: the series Prometheus itself adds to every scrape (``up`` ...).
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import Path
from typing import Any, Literal

import promql_parser
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from stackobservability import EXPORTED_METRICS_DIR, OBSERVABILITY_DIR
from stackobservability.exposition import (
    SERIES_SUFFIXES,
    read_series_file,
    series_from_exposition,
)

DASHBOARD_DIR = OBSERVABILITY_DIR / "dashboards"
ALERTS_FILE = OBSERVABILITY_DIR / "alerts.yaml"
STATSD_MAPPING_FILE = OBSERVABILITY_DIR / "statsd-mapping.yaml"
RECORDED_SOURCES = ("mlflow", "seaweedfs", "pushgateway", "kubernetes")
AIRFLOW_STATSD_PREFIX = "airflow"

# Added by Prometheus to every target it scrapes ("Jobs and instances", Prometheus docs).
PROMETHEUS_SYNTHETIC = {
    "up": "gauge",
    "scrape_duration_seconds": "gauge",
    "scrape_samples_scraped": "gauge",
    "scrape_samples_post_metric_relabeling": "gauge",
    "scrape_series_added": "gauge",
}


# ------------------------------------------------------------------------------------ queries


@dataclass(frozen=True)
class QueryRef:
    """A PromQL expression and where it lives (for error messages a person can act on)."""

    where: str
    expr: str


def dashboard_queries(name: str, model: Mapping[str, Any]) -> list[QueryRef]:
    """Every target expression of a dashboard JSON model (rows' nested panels included)."""
    refs: list[QueryRef] = []
    for panel in iter_panels(model.get("panels", [])):
        for target in panel.get("targets", []):
            if "expr" in target:
                where = (
                    f"dashboard {name} / panel {panel.get('title')!r} (id {panel.get('id')}) / "
                    f"target {target.get('refId', '?')}"
                )
                refs.append(QueryRef(where, target["expr"]))
    return refs


def iter_panels(panels: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    """Every panel, including those nested in collapsed rows."""
    for panel in panels:
        yield panel
        yield from iter_panels(panel.get("panels", []))


def committed_dashboard_queries() -> list[QueryRef]:
    """Queries of the committed dashboards/*.json."""
    import json

    refs: list[QueryRef] = []
    for path in sorted(DASHBOARD_DIR.glob("*.json")):
        refs += dashboard_queries(path.name, json.loads(path.read_text()))
    return refs


def alert_queries(rules: Mapping[str, Any], file_name: str = "alerts.yaml") -> list[QueryRef]:
    """Every alerting/recording rule expression of a Prometheus rule file."""
    refs: list[QueryRef] = []
    for group in rules.get("groups", []):
        for rule in group.get("rules", []):
            name = rule.get("alert") or rule.get("record")
            refs.append(
                QueryRef(f"{file_name} / group {group['name']} / rule {name}", rule["expr"])
            )
    return refs


def committed_alert_queries() -> list[QueryRef]:
    return alert_queries(yaml.safe_load(ALERTS_FILE.read_text()), ALERTS_FILE.name)


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (parsed with promql-parser; raises ValueError if invalid)."""
    names: set[str] = set()

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                names.add(node.name)
            for matcher in node.matchers.matchers if node.matchers else []:
                if matcher.name == "__name__" and matcher.op == promql_parser.MatchOp.Equal:
                    names.add(matcher.value)

    promql_parser.walk(promql_parser.parse(expr), pre_visit=visit)
    return names


# ------------------------------------------------------------------------------ statsd mapping


# statsd-exporter's own validation (pkg/mapper/mapper.go): a glob's `*` is a whole dot-separated
# component, names may hold `${n}` templates, label names have at least two characters.
_STATSD_COMPONENT = r"[a-zA-Z_](-?[a-zA-Z0-9_])*"
_GLOB_LINE = re.compile(rf"^(\*\.|{_STATSD_COMPONENT}\.)+(\*|{_STATSD_COMPONENT})$")
_TEMPLATE = r"(\$\{?\d+\}?)"
_METRIC_NAME = re.compile(rf"^([a-zA-Z_]|{_TEMPLATE})([a-zA-Z0-9_]|{_TEMPLATE})*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]+$")


class StatsdMapping(BaseModel):
    """One mapping of statsd-exporter's mapping config (the keys this repository uses), checked
    the way statsd-exporter checks it when it loads the file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    match: str
    name: str
    match_type: Literal["glob", "regex"] = "glob"
    action: Literal["map", "drop"] = "map"
    labels: dict[str, str] = Field(default_factory=dict)
    help: str = ""
    observer_type: Literal["histogram", "summary"] | None = None
    histogram_options: dict[str, list[float]] | None = None

    @model_validator(mode="after")
    def _valid_for_statsd_exporter(self) -> StatsdMapping:
        if self.match_type == "glob" and not _GLOB_LINE.match(self.match):
            raise ValueError(f"invalid glob {self.match!r}: `*` must be a whole component")
        if self.match_type == "regex":
            try:
                re.compile(self.match)
            except re.error as error:
                raise ValueError(f"invalid regex {self.match!r}: {error}") from error
        if not _METRIC_NAME.match(self.name):
            raise ValueError(f"invalid metric name {self.name!r}")
        bad_labels = [label for label in self.labels if not _LABEL_NAME.match(label)]
        if bad_labels:
            raise ValueError(f"invalid label names {bad_labels} (2+ chars of [a-zA-Z0-9_])")
        return self

    def captures(self, statsd_name: str) -> list[str] | None:
        """The ``$n`` captures if ``statsd_name`` matches, else None (glob ``*`` stays in a component)."""
        if self.match_type == "regex":
            found = re.search(self.match, statsd_name)
        else:
            pattern = "".join("([^.]+)" if c == "*" else re.escape(c) for c in self.match)
            found = re.fullmatch(pattern, statsd_name)
        return list(found.groups()) if found else None


class StatsdMappingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    defaults: dict[str, Any] = Field(default_factory=dict)
    mappings: list[StatsdMapping]

    def first_match(self, statsd_name: str) -> tuple[StatsdMapping, list[str]] | None:
        """statsd-exporter's choice: the first matching glob, else the first matching regex."""
        for wanted in ("glob", "regex"):
            for mapping in self.mappings:
                if mapping.match_type == wanted:
                    captures = mapping.captures(statsd_name)
                    if captures is not None:
                        return mapping, captures
        return None

    def observer_type(self, mapping: StatsdMapping) -> str:
        return mapping.observer_type or str(self.defaults.get("observer_type", "summary"))


def load_statsd_mapping(path: Path = STATSD_MAPPING_FILE) -> StatsdMappingConfig:
    return StatsdMappingConfig.model_validate(yaml.safe_load(path.read_text()))


# ----------------------------------------------------------------------------------- airflow


@dataclass(frozen=True)
class AirflowMetric:
    """A metric of Airflow's registry: its names (new and legacy, ``{var}`` placeholders) and type."""

    name: str
    legacy_name: str | None
    kind: Literal["counter", "gauge", "timer"]

    def statsd_examples(self) -> list[str]:
        """Example names as sent over StatsD (prefix added, each ``{var}`` filled with ``x``)."""
        names = [self.name] + ([self.legacy_name] if self.legacy_name else [])
        return [f"{AIRFLOW_STATSD_PREFIX}.{re.sub(r'{[^}]+}', 'x', n)}" for n in names]


def airflow_metrics_template() -> Path:
    """Airflow's metric registry file in the installed package (found without importing Airflow)."""
    spec = importlib.util.find_spec("airflow")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("apache-airflow is not installed: uv sync --group airflow")
    root = Path(next(iter(spec.submodule_search_locations)))
    return root / "_shared" / "observability" / "metrics" / "metrics_template.yaml"


def airflow_metrics() -> list[AirflowMetric]:
    entries = yaml.safe_load(airflow_metrics_template().read_text())["metrics"]
    return [
        AirflowMetric(
            name=entry["name"],
            legacy_name=None if entry.get("legacy_name", "-") == "-" else entry["legacy_name"],
            kind=entry["type"],
        )
        for entry in entries
    ]


def airflow_series(config: StatsdMappingConfig | None = None) -> dict[str, str]:
    """Series statsd-exporter exports for Airflow: mapped names, typed by the Airflow metric they map."""
    config = config or load_statsd_mapping()
    series: dict[str, str] = {}
    for metric in airflow_metrics():
        for example in metric.statsd_examples():
            matched = config.first_match(example)
            if matched is None or matched[0].action == "drop":
                continue
            mapping = matched[0]
            kind = config.observer_type(mapping) if metric.kind == "timer" else metric.kind
            for suffix in SERIES_SUFFIXES[kind]:
                series[mapping.name + suffix] = kind
    return series


# ---------------------------------------------------------------------------- python sources


def model_server_series() -> dict[str, str]:
    from mlpipe.serve import ServerMetrics

    return series_from_exposition(ServerMetrics().exposition().decode())


def ml_monitoring_series() -> dict[str, str]:
    """The gauges one monitoring report turns into (values are irrelevant, names are not)."""
    from prometheus_client import generate_latest

    from mlpipe.monitoring import MonitoringReport, QualityMetrics, metrics_registry
    from mlpipe.schema import FEATURE_COLUMNS

    report = MonitoringReport(
        model_name="catalog",
        model_version="1",
        batch="s3://catalog/validated/batch.parquet",
        reference="catalog",
        rows_scored=1,
        reference_rows=1,
        quality=QualityMetrics(rmse=1.0, mae=1.0, r2=0.5),
        feature_psi=dict.fromkeys(FEATURE_COLUMNS, 0.0),
        prediction_psi=0.0,
        generated_at=0.0,
    )
    return series_from_exposition(generate_latest(metrics_registry(report)).decode())


# ---------------------------------------------------------------------------------- registry


def recorded_series(source: str) -> dict[str, str]:
    return read_series_file(EXPORTED_METRICS_DIR / f"{source}.txt")


def build_registry() -> dict[str, dict[str, str]]:
    """Source name -> {series name: type} for every source of the stack."""
    registry = {
        "model-server": model_server_series(),
        "ml_monitoring": ml_monitoring_series(),
        "airflow": airflow_series(),
        "prometheus": dict(PROMETHEUS_SYNTHETIC),
    }
    for source in RECORDED_SOURCES:
        registry[source] = recorded_series(source)
    return registry


def unknown_metric_problems(
    queries: Iterable[QueryRef], registry: Mapping[str, Mapping[str, str]]
) -> list[str]:
    """One message per (query, metric) whose metric no source exports, with close known names."""
    known = {name for series in registry.values() for name in series}
    problems = []
    for query in queries:
        for name in sorted(metric_names(query.expr) - known):
            close = get_close_matches(name, known, n=3, cutoff=0.8)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            problems.append(
                f"{query.where} uses unknown metric {name!r}: no source exports it "
                f"(sources: {', '.join(sorted(registry))}).{hint}"
            )
    return problems


def sources_of(expr: str, registry: Mapping[str, Mapping[str, str]]) -> set[str]:
    """The sources that export the metrics ``expr`` uses."""
    return {
        source
        for name in metric_names(expr)
        for source, series in registry.items()
        if name in series
    }
