"""Grafana dashboards as code: pipeline (Airflow), model (serving + monitoring) and cluster.

The panels are declared below as plain data (title, PromQL, unit); `grafana-foundation-sdk` turns them
into Grafana's dashboard JSON model, committed under ``dashboards/`` and shipped to Grafana by the
``grafana-dashboards`` ConfigMap (kustomization.yaml). After editing this file regenerate with:

    stack-dashboards          # writes platform/observability/dashboards/*.json
    stack-dashboards --check  # exit 1 if the JSON is stale

Every metric a query uses must be one that something in the stack exports (the model server, the
monitoring DAG's Pushgateway gauges, statsd-mapping.yaml for Airflow, MLflow/SeaweedFS/Pushgateway
scrapes, kube-state-metrics/cAdvisor/node-exporter); tests/unit/observability enforces it.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dashboard_models

from stackobservability import OBSERVABILITY_DIR

DASHBOARD_DIR = OBSERVABILITY_DIR / "dashboards"
REGENERATE_COMMAND = "stack-dashboards"
# Dashboards pick their Prometheus through this variable, so one JSON works with any datasource uid.
DATASOURCE = dashboard_models.DataSourceRef(type_val="prometheus", uid="${datasource}")
GRID_WIDTH = 24

# Thresholds shared with the alert rules (alerts.yaml) so a panel turns red when its alert fires.
# PSI levels are mlpipe.monitoring's PSI_MODERATE / PSI_SIGNIFICANT (a unit test keeps them equal).
PSI_MODERATE = 0.1
PSI_SIGNIFICANT = 0.25
R2_MIN = 0.9
ERROR_RATIO_MAX = 0.05
P99_LATENCY_MAX_SECONDS = 0.5

PanelKind = Literal["timeseries", "stat"]


@dataclass(frozen=True)
class Query:
    """One PromQL target of a panel and the legend of the series it returns."""

    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    """A panel as data: what to plot, how to read it, how wide it is (of 24 grid columns)."""

    title: str
    description: str
    queries: tuple[Query, ...]
    unit: str = "short"
    kind: PanelKind = "timeseries"
    width: int = 12
    height: int = 8
    # (value, colour) steps above the base green; drawn as dashed lines on time series.
    thresholds: tuple[tuple[float, str], ...] = ()
    stat_text: Literal["value", "name"] = "value"
    # Colour below the first threshold (red for figures where low is bad, like R^2).
    base_color: str = "green"


@dataclass(frozen=True)
class Row:
    title: str
    panels: tuple[Panel, ...]


@dataclass(frozen=True)
class DashboardSpec:
    uid: str
    title: str
    description: str
    rows: tuple[Row, ...]
    tags: tuple[str, ...] = field(default=("mlops",))


# ------------------------------------------------------------------------------------ pipeline

PIPELINE = DashboardSpec(
    uid="mlops-pipeline",
    title="MLOps / Pipeline (Airflow)",
    description="Airflow 3 DAG runs, tasks, scheduler and DAG processing (statsd-exporter), plus "
    "the MLflow and S3 (SeaweedFS) services the pipeline depends on.",
    tags=("mlops", "airflow"),
    rows=(
        Row(
            "DAG runs",
            (
                Panel(
                    "DAG run duration p95",
                    "95th percentile duration of finished DAG runs over the last hour, by DAG.",
                    (
                        Query(
                            "histogram_quantile(0.95, sum by (le, dag_id) "
                            "(rate(airflow_dagrun_duration_seconds_bucket[1h])))",
                            "{{dag_id}}",
                        ),
                    ),
                    unit="s",
                ),
                Panel(
                    "DAG runs finished per hour",
                    "Finished DAG runs in the last hour, by DAG and final state.",
                    (
                        Query(
                            "sum by (dag_id, state) "
                            "(increase(airflow_dagrun_duration_seconds_count[1h]))",
                            "{{dag_id}} {{state}}",
                        ),
                    ),
                ),
                Panel(
                    "Mean DAG run duration",
                    "Mean duration of DAG runs that finished in the last hour, by DAG.",
                    (
                        Query(
                            "sum by (dag_id) (rate(airflow_dagrun_duration_seconds_sum[1h])) / "
                            "sum by (dag_id) (rate(airflow_dagrun_duration_seconds_count[1h]))",
                            "{{dag_id}}",
                        ),
                    ),
                    unit="s",
                ),
                Panel(
                    "Running DAG runs and schedule delay",
                    "DAG runs running now, and the p95 delay between logical date and start.",
                    (
                        Query("max(airflow_scheduler_dagruns_running)", "running"),
                        Query(
                            "histogram_quantile(0.95, sum by (le, dag_id) "
                            "(rate(airflow_dagrun_schedule_delay_seconds_bucket[1h])))",
                            "delay p95 {{dag_id}}",
                        ),
                    ),
                ),
            ),
        ),
        Row(
            "Tasks",
            (
                Panel(
                    "Task failures",
                    "Failed task instances in 15 minutes: all DAGs, and by DAG/task.",
                    (
                        Query("sum(increase(airflow_ti_failures_total[15m]))", "all tasks"),
                        Query(
                            'sum by (dag_id, task_id) (increase(airflow_ti_finish_total{state="failed"}[15m]))',
                            "{{dag_id}}.{{task_id}}",
                        ),
                    ),
                    thresholds=((1, "red"),),
                ),
                Panel(
                    "Task successes",
                    "Successful task instances in 15 minutes.",
                    (Query("sum(increase(airflow_ti_successes_total[15m]))", "all tasks"),),
                ),
                Panel(
                    "Task duration p95",
                    "95th percentile task duration over the last hour, by DAG and task.",
                    (
                        Query(
                            "histogram_quantile(0.95, sum by (le, dag_id, task_id) "
                            "(rate(airflow_task_duration_seconds_bucket[1h])))",
                            "{{dag_id}}.{{task_id}}",
                        ),
                    ),
                    unit="s",
                ),
                Panel(
                    "Pool and executor slots",
                    "Open/running/queued slots of each pool and the executor's capacity.",
                    (
                        Query("sum by (pool) (airflow_pool_open_slots)", "open {{pool}}"),
                        Query("sum by (pool) (airflow_pool_running_slots)", "running {{pool}}"),
                        Query("sum by (pool) (airflow_pool_queued_slots)", "queued {{pool}}"),
                        Query("sum by (executor) (airflow_executor_open_slots)", "executor open"),
                        Query(
                            "sum by (executor) (airflow_executor_running_tasks)", "executor running"
                        ),
                    ),
                ),
            ),
        ),
        Row(
            "Scheduler and DAG processing",
            (
                Panel(
                    "Component heartbeats",
                    "Heartbeats per second of the scheduler, DAG processor and triggerer; "
                    "0 means the component is stuck or gone.",
                    (
                        Query("sum(rate(airflow_scheduler_heartbeat_total[5m]))", "scheduler"),
                        Query(
                            "sum(rate(airflow_dag_processor_heartbeat_total[5m]))", "dag processor"
                        ),
                        Query("sum(rate(airflow_triggerer_heartbeat_total[5m]))", "triggerer"),
                    ),
                    unit="ops",
                    width=8,
                ),
                Panel(
                    "DAG import errors",
                    "DAG files that failed to import in the last parsing loop.",
                    (Query("max(airflow_dag_processing_import_errors)", "import errors"),),
                    kind="stat",
                    width=4,
                    thresholds=((1, "red"),),
                ),
                Panel(
                    "Total DAG parse time",
                    "Seconds to parse all DAG files once.",
                    (Query("max(airflow_dag_processing_total_parse_time_seconds)", "parse time"),),
                    unit="s",
                    kind="stat",
                    width=4,
                ),
                Panel(
                    "DAG file last processed",
                    "Seconds since each DAG file was last processed.",
                    (
                        Query(
                            "max by (file) (airflow_dag_processing_last_run_seconds_ago)",
                            "{{file}}",
                        ),
                    ),
                    unit="s",
                    width=8,
                ),
                Panel(
                    "DAG file processing time p95",
                    "95th percentile time to process each DAG file.",
                    (
                        Query(
                            "histogram_quantile(0.95, sum by (le, file) "
                            "(rate(airflow_dag_processing_last_duration_seconds_bucket[15m])))",
                            "{{file}}",
                        ),
                    ),
                    unit="s",
                ),
                Panel(
                    "Starving tasks",
                    "Tasks that cannot run because no pool slot is open.",
                    (Query("max(airflow_scheduler_tasks_starving)", "starving"),),
                ),
            ),
        ),
        Row(
            "MLflow and object store",
            (
                Panel(
                    "MLflow requests by status",
                    "Requests per second answered by the MLflow tracking server, by status.",
                    (Query("sum by (status) (rate(mlflow_http_request_total[5m]))", "{{status}}"),),
                    unit="reqps",
                ),
                Panel(
                    "MLflow request latency p95",
                    "95th percentile latency of the MLflow tracking server.",
                    (
                        Query(
                            "histogram_quantile(0.95, sum by (le) "
                            "(rate(mlflow_http_request_duration_seconds_bucket[5m])))",
                            "p95",
                        ),
                    ),
                    unit="s",
                ),
                Panel(
                    "S3 requests by type",
                    "Requests per second to the SeaweedFS S3 gateway, by operation and code.",
                    (
                        Query(
                            "sum by (type, code) (rate(SeaweedFS_s3_request_total[5m]))",
                            "{{type}} {{code}}",
                        ),
                    ),
                    unit="reqps",
                ),
                Panel(
                    "S3 request latency p95",
                    "95th percentile S3 request latency, by operation.",
                    (
                        Query(
                            "histogram_quantile(0.95, sum by (le, type) "
                            "(rate(SeaweedFS_s3_request_seconds_bucket[5m])))",
                            "{{type}}",
                        ),
                    ),
                    unit="s",
                ),
            ),
        ),
    ),
)

# --------------------------------------------------------------------------------------- model

_PREDICT = 'endpoint="/predict"'


def _latency_quantile(quantile: float) -> Query:
    return Query(
        f"histogram_quantile({quantile}, sum by (le) "
        f"(rate(model_server_request_duration_seconds_bucket{{{_PREDICT}}}[5m])))",
        f"p{round(quantile * 100)}",
    )


MODEL = DashboardSpec(
    uid="mlops-model",
    title="MLOps / Model",
    description="The model server (traffic, latency, errors, champion version, reloads) and the "
    "ml_monitoring DAG's quality and drift figures (pushed to the Pushgateway).",
    tags=("mlops", "model"),
    rows=(
        Row(
            "Serving",
            (
                Panel(
                    "Prediction requests by status",
                    "POST /predict requests per second, by HTTP status.",
                    (
                        Query(
                            f"sum by (status) (rate(model_server_requests_total{{{_PREDICT}}}[5m]))",
                            "{{status}}",
                        ),
                    ),
                    unit="reqps",
                    width=8,
                ),
                Panel(
                    "Rows priced",
                    "Diamonds priced per second (a request may carry a batch of rows).",
                    (Query("sum(rate(model_server_predicted_rows_total[5m]))", "rows/s"),),
                    unit="ops",
                    width=8,
                ),
                Panel(
                    "Champion",
                    "Model name and registry version the server is serving now.",
                    (
                        Query(
                            "max by (model_name, model_version) (model_server_model_info)",
                            "{{model_name}} v{{model_version}}",
                        ),
                    ),
                    kind="stat",
                    width=8,
                    stat_text="name",
                ),
                Panel(
                    "Prediction latency",
                    "p50/p95/p99 of POST /predict from the request-duration histogram.",
                    (_latency_quantile(0.5), _latency_quantile(0.95), _latency_quantile(0.99)),
                    unit="s",
                    thresholds=((P99_LATENCY_MAX_SECONDS, "red"),),
                ),
                Panel(
                    "5xx error ratio",
                    "Share of all requests answered with a 5xx (the alert fires above 5%).",
                    (
                        # `or vector(0)`: no 5xx series yet means a ratio of 0, not "no data".
                        Query(
                            '(sum(rate(model_server_requests_total{status=~"5.."}[5m])) or vector(0))'
                            " / sum(rate(model_server_requests_total[5m]))",
                            "5xx ratio",
                        ),
                    ),
                    unit="percentunit",
                    width=6,
                    thresholds=((ERROR_RATIO_MAX, "red"),),
                ),
                Panel(
                    "Invalid payloads (422)",
                    "Requests per second rejected because the payload did not match the schema.",
                    (
                        Query(
                            "sum by (endpoint) (rate(model_server_invalid_payloads_total[5m]))",
                            "{{endpoint}}",
                        ),
                    ),
                    unit="reqps",
                    width=6,
                ),
                Panel(
                    "Champion reloads",
                    "Reload attempts in the last hour, by outcome (success, failure, unchanged).",
                    (
                        Query(
                            "sum by (outcome) (increase(model_server_model_reloads_total[1h]))",
                            "{{outcome}}",
                        ),
                    ),
                    width=24,
                ),
            ),
        ),
        Row(
            "Quality and drift (ml_monitoring)",
            (
                Panel(
                    "RMSE and MAE on the newest batch",
                    "Regression error of the champion on the newest validated batch (price, USD).",
                    (
                        Query(
                            "max by (model_version) (ml_monitoring_rmse)", "RMSE v{{model_version}}"
                        ),
                        Query(
                            "max by (model_version) (ml_monitoring_mae)", "MAE v{{model_version}}"
                        ),
                    ),
                    unit="currencyUSD",
                    width=8,
                ),
                Panel(
                    "R² on the newest batch",
                    "Coefficient of determination; the ModelQualityDegraded alert fires below 0.9.",
                    (Query("max by (model_version) (ml_monitoring_r2)", "v{{model_version}}"),),
                    kind="stat",
                    width=8,
                    thresholds=((R2_MIN, "green"),),
                    base_color="red",
                ),
                Panel(
                    "Last successful monitoring run",
                    "Time since ml_monitoring last pushed its figures.",
                    (
                        Query(
                            "time() - max(ml_monitoring_last_success_timestamp_seconds)",
                            "age",
                        ),
                    ),
                    unit="s",
                    kind="stat",
                    width=8,
                    thresholds=((2 * 86400, "red"),),
                ),
                Panel(
                    "Feature PSI",
                    "Population stability index of each feature, newest batch vs training data "
                    "(< 0.1 stable, > 0.25 significant shift).",
                    (Query("max by (feature) (ml_monitoring_feature_psi)", "{{feature}}"),),
                    thresholds=((PSI_MODERATE, "orange"), (PSI_SIGNIFICANT, "red")),
                ),
                Panel(
                    "Prediction PSI and rows scored",
                    "PSI of the predicted prices, and how many rows the last run scored.",
                    (
                        Query("max(ml_monitoring_prediction_psi)", "prediction PSI"),
                        Query("max(ml_monitoring_rows_scored)", "rows scored"),
                    ),
                    thresholds=((PSI_MODERATE, "orange"), (PSI_SIGNIFICANT, "red")),
                ),
            ),
        ),
    ),
)

# ------------------------------------------------------------------------------------- cluster

_CONTAINERS = 'container!="", container!="POD"'

CLUSTER = DashboardSpec(
    uid="mlops-cluster",
    title="MLOps / Cluster",
    description="Pods by phase and restarts (kube-state-metrics), CPU and memory by component "
    "(cAdvisor via the kubelet), nodes (node-exporter).",
    tags=("mlops", "kubernetes"),
    rows=(
        Row(
            "Workloads",
            (
                Panel(
                    "Pods by phase",
                    "Pods in each phase, by namespace.",
                    (
                        Query(
                            "sum by (namespace, phase) (kube_pod_status_phase)",
                            "{{namespace}} {{phase}}",
                        ),
                    ),
                ),
                Panel(
                    "Container restarts (1h)",
                    "Container restarts in the last hour, by namespace and container.",
                    (
                        Query(
                            "sum by (namespace, container) "
                            "(increase(kube_pod_container_status_restarts_total[1h]))",
                            "{{namespace}}/{{container}}",
                        ),
                    ),
                ),
                Panel(
                    "Deployments: available vs desired replicas",
                    "Available replicas of each deployment next to the desired count.",
                    (
                        Query(
                            "sum by (namespace, deployment) "
                            "(kube_deployment_status_replicas_available)",
                            "available {{deployment}}",
                        ),
                        Query(
                            "sum by (namespace, deployment) (kube_deployment_spec_replicas)",
                            "desired {{deployment}}",
                        ),
                    ),
                    width=24,
                ),
            ),
        ),
        Row(
            "Resources by component",
            (
                Panel(
                    "CPU by component",
                    "CPU cores used by each container (component), from cAdvisor.",
                    (
                        Query(
                            "sum by (namespace, container) "
                            f"(rate(container_cpu_usage_seconds_total{{{_CONTAINERS}}}[5m]))",
                            "{{namespace}}/{{container}}",
                        ),
                    ),
                    unit="cores",
                ),
                Panel(
                    "Memory by component",
                    "Working-set memory of each container (what the OOM killer looks at).",
                    (
                        Query(
                            "sum by (namespace, container) "
                            f"(container_memory_working_set_bytes{{{_CONTAINERS}}})",
                            "{{namespace}}/{{container}}",
                        ),
                    ),
                    unit="bytes",
                ),
                Panel(
                    "CPU requests vs usage",
                    "Requested CPU cores per namespace next to what is used.",
                    (
                        Query(
                            'sum by (namespace) (kube_pod_container_resource_requests{resource="cpu"})',
                            "requested {{namespace}}",
                        ),
                        Query(
                            "sum by (namespace) "
                            f"(rate(container_cpu_usage_seconds_total{{{_CONTAINERS}}}[5m]))",
                            "used {{namespace}}",
                        ),
                    ),
                    unit="cores",
                ),
                Panel(
                    "Memory limits vs working set",
                    "Memory limits per namespace next to the working set.",
                    (
                        Query(
                            'sum by (namespace) (kube_pod_container_resource_limits{resource="memory"})',
                            "limit {{namespace}}",
                        ),
                        Query(
                            "sum by (namespace) "
                            f"(container_memory_working_set_bytes{{{_CONTAINERS}}})",
                            "working set {{namespace}}",
                        ),
                    ),
                    unit="bytes",
                ),
            ),
        ),
        Row(
            "Nodes",
            (
                Panel(
                    "Node CPU utilisation",
                    "Share of CPU time not idle, per node.",
                    (
                        Query(
                            '1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[5m]))',
                            "{{instance}}",
                        ),
                    ),
                    unit="percentunit",
                    width=8,
                ),
                Panel(
                    "Node memory available",
                    "Share of memory available to new work, per node.",
                    (
                        Query(
                            "node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes",
                            "{{instance}}",
                        ),
                    ),
                    unit="percentunit",
                    width=8,
                ),
                Panel(
                    "Node root filesystem free",
                    "Free share of each node's root filesystem (image and volume storage).",
                    (
                        Query(
                            'node_filesystem_avail_bytes{mountpoint="/"} / '
                            'node_filesystem_size_bytes{mountpoint="/"}',
                            "{{instance}}",
                        ),
                    ),
                    unit="percentunit",
                    width=8,
                ),
            ),
        ),
    ),
)

DASHBOARDS: dict[str, DashboardSpec] = {"pipeline": PIPELINE, "model": MODEL, "cluster": CLUSTER}


# ------------------------------------------------------------------------------------ building


def _thresholds(panel: Panel) -> dashboard_builders.ThresholdsConfig:
    base = dashboard_models.Threshold(value=None, color=panel.base_color)
    steps = panel.thresholds
    return (
        dashboard_builders.ThresholdsConfig()
        .mode(dashboard_models.ThresholdsMode.ABSOLUTE)
        .steps([base, *(dashboard_models.Threshold(value=v, color=c) for v, c in steps)])
    )


def _targets(panel: Panel, *, instant: bool) -> list[prometheus.Dataquery]:
    targets = []
    for ref, query in zip("ABCDEFGHIJ", panel.queries, strict=False):
        target = prometheus.Dataquery().expr(query.expr).legend_format(query.legend).ref_id(ref)
        targets.append(target.instant() if instant else target.range())
    return targets


def _build_panel(
    panel: Panel, panel_id: int, position: dashboard_models.GridPos
) -> timeseries.Panel | stat.Panel:
    if len(panel.queries) > 10:
        raise ValueError(f"panel {panel.title!r}: at most 10 queries (refIds A-J)")
    builder: timeseries.Panel | stat.Panel
    if panel.kind == "stat":
        builder = (
            stat.Panel()
            .text_mode(common.BigValueTextMode(panel.stat_text))
            .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]))
        )
    else:
        builder = timeseries.Panel().legend(
            common_builders.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
        if panel.thresholds:
            builder = builder.thresholds_style(
                common_builders.GraphThresholdsStyleConfig().mode(
                    common.GraphTresholdsStyleMode.DASHED
                )
            )
    builder = (
        builder.id(panel_id)
        .title(panel.title)
        .description(panel.description)
        .datasource(DATASOURCE)
        .unit(panel.unit)
        .grid_pos(position)
        .thresholds(_thresholds(panel))
    )
    for target in _targets(panel, instant=panel.kind == "stat"):
        builder = builder.with_target(target)
    return builder


def build(spec: DashboardSpec) -> dict[str, object]:
    """The Grafana dashboard JSON model of ``spec`` (stable ids and grid positions)."""
    board = (
        dashboard_builders.Dashboard(spec.title)
        .uid(spec.uid)
        .description(spec.description)
        .tags(list(spec.tags))
        .editable()
        .refresh("30s")
        .time("now-6h", "now")
        .timezone("browser")
        .with_variable(
            dashboard_builders.DatasourceVariable("datasource")
            .label("Prometheus")
            .type("prometheus")
        )
    )
    panel_id, y = 0, 0
    for row in spec.rows:
        panel_id += 1
        board = board.with_row(
            dashboard_builders.Row(row.title)
            .id(panel_id)
            .grid_pos(dashboard_models.GridPos(h=1, w=GRID_WIDTH, x=0, y=y))
        )
        y += 1
        x, line_height = 0, 0
        for panel in row.panels:
            if x + panel.width > GRID_WIDTH:
                x, y, line_height = 0, y + line_height, 0
            panel_id += 1
            position = dashboard_models.GridPos(h=panel.height, w=panel.width, x=x, y=y)
            board = board.with_panel(_build_panel(panel, panel_id, position))
            x, line_height = x + panel.width, max(line_height, panel.height)
        y += line_height
    model: dict[str, object] = json.loads(json.dumps(board.build(), cls=JSONEncoder))
    return model


def render(spec: DashboardSpec) -> str:
    """The exact text committed for ``spec``: sorted keys, two-space indent, trailing newline."""
    return json.dumps(build(spec), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def dashboard_path(name: str) -> Path:
    return DASHBOARD_DIR / f"{name}.json"


def stale_dashboards() -> list[str]:
    """Names whose committed JSON differs from what the code generates now."""
    return [
        name
        for name, spec in DASHBOARDS.items()
        if not dashboard_path(name).exists() or dashboard_path(name).read_text() != render(spec)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="stack-dashboards", description="Generate the Grafana dashboards' JSON."
    )
    parser.add_argument(
        "--check", action="store_true", help="only report stale JSON (exit 1), write nothing"
    )
    options = parser.parse_args(argv)
    if options.check:
        stale = stale_dashboards()
        for name in stale:
            print(f"{dashboard_path(name)} is stale: run {REGENERATE_COMMAND}", file=sys.stderr)
        return 1 if stale else 0
    DASHBOARD_DIR.mkdir(exist_ok=True)
    for name, spec in DASHBOARDS.items():
        dashboard_path(name).write_text(render(spec))
        print(f"wrote {dashboard_path(name)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
