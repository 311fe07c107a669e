"""Model monitoring: quality on the newest batch, drift (PSI) against the training data, publishing.

The `ml_monitoring` DAG scores the newest validated batch with the champion and calls this module to
turn (reference data, newest batch, predictions) into a `MonitoringReport`, which is written as JSON
to `s3://BUCKET/monitoring/` and, when a Pushgateway is configured, pushed as Prometheus gauges whose
names are fixed by the team contract (dashboards and alert rules query exactly these names).

Public API: `numeric_psi`, `categorical_psi`, `feature_psi`, `drift_level`, `regression_quality`,
`build_report` -> `MonitoringReport`, `report_to_json` / `report_from_json` / `report_key`,
`metrics_registry` / `push_report` (Pushgateway), and the S3 + MLflow glue the DAG calls:
`newest_validated_batch`, `reference_data`, `score_batch`, `write_report`.

PSI (population stability index) = sum over bins of (a - e) * ln(a / e), where e and a are the
shares of the reference ("expected") and current ("actual") data in each bin. Common reading:
< 0.1 stable, 0.1-0.25 moderate shift, > 0.25 significant shift.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from prometheus_client import CollectorRegistry, Gauge, push_to_gateway
from pydantic import BaseModel, ConfigDict, Field

from mlpipe.config import Settings
from mlpipe.data import BATCH_SUFFIX, load_validated
from mlpipe.evaluate import regression_metrics
from mlpipe.features import feature_frame
from mlpipe.schema import FEATURE_COLUMNS, TARGET
from mlpipe.storage import Storage, uri_name
from stackcontract import metrics as metric_names

PUSHGATEWAY_JOB: Final = metric_names.MONITORING_PUSHGATEWAY_JOB
DEFAULT_BINS: Final = 10
# Floor for a bin share so that an empty bin gives a large but finite PSI instead of infinity.
MIN_BIN_SHARE: Final = 1e-4
PSI_MODERATE: Final = 0.1
PSI_SIGNIFICANT: Final = 0.25

DriftLevel = Literal["stable", "moderate", "significant"]


class MonitoringError(ValueError):
    """Monitoring inputs that cannot be compared (empty data, missing columns, length mismatch)."""


class QualityMetrics(BaseModel):
    """Regression quality of the champion on the newest batch."""

    model_config = ConfigDict(frozen=True)

    rmse: float
    mae: float
    r2: float


class MonitoringReport(BaseModel):
    """Everything one monitoring run measured; serialised to JSON and to Prometheus gauges."""

    model_config = ConfigDict(frozen=True)

    model_name: str
    model_version: str
    batch: str = Field(description="S3 URI of the scored batch")
    reference: str = Field(description="what the drift was measured against (S3 URI or run id)")
    rows_scored: int
    reference_rows: int
    quality: QualityMetrics
    feature_psi: dict[str, float]
    prediction_psi: float
    generated_at: float = Field(description="unix time (seconds) when the report was built")

    @property
    def drifted_features(self) -> list[str]:
        """Features whose PSI says the distribution shifted significantly."""
        return [name for name, psi in self.feature_psi.items() if drift_level(psi) == "significant"]


def drift_level(psi: float) -> DriftLevel:
    """Classify a PSI value with the usual 0.1 / 0.25 thresholds."""
    if psi < PSI_MODERATE:
        return "stable"
    if psi < PSI_SIGNIFICANT:
        return "moderate"
    return "significant"


def _psi_from_shares(expected_shares: npt.ArrayLike, actual_shares: npt.ArrayLike) -> float:
    expected = np.clip(np.asarray(expected_shares, dtype=np.float64), MIN_BIN_SHARE, None)
    actual = np.clip(np.asarray(actual_shares, dtype=np.float64), MIN_BIN_SHARE, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def _as_clean_float_array(
    values: Iterable[float] | pd.Series, what: str
) -> npt.NDArray[np.float64]:
    raw = values.to_numpy(dtype=float) if isinstance(values, pd.Series) else list(values)
    array: npt.NDArray[np.float64] = np.asarray(raw, dtype=np.float64)
    array = array[np.isfinite(array)]
    if array.size == 0:
        raise MonitoringError(
            f"{what} has no finite values; PSI needs at least one value on each side."
        )
    return array


def numeric_psi(
    reference: Iterable[float] | pd.Series,
    current: Iterable[float] | pd.Series,
    *,
    bins: int = DEFAULT_BINS,
) -> float:
    """PSI of a numeric variable, with quantile bins taken from the reference data.

    The outer bins are open-ended so values outside the reference range still land in a bin.
    Repeated quantiles (a near-constant reference) collapse into fewer bins instead of empty ones.
    """
    if bins < 2:
        raise MonitoringError(f"bins must be >= 2, got {bins}.")
    ref = _as_clean_float_array(reference, "reference data")
    cur = _as_clean_float_array(current, "current data")
    inner_edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
    # Right-closed bins (edge[i-1], edge[i]]: a constant reference keeps a bin of its own value.
    ref_counts = np.bincount(np.searchsorted(inner_edges, ref), minlength=inner_edges.size + 1)
    cur_counts = np.bincount(np.searchsorted(inner_edges, cur), minlength=inner_edges.size + 1)
    return _psi_from_shares(ref_counts / ref.size, cur_counts / cur.size)


def categorical_psi(reference: Iterable[object], current: Iterable[object]) -> float:
    """PSI of a categorical variable over the union of categories seen on either side."""
    ref = pd.Series(list(reference), dtype="object").dropna()
    cur = pd.Series(list(current), dtype="object").dropna()
    if ref.empty or cur.empty:
        raise MonitoringError("categorical PSI needs at least one non-missing value on each side.")
    ref_shares = ref.astype(str).value_counts(normalize=True)
    cur_shares = cur.astype(str).value_counts(normalize=True)
    categories = sorted(set(ref_shares.index) | set(cur_shares.index))
    expected = ref_shares.reindex(categories, fill_value=0.0).to_numpy(dtype=float)
    actual = cur_shares.reindex(categories, fill_value=0.0).to_numpy(dtype=float)
    return _psi_from_shares(expected, actual)


def feature_psi(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    features: Sequence[str] = FEATURE_COLUMNS,
    *,
    bins: int = DEFAULT_BINS,
) -> dict[str, float]:
    """PSI per feature: quantile bins for numeric columns, category shares for the others."""
    for name, frame in (("reference", reference), ("current", current)):
        missing = [column for column in features if column not in frame.columns]
        if missing:
            raise MonitoringError(
                f"{name} data lacks feature column(s) {missing}; both sides need {list(features)}."
            )
    result: dict[str, float] = {}
    for column in features:
        if pd.api.types.is_numeric_dtype(reference[column]) and pd.api.types.is_numeric_dtype(
            current[column]
        ):
            result[column] = numeric_psi(reference[column], current[column], bins=bins)
        else:
            result[column] = categorical_psi(reference[column], current[column])
    return result


def regression_quality(
    y_true: Sequence[float] | pd.Series, y_pred: Sequence[float] | npt.NDArray[np.float64]
) -> QualityMetrics:
    """`evaluate.regression_metrics` of the batch (R^2 is 0.0 when the truth is constant)."""
    truth = np.asarray(y_true, dtype=float)
    pred = np.asarray(y_pred, dtype=float)
    if truth.shape != pred.shape:
        raise MonitoringError(
            f"{truth.size} true values but {pred.size} predictions; score every row exactly once."
        )
    if truth.size == 0:
        raise MonitoringError("cannot measure quality on an empty batch.")
    return QualityMetrics(**regression_metrics(truth, pred).model_dump(exclude={"n_rows"}))


def build_report(
    *,
    model_name: str,
    model_version: str,
    batch: str,
    reference_name: str,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    reference_predictions: Sequence[float] | npt.NDArray[np.float64],
    current_predictions: Sequence[float] | npt.NDArray[np.float64],
    target: str,
    now: float | None = None,
) -> MonitoringReport:
    """Measure quality on `current` and drift of features and predictions against `reference`."""
    if target not in current.columns:
        raise MonitoringError(f"the scored batch lacks the target column {target!r}.")
    return MonitoringReport(
        model_name=model_name,
        model_version=model_version,
        batch=batch,
        reference=reference_name,
        rows_scored=len(current),
        reference_rows=len(reference),
        quality=regression_quality(current[target], current_predictions),
        feature_psi=feature_psi(reference, current),
        prediction_psi=numeric_psi(reference_predictions, current_predictions),
        generated_at=time.time() if now is None else now,
    )


def report_to_json(report: MonitoringReport) -> str:
    """Stable, human-readable JSON (sorted keys) with the drift level of every PSI figure."""
    payload = report.model_dump(mode="json")
    payload["drift"] = {
        "features": {name: drift_level(psi) for name, psi in report.feature_psi.items()},
        "prediction": drift_level(report.prediction_psi),
    }
    return json.dumps(payload, indent=2, sort_keys=True)


def report_from_json(text: str | bytes) -> MonitoringReport:
    """Inverse of `report_to_json` (the derived `drift` block is ignored)."""
    payload = json.loads(text)
    if not isinstance(payload, Mapping):
        raise MonitoringError("a monitoring report must be a JSON object.")
    return MonitoringReport.model_validate({k: v for k, v in payload.items() if k != "drift"})


def report_key(prefix: str, report: MonitoringReport) -> str:
    """Object key of a report: one file per (model version, batch), so a re-run overwrites it."""
    batch_name = report.batch.rstrip("/").rsplit("/", 1)[-1]
    for suffix in (".parquet", ".csv.gz", ".csv"):
        batch_name = batch_name.removesuffix(suffix)
    return f"{prefix.strip('/')}/v{report.model_version}/{batch_name}.json"


def metrics_registry(report: MonitoringReport) -> CollectorRegistry:
    """The contract's `ml_monitoring_*` gauges, filled from one report, in a fresh registry."""
    registry = CollectorRegistry()
    version = {"model_version": report.model_version}
    for name, value, help_text in (
        (
            metric_names.MONITORING_RMSE,
            report.quality.rmse,
            "RMSE of the champion on the newest batch",
        ),
        (
            metric_names.MONITORING_MAE,
            report.quality.mae,
            "MAE of the champion on the newest batch",
        ),
        (metric_names.MONITORING_R2, report.quality.r2, "R^2 of the champion on the newest batch"),
    ):
        Gauge(name, help_text, ["model_version"], registry=registry).labels(**version).set(value)
    psi = Gauge(
        metric_names.MONITORING_FEATURE_PSI,
        "PSI of each feature, newest batch vs the training data",
        ["feature"],
        registry=registry,
    )
    for feature, value in report.feature_psi.items():
        psi.labels(feature=feature).set(value)
    Gauge(
        metric_names.MONITORING_PREDICTION_PSI,
        "PSI of the predictions, newest batch vs the training data",
        registry=registry,
    ).set(report.prediction_psi)
    Gauge(
        metric_names.MONITORING_ROWS_SCORED, "Rows scored in the newest batch", registry=registry
    ).set(report.rows_scored)
    Gauge(
        metric_names.MONITORING_LAST_SUCCESS,
        "Unix time of the last successful monitoring run",
        registry=registry,
    ).set(report.generated_at)
    return registry


