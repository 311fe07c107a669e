"""The one readiness engine, for every component and every Kubernetes backend (kind and EKS).

Public API (stable; the EKS backend imports exactly these)::

    from stackctl.k8s.readiness import (
        DeployFailure, HttpCheck, ReadinessPolicy, ReadinessReport, wait_for_ready,
    )

    report = wait_for_ready(
        api_client,            # a kubernetes.client.ApiClient, or any ClusterReader
        "mlops",               # namespace
        900.0,                 # seconds from now, or a stackctl.k8s.stages.Deadline
        expected=["Deployment/mlflow", "Job/airflow-db-migrate"],  # must exist (optional)
        http_checks=[HttpCheck("mlflow", "http://127.0.0.1:5000/health")],
    )
    # -> ReadinessReport(polls, elapsed_seconds, workloads, http, ...)
    # raises DeployFailure(diagnosis=..., problems=[...]) on a fail-fast pod/job condition
    # or when the deadline passes (listing what was still pending and the warning events).

Each poll reads pods, Deployments, StatefulSets, DaemonSets, Jobs and events (as raw API JSON)
and is judged by the pure function `evaluate()`:

- rollouts complete: observedGeneration caught up, updated and available/ready replicas = desired
  (the same rules as `kubectl rollout status`); a Deployment past its progress deadline fails;
- Jobs succeeded (condition Complete); a Job with condition Failed (BackoffLimitExceeded,
  DeadlineExceeded) fails at once;
- every pod that has not finished (Succeeded/Failed) is Running and Ready; `classify_pod()` fails fast on
  ErrImagePull/ImagePullBackOff, CrashLoopBackOff (after `crashloop_restarts` restarts, with the last
  terminated reason and exit code), OOMKilled, CreateContainerConfigError, unschedulable Pending
  (with the scheduler's message), and ContainerCreating/PodInitializing for longer than
  `creating_timeout_seconds` (with the pod's events, e.g. FailedMount);
- HTTP health checks answer with an expected status (httpx, e.g. to the kind NodePort URLs).

Stable-ready rule (as Kubeflow's test harness does): the stack is ready only after
`stable_polls` consecutive polls in which everything above holds AND the pods (uid, restarts,
readiness) did not change, so a pod that flaps between polls resets the count.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx

from stackctl.k8s.stages import Deadline

Obj = Mapping[str, Any]

IMAGE_PULL_REASONS = frozenset(
    {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
)
CONFIG_ERROR_REASONS = frozenset(
    {"CreateContainerConfigError", "CreateContainerError", "RunContainerError"}
)
CREATING_REASONS = frozenset({"ContainerCreating", "PodInitializing"})


@dataclass(frozen=True)
class ReadinessPolicy:
    """Thresholds of the engine; defaults suit a laptop kind cluster."""

    poll_interval_seconds: float = 3.0
    stable_polls: int = 3
    crashloop_restarts: int = 3
    creating_timeout_seconds: float = 60.0
    unschedulable_grace_seconds: float = 20.0
    http_timeout_seconds: float = 5.0


@dataclass(frozen=True)
class Problem:
    """Something wrong with one object. `fatal` problems stop the wait at once."""

    kind: str  # ImagePull | CrashLoopBackOff | OOMKilled | Unschedulable | StuckCreating | ...
    obj: str  # "Pod/mlflow-6d4c..-x2" or "Job/airflow-db-migrate"
    message: str
    fatal: bool
    container: str | None = None
    hint: str = ""

    def describe(self) -> str:
        where = f"{self.obj} container {self.container}" if self.container else self.obj
        text = f"[{self.kind}] {where}: {self.message}"
        return f"{text}\n    fix: {self.hint}" if self.hint else text


@dataclass(frozen=True)
class HttpCheck:
    """An endpoint that must answer before the stack counts as ready."""

    name: str
    url: str
    expected_status: tuple[int, ...] = (200,)


@dataclass(frozen=True)
class HttpResult:
    name: str
    url: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class ClusterSnapshot:
    """One poll's worth of raw API objects (the `items` of each list call)."""

    pods: Sequence[Obj] = ()
    deployments: Sequence[Obj] = ()
    statefulsets: Sequence[Obj] = ()
    daemonsets: Sequence[Obj] = ()
    jobs: Sequence[Obj] = ()
    events: Sequence[Obj] = ()


