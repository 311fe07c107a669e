"""Metrics reach Prometheus: Airflow sends StatsD to the statsd-exporter (Service, port, protocol,
NetworkPolicy), and Prometheus scrapes the kubelets' cAdvisor with the RBAC that needs, keeping the
job names the alert rules match on."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

import k8s_policy
import pytest
import yaml
from k8s_helpers import REPO, find, render_task_pod

Objects = list[dict[str, Any]]
OVERLAYS = ("kind", "eks")
OBSERVABILITY = REPO / "platform" / "observability"
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount/"
# Airflow processes that emit StatsD (the statsd-exporter itself is part-of airflow too).
AIRFLOW_EMITTERS = (
    "airflow-api-server",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
)


def statsd_problems(objects: Objects) -> list[str]:
    """Why Airflow's StatsD would not reach the exporter (empty: it does)."""
    config = find(objects, "ConfigMap", "airflow-config")
    settings = config["data"]
    problems = [
        f"airflow-config: {key}={settings.get(key)!r}, expected {value!r}"
        for key, value in (
            ("AIRFLOW__METRICS__STATSD_ON", "True"),
            ("AIRFLOW__METRICS__STATSD_PORT", "9125"),
            ("AIRFLOW__METRICS__STATSD_PREFIX", "airflow"),
        )
        if settings.get(key) != value
    ]
    host, port = settings.get("AIRFLOW__METRICS__STATSD_HOST"), 9125
    service = next(
        (o for o in objects if o["kind"] == "Service" and o["metadata"]["name"] == host), None
    )
    if service is None:
        return [*problems, f"airflow-config: STATSD_HOST {host!r} is no rendered Service"]
    udp = [p for p in service["spec"]["ports"] if p["port"] == port and p["protocol"] == "UDP"]
    if not udp:
        return [*problems, f"Service/{host}: no UDP port {port} (Airflow's statsd_port)"]
    exporter = next(
        o
        for o in objects
        if k8s_policy.pod_spec(o) is not None
        and k8s_policy.selector_matches(
            {"matchLabels": service["spec"]["selector"]}, k8s_policy.pod_labels(o)
        )
    )
    container_port = next(
        p
        for c in k8s_policy.pod_spec(exporter)["containers"]  # type: ignore[index]
        for p in c.get("ports") or []
        if p.get("name") == udp[0]["targetPort"] or p["containerPort"] == udp[0]["targetPort"]
    )
    if container_port.get("protocol") != "UDP":
        problems.append(f"Service/{host}: targetPort {udp[0]['targetPort']} is not a UDP port")
    emitters = [find(objects, "Deployment", name) for name in AIRFLOW_EMITTERS]
    emitters.append(render_task_pod(objects))
    for emitter in emitters:
        spec = k8s_policy.pod_spec(emitter)
        assert spec is not None
        sources = {s.get("configMapRef", {}).get("name") for s in spec["containers"][0]["envFrom"]}
        if config["metadata"]["name"] not in sources:
            problems.append(f"{k8s_policy.ident(emitter)}: does not read airflow-config")
        if not k8s_policy.ingress_allowed(
            objects, emitter, exporter, container_port["containerPort"], "UDP"
        ):
            problems.append(
                f"{k8s_policy.ident(emitter)}: no NetworkPolicy lets it reach "
                f"{k8s_policy.ident(exporter)} on UDP {container_port['containerPort']}"
            )
    return problems


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_airflow_statsd_reaches_the_exporter(rendered: dict[str, Objects], overlay: str) -> None:
    problems = statsd_problems(rendered[overlay])
    assert not problems, "\n".join(problems)


def test_statsd_miswiring_is_caught(rendered: dict[str, Objects]) -> None:
    objects = copy.deepcopy(rendered["kind"])
    find(objects, "ConfigMap", "airflow-config")["data"]["AIRFLOW__METRICS__STATSD_HOST"] = "statsd"
    assert statsd_problems(objects) == [
        "airflow-config: STATSD_HOST 'statsd' is no rendered Service"
    ]
    objects = copy.deepcopy(rendered["kind"])
    objects.remove(find(objects, "NetworkPolicy", "airflow"))
    assert (
        "Deployment/mlops/airflow-scheduler: no NetworkPolicy lets it reach "
        "Deployment/mlops/airflow-statsd on UDP 9125"
    ) in statsd_problems(objects)


def test_statsd_prefix_matches_the_mapping(rendered: dict[str, Objects]) -> None:
    prefix = find(rendered["kind"], "ConfigMap", "airflow-config")["data"][
        "AIRFLOW__METRICS__STATSD_PREFIX"
    ]
    mapping = yaml.safe_load((OBSERVABILITY / "statsd-mapping.yaml").read_text())
    named = [m for m in mapping["mappings"] if m.get("action") != "drop"]
    assert named
    wrong = [m["match"] for m in named if not m["match"].startswith(f"{prefix}.")]
    assert not wrong, f"mappings not under the statsd prefix {prefix!r}: {wrong}"


