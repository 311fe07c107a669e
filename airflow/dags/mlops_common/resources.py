"""Resource hints for heavy tasks: `executor_config={"pod_override": V1Pod}`.

KubernetesExecutor merges the override into the task's worker pod; other executors ignore
executor_config. Building a V1Pod needs the `kubernetes` package, whose import costs ~0.3 s (0.7 s
without a bytecode cache) -- more than the rest of a DAG file's parse. So the pod is only built when
the configured executor is KubernetesExecutor (whose provider has imported `kubernetes` in the DAG
processor already); elsewhere the hint is an empty dict. Reading `[core] executor` is a local config
lookup: no network, no database.
"""

from __future__ import annotations

from typing import Any


def kubernetes_executor_configured() -> bool:
    """True when `[core] executor` names KubernetesExecutor (alone or in a multi-executor list)."""
    from airflow.sdk import conf

    return "KubernetesExecutor" in (conf.get("core", "executor", fallback="") or "")


def pod_override(*, cpu: str, memory: str, cpu_limit: str | None = None) -> Any:
    """A V1Pod asking for `cpu`/`memory` (requests) and a memory limit on the `base` container."""
    from kubernetes.client import models as k8s

    limits = {"memory": memory} | ({"cpu": cpu_limit} if cpu_limit else {})
    return k8s.V1Pod(
        spec=k8s.V1PodSpec(
            containers=[
                k8s.V1Container(
                    name="base",
                    resources=k8s.V1ResourceRequirements(
                        requests={"cpu": cpu, "memory": memory}, limits=limits
                    ),
                )
            ]
        )
    )


def pod_resources(*, cpu: str, memory: str, cpu_limit: str | None = None) -> dict[str, Any]:
    """executor_config for a heavy task: a pod override under KubernetesExecutor, else {}."""
    if not kubernetes_executor_configured():
        return {}
    return {"pod_override": pod_override(cpu=cpu, memory=memory, cpu_limit=cpu_limit)}
