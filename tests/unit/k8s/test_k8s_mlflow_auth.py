"""MLflow's basic-auth app on Kubernetes: the server reads the declared mlflow-auth.ini from a
ConfigMap and its admin password from the Secret; Prometheus scrapes /metrics as that user and the
model server and Airflow's tasks log in as it."""

from __future__ import annotations

import copy
import posixpath
from typing import Any

import pytest
import yaml
from k8s_helpers import REPO, find, render_task_pod

Objects = list[dict[str, Any]]
OVERLAYS = ("kind", "eks")
DECLARED_INI = REPO / "platform" / "config" / "services" / "mlflow-auth.ini"


def container(objects: Objects, kind: str, name: str) -> dict[str, Any]:
    workload = find(objects, kind, name)
    first: dict[str, Any] = workload["spec"]["template"]["spec"]["containers"][0]
    return first


def secret_env(spec: dict[str, Any]) -> dict[str, str]:
    """Env var -> key of Secret stack-secrets it is read from."""
    return {
        entry["name"]: entry["valueFrom"]["secretKeyRef"]["key"]
        for entry in spec.get("env") or []
        if "secretKeyRef" in (entry.get("valueFrom") or {})
    }


def mounted_file(objects: Objects, kind: str, name: str, path: str) -> tuple[str, str, str]:
    """(volume kind, object name, key) that `path` in the workload's first container is."""
    pod = find(objects, kind, name)["spec"]["template"]["spec"]
    volumes = {volume["name"]: volume for volume in pod.get("volumes") or []}
    for mount in pod["containers"][0].get("volumeMounts") or []:
        folder = mount["mountPath"].rstrip("/")
        if posixpath.dirname(path) != folder:
            continue
        volume = volumes[mount["name"]]
        filename = posixpath.basename(path)
        if "configMap" in volume:
            return "ConfigMap", volume["configMap"]["name"], filename
        items = {item["path"]: item["key"] for item in volume["secret"].get("items") or []}
        return "Secret", volume["secret"]["secretName"], items.get(filename, filename)
    raise AssertionError(f"{kind}/{name}: nothing is mounted at {posixpath.dirname(path)}")


def auth_problems(objects: Objects) -> list[str]:
    problems = []
    mlflow = container(objects, "Deployment", "mlflow")
    if "--app-name=basic-auth" not in mlflow["args"]:
        problems.append(f"mlflow runs {mlflow['args']}, not the basic-auth app")
    plain = {e["name"]: e.get("value") for e in mlflow.get("env") or []}
    kind, config_map, key = mounted_file(
        objects, "Deployment", "mlflow", str(plain.get("MLFLOW_AUTH_CONFIG_PATH"))
    )
    data = find(objects, kind, config_map).get("data") or {}
    if data.get(key) != DECLARED_INI.read_text():
        problems.append(f"{kind}/{config_map}[{key}] is not services/mlflow-auth.ini as declared")
    if secret_env(mlflow).get("MLFLOW_AUTH_ADMIN_PASSWORD") != "MLFLOW_TRACKING_PASSWORD":
        problems.append("mlflow's admin password is not the clients' MLFLOW_TRACKING_PASSWORD")
    server = secret_env(container(objects, "Deployment", "model-server"))
    for variable in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        if server.get(variable) != variable:
            problems.append(f"model-server: {variable} is not read from stack-secrets")
    task = secret_env(render_task_pod(objects)["spec"]["containers"][0])
    if task.get("AIRFLOW_CONN_MLOPS_MLFLOW") != "AIRFLOW_CONN_MLOPS_MLFLOW":
        problems.append(
            "task pods: AIRFLOW_CONN_MLOPS_MLFLOW (login, password) is not from the Secret"
        )
    prometheus = yaml.safe_load(
        find(objects, "ConfigMap", "prometheus-config")["data"]["prometheus.yml"]
    )
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    auth = jobs.get("mlflow", {}).get("basic_auth") or {}
    for field, wanted in (
        ("username_file", "MLFLOW_TRACKING_USERNAME"),
        ("password_file", "MLFLOW_TRACKING_PASSWORD"),
    ):
        if field not in auth:
            problems.append(f"prometheus job mlflow: no basic_auth {field}")
            continue
        mounted = mounted_file(objects, "Deployment", "prometheus", auth[field])
        if mounted[0] != "Secret" or mounted[2] != wanted:
            problems.append(f"prometheus: {auth[field]} is {mounted}, not Secret key {wanted}")
    pods_job = str(jobs["pods"]["relabel_configs"])
    if "'regex': 'mlflow', 'action': 'drop'" not in pods_job:
        problems.append("prometheus job pods also scrapes MLflow, without its user (401: down)")
    return problems


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_mlflow_auth_is_wired_from_the_declaration_and_the_secret(
    rendered: dict[str, Objects], overlay: str
) -> None:
    assert auth_problems(rendered[overlay]) == []


def test_a_miswired_mlflow_auth_is_named(rendered: dict[str, Objects]) -> None:
    objects = copy.deepcopy(rendered["kind"])
    mlflow = container(objects, "Deployment", "mlflow")
    mlflow["args"] = ["server"]
    for entry in mlflow["env"]:
        if entry["name"] == "MLFLOW_AUTH_ADMIN_PASSWORD":
            entry["valueFrom"]["secretKeyRef"]["key"] = "MLFLOW_DB_PASSWORD"
    server = container(objects, "Deployment", "model-server")
    server["env"] = [e for e in server["env"] if e["name"] != "MLFLOW_TRACKING_PASSWORD"]
    assert auth_problems(objects) == [
        "mlflow runs ['server'], not the basic-auth app",
        "mlflow's admin password is not the clients' MLFLOW_TRACKING_PASSWORD",
        "model-server: MLFLOW_TRACKING_PASSWORD is not read from stack-secrets",
    ]
