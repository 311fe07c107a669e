"""Our policy rules on the rendered overlays, and proof that each rule bites."""

from __future__ import annotations

import copy
from typing import Any

import k8s_policy
import pytest
from k8s_helpers import find

Objects = list[dict[str, Any]]
# kind runs locally built `airflow-on-k8s/<name>:dev` images; eks must run release digests.
PROJECT_PINNED = {"kind": False, "eks": True, "s3-minio": True}


@pytest.mark.parametrize("target", ["kind", "eks"])
def test_overlay_meets_every_policy(rendered: dict[str, Objects], target: str) -> None:
    violations = k8s_policy.check_all(
        rendered[target], project_images_pinned=PROJECT_PINNED[target]
    )
    assert not violations, "\n".join(violations)


def test_minio_variant_containers_meet_policy(rendered: dict[str, Objects]) -> None:
    violations = k8s_policy.check_containers(rendered["s3-minio"], project_images_pinned=True)
    assert not violations, "\n".join(violations)


def test_every_workload_and_container_is_checked(rendered: dict[str, Objects]) -> None:
    checked = {ref.label for ref in k8s_policy.containers(rendered["kind"])}
    # spot-check that the walker reaches init containers, Jobs and DaemonSets, not only Deployments
    assert "Deployment/mlops/airflow-scheduler initContainer render-pod-template" in checked
    assert "Job/mlops/airflow-db-migrate container db-migrate" in checked
    assert "DaemonSet/mlops/node-exporter container node-exporter" in checked
    assert len(checked) >= 20


def _container(objects: Objects, kind: str, name: str, container: str) -> dict[str, Any]:
    spec = k8s_policy.pod_spec(find(objects, kind, name))
    assert spec is not None
    return next(
        c for c in [*spec.get("initContainers", []), *spec["containers"]] if c["name"] == container
    )


def _violations_after(rendered: dict[str, Objects], mutate: Any, target: str = "kind") -> list[str]:
    objects = copy.deepcopy(rendered[target])
    mutate(objects)
    return k8s_policy.check_all(objects, project_images_pinned=PROJECT_PINNED[target])


def test_dropping_a_probe_is_caught(rendered: dict[str, Objects]) -> None:
    def drop(objects: Objects) -> None:
        del _container(objects, "Deployment", "model-server", "model-server")["readinessProbe"]

    assert _violations_after(rendered, drop) == [
        "Deployment/mlops/model-server container model-server: no readinessProbe"
    ]


def test_unpinning_a_third_party_image_is_caught(rendered: dict[str, Objects]) -> None:
    def unpin(objects: Objects) -> None:
        container = _container(objects, "StatefulSet", "postgres", "postgres")
        container["image"] = container["image"].split("@")[0]

    (violation,) = _violations_after(rendered, unpin)
    assert violation.startswith("StatefulSet/mlops/postgres container postgres: third-party image")


def test_a_project_tag_on_eks_is_caught(rendered: dict[str, Objects]) -> None:
    def retag(objects: Objects) -> None:
        _container(objects, "Deployment", "mlflow", "mlflow")["image"] = "airflow-on-k8s/mlflow:dev"

    (violation,) = _violations_after(rendered, retag, target="eks")
    assert violation.startswith("Deployment/mlops/mlflow container mlflow: project image")


def test_latest_and_missing_limits_and_root_are_caught(rendered: dict[str, Objects]) -> None:
    def weaken(objects: Objects) -> None:
        container = _container(objects, "Deployment", "grafana", "grafana")
        container["image"] = "grafana/grafana:latest"
        del container["resources"]["limits"]["memory"]
        container["securityContext"]["allowPrivilegeEscalation"] = True
        del container["securityContext"]["runAsNonRoot"]  # falls back to the pod-level setting
        find(objects, "Deployment", "grafana")["spec"]["template"]["spec"]["securityContext"][
            "runAsNonRoot"
        ] = False

    violations = _violations_after(rendered, weaken)
    prefix = "Deployment/mlops/grafana container grafana: "
    assert prefix + "image 'grafana/grafana:latest' uses the mutable `latest` tag" in violations
    assert prefix + "no resources.limits.memory" in violations
    assert prefix + "allowPrivilegeEscalation is not false" in violations
    assert prefix + "runAsNonRoot is not true" in violations