def push_report(
    report: MonitoringReport,
    gateway_url: str,
    *,
    timeout: float = 10.0,
    auth: tuple[str, str] | None = None,
) -> None:
    """Push the report's gauges to a Pushgateway under job="ml_monitoring" (replaces the group),
    with basic ``auth`` (user, password) when the gateway needs it."""
    from prometheus_client.exposition import basic_auth_handler, default_handler

    def handler(url: str, method: str, timeout: float | None, headers: Any, data: bytes) -> Any:
        if auth is None:
            return default_handler(url, method, timeout, headers, data)
        return basic_auth_handler(url, method, timeout, headers, data, auth[0], auth[1])

    push_to_gateway(
        gateway_url,
        job=PUSHGATEWAY_JOB,
        registry=metrics_registry(report),
        timeout=timeout,
        handler=handler,
    )


# -- S3 + MLflow orchestration (called by the ml_monitoring DAG tasks) -----------------------------
FEATURES_URI_TAG: Final = "features_uri"
MAX_REFERENCE_ROWS: Final = 20_000


def newest_validated_batch(settings: Settings, storage: Storage | None = None) -> str:
    """URI of the newest validated batch (batch names sort by date)."""
    storage = storage or Storage.from_settings(settings)
    prefix = settings.s3_uri(settings.s3_prefix_validated)
    uris = storage.list_uris(prefix, ".parquet")
    if not uris:
        raise MonitoringError(f"no validated batch under {prefix}; run ml_training first.")
    return uris[-1]


