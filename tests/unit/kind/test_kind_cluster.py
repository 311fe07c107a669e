"""kind cluster config, names, fingerprints and CLI command construction (nothing is run)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from kind_helpers import RecordingRunner, ok

from stackcontract.envfile import parse_env_file
from stackcontract.settings import load_config
from stackctl.k8s import kind
from stackctl.k8s.commands import CommandResult
from stackctl.k8s.versions import load_versions

REPO = Path(__file__).resolve().parents[3]


def _service(
    name: str, port: int, node_port: int | None, kind_: str = "NodePort"
) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": "http", "port": port, "targetPort": "http"}
    if node_port is not None:
        entry["nodePort"] = node_port
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "mlops"},
        "spec": {"type": kind_, "ports": [entry]},
    }


HOST = {"MLFLOW_PORT": 5000, "S3_PORT": 8333, "GRAFANA_PORT": 3000}


def test_node_ports_env_maps_node_ports_to_ports_env_host_ports_with_overrides() -> None:
    docs = [
        _service("mlflow", 5000, 30500),
        _service("s3", 8333, 30833),
        _service("s3-metrics-random", 9327, None),  # no fixed nodePort: not host-exposed
        _service("internal", 5432, None, kind_="ClusterIP"),
    ]
    node_ports = {"S3_PORT": 30833, "MLFLOW_PORT": 30500}
    host = {**HOST, "MLFLOW_PORT": 15000}  # STACK_MLFLOW_PORT=15000
    mappings = kind.node_port_mappings(node_ports, docs, host)
    assert [(m.service, m.port_key, m.node_port, m.host_port) for m in mappings] == [
        ("s3", "S3_PORT", 30833, 8333),
        ("mlflow", "MLFLOW_PORT", 30500, 15000),
    ]


def test_node_ports_env_must_match_the_rendered_services() -> None:
    docs = [_service("mlflow", 5000, 30500)]
    with pytest.raises(kind.KindConfigError, match="NodePort 30999, but no rendered Service"):
        kind.node_port_mappings({"MLFLOW_PORT": 30999}, docs, HOST)
    with pytest.raises(kind.KindConfigError, match=r"NodePorts \[30500\] .* missing from"):
        kind.node_port_mappings({}, docs, HOST)
    with pytest.raises(kind.KindConfigError, match="POSTGRES_PORT, which is not a key"):
        kind.node_port_mappings({"POSTGRES_PORT": 30500}, docs, HOST)


def test_the_real_kind_overlay_maps_every_node_port_to_its_ports_env_port() -> None:
    rendered = subprocess.run(
        [sys.executable, "-m", "stackctl.k8s.manifests", "--root", str(REPO), "render", "kind"],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    docs = [d for d in yaml.safe_load_all(rendered) if isinstance(d, dict)]
    node_ports = {k: int(v) for k, v in parse_env_file(REPO / kind.NODE_PORTS_ENV).items()}
    config = load_config(environ={}, start=REPO)
    host = {k.upper(): int(v) for k, v in config.ports.model_dump().items()}
    mappings = kind.node_port_mappings(node_ports, docs, host)
    defaults = parse_env_file(REPO / "platform/config/ports.env")
    assert {(m.node_port, m.host_port) for m in mappings} == {
        (node_ports[key], int(defaults[key])) for key in node_ports
    }
    base = yaml.safe_load((REPO / kind.CLUSTER_CONFIG).read_text())
    cluster = kind.render_cluster_config(base, load_versions(REPO).node_image, mappings)
    published = cluster["nodes"][0]["extraPortMappings"]
    assert {p["hostPort"] for p in published} >= {
        int(defaults["MLFLOW_PORT"]),
        int(defaults["S3_PORT"]),
    }


def test_committed_cluster_config_is_static_and_renders_with_pins() -> None:
    base = yaml.safe_load((REPO / kind.CLUSTER_CONFIG).read_text())
    assert all("extraPortMappings" not in node for node in base["nodes"])  # ports.env is the source
    versions = load_versions(REPO)
    mappings = [kind.PortMapping("mlflow", "MLFLOW_PORT", 30500, 5000)]
    config = kind.render_cluster_config(base, versions.node_image, mappings)
    (node,) = config["nodes"]
    assert node["role"] == "control-plane"
    assert node["image"] == versions.node_image
    assert node["extraPortMappings"] == [
        {"containerPort": 30500, "hostPort": 5000, "listenAddress": "127.0.0.1", "protocol": "TCP"}
    ]
    assert "extraPortMappings" not in base["nodes"][0]  # the base is not mutated


def test_hand_written_port_mappings_are_rejected() -> None:
    base = {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "nodes": [{"role": "control-plane", "extraPortMappings": [{"containerPort": 1}]}],
    }
    with pytest.raises(kind.KindConfigError, match="generated"):
        kind.render_cluster_config(base, "img", [])


def test_versions_pin_kind_and_a_digest_node_image() -> None:
    versions = load_versions(REPO)
    assert re.fullmatch(r"v\d+\.\d+\.\d+", versions.kind_version)
    assert re.fullmatch(r"kindest/node:v[\d.]+@sha256:[0-9a-f]{64}", versions.node_image)
    assert versions.kubernetes_version.count(".") == 2
    assert versions.kind_version in versions.kind_install_fix()
    assert parse_env_file(REPO / "platform/kind/versions.env")["KUBECTL_VERSION"].startswith("v")


def test_cluster_names_are_unique_dns_labels() -> None:
    names = {kind.new_cluster_name() for _ in range(50)}
    assert len(names) == 50
    assert all(re.fullmatch(r"aok8s-[0-9a-f]{8}", n) for n in names)
    assert kind.kube_context("aok8s-12345678") == "kind-aok8s-12345678"


def test_fingerprint_is_stable_and_sensitive() -> None:
    base = kind.fingerprint("cfg", "manifests", {"a:1": "sha256:1", "b:1": "sha256:2"}, "v0.32.0")
    same = kind.fingerprint("cfg", "manifests", {"b:1": "sha256:2", "a:1": "sha256:1"}, "v0.32.0")
    assert base == same
    assert re.fullmatch(r"[0-9a-f]{64}", base)
    variants = [
        kind.fingerprint("cfg2", "manifests", {"a:1": "sha256:1", "b:1": "sha256:2"}, "v0.32.0"),
        kind.fingerprint("cfg", "manifests2", {"a:1": "sha256:1", "b:1": "sha256:2"}, "v0.32.0"),
        kind.fingerprint("cfg", "manifests", {"a:1": "sha256:9", "b:1": "sha256:2"}, "v0.32.0"),
        kind.fingerprint("cfg", "manifests", {"a:1": "sha256:1"}, "v0.32.0"),
        kind.fingerprint("cfg", "manifests", {"a:1": "sha256:1", "b:1": "sha256:2"}, "v0.31.0"),
    ]
    assert len({base, *variants}) == 6


def test_kind_command_construction(runner: RecordingRunner, tmp_path: Path) -> None:
    cli = kind.KindCli("/bin/kind", "/bin/kubectl", runner)
    cfg, kubeconfig, archive = tmp_path / "c.yaml", tmp_path / "kc", tmp_path / "img.tar"
    cli.create("aok8s-1", cfg, "kindest/node:v1@sha256:x", kubeconfig, timeout=300)
    cli.load_archive("aok8s-1", archive, timeout=60)
    cli.export_logs("aok8s-1", tmp_path / "logs", timeout=60)
    cli.delete("aok8s-1", None, timeout=60)
    assert runner.calls == [
        ["/bin/kind", "create", "cluster", "--name", "aok8s-1", "--config", str(cfg),
         "--image", "kindest/node:v1@sha256:x", "--kubeconfig", str(kubeconfig), "--wait", "270s"],
        ["/bin/kind", "load", "image-archive", str(archive), "--name", "aok8s-1"],
        ["/bin/kind", "export", "logs", str(tmp_path / "logs"), "--name", "aok8s-1"],
        ["/bin/kind", "delete", "cluster", "--name", "aok8s-1"],
    ]  # fmt: skip
    assert runner.timeouts == [300, 60, 60, 60]


def test_fingerprint_written_to_kube_system_configmap(
    runner: RecordingRunner, tmp_path: Path
) -> None:
    seen: list[str | None] = []

    def record(args: Any, **kw: Any) -> CommandResult:
        seen.append(kw.get("input_text"))
        return runner(args, **kw)

    kind.KindCli("kind", "kubectl", record).write_fingerprint(
        "aok8s-1", tmp_path / "kc", "f" * 64, 30
    )
    (argv,) = runner.calls
    assert argv[:5] == [
        "kubectl",
        "--kubeconfig",
        str(tmp_path / "kc"),
        "--context",
        "kind-aok8s-1",
    ]
    assert argv[5:8] == ["apply", "--server-side", "--field-manager=stackctl"]
    doc = yaml.safe_load(seen[0] or "")
    assert doc["metadata"] == {
        "name": "aok8s-fingerprint",
        "namespace": "kube-system",
        "labels": {"app.kubernetes.io/managed-by": "stackctl"},
    }
    assert doc["data"]["fingerprint"] == "f" * 64


def test_reuse_only_when_the_stored_fingerprint_matches(tmp_path: Path) -> None:
    runner = RecordingRunner(
        responses={
            ("kind", "get", "clusters"): ok("other\naok8s-aaaa0001\naok8s-bbbb0002\n"),
        }
    )
    for name in ("aok8s-aaaa0001", "aok8s-bbbb0002"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "kubeconfig").write_text("")
    stored = {"aok8s-aaaa0001": "old", "aok8s-bbbb0002": "wanted"}

    def answer(args: Any, **kw: Any) -> CommandResult:
        if args[:3] == ["kind", "get", "clusters"]:
            return runner(args, **kw)
        cluster = args[4].removeprefix("kind-")
        runner.calls.append(list(args))
        return CommandResult(list(args), 0, stored[cluster], "")

    cli = kind.KindCli("kind", "kubectl", answer)
    assert cli.find_reusable("wanted", lambda n: tmp_path / n / "kubeconfig") == "aok8s-bbbb0002"
    assert cli.find_reusable("nothing-matches", lambda n: tmp_path / n / "kubeconfig") is None
    # Clusters that are not ours ("other") are never inspected.
    assert not [c for c in runner.calls if "kind-other" in c]


def _delete_after_sigterm(deleted: list[bool]) -> None:
    try:
        with kind.teardown_on_signals():
            os.kill(os.getpid(), signal.SIGTERM)
    finally:
        deleted.append(True)


def test_sigterm_becomes_an_exception_so_finally_deletes_the_cluster() -> None:
    deleted: list[bool] = []
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(kind.TerminationRequestedError, match="SIGTERM"):
        _delete_after_sigterm(deleted)
    assert deleted == [True]
    assert signal.getsignal(signal.SIGTERM) == before


def test_ports_come_from_ports_env() -> None:
    config = load_config(environ={}, start=REPO)
    assert config.ports.mlflow_port == int(
        parse_env_file(REPO / "platform/config/ports.env")["MLFLOW_PORT"]
    )
