"""Metric names the exporters (model server, monitoring job) publish and the dashboards, alert
rules and tests query. Prometheus-client adds `_total`/`_bucket`/... suffixes to the exposed
series; the names here are those given to the client."""

from __future__ import annotations

from typing import Final

# Model server (mlpipe.serve)
MODEL_SERVER_REQUESTS: Final = "model_server_requests_total"
MODEL_SERVER_REQUEST_DURATION: Final = "model_server_request_duration_seconds"
MODEL_SERVER_PREDICTED_ROWS: Final = "model_server_predicted_rows"
MODEL_SERVER_INVALID_PAYLOADS: Final = "model_server_invalid_payloads"
MODEL_SERVER_MODEL_INFO: Final = "model_server_model_info"
MODEL_SERVER_MODEL_RELOADS: Final = "model_server_model_reloads"

# Monitoring job (ml_monitoring -> Pushgateway, job label below)
MONITORING_PUSHGATEWAY_JOB: Final = "ml_monitoring"
MONITORING_RMSE: Final = "ml_monitoring_rmse"
MONITORING_MAE: Final = "ml_monitoring_mae"
MONITORING_R2: Final = "ml_monitoring_r2"
MONITORING_FEATURE_PSI: Final = "ml_monitoring_feature_psi"
MONITORING_PREDICTION_PSI: Final = "ml_monitoring_prediction_psi"
MONITORING_ROWS_SCORED: Final = "ml_monitoring_rows_scored"
MONITORING_LAST_SUCCESS: Final = "ml_monitoring_last_success_timestamp_seconds"

MONITORING_GAUGES: Final = (
    MONITORING_RMSE,
    MONITORING_MAE,
    MONITORING_R2,
    MONITORING_FEATURE_PSI,
    MONITORING_PREDICTION_PSI,
    MONITORING_ROWS_SCORED,
    MONITORING_LAST_SUCCESS,
)