def test_a_job_needs_no_probe_but_an_init_container_needs_resources(
    rendered: dict[str, Objects],
) -> None:
    def strip(objects: Objects) -> None:
        del _container(objects, "Deployment", "airflow-api-server", "auth-file")["resources"][
            "requests"
        ]

    violations = _violations_after(rendered, strip)
    assert (
        "Deployment/mlops/airflow-api-server initContainer auth-file: no resources.requests.cpu"
        in violations
    )
    assert not any(v.startswith("Job/") for v in violations)


def test_a_workload_without_network_policy_is_caught(rendered: dict[str, Objects]) -> None:
    def drop_policy(objects: Objects) -> None:
        objects.remove(find(objects, "NetworkPolicy", "postgres"))

    assert (
        "StatefulSet/mlops/postgres: no NetworkPolicy selects its pods with an explicit ingress allow"
        in (_violations_after(rendered, drop_policy))
    )


def test_missing_default_deny_and_dead_allow_rules_are_caught(rendered: dict[str, Objects]) -> None:
    def break_policies(objects: Objects) -> None:
        objects.remove(find(objects, "NetworkPolicy", "default-deny-ingress"))
        rule = find(objects, "NetworkPolicy", "postgres")["spec"]["ingress"][0]
        rule["from"][1]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] = "mlfow"  # typo

    violations = _violations_after(rendered, break_policies)
    assert "namespace mlops: no default-deny ingress NetworkPolicy" in violations
    assert any(
        v.startswith("NetworkPolicy/mlops/postgres: allow-from podSelector") for v in violations
    )


def test_cluster_scoped_or_widened_airflow_rbac_is_caught(rendered: dict[str, Objects]) -> None:
    def widen(objects: Objects) -> None:
        role = find(objects, "Role", "airflow-executor")
        role["rules"].append({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]})
        objects.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": "airflow"},
            }
        )

    violations = _violations_after(rendered, widen)
    assert (
        "ClusterRole/-/airflow: cluster-scoped RBAC is not allowed (use a namespaced Role)"
        in violations
    )
    assert any(
        v.startswith("Role/mlops/airflow-executor: the executor may only touch") for v in violations
    )


def test_prometheus_node_access_is_the_only_cluster_rbac_allowed(
    rendered: dict[str, Objects],
) -> None:
    """Prometheus's read-only node access passes (test_overlay_meets_every_policy); widening it,
    or binding it to anyone else (Airflow above all), is caught and named."""

    def widen(objects: Objects) -> None:
        role = find(objects, "ClusterRole", "mlops-prometheus-kubelet")
        role["rules"].append({"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]})
        role["rules"].append({"apiGroups": [""], "resources": ["nodes/proxy"], "verbs": ["create"]})
        binding = find(objects, "ClusterRoleBinding", "mlops-prometheus-kubelet")
        binding["subjects"].append(
            {"kind": "ServiceAccount", "name": "airflow-scheduler", "namespace": "mlops"}
        )

    violations = _violations_after(rendered, widen)
    role = "ClusterRole/-/mlops-prometheus-kubelet: grants "
    allowed = "Prometheus may only have nodes get/list/watch, nodes/metrics get, nodes/proxy get"
    assert violations == [
        f"{role}['list'] on pods; {allowed}",
        f"{role}['create'] on nodes/proxy; {allowed}",
        "ClusterRoleBinding/-/mlops-prometheus-kubelet: cluster-scoped RBAC is not allowed "
        "(use a namespaced Role)",
    ]


def test_selector_semantics() -> None:
    labels = {"app": "a", "tier": "web"}
    assert k8s_policy.selector_matches({}, labels)
    assert k8s_policy.selector_matches(
        {"matchExpressions": [{"key": "app", "operator": "In", "values": ["a"]}]}, labels
    )
    assert not k8s_policy.selector_matches({"matchLabels": {"app": "b"}}, labels)
    assert not k8s_policy.selector_matches(
        {"matchExpressions": [{"key": "x", "operator": "Exists"}]}, labels
    )
    assert not k8s_policy.selector_matches(
        {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["web"]}]}, labels
    )
