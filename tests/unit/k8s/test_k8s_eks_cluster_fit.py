"""The eks overlay fits platform/eks/cluster.yaml: pods land on the node groups meant for them
(nodeSelector matches the group's labels, tolerations cover its taints) and every IRSA
ServiceAccount carries the role of its own iam.serviceAccounts entry."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import k8s_policy
import pytest
import yaml
from k8s_helpers import REPO, find, render_task_pod

from stackctl.k8s import manifests

Objects = list[dict[str, Any]]
ROLE_ANNOTATION = "eks.amazonaws.com/role-arn"
# eks.env key of each IRSA ServiceAccount's role (platform/k8s/README.md; deploy-eks writes the
# same keys, checked in tests/unit/eks). Read here without stackctl: `nox -s manifests` runs these
# tests in the checkov environment, which has no workspace packages.
IRSA_ROLE_KEYS = {"IRSA_ROLE_ARN": "airflow", "IRSA_MLFLOW_ROLE_ARN": "mlflow"}
# Which rendered pod runs on which managed node group of cluster.yaml. The task pod is the
# KubernetesExecutor's template (ConfigMap airflow-pod-template, filled by the scheduler).
PLACEMENT = {
    "Pod/mlops/airflow-task": "airflow-workers",
    "Deployment/mlops/model-server": "model-server",
}


@pytest.fixture(scope="module")
def cluster() -> dict[str, Any]:
    # an eksctl template: ${VARIABLES} only inside strings, so it parses as plain YAML
    document: dict[str, Any] = yaml.safe_load(
        (REPO / "platform" / "eks" / "cluster.yaml").read_text()
    )
    return document


@pytest.fixture(scope="module")
def node_groups(cluster: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {group["name"]: group for group in cluster["managedNodeGroups"]}


def pods(objects: Objects) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(object id, pod spec) of every workload, plus the Airflow task pod the scheduler creates."""
    for obj in [*objects, render_task_pod(objects)]:
        spec = k8s_policy.pod_spec(obj)
        if spec is not None:
            yield k8s_policy.ident(obj), spec


def tolerates(tolerations: Sequence[Mapping[str, Any]], taint: Mapping[str, Any]) -> bool:
    """Kubernetes toleration semantics for one taint."""
    for toleration in tolerations:
        if toleration.get("effect") not in (None, "", taint["effect"]):
            continue
        if toleration.get("operator", "Equal") == "Exists":
            if toleration.get("key") in (None, "", taint["key"]):
                return True
        elif toleration.get("key") == taint["key"] and toleration.get("value", "") == taint.get(
            "value", ""
        ):
            return True
    return False


def fits(spec: Mapping[str, Any], group: Mapping[str, Any]) -> list[str]:
    """Why a pod cannot run on a node of ``group`` (empty: it can)."""
    labels = group.get("labels") or {}
    problems = [
        f"nodeSelector {key}={value} does not match the labels {labels} of node group "
        f"{group['name']}"
        for key, value in (spec.get("nodeSelector") or {}).items()
        if labels.get(key) != value
    ]
    problems += [
        f"no toleration for taint {t['key']}={t.get('value', '')}:{t['effect']} of node group "
        f"{group['name']}"
        for t in group.get("taints") or []
        if not tolerates(spec.get("tolerations") or [], t)
    ]
    return problems


