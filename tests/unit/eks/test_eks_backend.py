"""EksBackend: connects to the recorded release (never deploys), and stops only its port-forwards."""

from __future__ import annotations

import base64
import contextlib
import json
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml
from eks_fakes import REPO, FakeCluster, fake_port_forward_kubectl

from stackcontract.settings import load_config
from stackctl.eks import release
from stackctl.eks.backend import EksBackend
from stackctl.eks.connect import ConnectError
from stackctl.eks.render import ObjectRef

RELEASED = [
    {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "mlops"},
        "spec": {"ports": [{"port": port}]},
    }
    for name, port in (("model-server", 8000), ("mlflow", 5000), ("airflow-api-server", 8080))
] + [
    {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "stack-config-abc", "namespace": "mlops"},
        "data": {"S3_BUCKET": "prod-bucket", "MODEL_NAME": "diamond-price"},
    }
]


class _Sts:
    def get_caller_identity(self) -> dict[str, Any]:
        return {"Arn": "arn:aws:sts::111122223333:assumed-role/dev/me", "Account": "111122223333"}


def backend(tmp_path: Path, cluster: FakeCluster) -> EksBackend:
    return EksBackend(
        load_config({"STACK_REPO_ROOT": str(REPO)}),
        state_dir=tmp_path / "state",
        kubectl=str(fake_port_forward_kubectl(tmp_path)),
        runner=cluster,
        client_factory=lambda *_a, **_kw: _Sts(),
    )


def released_cluster() -> FakeCluster:
    cluster = FakeCluster()
    record = release.new_record("v1.4.0", yaml.safe_dump_all(RELEASED))
    cluster.objects[ObjectRef("ConfigMap", "mlops", release.RELEASE_CONFIGMAP)] = (
        release.release_configmap(record, "mlops")
    )
    cluster.objects[ObjectRef("Secret", "mlops", "stack-secrets-x")] = {
        "kind": "Secret",
        "metadata": {"name": "stack-secrets-x", "namespace": "mlops"},
        "data": {"AIRFLOW_ADMIN_PASSWORD": base64.b64encode(b"pw").decode()},
    }
    return cluster


def test_up_forwards_the_released_services_and_down_stops_them(tmp_path: Path) -> None:
    cluster = released_cluster()
    eks = backend(tmp_path, cluster)
    endpoints = eks.up()
    try:
        assert endpoints.backend == "eks"
        assert endpoints.s3_bucket == "prod-bucket"
        assert endpoints.airflow_password.get_secret_value() == "pw"
        urls = {endpoints.model_server_url, endpoints.mlflow_url, endpoints.airflow_url}
        assert len(urls) == 3
        assert all(url.startswith("http://127.0.0.1:40") for url in urls)
        assert eks.endpoints() == endpoints
        assert not [c for c in cluster.calls if "apply" in c or "delete" in c], "up never deploys"
        pids = json.loads((tmp_path / "state" / "port-forwards.json").read_text())
        assert len(pids) == 3
        assert all(psutil.pid_exists(pid) for pid in pids)
    finally:
        eks.down()
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(pid).wait(timeout=10)  # raises TimeoutExpired if still running
        assert not psutil.pid_exists(pid)
    assert not (tmp_path / "state" / "port-forwards.json").exists()


def test_up_without_a_release_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ConnectError, match=r"No release is recorded.*deploy-eks -- --apply"):
        backend(tmp_path, FakeCluster()).up()


def test_purge_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConnectError, match="Refusing to purge"):
        backend(tmp_path, FakeCluster()).down(purge=True)


def test_collect_logs_writes_an_index(tmp_path: Path) -> None:
    cluster = released_cluster()
    cluster.objects[ObjectRef("Deployment", "mlops", "mlflow")] = {
        "kind": "Deployment",
        "metadata": {"name": "mlflow", "namespace": "mlops"},
    }
    index = backend(tmp_path, cluster).collect_logs(tmp_path / "logs")
    text = index.read_text()
    for name in ("events.txt", "pods.txt", "describe-pods.txt", "logs-mlflow.txt"):
        assert f"[{name}]" in text
        assert (tmp_path / "logs" / name).is_file()
    assert "logs output of deployment/mlflow" in (tmp_path / "logs" / "logs-mlflow.txt").read_text()