@dataclass(frozen=True)
class Evaluation:
    """The verdict on one snapshot: problems, what is still pending, and the pods' signature."""

    problems: tuple[Problem, ...]
    pending: tuple[str, ...]
    ready_objects: tuple[str, ...]
    signature: tuple[tuple[str, int, bool], ...]

    @property
    def fatal(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.fatal)

    @property
    def ready(self) -> bool:
        return not self.pending and not self.problems


@dataclass(frozen=True)
class ReadinessReport:
    namespace: str
    polls: int
    elapsed_seconds: float
    ready_objects: tuple[str, ...]
    http: tuple[HttpResult, ...]


class DeployFailure(RuntimeError):
    """The stack cannot become ready; `diagnosis` says why and what to do."""

    def __init__(
        self, diagnosis: str, problems: Sequence[Problem] = (), pending: Sequence[str] = ()
    ) -> None:
        super().__init__(diagnosis)
        self.diagnosis = diagnosis
        self.problems = tuple(problems)
        self.pending = tuple(pending)


class ClusterReader(Protocol):
    def snapshot(self, namespace: str) -> ClusterSnapshot: ...


# --------------------------------------------------------------------------- helpers on raw JSON


def _ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _name(obj: Obj) -> str:
    return str(obj.get("metadata", {}).get("name", "?"))


def _ref(kind: str, obj: Obj) -> str:
    return f"{kind}/{_name(obj)}"


def _condition(obj: Obj, kind: str) -> Obj | None:
    for cond in obj.get("status", {}).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return None


def _owner_kinds(obj: Obj) -> set[str]:
    return {o.get("kind", "") for o in obj.get("metadata", {}).get("ownerReferences") or []}


def _event_time(event: Obj) -> str:
    return str(
        event.get("lastTimestamp")
        or event.get("eventTime")
        or event.get("firstTimestamp")
        or event.get("metadata", {}).get("creationTimestamp")
        or ""
    )


def sort_events(events: Sequence[Obj]) -> list[Obj]:
    """Events oldest first (lastTimestamp, else eventTime, else creation)."""
    return sorted(events, key=_event_time)


def events_for(events: Sequence[Obj], kind: str, name: str, *, limit: int = 6) -> list[str]:
    """The latest events about one object, one line each: `Warning FailedMount: ... (x3)`."""
    lines = []
    for event in sort_events(events):
        involved = event.get("involvedObject") or event.get("regarding") or {}
        if involved.get("kind") == kind and involved.get("name") == name:
            count = event.get("count") or 1
            times = f" (x{count})" if count > 1 else ""
            msg = str(event.get("message") or event.get("note") or "").strip()
            lines.append(f"{event.get('type', '')} {event.get('reason', '')}: {msg}{times}")
    return lines[-limit:]


def _memory_limit(pod: Obj, container: str) -> str | None:
    spec = pod.get("spec", {})
    for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        if c.get("name") == container:
            memory = (c.get("resources") or {}).get("limits", {}).get("memory")
            return None if memory is None else str(memory)
    return None


# --------------------------------------------------------------------------- pod classification


def classify_pod(
    pod: Obj, events: Sequence[Obj], now: datetime, policy: ReadinessPolicy = ReadinessPolicy()
) -> list[Problem]:
    """Problems of one pod, each with a diagnosis; [] for a healthy or merely starting pod."""
    ref = _ref("Pod", pod)
    status = pod.get("status", {})
    phase = status.get("phase")
    if phase == "Succeeded":
        return []
    if phase == "Failed":
        if "Job" in _owner_kinds(pod):
            return []  # judged through its Job (backoffLimit)
        reason = status.get("reason", "Failed")
        return [Problem("PodFailed", ref, f"{reason}: {status.get('message', '')}".strip(), True)]

    problems: list[Problem] = []
    scheduled = _condition(pod, "PodScheduled")
    if (
        scheduled
        and scheduled.get("status") == "False"
        and scheduled.get("reason") == "Unschedulable"
    ):
        since = _ts(scheduled.get("lastTransitionTime")) or now
        waited = (now - since).total_seconds()
        problems.append(
            Problem(
                "Unschedulable",
                ref,
                f"{scheduled.get('message', 'no node fits')} (pending {waited:.0f}s)",
                fatal=waited >= policy.unschedulable_grace_seconds,
                hint="give the kind node (Docker) more CPU/memory, or lower the pod's resource "
                "requests; check PVCs with `kubectl get pvc`",
            )
        )

    statuses = [
        *(status.get("initContainerStatuses") or []),
        *(status.get("containerStatuses") or []),
    ]
    for cs in statuses:
        problems.extend(_classify_container(pod, cs, events, now, policy))

    if not statuses and scheduled and scheduled.get("status") == "True" and phase == "Pending":
        problems.extend(_stuck_creating(pod, None, "ContainerCreating", events, now, policy))
    return problems