def placement_problems(objects: Objects, groups: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Each PLACEMENT pod is pinned to (selects and tolerates) its group; every other pod fits
    some group (a nodeSelector/taint mismatch leaves it Pending forever)."""
    problems = []
    rendered = dict(pods(objects))
    for ident, group_name in PLACEMENT.items():
        if ident not in rendered:
            problems.append(f"{ident}: not rendered (expected on node group {group_name})")
            continue
        spec, group = rendered[ident], groups[group_name]
        if not spec.get("nodeSelector"):
            problems.append(
                f"{ident}: no nodeSelector, so it may run outside node group {group_name} "
                f"(labels {group.get('labels')})"
            )
        problems += [f"{ident}: {problem}" for problem in fits(spec, group)]
    for ident, spec in rendered.items():
        if ident not in PLACEMENT and all(fits(spec, group) for group in groups.values()):
            problems.append(f"{ident}: fits no node group of platform/eks/cluster.yaml")
    return problems


def test_eks_pods_land_on_their_node_groups(
    rendered: dict[str, Objects], node_groups: dict[str, dict[str, Any]]
) -> None:
    problems = placement_problems(rendered["eks"], node_groups)
    assert not problems, "\n".join(problems)


def test_the_placement_names_tainted_groups(node_groups: dict[str, dict[str, Any]]) -> None:
    # The groups are tainted; the placements above are what use them.
    for group_name in PLACEMENT.values():
        assert node_groups[group_name].get("taints"), f"node group {group_name} is not tainted"


def test_a_missing_toleration_or_wrong_selector_is_caught(
    rendered: dict[str, Objects], node_groups: dict[str, dict[str, Any]]
) -> None:
    objects = copy.deepcopy(rendered["eks"])
    model_server = find(objects, "Deployment", "model-server")["spec"]["template"]["spec"]
    del model_server["tolerations"]
    # a task pod template selecting the model-server group would starve training of its nodes
    template = find(objects, "ConfigMap", "airflow-pod-template")["data"]
    template["pod_template.yaml"] = template["pod_template.yaml"].replace(
        "workload: airflow-worker\n", "workload: model-server\n", 1
    )
    problems = placement_problems(objects, node_groups)
    assert (
        "Deployment/mlops/model-server: no toleration for taint workload=model-server:NoSchedule "
        "of node group model-server"
    ) in problems
    assert (
        "Pod/mlops/airflow-task: nodeSelector workload=model-server does not match the labels "
        "{'workload': 'airflow-worker'} of node group airflow-workers"
    ) in problems


def test_a_pod_fitting_no_node_group_is_caught(
    rendered: dict[str, Objects], node_groups: dict[str, dict[str, Any]]
) -> None:
    objects = copy.deepcopy(rendered["eks"])
    find(objects, "Deployment", "mlflow")["spec"]["template"]["spec"]["nodeSelector"] = {
        "workload": "gpu"
    }
    assert placement_problems(objects, node_groups) == [
        "Deployment/mlops/mlflow: fits no node group of platform/eks/cluster.yaml"
    ]


def test_kind_pods_select_no_node_group(rendered: dict[str, Objects]) -> None:
    # kind nodes carry no `workload` label: a nodeSelector there leaves the pod Pending.
    selecting = [ident for ident, spec in pods(rendered["kind"]) if spec.get("nodeSelector")]
    assert not selecting, f"nodeSelector on kind: {selecting}"


def test_each_irsa_account_has_the_role_of_its_own_key(
    rendered: dict[str, Objects], cluster: dict[str, Any]
) -> None:
    """An IRSA role trusts exactly one namespace/ServiceAccount: two accounts sharing one role
    ARN means one of them cannot assume it."""
    annotated = {
        (o["metadata"]["namespace"], o["metadata"]["name"]): o["metadata"]["annotations"][
            ROLE_ANNOTATION
        ]
        for o in rendered["eks"]
        if o["kind"] == "ServiceAccount"
        and ROLE_ANNOTATION in (o["metadata"].get("annotations") or {})
    }
    declared = {
        (sa["metadata"]["namespace"], sa["metadata"]["name"])
        for sa in cluster["iam"]["serviceAccounts"]
    }
    assert set(annotated) == declared, "rendered IRSA ServiceAccounts != cluster.yaml's"
    samples = manifests.EKS_SAMPLE_SETTINGS
    expected = {account: samples[key] for key, account in IRSA_ROLE_KEYS.items()}
    for (_, name), role in annotated.items():
        assert role == expected[name], f"ServiceAccount {name}: role {role}, not {expected[name]}"
    assert len(set(annotated.values())) == len(annotated), f"a role shared by two: {annotated}"
