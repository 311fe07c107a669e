"""statsd-mapping.yaml matches what Airflow 3.3 really sends over StatsD.

The names are not copied from docs: every metric of Airflow's own registry (metrics_template.yaml in
the installed package) is emitted through Airflow's real stats module and StatsD logger (with legacy
names on, the 3.3 default) into a recording StatsD client; the mapping is then applied to what was
sent, the way statsd-exporter applies it.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import pytest

from stackobservability import metric_catalog

CONTRACT_NAMES = {
    "airflow_dagrun_duration_seconds",
    "airflow_task_duration_seconds",
    "airflow_scheduler_heartbeat_total",
    "airflow_dag_processing_import_errors",
    "airflow_dag_processing_last_run_seconds_ago",
    "airflow_pool_open_slots",
    "airflow_executor_open_slots",
    "airflow_ti_failures_total",
    "airflow_ti_successes_total",
}


@dataclass(frozen=True)
class Sent:
    """One StatsD packet as Airflow would send it: ``<prefix>.<name>`` and its StatsD type."""

    name: str
    kind: str  # c | g | ms


class RecordingStatsClient:
    """Stands in for ``statsd.StatsClient`` (same constructor and methods), recording each send."""

    sent: ClassVar[list[Sent]] = []

    def __init__(self, host: str | None, port: int | None, prefix: str | None, ipv6: bool) -> None:
        self.prefix = prefix

    def _record(self, stat: str, kind: str) -> None:
        RecordingStatsClient.sent.append(Sent(f"{self.prefix}.{stat}", kind))

    def incr(self, stat: str, count: int = 1, rate: float = 1) -> None:
        self._record(stat, "c")

    def decr(self, stat: str, count: int = 1, rate: float = 1) -> None:
        self._record(stat, "c")

    def gauge(self, stat: str, value: float, rate: float = 1, delta: bool = False) -> None:
        self._record(stat, "g")

    def timing(self, stat: str, delta: object, rate: float = 1) -> None:
        self._record(stat, "ms")


@pytest.fixture(scope="module")
def airflow_sends() -> Iterator[list[Sent]]:
    """What Airflow 3.3 sends for every metric of its registry, each variable tagged ``x_<var>``."""
    from airflow._shared.observability.metrics import stats, statsd_logger

    def factory() -> object:
        return statsd_logger.get_statsd_logger(
            stats_class=RecordingStatsClient,  # type: ignore[arg-type]
            host="127.0.0.1",
            port=9125,
            prefix=metric_catalog.AIRFLOW_STATSD_PREFIX,
        )

    saved = (stats._factory, stats._backend, stats._export_legacy_names)
    stats.initialize(factory=factory, export_legacy_names=True)  # type: ignore[arg-type]
    RecordingStatsClient.sent = []
    try:
        for metric in metric_catalog.airflow_metrics():
            variables = set(re.findall(r"{(\w+)}", f"{metric.name} {metric.legacy_name or ''}"))
            tags = {var: f"x_{var}" for var in variables}
            name = metric.name.format(**tags) if "{" in metric.name else metric.name
            if metric.kind == "counter":
                stats.incr(name, tags=tags)
            elif metric.kind == "gauge":
                stats.gauge(name, 1, tags=tags)
            else:
                stats.timing(name, datetime.timedelta(seconds=1), tags=tags)
        yield list(RecordingStatsClient.sent)
    finally:
        stats._factory, stats._backend, stats._export_legacy_names = saved


@pytest.fixture(scope="module")
def mapping() -> metric_catalog.StatsdMappingConfig:
    return metric_catalog.load_statsd_mapping()


def test_airflow_sends_legacy_names_with_variables(airflow_sends: list[Sent]) -> None:
    names = {sent.name for sent in airflow_sends}
    assert "airflow.dagrun.duration.success.x_dag_id" in names
    assert "airflow.dagrun.duration.success" in names  # the tag-less twin, dropped by the mapping
    assert "airflow.dag.x_dag_id.x_task_id.duration" in names
    assert "airflow.scheduler_heartbeat" in names


def test_every_mapping_matches_something_airflow_sends(
    airflow_sends: list[Sent], mapping: metric_catalog.StatsdMappingConfig
) -> None:
    used = set()
    for sent in airflow_sends:
        matched = mapping.first_match(sent.name)
        if matched is not None:
            used.add(matched[0].match)
    unused = [m.match for m in mapping.mappings if m.match not in used]
    assert not unused, f"mappings that match nothing Airflow 3.3 sends (typo or renamed): {unused}"


def test_each_exported_name_has_one_type_and_one_label_set(
    airflow_sends: list[Sent], mapping: metric_catalog.StatsdMappingConfig
) -> None:
    """statsd-exporter rejects samples whose name was seen with other labels or another type."""
    shapes: dict[str, set[tuple[str, frozenset[str]]]] = {}
    for sent in airflow_sends:
        matched = mapping.first_match(sent.name)
        if matched is None or matched[0].action == "drop":
            continue
        rule = matched[0]
        shapes.setdefault(rule.name, set()).add((sent.kind, frozenset(rule.labels)))
    conflicts = {name: shape for name, shape in shapes.items() if len(shape) > 1}
    assert not conflicts, f"names sent with several types/label sets: {conflicts}"
    assert set(shapes) >= CONTRACT_NAMES, (
        f"contract names not exported: {CONTRACT_NAMES - set(shapes)}"
    )


def test_everything_unmapped_is_dropped(
    airflow_sends: list[Sent], mapping: metric_catalog.StatsdMappingConfig
) -> None:
    """Nothing falls through to statsd-exporter's default (dots to underscores) naming."""
    unmatched = [sent.name for sent in airflow_sends if mapping.first_match(sent.name) is None]
    assert not unmatched


