"""Unit tests of mlpipe.monitoring: PSI maths, quality figures, report JSON and Prometheus gauges."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np
import pandas as pd
import pytest
from prometheus_client import generate_latest

from mlpipe import monitoring
from mlpipe.config import Settings
from mlpipe.schema import FEATURE_COLUMNS, TARGET
from mlpipe.storage import Storage


def _diamonds(rows: int, seed: int, carat_shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    carat = rng.gamma(2.0, 0.4, rows) + carat_shift
    return pd.DataFrame(
        {
            "carat": carat,
            "cut": rng.choice(["Fair", "Good", "Very Good", "Premium", "Ideal"], rows),
            "color": rng.choice(list("DEFGHIJ"), rows),
            "clarity": rng.choice(["I1", "SI2", "SI1", "VS2", "VS1"], rows),
            "depth": rng.normal(61.7, 1.4, rows),
            "table": rng.normal(57.4, 2.2, rows),
            "x": carat * 4 + 2,
            "y": carat * 4 + 2.05,
            "z": carat * 2.5 + 1,
            TARGET: carat * 4000 + rng.normal(0, 300, rows),
        }
    )


def test_psi_of_identical_samples_is_zero() -> None:
    values = np.random.default_rng(0).normal(size=5000)
    assert monitoring.numeric_psi(values, values) == pytest.approx(0.0, abs=1e-12)


def test_psi_of_same_distribution_is_stable_and_of_a_shift_is_significant() -> None:
    rng = np.random.default_rng(1)
    reference = rng.normal(0, 1, 20_000)
    same = rng.normal(0, 1, 20_000)
    shifted = rng.normal(1.0, 1, 20_000)
    assert monitoring.drift_level(monitoring.numeric_psi(reference, same)) == "stable"
    assert monitoring.drift_level(monitoring.numeric_psi(reference, shifted)) == "significant"


def test_psi_matches_the_textbook_formula_on_hand_made_bins() -> None:
    # Reference 0..99 in 2 quantile bins (<50, >=50); current puts 80% in the low bin.
    reference = np.arange(100, dtype=float)
    current = np.array([10.0] * 80 + [90.0] * 20)
    expected = (0.8 - 0.5) * math.log(0.8 / 0.5) + (0.2 - 0.5) * math.log(0.2 / 0.5)
    assert monitoring.numeric_psi(reference, current, bins=2) == pytest.approx(expected)


def test_values_outside_the_reference_range_still_count() -> None:
    psi = monitoring.numeric_psi(np.linspace(0, 1, 1000), np.full(1000, 50.0))
    assert math.isfinite(psi)
    assert monitoring.drift_level(psi) == "significant"


def test_constant_reference_collapses_bins_instead_of_failing() -> None:
    assert monitoring.numeric_psi(np.ones(100), np.ones(50)) == pytest.approx(0.0)
    assert monitoring.numeric_psi(np.ones(100), np.full(50, 2.0)) > monitoring.PSI_SIGNIFICANT


def test_empty_or_all_nan_input_is_a_clear_error() -> None:
    with pytest.raises(monitoring.MonitoringError, match="reference data has no finite values"):
        monitoring.numeric_psi([math.nan], [1.0])
    with pytest.raises(monitoring.MonitoringError, match="current data"):
        monitoring.numeric_psi([1.0], [])
    with pytest.raises(monitoring.MonitoringError, match="bins must be >= 2"):
        monitoring.numeric_psi([1.0], [1.0], bins=1)


def test_categorical_psi_counts_unseen_categories() -> None:
    assert monitoring.categorical_psi(["a", "b"] * 50, ["b", "a"] * 50) == pytest.approx(0.0)
    assert monitoring.categorical_psi(["a"] * 100, ["a"] * 50 + ["new"] * 50) > 0.25
    with pytest.raises(monitoring.MonitoringError, match="non-missing"):
        monitoring.categorical_psi([None], ["a"])


def test_feature_psi_covers_every_feature_and_flags_the_shifted_one() -> None:
    reference = _diamonds(4000, seed=2)
    current = _diamonds(2000, seed=3).assign(carat=lambda frame: frame["carat"] + 1.5)
    psi = monitoring.feature_psi(reference, current)
    assert set(psi) == set(FEATURE_COLUMNS)
    assert psi["carat"] > monitoring.PSI_SIGNIFICANT
    assert psi["depth"] < monitoring.PSI_MODERATE
    assert psi["cut"] < monitoring.PSI_MODERATE


def test_feature_psi_names_missing_columns() -> None:
    reference = _diamonds(100, seed=4)
    with pytest.raises(monitoring.MonitoringError, match=r"current data lacks .*'carat'"):
        monitoring.feature_psi(reference, reference.drop(columns=["carat"]))


def test_regression_quality_agrees_with_scikit_learn() -> None:
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    rng = np.random.default_rng(5)
    truth = rng.normal(3000, 1000, 500)
    pred = truth + rng.normal(0, 200, 500)
    quality = monitoring.regression_quality(truth, pred)
    assert quality.rmse == pytest.approx(math.sqrt(mean_squared_error(truth, pred)))
    assert quality.mae == pytest.approx(mean_absolute_error(truth, pred))
    assert quality.r2 == pytest.approx(r2_score(truth, pred))


def test_regression_quality_rejects_mismatched_or_empty_input() -> None:
    with pytest.raises(monitoring.MonitoringError, match="2 true values but 1 predictions"):
        monitoring.regression_quality([1.0, 2.0], [1.0])
    with pytest.raises(monitoring.MonitoringError, match="empty batch"):
        monitoring.regression_quality([], [])
    assert monitoring.regression_quality([5.0, 5.0], [5.0, 5.0]).r2 == 0.0


@pytest.fixture
def report() -> monitoring.MonitoringReport:
    reference = _diamonds(3000, seed=6)
    current = _diamonds(1000, seed=7, carat_shift=0.8)
    return monitoring.build_report(
        model_name="diamond-price",
        model_version="3",
        batch="s3://mlops/validated/diamonds_2026-01-12.parquet",
        reference_name="s3://mlops/features/abc.parquet",
        reference=reference,
        current=current,
        reference_predictions=reference[TARGET].to_numpy() * 0.98,
        current_predictions=current[TARGET].to_numpy() * 1.02,
        target=TARGET,
        now=1_780_000_000.0,
    )


def test_report_measures_quality_and_drift(report: monitoring.MonitoringReport) -> None:
    assert report.rows_scored == 1000
    assert report.reference_rows == 3000
    assert 0.9 < report.quality.r2 < 1.0
    assert "carat" in report.drifted_features
    assert report.prediction_psi > monitoring.PSI_SIGNIFICANT


def test_report_needs_the_target(report: monitoring.MonitoringReport) -> None:
    frame = _diamonds(10, seed=8)
    with pytest.raises(monitoring.MonitoringError, match="target column 'price'"):
        monitoring.build_report(
            model_name="m",
            model_version="1",
            batch="b",
            reference_name="r",
            reference=frame,
            current=frame.drop(columns=[TARGET]),
            reference_predictions=[1.0] * 10,
            current_predictions=[1.0] * 10,
            target=TARGET,
        )


def test_report_json_round_trips_and_shows_drift_levels(
    report: monitoring.MonitoringReport,
) -> None:
    text = monitoring.report_to_json(report)
    assert '"carat": "significant"' in text
    assert monitoring.report_from_json(text) == report
    with pytest.raises(monitoring.MonitoringError, match="JSON object"):
        monitoring.report_from_json("[1, 2]")


def test_report_key_is_one_file_per_version_and_batch(report: monitoring.MonitoringReport) -> None:
    assert monitoring.report_key("monitoring/", report) == "monitoring/v3/diamonds_2026-01-12.json"


def test_registry_exposes_exactly_the_contract_metric_names(
    report: monitoring.MonitoringReport,
) -> None:
    exposition = generate_latest(monitoring.metrics_registry(report)).decode()
    names = {
        line.split("{")[0].split(" ")[0]
        for line in exposition.splitlines()
        if line and not line.startswith("#")
    }
    assert names == {
        "ml_monitoring_rmse",
        "ml_monitoring_mae",
        "ml_monitoring_r2",
        "ml_monitoring_feature_psi",
        "ml_monitoring_prediction_psi",
        "ml_monitoring_rows_scored",
        "ml_monitoring_last_success_timestamp_seconds",
    }
    assert f'ml_monitoring_rmse{{model_version="3"}} {report.quality.rmse!r}' in exposition
    assert 'ml_monitoring_feature_psi{feature="carat"}' in exposition
    assert "ml_monitoring_last_success_timestamp_seconds 1.78e+09" in exposition


class _RecordingPushgateway(BaseHTTPRequestHandler):
    received: list[tuple[str, str, bytes]] = []  # noqa: RUF012 - shared by the handler instances

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(("PUT", self.path, body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # silence test output
        pass


@pytest.fixture
def pushgateway() -> Iterator[str]:
    _RecordingPushgateway.received = []
    server = HTTPServer(("127.0.0.1", 0), _RecordingPushgateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_push_report_puts_the_gauges_under_the_ml_monitoring_job(
    report: monitoring.MonitoringReport, pushgateway: str
) -> None:
    monitoring.push_report(report, pushgateway)
    [(method, path, body)] = _RecordingPushgateway.received
    assert (method, path) == ("PUT", "/metrics/job/ml_monitoring")
    assert b"ml_monitoring_prediction_psi" in body


@pytest.fixture
def s3_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Settings, Storage]]:
    """Settings + Storage on an in-process moto S3 with an empty bucket."""
    from moto import mock_aws

    from mlpipe.config import load_settings

    for name in ("S3_ENDPOINT_URL", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        settings = load_settings(env={"S3_BUCKET": "monitoring-unit", "S3_REGION": "us-east-1"})
        storage = Storage.from_settings(settings)
        storage.client.create_bucket(Bucket="monitoring-unit")
        yield settings, storage


def test_newest_batch_and_reference_without_a_champion_training_table(
    s3_settings: tuple[Settings, Storage],
) -> None:
    settings, storage = s3_settings
    with pytest.raises(monitoring.MonitoringError, match="no validated batch"):
        monitoring.newest_validated_batch(settings, storage)
    old, new = _diamonds(300, seed=10), _diamonds(200, seed=11)
    for day, frame in (("2026-01-05", old), ("2026-01-12", new)):
        storage.write_parquet(settings.s3_uri("validated", f"diamonds_{day}.parquet"), frame)
    newest = monitoring.newest_validated_batch(settings, storage)
    assert newest == "s3://monitoring-unit/validated/diamonds_2026-01-12.parquet"

    reference, name = monitoring.reference_data(settings, storage, None, newest)
    assert len(reference) == len(old)
    assert name.endswith("without diamonds_2026-01-12.parquet")

    only = settings.s3_uri("validated", "diamonds_2026-01-05.parquet")
    storage.delete(newest)
    itself, name = monitoring.reference_data(settings, storage, None, only)
    assert (len(itself), name) == (len(old), only)


def test_write_report_puts_json_under_the_monitoring_prefix(
    s3_settings: tuple[Settings, Storage], report: monitoring.MonitoringReport
) -> None:
    settings, storage = s3_settings
    uri = monitoring.write_report(settings, report, storage)
    assert uri == "s3://monitoring-unit/monitoring/v3/diamonds_2026-01-12.json"
    assert monitoring.report_from_json(storage.read_bytes(uri)) == report
