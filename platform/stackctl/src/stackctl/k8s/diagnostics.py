"""Diagnostics of a kind (or any Kubernetes) stack, gathered for a human and for CI upload into
`reports/kind/diagnostics-<UTC timestamp>/`:

- `events.txt` / `events.json`     every event of the namespace, oldest first;
- `resources.txt`                  `kubectl get all,jobs,pvc,...  -o wide`;
- `problems.txt`                   the readiness engine's verdict (problems and pending items);
- `describe/<Kind>-<name>.txt`     `kubectl describe` of every object that is not ready;
- `logs/<pod>/<container>.log`     current logs of every container, init containers included,
  and `<container>.previous.log` for restarted ones;
- `airflow-task-logs/...`          task logs of the latest DAG runs, through Airflow's REST API;
- `kind-logs/`                     `kind export logs` (node journal, kubelet, containerd);
- `index.md`                       what each file is, and which collectors failed and why.

A collector that fails is recorded in index.md and the others still run: diagnostics never hide
the original failure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from stackcontract.airflow_api import AirflowClient
from stackctl.k8s.commands import CommandFailedError, Runner
from stackctl.k8s.readiness import ClusterSnapshot, evaluate, sort_events

_KINDS = "pods,deployments.apps,statefulsets.apps,daemonsets.apps,jobs.batch"
_SNAPSHOT_FIELDS = {
    "Pod": "pods",
    "Deployment": "deployments",
    "StatefulSet": "statefulsets",
    "DaemonSet": "daemonsets",
    "Job": "jobs",
}
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str) -> str:
    return _SAFE.sub("_", text).strip("_") or "_"


def diagnostics_dir(reports_dir: Path, now: datetime | None = None) -> Path:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return reports_dir / f"diagnostics-{stamp}"


def format_events(events: Sequence[Mapping[str, Any]]) -> str:
    lines = []
    for event in sort_events(events):
        involved = event.get("involvedObject") or event.get("regarding") or {}
        when = (
            event.get("lastTimestamp")
            or event.get("eventTime")
            or event.get("metadata", {}).get("creationTimestamp")
        )
        count = event.get("count") or 1
        lines.append(
            f"{when}  {event.get('type', ''):<7} {event.get('reason', ''):<22} "
            f"{involved.get('kind', '')}/{involved.get('name', '')}: "
            f"{str(event.get('message') or event.get('note') or '').strip()}"
            + (f" (x{count})" if count > 1 else "")
        )
    return "\n".join(lines) + ("\n" if lines else "")


@dataclass(frozen=True)
class AirflowAccess:
    url: str
    username: str
    password: str


@dataclass
class Collector:
    """Gathers diagnostics through kubectl (and kind, and Airflow's REST API when given)."""

    runner: Runner
    kubectl: str
    kubeconfig: Path
    context: str
    namespace: str
    kind: str | None = None
    cluster: str | None = None
    airflow: AirflowAccess | None = None
    # Where the Airflow client sends its requests (tests pass an httpx.MockTransport).
    airflow_transport: httpx.BaseTransport | None = None
    command_timeout: float = 60
    max_dag_runs: int = 3
    entries: list[tuple[str, str]] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)

    def _kubectl(self, *args: str) -> list[str]:
        return [
            self.kubectl,
            "--kubeconfig",
            str(self.kubeconfig),
            "--context",
            self.context,
            *args,
        ]

    def _write(self, dest: Path, relative: str, text: str, what: str) -> None:
        path = dest / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        self.entries.append((relative, what))

    def _step(self, name: str, action: Callable[[], None]) -> None:
        try:
            action()
        except (CommandFailedError, OSError, httpx.HTTPError, ValueError, KeyError) as exc:
            self.failures.append((name, f"{type(exc).__name__}: {exc}".strip()[:2000]))

    def collect(self, dest: Path) -> Path:
        """Collect everything into `dest` and return the path of `index.md`."""
        dest.mkdir(parents=True, exist_ok=True)
        snapshot_box: list[ClusterSnapshot] = []
        self._step("events", lambda: self._events(dest))
        self._step("resources", lambda: self._resources(dest))
        self._step("snapshot", lambda: snapshot_box.append(self._snapshot()))
        if snapshot_box:
            snapshot = snapshot_box[0]
            self._step("problems", lambda: self._problems(dest, snapshot))
            for pod in snapshot.pods:
                self._step(f"logs {pod['metadata']['name']}", partial(self._pod_logs, dest, pod))
        if (access := self.airflow) is not None:
            self._step("airflow task logs", lambda: self._airflow_task_logs(dest, access))
        if (kind := self.kind) and (cluster := self.cluster):
            self._step("kind export logs", lambda: self._kind_logs(dest, kind, cluster))
        return self._index(dest)

    def _events(self, dest: Path) -> None:
        raw = self.runner(
            self._kubectl("get", "events", "-n", self.namespace, "-o", "json"),
            timeout=self.command_timeout,
        ).stdout
        events = json.loads(raw).get("items") or []
        self._write(dest, "events.json", raw, "Events of the namespace as the API returns them")
        self._write(dest, "events.txt", format_events(events), "Events, oldest first, one a line")

    def _resources(self, dest: Path) -> None:
        out = self.runner(
            self._kubectl(
                "get", "all,jobs,pvc,configmaps,secrets,networkpolicies", "-n", self.namespace,
                "-o", "wide",
            ),
            timeout=self.command_timeout,
        ).stdout  # fmt: skip
        self._write(dest, "resources.txt", out, "`kubectl get all,jobs,pvc,...` (names, no values)")

    def _snapshot(self) -> ClusterSnapshot:
        raw = self.runner(
            self._kubectl("get", _KINDS, "-n", self.namespace, "-o", "json"),
            timeout=self.command_timeout,
        ).stdout
        buckets: dict[str, list[Mapping[str, Any]]] = {v: [] for v in _SNAPSHOT_FIELDS.values()}
        for item in json.loads(raw).get("items") or []:
            bucket = _SNAPSHOT_FIELDS.get(str(item.get("kind")))
            if bucket:
                buckets[bucket].append(item)
        return ClusterSnapshot(**buckets)

    def _problems(self, dest: Path, snapshot: ClusterSnapshot) -> None:
        verdict = evaluate(snapshot, datetime.now(UTC))
        lines = ["Problems:", *(f"- {p.describe()}" for p in verdict.problems)]
        lines += ["", "Not ready:", *(f"- {item}" for item in verdict.pending)]
        self._write(dest, "problems.txt", "\n".join(lines) + "\n", "Readiness engine's verdict")
        not_ready = {item.split(":", 1)[0] for item in verdict.pending}
        not_ready |= {p.obj for p in verdict.problems}
        for ref in sorted(not_ready):
            kind, _, name = ref.partition("/")
            if not name:
                continue
            out = self.runner(
                self._kubectl("describe", kind.lower(), name, "-n", self.namespace),
                timeout=self.command_timeout,
                check=False,
            )
            self._write(
                dest,
                f"describe/{safe_name(kind)}-{safe_name(name)}.txt",
                out.stdout + out.stderr,
                f"`kubectl describe` of not-ready {ref}",
            )

    def _pod_logs(self, dest: Path, pod: Mapping[str, Any]) -> None:
        name = str(pod["metadata"]["name"])
        status = pod.get("status", {})
        restarts = {
            str(cs.get("name")): int(cs.get("restartCount") or 0)
            for cs in [*(status.get("initContainerStatuses") or []),
                       *(status.get("containerStatuses") or [])]
        }  # fmt: skip
        spec = pod.get("spec", {})
        containers = [
            *((str(c["name"]), "init container") for c in spec.get("initContainers") or []),
            *((str(c["name"]), "container") for c in spec.get("containers") or []),
        ]
        for container, role in containers:
            base = ["logs", name, "-n", self.namespace, "-c", container, "--timestamps"]
            current = self.runner(self._kubectl(*base), timeout=self.command_timeout, check=False)
            self._write(
                dest,
                f"logs/{safe_name(name)}/{safe_name(container)}.log",
                current.stdout or current.stderr,
                f"Logs of {role} {container} of pod {name}",
            )
            if restarts.get(container, 0) > 0:
                previous = self.runner(
                    self._kubectl(*base, "--previous"), timeout=self.command_timeout, check=False
                )
                self._write(
                    dest,
                    f"logs/{safe_name(name)}/{safe_name(container)}.previous.log",
                    previous.stdout or previous.stderr,
                    f"Logs of the previous (crashed) run of {role} {container} of pod {name}",
                )

    def _airflow_task_logs(self, dest: Path, access: AirflowAccess) -> None:
        with AirflowClient(
            access.url,
            access.username,
            access.password,
            timeout=15,
            transport=self.airflow_transport,
        ) as api:
            for dag_id in api.dag_ids():
                for run_id in api.run_ids(dag_id, newest_first=True, limit=self.max_dag_runs):
                    self._airflow_run_logs(api, dest, dag_id, run_id)

    def _airflow_run_logs(self, api: AirflowClient, dest: Path, dag_id: str, run_id: str) -> None:
        for task_id, ti in api.task_instances(dag_id, run_id).items():
            for attempt in range(1, int(ti.get("try_number") or 0) + 1):
                log = api.send(
                    "GET",
                    f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{attempt}",
                    headers={"Accept": "text/plain"},
                    params={"full_content": "true"},
                )
                relative = (
                    f"airflow-task-logs/{safe_name(dag_id)}/{safe_name(run_id)}/"
                    f"{safe_name(task_id)}/attempt-{attempt}.log"
                )
                self._write(
                    dest,
                    relative,
                    log.text,
                    f"Airflow task log {dag_id}.{task_id} run {run_id} try {attempt} "
                    f"(state {ti.get('state')})",
                )

    def _kind_logs(self, dest: Path, kind: str, cluster: str) -> None:
        target = dest / "kind-logs"
        self.runner(
            [kind, "export", "logs", str(target), "--name", cluster],
            timeout=max(self.command_timeout, 180),
        )
        self.entries.append(("kind-logs/", "`kind export logs`: node journal, kubelet, containerd"))

    def _index(self, dest: Path) -> Path:
        lines = [
            "# Diagnostics",
            "",
            f"Namespace `{self.namespace}`, context `{self.context}`, collected "
            f"{datetime.now(UTC).isoformat(timespec='seconds')}.",
            "",
            "| file | what it is |",
            "| --- | --- |",
            *(f"| [{path}]({path}) | {what} |" for path, what in sorted(self.entries)),
        ]
        if self.failures:
            lines += ["", "## Collectors that failed", ""]
            lines += [f"- **{name}**: {error}" for name, error in self.failures]
        index = dest / "index.md"
        index.write_text("\n".join(lines) + "\n")
        return index
