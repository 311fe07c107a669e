"""ml_monitoring: score the newest validated batch with the champion; publish quality and drift.

Module level stays cheap: mlpipe is imported inside the tasks, connections are read at run time.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import dag, task
from mlops_common.dag_defaults import default_args
from mlops_common.resources import pod_resources

DOC_MD = """
# ml_monitoring

Daily health check of the **champion** diamond price model.

| step | what it does |
| --- | --- |
| `select_batch` | the newest `validated/` batch (skipped when nothing is validated yet) |
| `score_batch` | scores it with `@champion` (skipped when there is no champion): rolling RMSE / MAE / R^2 on that batch, PSI of every feature and of the predictions against the champion's training data; writes the report to `s3://BUCKET/monitoring/v<version>/<batch>.json` |
| `publish_metrics` | pushes `ml_monitoring_*` gauges to the Pushgateway (`job="ml_monitoring"`) when the `mlops_pushgateway` connection exists, else skips with a log line |

PSI reading: < 0.1 stable, 0.1-0.25 moderate, > 0.25 significant shift. The figures feed the
Grafana model dashboard and the drift alert rules (metric names are fixed by the team contract).
"""

DEFAULT_ARGS = default_args(execution_timeout=timedelta(minutes=20))


@dag(
    dag_id="ml_monitoring",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 5, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["ml", "monitoring", "diamonds"],
    doc_md=DOC_MD,
)
def ml_monitoring() -> None:
    @task
    def select_batch() -> str:
        """URI of the newest validated batch."""
        from mlops_common import monitoring_steps

        return monitoring_steps.select_batch()

    @task(executor_config=pod_resources(cpu="1", memory="2Gi"))
    def score_batch(batch_uri: str) -> dict[str, Any]:
        """Quality and drift of the champion on the batch; report JSON to S3."""
        from mlops_common import monitoring_steps

        return monitoring_steps.score_batch(batch_uri)

    @task
    def publish_metrics(scored: dict[str, Any]) -> str:
        """Push the gauges to the Pushgateway when one is configured."""
        from mlops_common import monitoring_steps

        return monitoring_steps.publish_metrics(scored)

    publish_metrics(score_batch(select_batch()))


ml_monitoring()