def _classify_container(
    pod: Obj, cs: Obj, events: Sequence[Obj], now: datetime, policy: ReadinessPolicy
) -> list[Problem]:
    ref = _ref("Pod", pod)
    container = str(cs.get("name"))
    state = cs.get("state") or {}
    waiting = state.get("waiting") or {}
    reason = waiting.get("reason", "")
    last = (cs.get("lastState") or {}).get("terminated") or {}
    current_term = state.get("terminated") or {}
    restarts = int(cs.get("restartCount") or 0)

    if reason in IMAGE_PULL_REASONS:
        return [
            Problem(
                "ImagePull",
                ref,
                f"{reason} for image {cs.get('image')}: {waiting.get('message', '')}".strip(),
                fatal=True,
                container=container,
                hint="project images must be loaded with `kind load image-archive` and use "
                "imagePullPolicy: IfNotPresent/Never; check the image name and tag in the overlay",
            )
        ]
    if "OOMKilled" in (last.get("reason"), current_term.get("reason")):
        limit = _memory_limit(pod, container) or "no limit set"
        return [
            Problem(
                "OOMKilled",
                ref,
                f"killed for exceeding its memory (limit {limit}), restarts={restarts}",
                fatal=True,
                container=container,
                hint="raise resources.limits.memory for this container in the overlay, or give "
                "Docker more memory",
            )
        ]
    if reason == "CrashLoopBackOff":
        exit_code = last.get("exitCode", "?")
        last_reason = last.get("reason", "unknown")
        return [
            Problem(
                "CrashLoopBackOff",
                ref,
                f"restarted {restarts} times; last exit code {exit_code} ({last_reason}"
                f"{', finished ' + last['finishedAt'] if last.get('finishedAt') else ''})",
                fatal=restarts >= policy.crashloop_restarts,
                container=container,
                hint=f"read `kubectl logs {_name(pod)} -c {container} --previous` "
                "(saved under logs/ in the diagnostics folder)",
            )
        ]
    if reason in CONFIG_ERROR_REASONS:
        return [
            Problem(
                reason,
                ref,
                str(waiting.get("message", reason)),
                fatal=True,
                container=container,
                hint="a referenced Secret/ConfigMap or key is missing: check the dev secrets file "
                "and the overlay's generators",
            )
        ]
    if reason in CREATING_REASONS:
        return _stuck_creating(pod, container, reason, events, now, policy)
    return []


def _stuck_creating(
    pod: Obj,
    container: str | None,
    reason: str,
    events: Sequence[Obj],
    now: datetime,
    policy: ReadinessPolicy,
) -> list[Problem]:
    scheduled = _condition(pod, "PodScheduled") or {}
    since = (
        _ts(scheduled.get("lastTransitionTime"))
        or _ts(pod.get("status", {}).get("startTime"))
        or _ts(pod.get("metadata", {}).get("creationTimestamp"))
        or now
    )
    waited = (now - since).total_seconds()
    if waited < policy.creating_timeout_seconds:
        return []
    recent = events_for(events, "Pod", _name(pod))
    detail = "; ".join(recent) if recent else "no events recorded for the pod"
    return [
        Problem(
            "StuckCreating",
            _ref("Pod", pod),
            f"{reason} for {waited:.0f}s (threshold {policy.creating_timeout_seconds:.0f}s). "
            f"Events: {detail}",
            fatal=True,
            container=container,
            hint="FailedMount usually means a missing Secret/ConfigMap or an unbound PVC; "
            "see events.txt in the diagnostics folder",
        )
    ]