def prometheus_config(objects: Objects) -> dict[str, Any]:
    text = find(objects, "ConfigMap", "prometheus-config")["data"]["prometheus.yml"]
    config: dict[str, Any] = yaml.safe_load(text)
    return config


def cadvisor_jobs(config: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Jobs that scrape every node's cAdvisor, through the API server proxy or the kubelet."""
    jobs = []
    for job in config["scrape_configs"]:
        roles = {sd.get("role") for sd in job.get("kubernetes_sd_configs") or []}
        paths = [
            str(r.get("replacement", ""))
            for r in job.get("relabel_configs") or []
            if r.get("target_label") == "__metrics_path__"
        ] + [str(job.get("metrics_path", ""))]
        if "node" in roles and any(p.endswith("/metrics/cadvisor") for p in paths):
            jobs.append(job)
    return jobs


def granted(objects: Objects, namespace: str, account: str) -> set[tuple[str, str]]:
    """(resource, verb) the ServiceAccount gets from ClusterRoleBindings (core API group)."""
    rules = []
    for binding in (o for o in objects if o["kind"] == "ClusterRoleBinding"):
        if any(
            (s.get("kind"), s.get("namespace"), s.get("name"))
            == ("ServiceAccount", namespace, account)
            for s in binding.get("subjects") or []
        ):
            rules += find(objects, "ClusterRole", binding["roleRef"]["name"]).get("rules") or []
    return {
        (resource, verb)
        for rule in rules
        if "" in (rule.get("apiGroups") or [])
        for resource in rule.get("resources") or []
        for verb in rule.get("verbs") or []
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_prometheus_scrapes_cadvisor_with_the_rights_it_needs(
    rendered: dict[str, Objects], overlay: str
) -> None:
    objects = rendered[overlay]
    (job,) = cadvisor_jobs(prometheus_config(objects))
    prometheus = find(objects, "Deployment", "prometheus")
    pod = k8s_policy.pod_spec(prometheus)
    assert pod is not None
    account = pod["serviceAccountName"]
    assert pod.get("automountServiceAccountToken") is not False, "the scrape uses the SA token"
    rights = granted(objects, prometheus["metadata"]["namespace"], account)
    assert {("nodes", "list"), ("nodes", "watch")} <= rights, (
        f"ServiceAccount {account}: node discovery needs nodes list/watch, has {sorted(rights)}"
    )
    via_proxy = "/proxy/" in str(job.get("relabel_configs"))
    needed = ("nodes/proxy", "get") if via_proxy else ("nodes/metrics", "get")
    assert needed in rights, f"ServiceAccount {account}: job {job['job_name']} needs {needed}"
    assert job["scheme"] == "https"
    assert job["authorization"]["credentials_file"].startswith(SA_DIR)
    assert job["tls_config"]["ca_file"].startswith(SA_DIR)


def test_the_cluster_dashboard_reads_cadvisor_metrics() -> None:
    # the panels the cAdvisor job exists for (a dashboard change must keep or revisit it)
    dashboard = (OBSERVABILITY / "dashboards" / "cluster.json").read_text()
    assert "container_cpu_usage_seconds_total" in dashboard
    assert "container_memory_working_set_bytes" in dashboard


def scrape_job_names(objects: Objects) -> set[str]:
    """Static job names, plus the app.kubernetes.io/name of every pod the `pods` job keeps."""
    config = prometheus_config(objects)
    names = {job["job_name"] for job in config["scrape_configs"]}
    pods_job = next(j for j in config["scrape_configs"] if j["job_name"] == "pods")
    assert {
        "source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_name"],
        "target_label": "job",
    } in pods_job["relabel_configs"]
    for obj in objects:
        if k8s_policy.pod_spec(obj) is None or obj["kind"] == "Job":
            continue
        template = obj["spec"]["template"]["metadata"]
        if (template.get("annotations") or {}).get("prometheus.io/scrape") == "true":
            names.add(template["labels"]["app.kubernetes.io/name"])
    return names


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_alert_rules_match_scrape_job_names(rendered: dict[str, Objects], overlay: str) -> None:
    objects = rendered[overlay]
    config = prometheus_config(objects)
    names = [job["job_name"] for job in config["scrape_configs"]]
    assert len(names) == len(set(names)), f"duplicate job names: {names}"
    alerts = (OBSERVABILITY / "alerts.yaml").read_text()
    referenced = set(re.findall(r'job="([^"]+)"', alerts))
    assert {"model-server", "airflow-statsd"} <= referenced
    missing = referenced - scrape_job_names(objects)
    assert not missing, f"alerts.yaml matches jobs no scrape config produces: {sorted(missing)}"