def test_captures_fill_the_labels(mapping: metric_catalog.StatsdMappingConfig) -> None:
    rule, captures = mapping.first_match("airflow.ti.finish.ml_training.train.failed") or (None, [])
    assert rule is not None
    assert rule.name == "airflow_ti_finish_total"
    labels = {
        k: re.sub(r"\$(\d)", lambda m: captures[int(m[1]) - 1], v) for k, v in rule.labels.items()
    }
    assert labels == {"dag_id": "ml_training", "task_id": "train", "state": "failed"}


def test_timers_are_histograms_in_seconds(mapping: metric_catalog.StatsdMappingConfig) -> None:
    series = metric_catalog.airflow_series(mapping)
    assert series["airflow_dagrun_duration_seconds_bucket"] == "histogram"
    assert series["airflow_task_duration_seconds_count"] == "histogram"
    assert series["airflow_scheduler_heartbeat_total"] == "counter"
    assert series["airflow_pool_open_slots"] == "gauge"
    timer_names = {n for n, kind in series.items() if kind == "histogram"}
    assert all("_seconds_" in name for name in timer_names), timer_names


def test_unknown_keys_in_the_mapping_are_rejected(tmp_path) -> None:
    bad = tmp_path / "mapping.yaml"
    bad.write_text("mappings:\n  - match: airflow.x\n    name: x\n    lables: {a: b}\n")
    with pytest.raises(ValueError, match="lables"):
        metric_catalog.load_statsd_mapping(bad)


@pytest.mark.parametrize(
    ("mapping", "problem"),
    [
        ({"match": "airflow.operator_failures_*", "name": "x"}, "must be a whole component"),
        ({"match": "airflow.x", "name": "airflow-x"}, "invalid metric name"),
        ({"match": "airflow.x.*", "name": "x", "labels": {"p": "$1"}}, "invalid label names"),
        ({"match": "airflow.(", "name": "x", "match_type": "regex"}, "invalid regex"),
    ],
)
def test_mappings_statsd_exporter_would_refuse_are_rejected(
    mapping: dict[str, object], problem: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        metric_catalog.StatsdMapping.model_validate(mapping)