def _batch_file_name(validated_uri: str) -> str:
    """`validated/diamonds_2026-01-12.parquet` -> `diamonds_2026-01-12.csv.gz` (landing name)."""
    return f"{uri_name(validated_uri).removesuffix('.parquet')}{BATCH_SUFFIX}"


def reference_data(
    settings: Settings, storage: Storage, champion_run_id: str | None, batch_uri: str
) -> tuple[pd.DataFrame, str]:
    """The champion's training table (run tag `features_uri`), else every other validated batch."""
    if champion_run_id is not None:
        from mlpipe.registry import mlflow_client

        tags: Mapping[str, str] = mlflow_client(settings).get_run(champion_run_id).data.tags
        if tags.get(FEATURES_URI_TAG) and storage.exists(tags[FEATURES_URI_TAG]):
            return storage.read_parquet(tags[FEATURES_URI_TAG]), tags[FEATURES_URI_TAG]
    others = load_validated(settings, storage, exclude=[_batch_file_name(batch_uri)])
    if others.empty:
        # Only one batch exists: compare it with itself (PSI 0) rather than fail the run.
        return storage.read_parquet(batch_uri), batch_uri
    return others, f"{settings.s3_uri(settings.s3_prefix_validated)} without {uri_name(batch_uri)}"


def score_batch(
    settings: Settings, batch_uri: str, storage: Storage | None = None
) -> MonitoringReport:
    """Score `batch_uri` with the champion; quality and drift against its training data."""
    from mlpipe.registry import load_alias

    storage = storage or Storage.from_settings(settings)
    model, champion = load_alias(settings, settings.champion_alias)
    current = storage.read_parquet(batch_uri)
    reference, reference_name = reference_data(settings, storage, champion.run_id, batch_uri)
    if len(reference) > MAX_REFERENCE_ROWS:  # quantiles of a 20k sample are plenty for PSI
        reference = reference.sample(MAX_REFERENCE_ROWS, random_state=0)
    return build_report(
        model_name=champion.name,
        model_version=champion.version,
        batch=batch_uri,
        reference_name=reference_name,
        reference=reference,
        current=current,
        reference_predictions=np.asarray(model.predict(feature_frame(reference)), dtype=float),
        current_predictions=np.asarray(model.predict(feature_frame(current)), dtype=float),
        target=TARGET,
    )


def write_report(
    settings: Settings, report: MonitoringReport, storage: Storage | None = None
) -> str:
    """Write the report JSON to `s3://BUCKET/<monitoring prefix>/v<version>/<batch>.json`."""
    storage = storage or Storage.from_settings(settings)
    uri = f"s3://{settings.s3_bucket}/{report_key(settings.s3_prefix_monitoring, report)}"
    storage.write_bytes(uri, (report_to_json(report) + "\n").encode())
    return uri
