"""Reaching a stack on EKS from this machine: `kubectl port-forward` to its Services on free local
ports, and the `Endpoints` (stackctl.backend) that point the tests at them."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import IO, Any

import boto3

from stackcontract.endpoints import Endpoints
from stackctl.eks.kubectl import Kubectl
from stackctl.eks.render import ObjectRef

# Service name -> the Endpoints field its forwarded URL fills.
FORWARDED_SERVICES = {
    "model-server": "model_server_url",
    "mlflow": "mlflow_url",
    "airflow-api-server": "airflow_url",
}
# The api-server's simple auth manager user (platform/k8s/base/airflow/deployment-api-server.yaml).
AIRFLOW_USERNAME = "admin"
_FORWARDING = re.compile(r"Forwarding from 127\.0\.0\.1:(?P<port>\d+) ->")


class ConnectError(RuntimeError):
    """The stack's objects or a port-forward do not allow reaching it; the message says why."""


def service_port(objects: Sequence[Mapping[str, Any]], name: str, namespace: str) -> int:
    """The first port of Service `name`, as the rendered manifest declares it."""
    for obj in objects:
        if ObjectRef.of(obj) == ObjectRef("Service", namespace, name):
            return int(obj["spec"]["ports"][0]["port"])
    raise ConnectError(f"The eks overlay has no Service {namespace}/{name}.")


def stack_config(objects: Sequence[Mapping[str, Any]], namespace: str) -> dict[str, str]:
    """Data of the rendered `stack-config` ConfigMap (its name carries kustomize's hash suffix)."""
    for obj in objects:
        ref = ObjectRef.of(obj)
        if (
            ref.kind == "ConfigMap"
            and ref.namespace == namespace
            and ref.name.startswith("stack-config")
        ):
            return {str(k): str(v) for k, v in (obj.get("data") or {}).items()}
    raise ConnectError("The eks overlay renders no stack-config ConfigMap.")


def forwarded_port(stream: IO[str]) -> int:
    """The local port `kubectl port-forward` reports on its first line."""
    line = stream.readline()
    match = _FORWARDING.search(line)
    if match is None:
        raise ConnectError(f"kubectl port-forward did not start: {line.strip() or 'no output'}")
    return int(match["port"])


def start_port_forward(
    kubectl: Kubectl, namespace: str, service: str, port: int, *, detach: bool = False
) -> tuple[subprocess.Popen[str], str]:
    """Start `kubectl port-forward svc/<service>` on a free local port; (process, local URL).

    `detach` puts it in its own session so it outlives this process (the backend's `up`)."""
    args = [kubectl.binary, *(["--context", kubectl.context] if kubectl.context else [])]
    args += ["port-forward", "-n", namespace, f"svc/{service}", f":{port}"]
    args += ["--address", "127.0.0.1"]
    process = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=detach,
    )
    assert process.stdout is not None  # PIPE was requested
    try:
        return process, f"http://127.0.0.1:{forwarded_port(process.stdout)}"
    except ConnectError:
        process.terminate()
        process.wait(timeout=10)
        raise


@contextmanager
def port_forward(kubectl: Kubectl, namespace: str, service: str, port: int) -> Iterator[str]:
    """A local URL forwarded to `service:port`, stopped on exit."""
    process, url = start_port_forward(kubectl, namespace, service, port)
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def eks_endpoints(
    *,
    config: Mapping[str, str],
    urls: Mapping[str, str],
    airflow_password: str,
    region: str,
    reload_token: str | None = None,
    mlflow_user: tuple[str, str] | None = None,
) -> Endpoints:
    """Endpoints of an EKS stack: forwarded service URLs, and S3 on AWS itself (with this
    machine's AWS credentials; temporary ones carry a session token the Endpoints model lacks, so
    tests that need S3 are not smoke tests)."""
    credentials = boto3.Session().get_credentials()
    return Endpoints(
        backend="eks",
        s3_url=f"https://s3.{region}.amazonaws.com",
        s3_access_key=credentials.access_key if credentials else "",
        s3_secret_key=credentials.secret_key if credentials else "",
        s3_bucket=config["S3_BUCKET"],
        airflow_username=AIRFLOW_USERNAME,
        airflow_password=airflow_password,
        model_name=config["MODEL_NAME"],
        mlflow_url=urls["mlflow_url"],
        mlflow_username=mlflow_user[0] if mlflow_user else None,
        mlflow_password=mlflow_user[1] if mlflow_user else None,
        airflow_url=urls["airflow_url"],
        model_server_url=urls["model_server_url"],
        model_server_reload_token=reload_token,
    )
