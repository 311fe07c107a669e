"""Observability as code: `dashboards` (Grafana JSON generator, `stack-dashboards`), `metric_catalog`
(which metric names exist and which the dashboards and alerts use), `exposition` (series from a
/metrics text) and `record_exporter_metrics` (`stack-record-metrics`)."""

from pathlib import Path

# The package sits in platform/observability/src/ and manages the files of platform/observability.
OBSERVABILITY_DIR = Path(__file__).resolve().parents[2]
EXPORTED_METRICS_DIR = OBSERVABILITY_DIR / "exported-metrics"