# --------------------------------------------------------------------------- workloads and jobs


def _desired(obj: Obj) -> int:
    replicas = obj.get("spec", {}).get("replicas")
    return 1 if replicas is None else int(replicas)


def _generation_pending(obj: Obj) -> bool:
    generation = obj.get("metadata", {}).get("generation")
    observed = obj.get("status", {}).get("observedGeneration")
    return generation is not None and (observed is None or int(observed) < int(generation))


def deployment_status(obj: Obj) -> tuple[str | None, Problem | None]:
    """(pending reason or None when rolled out, fatal problem) — `kubectl rollout status` rules."""
    ref = _ref("Deployment", obj)
    status = obj.get("status", {})
    progressing = _condition(obj, "Progressing")
    if progressing and progressing.get("reason") == "ProgressDeadlineExceeded":
        return None, Problem(
            "RolloutStalled",
            ref,
            str(progressing.get("message", "progress deadline exceeded")),
            True,
            hint="see the Deployment's pods' problems and events",
        )
    if _generation_pending(obj):
        return f"{ref}: rollout of the latest generation not yet observed", None
    desired = _desired(obj)
    updated = int(status.get("updatedReplicas") or 0)
    total = int(status.get("replicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    if updated < desired:
        return f"{ref}: {updated} of {desired} replicas updated", None
    if total > updated:
        return f"{ref}: {total - updated} old replicas pending termination", None
    if available < updated:
        return f"{ref}: {available} of {updated} updated replicas available", None
    return None, None


def statefulset_status(obj: Obj) -> tuple[str | None, Problem | None]:
    ref = _ref("StatefulSet", obj)
    status = obj.get("status", {})
    if _generation_pending(obj):
        return f"{ref}: rollout of the latest generation not yet observed", None
    desired = _desired(obj)
    ready = int(status.get("readyReplicas") or 0)
    if ready < desired:
        return f"{ref}: {ready} of {desired} replicas ready", None
    strategy = obj.get("spec", {}).get("updateStrategy", {}).get("type", "RollingUpdate")
    if strategy == "RollingUpdate":
        updated = int(status.get("updatedReplicas") or 0)
        if updated < desired:
            return f"{ref}: {updated} of {desired} replicas updated", None
        update_rev, current_rev = status.get("updateRevision"), status.get("currentRevision")
        if update_rev and current_rev and update_rev != current_rev:
            return f"{ref}: rolling update to {update_rev} in progress", None
    return None, None


def daemonset_status(obj: Obj) -> tuple[str | None, Problem | None]:
    ref = _ref("DaemonSet", obj)
    status = obj.get("status", {})
    if _generation_pending(obj):
        return f"{ref}: rollout of the latest generation not yet observed", None
    desired = int(status.get("desiredNumberScheduled") or 0)
    updated = int(status.get("updatedNumberScheduled") or 0)
    available = int(status.get("numberAvailable") or 0)
    if updated < desired:
        return f"{ref}: {updated} of {desired} pods updated", None
    if available < desired:
        return f"{ref}: {available} of {desired} pods available", None
    return None, None


def job_status(obj: Obj) -> tuple[str | None, Problem | None]:
    ref = _ref("Job", obj)
    status = obj.get("status", {})
    failed = _condition(obj, "Failed")
    if failed and failed.get("status") == "True":
        backoff = obj.get("spec", {}).get("backoffLimit", 6)
        return None, Problem(
            "JobFailed",
            ref,
            f"{failed.get('reason', 'Failed')}: {failed.get('message', '')} "
            f"(failed pods {status.get('failed', 0)}, backoffLimit {backoff})",
            True,
            hint="its pods' logs (current and previous) are in the diagnostics folder",
        )
    complete = _condition(obj, "Complete")
    if complete and complete.get("status") == "True":
        return None, None
    return (
        f"{ref}: not complete ({status.get('active', 0)} active, "
        f"{status.get('succeeded', 0)} succeeded, {status.get('failed', 0)} failed)",
        None,
    )


def _pod_ready(pod: Obj) -> bool:
    ready = _condition(pod, "Ready")
    return pod.get("status", {}).get("phase") == "Running" and bool(
        ready and ready.get("status") == "True"
    )


def _pod_signature(pod: Obj) -> tuple[str, int, bool]:
    statuses = pod.get("status", {}).get("containerStatuses") or []
    restarts = sum(int(cs.get("restartCount") or 0) for cs in statuses)
    uid = str(pod.get("metadata", {}).get("uid") or _name(pod))
    return (uid, restarts, _pod_ready(pod))


def evaluate(
    snapshot: ClusterSnapshot,
    now: datetime,
    policy: ReadinessPolicy = ReadinessPolicy(),
    expected: Collection[str] = (),
) -> Evaluation:
    """Judge one snapshot (pure): problems, pending items, ready objects, pod signature."""
    problems: list[Problem] = []
    pending: list[str] = []
    ready: list[str] = []
    checks: list[tuple[str, Sequence[Obj], Callable[[Obj], tuple[str | None, Problem | None]]]] = [
        ("Deployment", snapshot.deployments, deployment_status),
        ("StatefulSet", snapshot.statefulsets, statefulset_status),
        ("DaemonSet", snapshot.daemonsets, daemonset_status),
        ("Job", snapshot.jobs, job_status),
    ]
    present: set[str] = set()
    for kind, objects, judge in checks:
        for obj in objects:
            present.add(_ref(kind, obj))
            reason, problem = judge(obj)
            if problem is not None:
                problems.append(problem)
            elif reason is not None:
                pending.append(reason)
            else:
                ready.append(_ref(kind, obj))
    pending.extend(f"{ref}: not created yet" for ref in sorted(set(expected) - present))

    signature = []
    for pod in snapshot.pods:
        if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            # Finished pods are history: Job pods are judged through their Job, evicted pods are
            # replaced by their controller (judged through its rollout), and Airflow's task pods
            # of earlier runs are not part of the deployment.
            continue
        problems.extend(classify_pod(pod, snapshot.events, now, policy))
        signature.append(_pod_signature(pod))
        if pod.get("metadata", {}).get("deletionTimestamp"):
            pending.append(f"{_ref('Pod', pod)}: terminating")
        elif not _pod_ready(pod):
            pending.append(f"{_ref('Pod', pod)}: {_pod_state(pod)}")
    return Evaluation(tuple(problems), tuple(pending), tuple(ready), tuple(sorted(signature)))


def _pod_state(pod: Obj) -> str:
    status = pod.get("status", {})
    reasons = []
    for cs in [
        *(status.get("initContainerStatuses") or []),
        *(status.get("containerStatuses") or []),
    ]:
        waiting = (cs.get("state") or {}).get("waiting")
        if waiting:
            reasons.append(f"{cs.get('name')} {waiting.get('reason', 'waiting')}")
        elif not cs.get("ready") and (cs.get("state") or {}).get("running"):
            reasons.append(f"{cs.get('name')} running, not ready")
    return f"{status.get('phase', 'Unknown')}" + (f" ({', '.join(reasons)})" if reasons else "")


# --------------------------------------------------------------------------- stable-ready counter


@dataclass
class StableReadyCounter:
    """Counts consecutive ready polls whose pod signature did not change."""

    required: int
    count: int = 0
    _last: tuple[tuple[str, int, bool], ...] | None = field(default=None, repr=False)

    def observe(self, ready: bool, signature: tuple[tuple[str, int, bool], ...]) -> bool:
        if not ready:
            self.count = 0
        elif signature == self._last and self.count > 0:
            self.count += 1
        else:
            self.count = 1
        self._last = signature
        return self.count >= self.required


# --------------------------------------------------------------------------- HTTP and the loop


def probe_http(checks: Sequence[HttpCheck], client: httpx.Client) -> tuple[HttpResult, ...]:
    results = []
    for check in checks:
        try:
            response = client.get(check.url)
        except httpx.HTTPError as exc:
            results.append(HttpResult(check.name, check.url, False, f"{type(exc).__name__}: {exc}"))
            continue
        ok = response.status_code in check.expected_status
        results.append(HttpResult(check.name, check.url, ok, f"HTTP {response.status_code}"))
    return tuple(results)


class KubernetesReader:
    """Reads a snapshot through the kubernetes client, as raw JSON (the shape of the fixtures)."""

    def __init__(self, api_client: Any) -> None:
        from kubernetes import client  # the k8s dependency group; imported only when used

        self._core = client.CoreV1Api(api_client)
        self._apps = client.AppsV1Api(api_client)
        self._batch = client.BatchV1Api(api_client)

    @staticmethod
    def _items(response: Any) -> list[Obj]:
        return list(json.loads(response.data).get("items") or [])

    def snapshot(self, namespace: str) -> ClusterSnapshot:
        raw: dict[str, Any] = {"_preload_content": False, "_request_timeout": 30}
        return ClusterSnapshot(
            pods=self._items(self._core.list_namespaced_pod(namespace, **raw)),
            deployments=self._items(self._apps.list_namespaced_deployment(namespace, **raw)),
            statefulsets=self._items(self._apps.list_namespaced_stateful_set(namespace, **raw)),
            daemonsets=self._items(self._apps.list_namespaced_daemon_set(namespace, **raw)),
            jobs=self._items(self._batch.list_namespaced_job(namespace, **raw)),
            events=self._items(self._core.list_namespaced_event(namespace, **raw)),
        )


def _as_reader(source: Any) -> ClusterReader:
    if hasattr(source, "snapshot"):
        reader: ClusterReader = source
        return reader
    return KubernetesReader(source)


def format_failure(
    namespace: str, problems: Sequence[Problem], pending: Sequence[str], headline: str
) -> str:
    lines = [f"{headline} (namespace {namespace})."]
    if problems:
        lines.append("Problems:")
        lines.extend(f"  - {p.describe()}" for p in problems)
    if pending:
        lines.append("Still pending:")
        lines.extend(f"  - {item}" for item in pending[:30])
    return "\n".join(lines)


def wait_for_ready(
    source: Any,
    namespace: str,
    deadline: Deadline | float,
    *,
    expected: Collection[str] = (),
    http_checks: Sequence[HttpCheck] = (),
    policy: ReadinessPolicy = ReadinessPolicy(),
    http_client: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    log: Callable[[str], None] = lambda _msg: None,
) -> ReadinessReport:
    """Poll until stable-ready; raise DeployFailure with a diagnosis on a fatal problem or timeout.

    `source` is a kubernetes ApiClient or any object with `snapshot(namespace)`. `deadline` is a
    stages.Deadline or a number of seconds from now.
    """
    if not isinstance(deadline, Deadline):
        deadline = Deadline.starting_now("wait", float(deadline))
    reader = _as_reader(source)
    counter = StableReadyCounter(policy.stable_polls)
    client = http_client or httpx.Client(timeout=policy.http_timeout_seconds)
    polls = 0
    last = Evaluation((), ("nothing polled yet",), (), ())
    http: tuple[HttpResult, ...] = ()
    try:
        while True:
            polls += 1
            last = evaluate(reader.snapshot(namespace), now(), policy, expected)
            if last.fatal:
                raise DeployFailure(
                    format_failure(namespace, last.fatal, last.pending, "Deploy failed"),
                    last.fatal,
                    last.pending,
                )
            http = probe_http(http_checks, client) if last.ready else ()
            http_down = [f"{r.name} {r.url}: {r.detail}" for r in http if not r.ok]
            done = counter.observe(last.ready and not http_down, last.signature)
            log(
                f"poll {polls}: {len(last.pending)} pending, stable {counter.count}/{counter.required}"
            )
            if done:
                return ReadinessReport(
                    namespace,
                    polls,
                    round(deadline.seconds - deadline.remaining(), 3),
                    last.ready_objects,
                    http,
                )
            if deadline.remaining() < policy.poll_interval_seconds:
                pending = [*last.pending, *(f"health check {h}" for h in http_down)]
                raise DeployFailure(
                    format_failure(
                        namespace,
                        last.problems,
                        pending,
                        f"Not ready within the {deadline.seconds:.0f}s deadline of stage "
                        f"{deadline.stage!r}",
                    ),
                    last.problems,
                    pending,
                )
            sleep(policy.poll_interval_seconds)
    finally:
        if http_client is None:
            client.close()
