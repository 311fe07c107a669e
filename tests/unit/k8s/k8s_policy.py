"""Our own policy rules for rendered Kubernetes objects (checkov runs in `nox -s manifests`).

Every check returns a list of violations; each names the object as ``Kind/namespace/name`` and,
for container rules, the container, so a failure says exactly what to fix.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Obj = Mapping[str, Any]

PROJECT_IMAGE_PREFIX = "airflow-on-k8s/"
POD_OWNER_KINDS = frozenset(
    {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"}
)
# Run-to-completion pods: a probe has nothing to restart or route to.
PROBE_EXEMPT_KINDS = frozenset({"Job", "CronJob"})
PINNED_THIRD_PARTY = re.compile(r"^[^@\s]+:[^@:/\s]+@sha256:[0-9a-f]{64}$")
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
EXECUTOR_RESOURCES = frozenset({"pods", "pods/log", "events"})
# The ONE cluster-scoped grant allowed, and only to Prometheus: the kubelets' cAdvisor endpoint
# (container CPU/memory of the cluster dashboard) is per node and nodes are cluster-scoped, so node
# discovery (nodes get/list/watch) and reading node metrics (nodes/metrics, or nodes/proxy for the
# API server's /api/v1/nodes/<node>/proxy/metrics/cadvisor) cannot be granted by a namespaced Role.
# Read-only, bound to ServiceAccount `prometheus` alone; any other ClusterRole, resource, verb or
# subject is a violation (Airflow's RBAC stays namespace-scoped).
PROMETHEUS_CLUSTER_ROLE = "mlops-prometheus-kubelet"
PROMETHEUS_SERVICE_ACCOUNT = "prometheus"
PROMETHEUS_NODE_GRANTS: Mapping[str, frozenset[str]] = {
    "nodes": frozenset({"get", "list", "watch"}),
    "nodes/metrics": frozenset({"get"}),
    "nodes/proxy": frozenset({"get"}),
}


def ident(obj: Obj) -> str:
    meta = obj.get("metadata", {})
    return f"{obj.get('kind')}/{meta.get('namespace', '-')}/{meta.get('name')}"


def pod_spec(obj: Obj) -> Mapping[str, Any] | None:
    """The pod spec an object runs (None for objects that run no pod)."""
    kind = obj.get("kind")
    if kind not in POD_OWNER_KINDS:
        return None
    if kind == "Pod":
        return obj.get("spec", {})
    if kind == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return obj["spec"]["template"]["spec"]


def pod_labels(obj: Obj) -> Mapping[str, str]:
    if obj.get("kind") == "Pod":
        return obj.get("metadata", {}).get("labels", {})
    if obj.get("kind") == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"].get("metadata", {}).get("labels", {})
    return obj["spec"]["template"].get("metadata", {}).get("labels", {})


@dataclass(frozen=True)
class ContainerRef:
    owner: Obj
    pod: Mapping[str, Any]
    spec: Mapping[str, Any]
    init: bool

    @property
    def label(self) -> str:
        role = "initContainer" if self.init else "container"
        return f"{ident(self.owner)} {role} {self.spec.get('name')}"


def containers(objects: Sequence[Obj]) -> Iterator[ContainerRef]:
    for obj in objects:
        pod = pod_spec(obj)
        if pod is None:
            continue
        for spec in pod.get("initContainers") or []:
            yield ContainerRef(obj, pod, spec, init=True)
        for spec in pod.get("containers") or []:
            yield ContainerRef(obj, pod, spec, init=False)


def image_problem(image: str, *, project_images_pinned: bool) -> str | None:
    """Why ``image`` is not acceptable, or None."""
    if image.endswith(":latest") or ":latest@" in image:
        return f"image {image!r} uses the mutable `latest` tag"
    if image.startswith(PROJECT_IMAGE_PREFIX) or f"/{PROJECT_IMAGE_PREFIX}" in image:
        if project_images_pinned and not DIGEST.search(image):
            return f"project image {image!r} is not pinned to a release digest (@sha256:...)"
        if not project_images_pinned and ":" not in image.rsplit("/", 1)[-1] and "@" not in image:
            return f"project image {image!r} has no tag"
        return None
    if not PINNED_THIRD_PARTY.match(image):
        return f"third-party image {image!r} is not pinned as name:tag@sha256:<digest>"
    return None


def _resources_problems(spec: Mapping[str, Any]) -> list[str]:
    resources = spec.get("resources") or {}
    return [
        f"no resources.{section}.{resource}"
        for section in ("requests", "limits")
        for resource in ("cpu", "memory")
        if not (resources.get(section) or {}).get(resource)
    ]


def _security_problems(ref: ContainerRef) -> list[str]:
    container_ctx = ref.spec.get("securityContext") or {}
    pod_ctx = ref.pod.get("securityContext") or {}
    problems = []
    if container_ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot")) is not True:
        problems.append("runAsNonRoot is not true")
    if container_ctx.get("runAsUser", pod_ctx.get("runAsUser")) == 0:
        problems.append("runAsUser is 0 (root)")
    if container_ctx.get("allowPrivilegeEscalation") is not False:
        problems.append("allowPrivilegeEscalation is not false")
    if container_ctx.get("privileged"):
        problems.append("privileged is true")
    if container_ctx.get("readOnlyRootFilesystem") is not True:
        problems.append("readOnlyRootFilesystem is not true")
    if "ALL" not in ((container_ctx.get("capabilities") or {}).get("drop") or []):
        problems.append("capabilities.drop does not contain ALL")
    seccomp = (container_ctx.get("seccompProfile") or pod_ctx.get("seccompProfile") or {}).get(
        "type"
    )
    if seccomp != "RuntimeDefault":
        problems.append("seccompProfile is not RuntimeDefault")
    return problems


def _needs_probes(ref: ContainerRef) -> bool:
    if ref.init or ref.owner.get("kind") in PROBE_EXEMPT_KINDS:
        return False
    # A bare Pod that never restarts (the Airflow task-pod template) runs to completion like a Job.
    return not (ref.owner.get("kind") == "Pod" and ref.pod.get("restartPolicy") == "Never")


def check_containers(objects: Sequence[Obj], *, project_images_pinned: bool) -> list[str]:
    """Pinned images, requests+limits, probes (not for Jobs/init containers), non-root hardening."""
    violations = []
    for ref in containers(objects):
        problems = []
        image_issue = image_problem(
            str(ref.spec.get("image", "")), project_images_pinned=project_images_pinned
        )
        if image_issue:
            problems.append(image_issue)
        problems += _resources_problems(ref.spec)
        if _needs_probes(ref):
            problems += [
                f"no {probe}"
                for probe in ("livenessProbe", "readinessProbe")
                if probe not in ref.spec
            ]
        problems += _security_problems(ref)
        violations += [f"{ref.label}: {problem}" for problem in problems]
    return violations


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Kubernetes LabelSelector semantics (matchLabels + matchExpressions)."""
    if any(labels.get(key) != value for key, value in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = (
            expression["key"],
            expression["operator"],
            expression.get("values") or [],
        )
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def _namespace(obj: Obj) -> str:
    return str(obj.get("metadata", {}).get("namespace", "-"))


def _is_default_deny(policy: Obj) -> bool:
    spec = policy.get("spec", {})
    return (
        spec.get("podSelector") in ({}, None)
        and "Ingress" in (spec.get("policyTypes") or [])
        and not spec.get("ingress")
    )


def check_network_policies(objects: Sequence[Obj]) -> list[str]:
    """Default-deny ingress per namespace, an explicit allow for every long-running workload, and
    no allow rule whose podSelector matches no pod (a typo there silently blocks a client)."""
    policies = [o for o in objects if o.get("kind") == "NetworkPolicy"]
    workloads = [o for o in objects if pod_spec(o) is not None]
    violations = []
    for namespace in sorted({_namespace(o) for o in workloads}):
        if not any(_is_default_deny(p) for p in policies if _namespace(p) == namespace):
            violations.append(f"namespace {namespace}: no default-deny ingress NetworkPolicy")
    for workload in workloads:
        if workload.get("kind") in PROBE_EXEMPT_KINDS:
            continue  # clients only: nothing connects to a Job
        allowed = any(
            p.get("spec", {}).get("ingress")  # an empty list allows nothing
            and not _is_default_deny(p)
            and selector_matches(p["spec"].get("podSelector") or {}, pod_labels(workload))
            for p in policies
            if _namespace(p) == _namespace(workload)
        )
        if not allowed:
            violations.append(
                f"{ident(workload)}: no NetworkPolicy selects its pods with an explicit ingress allow"
            )
    for policy in policies:
        for rule in policy.get("spec", {}).get("ingress") or []:
            for peer in rule.get("from") or []:
                selector = peer.get("podSelector")
                if selector is None or "namespaceSelector" in peer:
                    continue
                if not any(
                    selector_matches(selector, pod_labels(w))
                    for w in workloads
                    if _namespace(w) == _namespace(policy)
                ):
                    violations.append(
                        f"{ident(policy)}: allow-from podSelector {selector} matches no pod"
                    )
    return violations


def _prometheus_cluster_role_problems(role: Obj) -> list[str]:
    problems = []
    for rule in role.get("rules") or []:
        if (rule.get("apiGroups") or []) != [""] or rule.get("nonResourceURLs"):
            problems.append(f"{ident(role)}: Prometheus may only read core-group nodes: {rule}")
            continue
        for resource in rule.get("resources") or []:
            extra = set(rule.get("verbs") or []) - PROMETHEUS_NODE_GRANTS.get(resource, frozenset())
            if extra:
                allowed = ", ".join(
                    f"{r} {'/'.join(sorted(v))}" for r, v in PROMETHEUS_NODE_GRANTS.items()
                )
                problems.append(
                    f"{ident(role)}: grants {sorted(extra)} on {resource}; Prometheus may only "
                    f"have {allowed}"
                )
    return problems


def _is_prometheus_cluster_binding(binding: Obj, service_accounts: set[tuple[str, str]]) -> bool:
    role_ref = binding.get("roleRef") or {}
    subjects = binding.get("subjects") or []
    return (
        role_ref.get("kind") == "ClusterRole"
        and role_ref.get("name") == PROMETHEUS_CLUSTER_ROLE
        and bool(subjects)
        and all(
            s.get("kind") == "ServiceAccount"
            and s.get("name") == PROMETHEUS_SERVICE_ACCOUNT
            and (s.get("namespace"), s.get("name")) in service_accounts
            for s in subjects
        )
    )


def check_cluster_rbac(objects: Sequence[Obj]) -> list[str]:
    """No cluster-scoped RBAC except Prometheus's read-only node access (see PROMETHEUS_*)."""
    service_accounts = {
        (_namespace(o), str(o["metadata"]["name"]))
        for o in objects
        if o.get("kind") == "ServiceAccount"
    }
    violations = []
    for obj in objects:
        kind, name = obj.get("kind"), obj.get("metadata", {}).get("name")
        if kind == "ClusterRole" and name == PROMETHEUS_CLUSTER_ROLE:
            violations += _prometheus_cluster_role_problems(obj)
        elif kind == "ClusterRoleBinding" and _is_prometheus_cluster_binding(obj, service_accounts):
            continue
        elif kind in ("ClusterRole", "ClusterRoleBinding"):
            violations.append(
                f"{ident(obj)}: cluster-scoped RBAC is not allowed (use a namespaced Role)"
            )
    return violations


def _port_matches(entry: Mapping[str, Any], port: int, protocol: str, named: set[str]) -> bool:
    if entry.get("protocol", "TCP") != protocol:
        return False
    wanted = entry.get("port")
    return wanted is None or wanted == port or (isinstance(wanted, str) and wanted in named)


def ingress_allowed(
    objects: Sequence[Obj], source: Obj, target: Obj, port: int, protocol: str
) -> bool:
    """NetworkPolicy semantics: may pods of ``source`` reach ``port``/``protocol`` of the pods of
    ``target`` (both workloads of one namespace)? Pod-selector peers only (no ipBlock)."""
    target_labels, source_labels = pod_labels(target), pod_labels(source)
    # the target's named ports that are this port/protocol (a policy may name the port)
    named = {
        str(p["name"])
        for c in (pod_spec(target) or {}).get("containers") or []
        for p in c.get("ports") or []
        if p.get("name") and p["containerPort"] == port and p.get("protocol", "TCP") == protocol
    }
    selecting = [
        p
        for p in objects
        if p.get("kind") == "NetworkPolicy"
        and _namespace(p) == _namespace(target)
        and "Ingress" in (p["spec"].get("policyTypes") or ["Ingress"])
        and selector_matches(p["spec"].get("podSelector") or {}, target_labels)
    ]
    if not selecting:
        return True  # a pod no policy selects is not isolated
    for policy in selecting:
        for rule in policy["spec"].get("ingress") or []:
            peers = rule.get("from") or []
            source_ok = not peers or any(
                "podSelector" in peer
                and "namespaceSelector" not in peer
                and selector_matches(peer["podSelector"], source_labels)
                for peer in peers
            )
            ports = rule.get("ports") or []
            port_ok = not ports or any(_port_matches(e, port, protocol, named) for e in ports)
            if source_ok and port_ok:
                return True
    return False


def check_rbac(objects: Sequence[Obj]) -> list[str]:
    """Namespace-scoped RBAC (but Prometheus's node access); no wildcards; the executor Role
    limited to pods/log/events."""
    violations = check_cluster_rbac(objects)
    for obj in objects:
        if obj.get("kind") == "Role":
            for rule in obj.get("rules") or []:
                if "*" in (rule.get("verbs") or []) or "*" in (rule.get("resources") or []):
                    violations.append(f"{ident(obj)}: wildcard verb or resource")
        if obj.get("kind") == "RoleBinding":
            if (obj.get("roleRef") or {}).get("kind") != "Role":
                violations.append(
                    f"{ident(obj)}: binds a {obj['roleRef'].get('kind')}, not a namespaced Role"
                )
            for subject in obj.get("subjects") or []:
                if subject.get("kind") == "ServiceAccount" and subject.get(
                    "namespace"
                ) != _namespace(obj):
                    violations.append(
                        f"{ident(obj)}: subject {subject.get('name')} in namespace "
                        f"{subject.get('namespace')}, not the binding's own namespace"
                    )
    executor_roles = {
        o["roleRef"]["name"]
        for o in objects
        if o.get("kind") == "RoleBinding"
        and any(s.get("name") == "airflow-scheduler" for s in o.get("subjects") or [])
    }
    if not executor_roles:
        violations.append(
            "no RoleBinding gives the Airflow scheduler (KubernetesExecutor) its Role"
        )
    for role in (
        o for o in objects if o.get("kind") == "Role" and o["metadata"]["name"] in executor_roles
    ):
        for rule in role.get("rules") or []:
            extra = set(rule.get("resources") or []) - EXECUTOR_RESOURCES
            if extra or (rule.get("apiGroups") or [""]) != [""]:
                violations.append(
                    f"{ident(role)}: the executor may only touch {sorted(EXECUTOR_RESOURCES)}, not {sorted(extra)}"
                )
    return violations


def check_all(objects: Sequence[Obj], *, project_images_pinned: bool) -> list[str]:
    return [
        *check_containers(objects, project_images_pinned=project_images_pinned),
        *check_network_policies(objects),
        *check_rbac(objects),
    ]
