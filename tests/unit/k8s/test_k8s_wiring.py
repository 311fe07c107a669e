"""The rendered objects fit together: references resolve, ports agree with platform/config,
the kind NodePorts match nodeports.env, and the Airflow task-pod template renders to a valid pod."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import k8s_policy
import pytest
import yaml
from k8s_helpers import (
    K8S_DIR,
    REPO,
    find,
    kubernetes_version,
    render_task_pod,
    schema_errors,
)

from stackctl.k8s import manifests

Objects = list[dict[str, Any]]
OVERLAYS = ("kind", "eks")


def read_env(path: Any) -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if line and not line.startswith("#")
    )
    return {key: value for key, value in pairs}


PORTS = read_env(REPO / "platform" / "config" / "ports.env")
NODEPORTS = read_env(K8S_DIR / "overlays" / "kind" / "nodeports.env")
# Service (name, port name) exposed for each ports.env key
EXPOSED = {
    "S3_PORT": ("s3", "s3"),
    "MLFLOW_PORT": ("mlflow", "http"),
    "AIRFLOW_API_PORT": ("airflow-api-server", "http"),
    "MODEL_SERVER_PORT": ("model-server", "http"),
    "PROMETHEUS_PORT": ("prometheus", "http"),
    "PUSHGATEWAY_PORT": ("pushgateway", "http"),
    "GRAFANA_PORT": ("grafana", "http"),
}


def names(objects: Objects, kind: str) -> set[str]:
    return {o["metadata"]["name"] for o in objects if o["kind"] == kind}


def service_port(objects: Objects, service: str, port_name: str) -> dict[str, Any]:
    ports = find(objects, "Service", service)["spec"]["ports"]
    return next(p for p in ports if p["name"] == port_name)


def test_nodeports_match_ports_env_and_the_kind_services(rendered: dict[str, Objects]) -> None:
    assert set(NODEPORTS) == set(EXPOSED), (
        "nodeports.env must list exactly the host-exposed Services"
    )
    for key, node_port in NODEPORTS.items():
        service, port_name = EXPOSED[key]
        port = service_port(rendered["kind"], service, port_name)
        assert find(rendered["kind"], "Service", service)["spec"]["type"] == "NodePort"
        assert port["nodePort"] == int(node_port), (
            f"{service}: nodePort differs from nodeports.env {key}"
        )
        assert port["port"] == int(PORTS[key]), f"{service}: port differs from ports.env {key}"
        assert 30000 <= int(node_port) <= 32767
    assert len(set(NODEPORTS.values())) == len(NODEPORTS), "two Services share a NodePort"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_service_ports_match_ports_env(rendered: dict[str, Objects], overlay: str) -> None:
    for key, (service, port_name) in EXPOSED.items():
        if service == "s3" and overlay == "eks":
            continue  # eks uses AWS S3 itself
        assert service_port(rendered[overlay], service, port_name)["port"] == int(PORTS[key])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_endpoint_urls_point_at_rendered_services(
    rendered: dict[str, Objects], overlay: str
) -> None:
    endpoints = find(rendered[overlay], "ConfigMap", "stack-endpoints")["data"]
    assert endpoints, "stack-endpoints is empty"
    if overlay == "eks":
        assert "S3_ENDPOINT_URL" not in endpoints, (
            "eks must use the AWS endpoint (no custom S3 URL)"
        )
    for key, url in endpoints.items():
        parts = urlsplit(url)
        ports = [
            p["port"]
            for p in find(rendered[overlay], "Service", str(parts.hostname))["spec"]["ports"]
        ]
        assert parts.port in ports, (
            f"{key}={url}: Service {parts.hostname} has no port {parts.port}"
        )


def _refs(objects: Objects) -> Iterator[tuple[str, str, str, bool, str | None]]:
    """(object, kind, name, optional, key) of every ConfigMap/Secret/SA/PVC reference of pods."""
    for ref in k8s_policy.containers(objects):
        where = ref.label
        for source in ref.spec.get("envFrom") or []:
            for field, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                if field in source:
                    yield (
                        where,
                        kind,
                        source[field]["name"],
                        bool(source[field].get("optional")),
                        None,
                    )
        for env in ref.spec.get("env") or []:
            for field, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                source = (env.get("valueFrom") or {}).get(field)
                if source:
                    yield where, kind, source["name"], bool(source.get("optional")), source["key"]
    for obj in objects:
        pod = k8s_policy.pod_spec(obj)
        if pod is None:
            continue
        where = k8s_policy.ident(obj)
        if pod.get("serviceAccountName"):
            yield where, "ServiceAccount", pod["serviceAccountName"], False, None
        for volume in pod.get("volumes") or []:
            if "configMap" in volume:
                yield where, "ConfigMap", volume["configMap"]["name"], False, None
            if "secret" in volume:
                yield where, "Secret", volume["secret"]["secretName"], False, None
            if "persistentVolumeClaim" in volume:
                yield (
                    where,
                    "PersistentVolumeClaim",
                    volume["persistentVolumeClaim"]["claimName"],
                    False,
                    None,
                )


def unresolved_references(objects: Objects) -> list[str]:
    problems = []
    for where, kind, name, optional, key in _refs(objects):
        target = next(
            (o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name), None
        )
        if target is None:
            problems.append(f"{where}: {kind} {name} is not rendered")
        elif (
            key is not None
            and not optional
            and key not in {*target.get("data", {}), *target.get("stringData", {})}
        ):
            problems.append(f"{where}: {kind} {name} has no key {key}")
    return problems


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_reference_resolves(rendered: dict[str, Objects], overlay: str) -> None:
    problems = unresolved_references(rendered[overlay])
    assert not problems, "\n".join(problems)


def test_a_dangling_reference_is_caught(rendered: dict[str, Objects]) -> None:
    statsd_mapping = find(rendered["kind"], "ConfigMap", "statsd-mapping")
    objects = [o for o in rendered["kind"] if o is not statsd_mapping]
    assert unresolved_references(objects) == [
        f"Deployment/mlops/airflow-statsd: ConfigMap {statsd_mapping['metadata']['name']} is not rendered"
    ]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_select_pods_and_name_their_ports(
    rendered: dict[str, Objects], overlay: str
) -> None:
    objects = rendered[overlay]
    workloads = [o for o in objects if k8s_policy.pod_spec(o) is not None]
    for service in (o for o in objects if o["kind"] == "Service"):
        selector = {"matchLabels": service["spec"]["selector"]}
        pods = [
            w for w in workloads if k8s_policy.selector_matches(selector, k8s_policy.pod_labels(w))
        ]
        assert pods, f"Service {service['metadata']['name']} selects no pod"
        container_ports = {
            p.get("name")
            for w in pods
            for c in k8s_policy.pod_spec(w)["containers"]
            for p in c.get("ports") or []  # type: ignore[index]
        }
        for port in service["spec"]["ports"]:
            target = port.get("targetPort")
            assert not isinstance(target, str) or target in container_ports, (
                f"Service {service['metadata']['name']}: targetPort {target} is no named container port"
            )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_task_pod_template_renders_to_a_valid_compliant_pod(
    rendered: dict[str, Objects], overlay: str
) -> None:
    objects = rendered[overlay]
    pod = render_task_pod(objects)
    assert pod["spec"]["containers"][0]["name"] == "base", (
        "the KubernetesExecutor requires container `base`"
    )
    scheduler_image = find(objects, "Deployment", "airflow-scheduler")["spec"]["template"]["spec"][
        "containers"
    ][0]["image"]
    assert pod["spec"]["containers"][0]["image"] == scheduler_image
    assert not schema_errors([pod], kubernetes_version())
    assert not k8s_policy.check_containers([pod], project_images_pinned=overlay == "eks")
    assert not unresolved_references([*objects, pod]), unresolved_references([*objects, pod])
    if overlay == "eks":
        git_sync = pod["spec"]["initContainers"][0]
        assert {e["name"]: e["value"] for e in git_sync["env"]}["GITSYNC_REF"] != "set-by-eks.env"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_airflow_processes_share_one_configuration(
    rendered: dict[str, Objects], overlay: str
) -> None:
    objects = rendered[overlay]
    config = find(objects, "ConfigMap", "airflow-config")["data"]
    api = urlsplit(config["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
    assert service_port(objects, str(api.hostname), "http")["port"] == api.port
    assert config["AIRFLOW__CORE__EXECUTOR"] == "KubernetesExecutor"
    scheduler = find(objects, "Deployment", "airflow-scheduler")
    assert config["AIRFLOW__KUBERNETES_EXECUTOR__NAMESPACE"] == scheduler["metadata"]["namespace"]
    airflow = [
        o
        for o in objects
        if o.get("metadata", {}).get("labels", {}).get("app.kubernetes.io/part-of") == "airflow"
        and o["kind"] in ("Deployment", "Job")
        and o["metadata"]["name"] != "airflow-statsd"
    ]
    assert {o["metadata"]["name"] for o in airflow} >= {
        "airflow-api-server",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "airflow-db-migrate",
    }
    for obj in airflow:
        container = k8s_policy.pod_spec(obj)["containers"][0]  # type: ignore[index]
        env = {e["name"] for e in container.get("env") or []}
        assert {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
            "AIRFLOW__API_AUTH__JWT_SECRET",
            "AIRFLOW__CORE__FERNET_KEY",
        } <= env
        prefixes = {s.get("prefix") for s in container["envFrom"]}
        assert "AIRFLOW_VAR_" in prefixes, (
            f"{obj['metadata']['name']}: no AIRFLOW_VAR_* from stack-config"
        )
    migrate = find(objects, "Job", "airflow-db-migrate")
    assert migrate["spec"]["template"]["spec"]["containers"][0]["args"] == ["db", "migrate"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_observability_configmaps_fit_their_consumers(
    rendered: dict[str, Objects], overlay: str
) -> None:
    objects = rendered[overlay]
    statsd = find(objects, "Deployment", "airflow-statsd")["spec"]["template"]["spec"][
        "containers"
    ][0]
    mapping_arg = next(a for a in statsd["args"] if a.startswith("--statsd.mapping-config="))
    assert mapping_arg.rsplit("/", 1)[-1] in find(objects, "ConfigMap", "statsd-mapping")["data"]
    rules = find(objects, "ConfigMap", "prometheus-alert-rules")["data"]
    assert rules
    assert all(key.endswith((".yaml", ".yml")) for key in rules), "rule_files globs *.yaml/*.yml"
    prometheus_config = yaml.safe_load(
        find(objects, "ConfigMap", "prometheus-config")["data"]["prometheus.yml"]
    )
    assert prometheus_config["rule_files"]
    dashboards = find(objects, "ConfigMap", "grafana-dashboards")["data"]
    assert dashboards
    assert all(key.endswith(".json") for key in dashboards)


def test_dev_secrets_cover_every_required_secret_key(rendered: dict[str, Objects]) -> None:
    required = {
        key
        for _, kind, name, optional, key in _refs(rendered["kind"])
        if kind == "Secret"
        and key is not None
        and not optional
        and name.startswith("stack-secrets")
    }
    assert required <= set(manifests.dev_secrets())
    assert required - {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(
        manifests.dev_secrets(with_static_s3_keys=False)
    )


def test_eks_uses_irsa_not_static_keys(rendered: dict[str, Objects]) -> None:
    objects = rendered["eks"]
    secret = find(objects, "Secret", "stack-secrets")
    assert "AWS_ACCESS_KEY_ID" not in secret["data"]
    assert "AWS_SECRET_ACCESS_KEY" not in secret["data"]
    for account in ("airflow", "mlflow"):
        annotations = find(objects, "ServiceAccount", account)["metadata"].get("annotations", {})
        assert annotations.get("eks.amazonaws.com/role-arn", "").startswith("arn:aws:iam::")
    assert "StatefulSet/mlops/seaweedfs" not in {k8s_policy.ident(o) for o in objects}
    claims = [o for o in objects if o["kind"] == "PersistentVolumeClaim"]
    templates = [
        t
        for o in objects
        if o["kind"] == "StatefulSet"
        for t in o["spec"].get("volumeClaimTemplates", [])
    ]
    assert all(c["spec"].get("storageClassName") == "gp3" for c in [*claims, *templates])
    assert find(objects, "StorageClass", "gp3")["parameters"]["type"] == "gp3"
    ingress = find(objects, "Ingress", "airflow-on-k8s")
    assert ingress["spec"]["ingressClassName"] == "alb"


def test_seed_job_reads_the_batches_the_airflow_image_carries(rendered: dict[str, Objects]) -> None:
    dockerfile = (REPO / "platform" / "images" / "Dockerfile").read_text(encoding="utf-8")
    command = find(rendered["kind"], "Job", "s3-seed-landing")["spec"]["template"]["spec"][
        "containers"
    ][0]["command"]
    batches_dir = command[command.index("--batches-dir") + 1]
    assert f"ai-analysis/data/batches {batches_dir}" in dockerfile


def test_eks_public_urls_come_from_the_ingress_host(rendered: dict[str, Objects]) -> None:
    objects = rendered["eks"]
    rules = find(objects, "Ingress", "airflow-on-k8s")["spec"]["rules"]
    base_url = find(objects, "ConfigMap", "airflow-config")["data"]["AIRFLOW__API__BASE_URL"]
    assert base_url == f"http://{rules[0]['host']}"
    assert rules[1]["host"] == f"grafana.{rules[0]['host']}"
    assert rules[0]["host"] == manifests.EKS_SAMPLE_SETTINGS["INGRESS_HOST"], (
        "eks.env INGRESS_HOST not applied"
    )


def nested_readonly_mounts(objects: Objects) -> list[str]:
    """Mounts placed inside a ConfigMap/Secret volume's mount: the kubelet cannot create their
    mount point in that read-only volume, so the container never starts."""
    problems = []
    for ref in k8s_policy.containers(objects):
        volumes = {v["name"]: v for v in ref.pod.get("volumes") or []}
        mounts = ref.spec.get("volumeMounts") or []
        readonly_roots = [
            m["mountPath"].rstrip("/") + "/"
            for m in mounts
            if {"configMap", "secret", "projected"} & set(volumes.get(m["name"], {}))
        ]
        problems += [
            f"{ref.label}: {m['mountPath']} is inside the ConfigMap/Secret mount {root}"
            for m in mounts
            for root in readonly_roots
            if m["mountPath"].startswith(root)
        ]
    return problems


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_mount_inside_a_configmap_mount(rendered: dict[str, Objects], overlay: str) -> None:
    assert not nested_readonly_mounts(rendered[overlay])
    nested = copy.deepcopy(find(rendered[overlay], "Deployment", "prometheus"))
    mounts = nested["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    next(m for m in mounts if m["name"] == "config")["mountPath"] = "/etc/prometheus"
    assert nested_readonly_mounts([nested]) == [
        f"Deployment/mlops/prometheus container prometheus: /etc/prometheus/{inner} is inside "
        "the ConfigMap/Secret mount /etc/prometheus/"
        for inner in ("rules", "mlflow")
    ]
