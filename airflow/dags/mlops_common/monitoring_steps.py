"""The logic behind each ml_monitoring task (see `mlpipe.monitoring` for the measurements)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from mlops_common.settings import (
    PUSHGATEWAY_CONN_ID,
    get_connection,
    http_url,
    load_airflow_settings,
)

log = logging.getLogger(__name__)


def select_batch() -> str:
    """URI of the newest validated batch; skip the run when there is none yet."""
    from airflow.sdk.exceptions import AirflowSkipException

    from mlpipe.monitoring import MonitoringError, newest_validated_batch

    try:
        return newest_validated_batch(load_airflow_settings())
    except MonitoringError as error:
        raise AirflowSkipException(str(error)) from error


def score_batch(batch_uri: str) -> dict[str, Any]:
    """Champion quality and drift on `batch_uri`; the report JSON goes to the monitoring prefix."""
    from airflow.sdk.exceptions import AirflowSkipException

    from mlpipe.monitoring import score_batch as measure
    from mlpipe.monitoring import write_report
    from mlpipe.registry import RegistryError, alias_version

    settings = load_airflow_settings()
    if alias_version(settings, settings.champion_alias) is None:
        raise AirflowSkipException(
            f"{settings.model_name}@{settings.champion_alias} is not set: nothing to monitor yet."
        )
    try:
        report = measure(settings, batch_uri)
    except RegistryError as error:  # alias removed between the check and the load
        raise AirflowSkipException(str(error)) from error
    uri = write_report(settings, report)
    log.info(
        "v%s on %s: RMSE %.1f MAE %.1f R^2 %.4f, prediction PSI %.3f, drifted features %s -> %s",
        report.model_version,
        batch_uri,
        report.quality.rmse,
        report.quality.mae,
        report.quality.r2,
        report.prediction_psi,
        report.drifted_features or "none",
        uri,
    )
    return {"report_uri": uri, "model_version": report.model_version, "rows": report.rows_scored}


def publish_metrics(scored: Mapping[str, Any]) -> str:
    """Push the report's gauges to the Pushgateway; skip (logged) when none is configured."""
    from airflow.sdk.exceptions import AirflowSkipException

    from mlpipe.monitoring import push_report, report_from_json
    from mlpipe.storage import Storage

    connection = get_connection(PUSHGATEWAY_CONN_ID)
    if connection is None:
        log.info("no %r connection configured: metrics stay in the S3 report", PUSHGATEWAY_CONN_ID)
        raise AirflowSkipException(f"connection {PUSHGATEWAY_CONN_ID!r} is not configured")
    url = http_url(connection)
    # The connection's login/password are the gateway's basic auth, where it has one.
    auth = (connection.login, connection.password) if connection.password else None
    settings = load_airflow_settings()
    report = report_from_json(Storage.from_settings(settings).read_bytes(scored["report_uri"]))
    push_report(report, url, auth=auth)
    log.info("pushed ml_monitoring metrics of v%s to %s", report.model_version, url)
    return url
