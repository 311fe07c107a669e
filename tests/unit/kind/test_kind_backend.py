"""KindBackend end to end on a fake repository, with every external effect recorded instead of
run: kind/kubectl commands, the docker SDK, the cluster's API objects (recorded fixtures) and
the HTTP health checks. Nothing here pretends a cluster ran: it checks what *would* be run, in
which order, and what happens on failure."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kind_helpers import DIGEST, PUSHED_DIGEST, FakeDocker, load_fixture

from stackcontract.settings import load_config
from stackctl.k8s import backend as kind_backend
from stackctl.k8s import kind_registry, preflight
from stackctl.k8s.commands import CommandResult
from stackctl.k8s.readiness import ClusterSnapshot, DeployFailure, ReadinessPolicy

REPO = Path(__file__).resolve().parents[3]
NODE_PORTS = {
    "S3_PORT": 30833,
    "MLFLOW_PORT": 30500,
    "AIRFLOW_API_PORT": 30880,
    "MODEL_SERVER_PORT": 30800,
}
PORTS = {"S3_PORT": 8333, "MLFLOW_PORT": 5000, "AIRFLOW_API_PORT": 8080, "MODEL_SERVER_PORT": 8000}


def _service(key: str) -> dict[str, Any]:
    name = key.removesuffix("_PORT").lower().replace("_", "-")
    return {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "mlops"},
        "spec": {"type": "NodePort", "ports": [{"port": PORTS[key], "nodePort": NODE_PORTS[key]}]},
    }  # fmt: skip


RENDERED = yaml.safe_dump_all(
    [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "mlops"}},
        *(_service(key) for key in NODE_PORTS),
        {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "mlflow", "namespace": "mlops"},
            "spec": {"template": {"spec": {"containers": [
                {"name": "main", "image": "airflow-on-k8s/mlflow:dev"}]}}},
        },
        {
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "postgres", "namespace": "mlops"},
            "spec": {"template": {"spec": {"containers": [
                {"name": "main", "image": f"postgres:17-alpine@{DIGEST}"}]}}},
        },
    ]
)  # fmt: skip


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(REPO / "platform/config", root / "platform/config")
    for relative in ("platform/kind/versions.env", "platform/kind/cluster.yaml"):
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / relative, root / relative)
    overlay = root / "platform/k8s/overlays/kind"
    overlay.mkdir(parents=True)
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump({"secretGenerator": [{"name": "stack-secrets", "envs": ["secrets.env"]}]})
    )
    (overlay / "nodeports.env").write_text("".join(f"{k}={v}\n" for k, v in NODE_PORTS.items()))
    (root / "platform/k8s/base/airflow").mkdir(parents=True)
    (root / "platform/k8s/base/app.yaml").write_text(
        yaml.safe_dump({"env": [{"valueFrom": {"secretKeyRef": {"name": "stack-secrets", "key": "AWS_ACCESS_KEY_ID"}}}]})
    )  # fmt: skip
    (root / "platform/images").mkdir(parents=True)
    (root / "platform/images/Dockerfile").write_text("FROM scratch\n")
    return root


class FakeTools:
    """Answers kind/kubectl/python commands like the real tools would, recording each."""

    def __init__(self, existing: Sequence[str] = (), stored_fingerprint: str = "") -> None:
        self.calls: list[list[str]] = []
        self.existing = list(existing)
        self.stored_fingerprint = stored_fingerprint
        self.inputs: list[str | None] = []

    def __call__(self, args: Sequence[str], **kw: Any) -> CommandResult:
        argv = [str(a) for a in args]
        self.calls.append(argv)
        self.inputs.append(kw.get("input_text"))
        out = ""
        if argv[0] == sys.executable and "secrets" in argv:
            Path(argv[-1]).write_text(
                "AWS_ACCESS_KEY_ID=key\nAWS_SECRET_ACCESS_KEY=secret\nAIRFLOW_ADMIN_PASSWORD=pw\n"
            )
        elif argv[:2] == ["kubectl", "kustomize"]:
            out = RENDERED
        elif argv[:3] == ["kind", "get", "clusters"]:
            out = "\n".join(self.existing)
        elif argv[:3] == ["kind", "get", "nodes"]:
            out = f"{argv[argv.index('--name') + 1]}-control-plane\n"
        elif argv[:3] == ["kind", "create", "cluster"]:
            Path(argv[argv.index("--kubeconfig") + 1]).write_text("apiVersion: v1\n")
        elif "configmap" in argv and "get" in argv:
            out = self.stored_fingerprint
        if kw.get("stdout_path") is not None:
            kw["stdout_path"].write_text(out)
        return CommandResult(argv, 0, out, "")

    def commands(self) -> list[str]:
        """The calls, abbreviated to the tool and its verb."""
        short = []
        for argv in self.calls:
            if argv[0] == "kubectl":
                verb = next(a for a in argv[1:] if not a.startswith("-") and a not in argv[2:5:2])
                short.append(f"kubectl {verb}")
            elif argv[0] == "kind":
                short.append(" ".join(argv[:3]))
            else:
                short.append("stack-manifests secrets")
        return short


class Reader:
    def __init__(self, snapshot: ClusterSnapshot) -> None:
        self._snapshot = snapshot

    def snapshot(self, namespace: str) -> ClusterSnapshot:
        assert namespace == "mlops"
        return self._snapshot


READY = ClusterSnapshot(
    pods=[load_fixture("pod_running_ready")],
    deployments=[load_fixture("deployment_rolled_out")],
    statefulsets=[{**load_fixture("statefulset_ready"), "metadata": {"name": "postgres"}}],
)
CRASHING = ClusterSnapshot(pods=[load_fixture("pod_crashloop")])


def make_backend(
    repo: Path,
    tools: FakeTools,
    monkeypatch: pytest.MonkeyPatch,
    *,
    snapshot: ClusterSnapshot = READY,
    keep: bool = False,
    health: Callable[[httpx.Request], httpx.Response] = lambda _r: httpx.Response(200),
    docker: FakeDocker | None = None,
) -> kind_backend.KindBackend:
    client = docker or FakeDocker()

    def registry() -> kind_registry.KindRegistry:
        answering = lambda _url, timeout: httpx.Response(200)  # noqa: E731
        return kind_registry.KindRegistry(client, "registry:3.0.0", get=answering)

    monkeypatch.setattr(kind_backend, "require_tool", lambda name, fix: name)
    config = load_config(environ={"STACK_REPO_ROOT": str(repo), "STACK_MLFLOW_PORT": "15000"})
    options = kind_backend.KindOptions(
        keep_cluster=keep,
        policy=ReadinessPolicy(poll_interval_seconds=0.0, stable_polls=2),
        image_cache=repo / "cache",
        reports_dir=repo / "reports/kind",
    )
    probes = preflight.Probes(
        docker_info=lambda: {"NCPU": 4, "MemTotal": 16 * 1024**3, "ServerVersion": "28"},
        available_memory=lambda: 16 * 1024**3,
        disk_free=lambda _p: 100 * 1024**3,
        sysctl=lambda name: 10**6,
        which=lambda tool: tool,
        tool_output=lambda args: "0.32.0" if args[1] == "version" and len(args) == 3
        else json.dumps({"clientVersion": {"gitVersion": "v1.36.1"}}),
        node_image_problem=lambda _reference: None,
    )  # fmt: skip
    return kind_backend.KindBackend(
        config,
        options=options,
        runner=tools,
        probes=probes,
        docker_client=lambda: client,
        registry=registry,
        reader=Reader(snapshot),
        http_client=httpx.Client(transport=httpx.MockTransport(health)),
    )


def _stages(repo: Path) -> list[tuple[str, str]]:
    data = json.loads((repo / "reports/kind/durations.json").read_text())
    return [(s["stage"], s["outcome"]) for s in data["stages"]]


def test_up_runs_every_stage_in_order_and_reports_host_endpoints(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tools, docker = FakeTools(), FakeDocker()
    backend = make_backend(repo, tools, monkeypatch, docker=docker)
    endpoints = backend.up()

    assert tools.commands() == [
        "stack-manifests secrets", "kubectl kustomize", "kind get clusters", "kind create cluster",
        "kind get nodes", "kind load image-archive", "kubectl apply", "kubectl apply",
        "kubectl apply",
    ]  # fmt: skip
    create = tools.calls[3]
    assert create[create.index("--image") + 1] == backend_versions(repo)
    cluster = create[create.index("--name") + 1]
    kind_config = yaml.safe_load(Path(create[create.index("--config") + 1]).read_text())
    assert {(m["containerPort"], m["hostPort"]) for m in kind_config["nodes"][0]["extraPortMappings"]} == {
        (30833, 8333), (30500, 15000), (30880, 8080), (30800, 8000),
    }  # fmt: skip
    # the project image goes through the cluster's registry, by digest; third-party ones by archive
    loaded = [Path(c[3]).name for c in tools.calls if c[:3] == ["kind", "load", "image-archive"]]
    assert loaded == [f"sha256-{'d4' * 32}.tar"]
    assert docker.images.pushed == ["localhost:5001/airflow-on-k8s/mlflow:dev"]
    (run,) = docker.containers.runs
    assert (run["name"], run["ports"]) == ("kind-registry", {"5000/tcp": ("127.0.0.1", 5001)})
    assert docker.networks.connects == [("kind", "kind-registry")]
    node = docker.containers.store[f"{cluster}-control-plane"]
    assert node.execs == [["mkdir", "-p", "/etc/containerd/certs.d/localhost:5001"]]
    assert list(node.archives) == ["/etc/containerd/certs.d/localhost:5001"]
    applied = list(
        yaml.safe_load_all((backend.cluster_dir(cluster) / "manifests.yaml").read_text())
    )
    images = {c["image"] for d in applied if d["kind"] in {"Deployment", "StatefulSet"}
              for c in d["spec"]["template"]["spec"]["containers"]}  # fmt: skip
    assert images == {
        f"localhost:5001/airflow-on-k8s/mlflow@{PUSHED_DIGEST}",
        f"postgres:17-alpine@{DIGEST}",
    }
    (hosting,) = [d for d in applied if d["metadata"]["name"] == "local-registry-hosting"]
    assert hosting["metadata"]["namespace"] == "kube-public"
    assert yaml.safe_load(hosting["data"]["localRegistryHosting.v1"])["host"] == "localhost:5001"
    fingerprint_doc = yaml.safe_load(tools.inputs[-1] or "")
    assert fingerprint_doc["metadata"]["namespace"] == "kube-system"

    assert endpoints.backend == "kind"
    assert endpoints.mlflow_url == "http://127.0.0.1:15000"  # STACK_MLFLOW_PORT override
    assert endpoints.s3_url == "http://127.0.0.1:8333"
    assert (endpoints.airflow_username, endpoints.airflow_password.get_secret_value()) == (
        "admin",
        "pw",
    )
    assert endpoints.s3_access_key == "key"
    assert backend.endpoints() == endpoints
    assert json.loads(backend.state_file.read_text())["cluster"] == cluster
    assert _stages(repo) == [
        ("preflight", "ok"), ("render", "ok"), ("build", "ok"), ("push", "ok"), ("create", "ok"),
        ("load", "ok"), ("apply", "ok"), ("wait", "ok"),
    ]  # fmt: skip


def backend_versions(repo: Path) -> str:
    from stackctl.k8s.versions import load_versions

    return load_versions(repo).node_image


def test_failed_wait_collects_diagnostics_and_deletes_the_cluster(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tools = FakeTools()
    backend = make_backend(repo, tools, monkeypatch, snapshot=CRASHING)
    with pytest.raises(DeployFailure, match="CrashLoopBackOff"):
        backend.up()
    cluster = tools.calls[3][tools.calls[3].index("--name") + 1]
    assert tools.calls[-1] == ["kind", "delete", "cluster", "--name", cluster]
    assert tools.calls[-2][:3] == ["kind", "export", "logs"]
    (diag,) = (repo / "reports/kind").glob("diagnostics-*")
    index = (diag / "index.md").read_text()
    assert "kind-logs/" in index
    assert _stages(repo)[-3:] == [("wait", "failed"), ("collect", "ok"), ("delete", "ok")]
    assert not backend.state_file.exists()


def test_keep_cluster_leaves_a_failed_cluster_for_inspection(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tools = FakeTools()
    backend = make_backend(repo, tools, monkeypatch, snapshot=CRASHING, keep=True)
    with pytest.raises(DeployFailure):
        backend.up()
    assert not [c for c in tools.calls if c[:2] == ["kind", "delete"]]
    assert backend.state_file.exists()


def test_matching_fingerprint_reuses_the_cluster(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = FakeTools()
    make_backend(repo, first, monkeypatch, keep=True).up()
    state = json.loads((repo / ".stack/kind/state.json").read_text())
    again = FakeTools(existing=[state["cluster"]], stored_fingerprint=state["fingerprint"])
    endpoints = make_backend(repo, again, monkeypatch, keep=True).up()
    assert not [c for c in again.calls if c[:2] in (["kind", "create"], ["kind", "load"])]
    assert "kubectl apply" not in again.commands()
    assert endpoints.mlflow_url == "http://127.0.0.1:15000"
    assert _stages(repo)[-4:] == [
        ("create", "skipped"),
        ("load", "skipped"),
        ("apply", "skipped"),
        ("wait", "ok"),
    ]

    changed = FakeTools(existing=[state["cluster"]], stored_fingerprint="something-else")
    make_backend(repo, changed, monkeypatch, keep=True).up()
    assert [c for c in changed.calls if c[:3] == ["kind", "create", "cluster"]]


def test_running_deletes_after_tests_and_collects_only_on_failure(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tools = FakeTools()
    backend = make_backend(repo, tools, monkeypatch)
    with backend.running() as endpoints:
        assert endpoints.model_server_url == "http://127.0.0.1:8000"
    assert tools.calls[-1][:3] == ["kind", "delete", "cluster"]
    assert not list((repo / "reports/kind").glob("diagnostics-*"))

    failing = FakeTools()
    backend = make_backend(repo, failing, monkeypatch)
    with pytest.raises(AssertionError, match="a test failed"), backend.running():
        raise AssertionError("a test failed")
    assert failing.calls[-1][:3] == ["kind", "delete", "cluster"]
    assert len(list((repo / "reports/kind").glob("diagnostics-*"))) == 1
    assert ("test", "failed") in _stages(repo)


def test_endpoints_need_the_core_node_ports() -> None:
    config = load_config(environ={}, start=REPO)
    with pytest.raises(kind_backend.KindBackendError, match="no NodePort for MLFLOW_PORT"):
        kind_backend.build_endpoints(
            config,
            [kind_backend.kind.PortMapping("s3", k, 1, 2) for k in ("S3_PORT", "AIRFLOW_API_PORT", "MODEL_SERVER_PORT")],
            {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "AIRFLOW_ADMIN_PASSWORD": "p"},
        )  # fmt: skip


def test_health_checks_probe_each_mapped_port() -> None:
    mappings = [
        kind_backend.kind.PortMapping("mlflow", "MLFLOW_PORT", 30500, 5000),
        kind_backend.kind.PortMapping("x", "SOMETHING_PORT", 30001, 7000),
    ]
    checks = kind_backend.health_checks(mappings)
    assert [(c.name, c.url) for c in checks] == [
        ("mlflow", "http://127.0.0.1:5000/health"),
        ("something", "http://127.0.0.1:7000/"),
    ]
    assert checks[0].expected_status == (200,)
    assert 404 in checks[1].expected_status


def test_collect_logs_without_a_cluster_points_at_the_failed_runs_diagnostics(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = make_backend(repo, FakeTools(), monkeypatch)
    index = backend.collect_logs(repo / "out")
    text = index.read_text()
    assert "No kind cluster is recorded" in text
    assert str(repo / "reports/kind") in text


def test_down_from_a_new_process_deletes_the_recorded_cluster(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_backend(repo, FakeTools(), monkeypatch).up()
    cluster = json.loads((repo / ".stack/kind/state.json").read_text())["cluster"]
    later = FakeTools()
    make_backend(repo, later, monkeypatch).down()
    assert later.calls == [["kind", "delete", "cluster", "--name", cluster]]
    assert not (repo / ".stack/kind/state.json").exists()
    assert not (repo / ".stack/kind/endpoints.json").exists()
    assert _stages(repo)[-2:] == [("wait", "ok"), ("delete", "ok")]
    again = FakeTools()
    make_backend(repo, again, monkeypatch).down()  # nothing recorded: nothing to delete
    assert again.calls == []


def test_down_purge_removes_the_registry_and_its_images(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docker = FakeDocker()
    make_backend(repo, FakeTools(), monkeypatch, docker=docker).up()
    make_backend(repo, FakeTools(), monkeypatch, docker=docker).down()
    assert not docker.containers.store["kind-registry"].removed  # kept for the next cluster
    make_backend(repo, FakeTools(), monkeypatch, docker=docker).down(purge=True)
    assert docker.containers.store["kind-registry"].removed
    assert docker.volumes.removed == ["kind-registry-data"]


def test_down_purge_without_an_engine_says_the_registry_was_left(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from docker.errors import DockerException

    def no_engine() -> Any:
        raise DockerException("Error while fetching server API version")

    backend = make_backend(repo, FakeTools(), monkeypatch)
    backend._registry_factory = None
    backend._docker_client = no_engine
    backend.down(purge=True)
    assert "the kind registry was not removed" in capsys.readouterr().out
