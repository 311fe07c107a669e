"""ml_training: ingest the next diamonds batch, retrain, register, promote if better, reload the server.

Only cheap imports at module level: mlpipe (pandas, scikit-learn, MLflow) is imported inside the tasks,
and connections/variables are read at run time by `mlops_common.settings`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import Param, dag, task
from mlops_common.dag_defaults import default_args
from mlops_common.resources import pod_resources

DOC_MD = """
# ml_training

Weekly retraining of the **diamond price** model (Airflow 3, Task SDK). Schedule `@weekly`
because the data arrives as weekly dated batches in `landing/` (no upstream DAG produces them, so
there is no asset to schedule on); trigger it by hand (with conf) to catch up or retrain.

| step | what it does |
| --- | --- |
| `ingest` | picks the batch (dag-run conf `batch`, else the oldest `landing/` batch not yet in `raw/`) and byte-copies it to `raw/`; skips the run when nothing is pending |
| `validate` | cleans `raw/<batch>` into `validated/<batch>.parquet`, bad rows into `quarantine/<batch>.csv` + `.report.json`; a batch missing columns or above `MAX_QUARANTINE_FRACTION` fails without retries and writes nothing to `validated/` |
| `build_features` | all validated batches, deduplicated, as one model-ready table `features/training_<fingerprint>.parquet` (content-addressed: re-runs write nothing new) |
| `train` | fits the model (dag-run conf `model_params` overrides hyper-parameters) and logs an MLflow run; an identical earlier run (same data fingerprint and params) is reused |
| `evaluate` | held-out RMSE / MAE / R^2 and the price-per-carat baseline, logged to the run |
| `register` | registers the run's model as a version of `MODEL_NAME` with alias `@challenger` (idempotent) |
| `promote` | moves `@champion` to the challenger only if its RMSE beats the champion's by `PROMOTION_MIN_RELATIVE_IMPROVEMENT`; a worse model is never promoted |
| `notify_model_server` | `POST {MLOPS_MODEL_SERVER}/reload`; skipped (logged) when the connection is absent |

Trigger with conf, e.g. `{"batch": "diamonds_2026-01-12.csv.gz", "model_params": {"max_iter": 50}}`.

Connections: `mlops_s3`, `mlops_mlflow`, `mlops_model_server` (optional); variables: one per key of
`platform/config/stack.env`. Tasks pass S3 URIs and MLflow ids through XCom, never data frames.
Transient S3/MLflow errors are retried (3 tries, exponential backoff); bad data fails at once.
Re-running a run (or any task) converges: the run's batch is recorded in `raw/_airflow_runs/`, the
features file is content-addressed, training reuses the identical MLflow run and registration
returns the identical version. `build_features` and `train` carry KubernetesExecutor pod resources.
"""

DEFAULT_ARGS = default_args(execution_timeout=timedelta(minutes=30))


@dag(
    dag_id="ml_training",
    schedule="@weekly",
    start_date=pendulum.datetime(2026, 1, 5, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["ml", "training", "diamonds"],
    doc_md=DOC_MD,
    params={
        "batch": Param(
            None,
            type=["null", "string"],
            description="landing batch to ingest, e.g. diamonds_2026-01-12.csv.gz (default: oldest pending)",
        ),
        "model_params": Param(
            {}, type="object", description="estimator hyper-parameter overrides for this run"
        ),
    },
)
def ml_training() -> None:
    @task
    def ingest(params: dict[str, Any] | None = None, run_id: str | None = None) -> dict[str, str]:
        """Pick this run's batch and byte-copy it landing/ -> raw/ (same batch on every retry)."""
        from mlops_common import steps

        return steps.ingest(requested=(params or {}).get("batch"), run_id=run_id or "manual")

    @task
    def validate(ingested: dict[str, str]) -> dict[str, Any]:
        """Clean raw/<batch> into validated/ and quarantine/; bad batches fail without retry."""
        from mlops_common import steps

        return steps.validate(ingested["batch"])

    @task(executor_config=pod_resources(cpu="1", memory="2Gi"))
    def build_features(validated: dict[str, Any]) -> dict[str, Any]:
        """All validated batches as one content-addressed, model-ready table in features/."""
        from mlops_common import steps

        return steps.build_features(validated["batch"])

    @task(executor_config=pod_resources(cpu="2", memory="3Gi"))
    def train(
        features: dict[str, Any], params: dict[str, Any] | None = None, run_id: str | None = None
    ) -> str:
        """Fit the model on the features table; log (or reuse) the MLflow run; return its id."""
        from mlops_common import steps

        model_params = (params or {}).get("model_params") or {}
        return steps.train(features, model_params=model_params, airflow_run_id=run_id or "manual")

    @task
    def evaluate(mlflow_run_id: str) -> dict[str, Any]:
        """Held-out metrics of the run's model (and the baseline), logged to the run."""
        from mlops_common import steps

        return steps.evaluate(mlflow_run_id)

    @task
    def register(evaluated: dict[str, Any]) -> dict[str, Any]:
        """Register the run's model (idempotent) and point @challenger at it."""
        from mlops_common import steps

        return steps.register(evaluated["mlflow_run_id"])

    @task
    def promote(registered: dict[str, Any]) -> dict[str, Any]:
        """Flip @champion to the challenger only if it is better by the configured margin."""
        from mlops_common import steps

        return steps.promote(registered)

    @task(retries=3)
    def notify_model_server(promotion: dict[str, Any]) -> dict[str, Any] | None:
        """POST /reload to the model server; a clean skip when no server connection exists."""
        from mlops_common import steps

        return steps.notify_model_server(promotion)

    ingested = ingest()
    validated = validate(ingested)
    features = build_features(validated)
    evaluated = evaluate(train(features))
    notify_model_server(promote(register(evaluated)))


ml_training()
