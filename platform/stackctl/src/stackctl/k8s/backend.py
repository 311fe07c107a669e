"""`KindBackend`: the stack on an ephemeral kind cluster (`stackctl up --backend kind`).

`up()` runs these stages, each with its own deadline, timing each into
reports/kind/durations.json:

  preflight -> render (dev secrets, `kubectl kustomize`, kind config) -> build (project images)
  -> push (to the cluster's local registry, stackctl.k8s.kind_registry) -> create (kind cluster,
  unless a running one has the same fingerprint; the nodes learn the registry) -> load (`kind load
  image-archive` of third-party images) -> apply (`kubectl apply --server-side`, project images
  by registry digest) -> wait (readiness engine)

and returns the Endpoints (host URLs through the kind port mappings, credentials from the
generated dev secrets). If a stage after `create` fails, diagnostics are collected into
reports/kind/diagnostics-<timestamp>/ and the cluster is deleted (unless `keep_cluster`); SIGINT
and SIGTERM take the same path. `running()` wraps up -> tests -> collect on failure -> delete for
test sessions. `down()` deletes the cluster recorded in .stack/kind/state.json; `--purge` also
removes the registry and the images it holds.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from pydantic import SecretStr
from rich.console import Console

from stackcontract.endpoints import Endpoints
from stackcontract.envfile import parse_env_file
from stackcontract.settings import StackConfig
from stackctl.backend import options_from_choices
from stackctl.images.project import REPORTS
from stackctl.images.registry import push
from stackctl.images.standins import ImageResolver
from stackctl.k8s import deploy, images, kind, kind_registry, preflight, readiness
from stackctl.k8s.commands import Runner, require_tool, run_command
from stackctl.k8s.diagnostics import AirflowAccess, Collector, diagnostics_dir
from stackctl.k8s.stages import DEFAULT_STAGE_DEADLINES, StageRecorder
from stackctl.k8s.versions import KindVersions, load_versions

# Health endpoint per ports.env key, probed through the host port mapping. Ports not listed here
# must merely answer HTTP without a server error.
HEALTH_CHECKS: dict[str, tuple[str, tuple[int, ...]]] = {
    "MLFLOW_PORT": ("/health", (200,)),
    "AIRFLOW_API_PORT": ("/api/v2/monitor/health", (200,)),
    "MODEL_SERVER_PORT": ("/health", (200,)),
    "PROMETHEUS_PORT": ("/-/ready", (200,)),
    "PUSHGATEWAY_PORT": ("/-/ready", (200,)),
    "GRAFANA_PORT": ("/api/health", (200,)),
    "S3_PORT": ("/", (200, 403)),  # anonymous S3 requests may be refused: it still answers
}
ANY_ANSWER = tuple(range(200, 500))
AIRFLOW_ENV = Path("platform/config/services/airflow.env")
REQUIRED_PORTS = ("S3_PORT", "MLFLOW_PORT", "AIRFLOW_API_PORT", "MODEL_SERVER_PORT")
OPTIONAL_PORTS = {
    "prometheus_url": "PROMETHEUS_PORT",
    "pushgateway_url": "PUSHGATEWAY_PORT",
    "grafana_url": "GRAFANA_PORT",
}


class KindBackendError(RuntimeError):
    """The kind backend cannot bring the stack up; the message says what failed and the fix."""


@dataclass
class KindOptions:
    keep_cluster: bool = field(
        default_factory=lambda: os.environ.get("STACK_KIND_KEEP_CLUSTER", "") == "1"
    )
    reuse: bool = True
    deadlines: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_STAGE_DEADLINES))
    policy: readiness.ReadinessPolicy = field(default_factory=readiness.ReadinessPolicy)
    image_cache: Path = field(default_factory=images.default_cache_dir)
    reports_dir: Path | None = None  # default <repo>/reports/kind

    @classmethod
    def from_choices(cls, choices: Mapping[str, Any] | KindOptions | None) -> KindOptions:
        """Options from the `stackctl up` choices. The local backend's choices (object store,
        first training, ...) are not the kind backend's: the overlay decides those."""
        return options_from_choices(
            cls,
            choices,
            backend="kind",
            hint="the kind overlay (platform/k8s/overlays/kind) decides the object store and the rest",
        )


@dataclass(frozen=True)
class RenderedStack:
    manifests_text: str
    manifests: list[dict[str, Any]]
    kind_config: dict[str, Any]
    mappings: list[kind.PortMapping]
    secrets: dict[str, str]
    images: list[str]

    def pinned_text(self, pinned: Mapping[str, str], registry: str) -> str:
        """What is applied: the manifests with project images by registry digest, and the
        ConfigMap that says where the cluster's registry is."""
        docs = [*kind_registry.pin_images(self.manifests, pinned)]
        docs.append(kind_registry.local_registry_hosting(registry))
        return yaml.safe_dump_all(docs, sort_keys=False)


class KindBackend:
    name = "kind"

    def __init__(
        self,
        config: StackConfig,
        *,
        state_dir: Path | None = None,
        console: Console | None = None,
        options: Mapping[str, Any] | KindOptions | None = None,
        runner: Runner = run_command,
        probes: preflight.Probes | None = None,
        docker_client: Callable[[], Any] | None = None,
        reader: readiness.ClusterReader | None = None,
        http_client: httpx.Client | None = None,
        registry: Callable[[], kind_registry.KindRegistry] | None = None,
    ) -> None:
        self.config = config
        self.options = KindOptions.from_choices(options)
        self.console = console
        self.runner = runner
        self.probes = probes
        self._docker_client = docker_client
        self._reader = reader
        self._http_client = http_client
        self._registry_factory = registry
        self.root = self.config.repo_root
        self.state_dir = state_dir or self.config.state_dir / "kind"
        self.reports_dir = self.options.reports_dir or self.root / "reports" / "kind"
        self.recorder = StageRecorder(
            self.reports_dir / "durations.json", deadlines=dict(self.options.deadlines)
        )
        self.cluster: str | None = None

    # -- paths and state --------------------------------------------------------------------
    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    @property
    def endpoints_file(self) -> Path:
        return self.state_dir / "endpoints.json"

    def cluster_dir(self, cluster: str) -> Path:
        return self.state_dir / "clusters" / cluster

    def kubeconfig(self, cluster: str) -> Path:
        return self.cluster_dir(cluster) / "kubeconfig"

    def _save_state(self, **values: str) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(values, indent=2) + "\n")

    def _load_state(self) -> dict[str, str]:
        if not self.state_file.is_file():
            return {}
        data: dict[str, str] = json.loads(self.state_file.read_text())
        return data

    # -- Backend protocol -------------------------------------------------------------------
    def up(self) -> Endpoints:
        versions = load_versions(self.root)
        self.recorder.run_info = {"backend": "kind", "kind_version": versions.kind_version}
        with self.recorder.stage("preflight"):
            preflight.run_preflight(versions, self.probes)
        kind_bin = require_tool("kind", fix=versions.kind_install_fix())
        kubectl = require_tool("kubectl", fix=versions.kubectl_install_fix())
        cli = kind.KindCli(kind_bin, kubectl, self.runner)
        with self.recorder.stage("render") as deadline:
            stack = self.render(kubectl, versions, deadline.remaining())
        with self.recorder.stage("build"):
            prepared = self._build_images(stack.images)
        with self.recorder.stage("push"):
            registry = self._registry()
            registry.ensure()
            pinned = self._push(registry, prepared)
        applied = stack.pinned_text(pinned, registry.address)
        config_text = yaml.safe_dump(stack.kind_config, sort_keys=False)
        digests = {p.reference: p.digest for p in prepared}
        wanted = kind.fingerprint(config_text, stack.manifests_text, digests, versions.kind_version)
        reused = cli.find_reusable(wanted, self.kubeconfig) if self.options.reuse else None
        cluster = reused or kind.new_cluster_name()
        self.cluster = cluster
        self.recorder.run_info["cluster"] = cluster
        kubeconfig = self.kubeconfig(cluster)
        self._save_state(cluster=cluster, kubeconfig=str(kubeconfig), fingerprint=wanted)
        with kind.teardown_on_signals():
            try:
                if reused:
                    for stage in ("create", "load", "apply"):
                        self.recorder.skip(stage, f"reused {cluster}: fingerprint {wanted[:12]}")
                else:
                    self._create_load_apply(
                        cli, cluster, versions, config_text, registry, applied, prepared
                    )
                    cli.write_fingerprint(cluster, self.kubeconfig(cluster), wanted, 60)
                endpoints = self._wait_and_report(stack, kubeconfig, cluster, reused=bool(reused))
            except BaseException:
                self._on_failure(cli, cluster)
                raise
        return endpoints

    def endpoints(self) -> Endpoints:
        return Endpoints.load(self.endpoints_file)

    def up_phases(self) -> dict[str, float]:
        return {r.stage: r.duration_seconds for r in self.recorder.records if r.outcome == "ok"}

    def collect_logs(self, dest: Path) -> Path:
        state = self._load_state()
        cluster = state.get("cluster")
        if not cluster:  # failed before `create`, or up() already collected and deleted it
            dest.mkdir(parents=True, exist_ok=True)
            index = dest / "index.md"
            index.write_text(
                "# Diagnostics\n\nNo kind cluster is recorded in "
                f"{self.state_file}: nothing is running to collect from. Diagnostics of a failed "
                f"`up` are in {self.reports_dir}/diagnostics-*/ and stage durations in "
                f"{self.recorder.path}.\n"
            )
            return index
        versions = load_versions(self.root)
        kubectl = require_tool("kubectl", fix=versions.kubectl_install_fix())
        kind_bin = require_tool("kind", fix=versions.kind_install_fix())
        airflow = None
        with suppress(FileNotFoundError, ValueError):
            ep = self.endpoints()
            airflow = AirflowAccess(
                ep.airflow_url, ep.airflow_username, ep.airflow_password.get_secret_value()
            )
        collector = Collector(
            runner=self.runner,
            kubectl=kubectl,
            kubeconfig=Path(state.get("kubeconfig", self.kubeconfig(cluster))),
            context=kind.kube_context(cluster),
            namespace=state.get("namespace", "mlops"),
            kind=kind_bin,
            cluster=cluster,
            airflow=airflow,
        )
        return collector.collect(dest)

    def down(self, *, purge: bool = False) -> None:
        state = self._load_state()
        cluster = state.get("cluster")
        if cluster:
            versions = load_versions(self.root)
            kind_bin = require_tool("kind", fix=versions.kind_install_fix())
            cli = kind.KindCli(kind_bin, "kubectl", self.runner)
            if not self.recorder.records:  # a new process: append to the run that made it
                self.recorder.resume(cluster=cluster)
            with self.recorder.stage("delete") as deadline:
                cli.delete(cluster, None, deadline.remaining())
            shutil.rmtree(self.cluster_dir(cluster), ignore_errors=True)
        self.endpoints_file.unlink(missing_ok=True)
        self.state_file.unlink(missing_ok=True)
        if purge:
            self._remove_registry()
            shutil.rmtree(self.state_dir, ignore_errors=True)
            with suppress(deploy.DeployConfigError):
                deploy.secrets_env_path(self.root / deploy.KIND_OVERLAY).unlink(missing_ok=True)

    @contextmanager
    def running(self) -> Iterator[Endpoints]:
        """up -> (the caller's tests, timed as stage `test`) -> diagnostics on failure -> delete
        (unless keep_cluster). For pytest fixtures and the nox integration-kind session."""
        endpoints = self.up()
        failed = False
        try:
            with kind.teardown_on_signals(), self.recorder.stage("test"):
                yield endpoints
        except BaseException:
            failed = True
            raise
        finally:
            try:
                if failed:
                    with self.recorder.stage("collect"):
                        self.collect_logs(diagnostics_dir(self.reports_dir))
            finally:
                if not self.options.keep_cluster:
                    self.down()

    # -- stages -----------------------------------------------------------------------------
    def render(self, kubectl: str, versions: KindVersions, timeout: float) -> RenderedStack:
        """Dev secrets, the rendered overlay, and the kind config derived from its NodePorts."""
        overlay = self.root / deploy.KIND_OVERLAY
        secrets = deploy.ensure_dev_secrets(
            self.runner,
            sys.executable,
            self.root,
            deploy.secrets_env_path(overlay),
            deploy.required_secret_keys([self.root / deploy.K8S_DIR]),
            timeout,
        )
        text = deploy.render_overlay(self.runner, kubectl, overlay, timeout)
        docs = deploy.parse_manifests(text)
        node_ports = {
            key: int(value)
            for key, value in parse_env_file(self.root / kind.NODE_PORTS_ENV).items()
        }
        host_ports = {k.upper(): int(v) for k, v in self.config.ports.model_dump().items()}
        mappings = kind.node_port_mappings(node_ports, docs, host_ports)
        base = yaml.safe_load((self.root / kind.CLUSTER_CONFIG).read_text())
        config = kind.render_cluster_config(base, versions.node_image, mappings)
        return RenderedStack(
            text, docs, config, mappings, secrets, images.images_in_manifests(docs)
        )

    def _cluster_source(self, kubeconfig: Path, context: str) -> tuple[Any, Callable[[], None]]:
        """What the readiness engine reads: a kubernetes ApiClient (or the injected reader)."""
        if self._reader is not None:
            return self._reader, lambda: None
        from kubernetes import config as k8s_config

        new_client: Callable[..., Any] = k8s_config.new_client_from_config
        api = new_client(config_file=str(kubeconfig), context=context)
        return api, api.close

    def _docker(self) -> Any:
        if self._docker_client is not None:
            return self._docker_client()
        import docker

        return docker.from_env(timeout=600)

    def _build_images(self, references: list[str]) -> list[images.PreparedImage]:
        store = images.ImageStore(self._docker(), self.root, self.options.image_cache)
        return list(images.prepare_images(store, references))

    def _registry(self, *, resolve_image: bool = True) -> kind_registry.KindRegistry:
        """The cluster's local registry; its image is the pinned one, else the stand-in."""
        if self._registry_factory is not None:
            return self._registry_factory()
        client = self._docker()
        image = ""
        if resolve_image:
            resolver = ImageResolver(client, self.root, self.root / REPORTS, warn=self._say)
            image = resolver.resolve("registry").reference
        return kind_registry.KindRegistry(
            client, image, host_port=kind_registry.host_port_from_env()
        )

    def _remove_registry(self) -> None:
        from docker.errors import DockerException

        try:
            self._registry(resolve_image=False).remove(volume=True)
        except DockerException as error:  # no engine: nothing of ours can be running on it
            self._say(f"No Docker engine answers ({error}); the kind registry was not removed.")

    def _say(self, line: str) -> None:
        (self.console.print if self.console else print)(line)

    def _push(
        self, registry: kind_registry.KindRegistry, prepared: list[images.PreparedImage]
    ) -> dict[str, str]:
        """Push the built images; built reference -> `localhost:PORT/<name>@<digest>`."""
        client, pinned = self._docker(), {}
        for image in prepared:
            if image.built:
                name, _, tag = image.reference.rpartition(":")
                pushed = push(client, [image.reference], registry=registry.address, tag=tag)
                pinned[image.reference] = pushed.images[name]
        return pinned

    def _create_load_apply(
        self,
        cli: kind.KindCli,
        cluster: str,
        versions: KindVersions,
        config_text: str,
        registry: kind_registry.KindRegistry,
        applied: str,
        prepared: list[images.PreparedImage],
    ) -> None:
        directory = self.cluster_dir(cluster)
        directory.mkdir(parents=True, exist_ok=True)
        config_path = directory / "cluster.yaml"
        config_path.write_text(config_text)
        kubeconfig = self.kubeconfig(cluster)
        with self.recorder.stage("create") as deadline:
            cli.create(cluster, config_path, versions.node_image, kubeconfig, deadline.remaining())
            registry.connect(kind_registry.KIND_NETWORK)
            for node in cli.nodes(cluster, timeout=deadline.remaining()):
                registry.configure_node(node)
        with self.recorder.stage("load") as deadline:
            for image in prepared:
                deadline.check()
                if image.archive is not None:
                    cli.load_archive(cluster, image.archive, deadline.remaining())
        with self.recorder.stage("apply") as deadline:
            manifest = directory / "manifests.yaml"
            manifest.write_text(applied)
            deploy.apply_manifests(
                self.runner, cli.kubectl, kubeconfig, kind.kube_context(cluster), manifest,
                deadline.remaining(),
            )  # fmt: skip

    def _wait_and_report(
        self, stack: RenderedStack, kubeconfig: Path, cluster: str, *, reused: bool
    ) -> Endpoints:
        namespaces = deploy.workload_namespaces(stack.manifests) or ["mlops"]
        self._save_state(
            cluster=cluster,
            kubeconfig=str(kubeconfig),
            namespace=namespaces[0],
            fingerprint=self._load_state().get("fingerprint", ""),
        )
        checks = health_checks(stack.mappings)
        with self.recorder.stage("wait") as deadline:
            source, close = self._cluster_source(kubeconfig, kind.kube_context(cluster))
            try:
                for namespace in namespaces:
                    readiness.wait_for_ready(
                        source,
                        namespace,
                        deadline,
                        expected=[
                            ref
                            for ref in deploy.expected_workloads(stack.manifests, namespace)
                            # a reused cluster's finished Jobs may be gone (ttlSecondsAfterFinished)
                            if not (reused and ref.startswith("Job/"))
                        ],
                        http_checks=checks if namespace == namespaces[-1] else (),
                        policy=self.options.policy,
                        http_client=self._http_client,
                    )
            finally:
                close()
        endpoints = build_endpoints(self.config, stack.mappings, stack.secrets)
        endpoints.dump(self.endpoints_file)
        return endpoints

    def _on_failure(self, cli: kind.KindCli, cluster: str) -> None:
        """Diagnostics, then delete the cluster unless asked to keep it; errors here are
        swallowed so the original failure is the one reported."""
        if self.cluster_dir(cluster).joinpath("kubeconfig").is_file():
            with suppress(Exception), self.recorder.stage("collect"):
                self.collect_logs(diagnostics_dir(self.reports_dir))
        if self.options.keep_cluster:
            return
        with suppress(Exception), self.recorder.stage("delete") as deadline:
            cli.delete(cluster, None, deadline.remaining())
        self.state_file.unlink(missing_ok=True)


def health_checks(mappings: list[kind.PortMapping]) -> list[readiness.HttpCheck]:
    """One HTTP check per mapped host port."""
    checks = []
    for m in mappings:
        path, expected = HEALTH_CHECKS.get(m.port_key, ("/", ANY_ANSWER))
        checks.append(
            readiness.HttpCheck(
                m.port_key.removesuffix("_PORT").lower(),
                f"http://127.0.0.1:{m.host_port}{path}",
                expected,
            )
        )
    return checks


def airflow_admin_user(root: Path) -> str:
    """The first user of the simple auth manager (`user:role,...` in the declared airflow.env)."""
    path = root / AIRFLOW_ENV
    users = parse_env_file(path).get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "")
    name = users.split(",", 1)[0].split(":", 1)[0].strip()
    if not name:
        raise KindBackendError(f"{path} sets no AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS user.")
    return name


def build_endpoints(
    config: StackConfig, mappings: list[kind.PortMapping], secrets: Mapping[str, str]
) -> Endpoints:
    """Host URLs through the kind port mappings, credentials from the dev secrets."""
    urls = {m.port_key: f"http://127.0.0.1:{m.host_port}" for m in mappings}
    missing = [key for key in REQUIRED_PORTS if key not in urls]
    if missing:
        raise KindBackendError(
            f"The kind overlay exposes no NodePort for {', '.join(missing)}: the tests could not "
            "reach those services. Add NodePort Services on those ports.env ports."
        )
    password = secrets.get("AIRFLOW_ADMIN_PASSWORD")
    if password is None:
        raise KindBackendError(
            "The dev secrets hold no AIRFLOW_ADMIN_PASSWORD: the Airflow API cannot be reached."
        )
    optional = {name: urls.get(key) for name, key in OPTIONAL_PORTS.items()}
    return Endpoints(
        backend="kind",
        s3_url=urls["S3_PORT"],
        s3_access_key=secrets["AWS_ACCESS_KEY_ID"],
        s3_secret_key=SecretStr(secrets["AWS_SECRET_ACCESS_KEY"]),
        s3_bucket=config.bucket,
        mlflow_url=urls["MLFLOW_PORT"],
        mlflow_username=secrets.get("MLFLOW_TRACKING_USERNAME"),
        mlflow_password=secrets.get("MLFLOW_TRACKING_PASSWORD"),
        airflow_url=urls["AIRFLOW_API_PORT"],
        airflow_username=airflow_admin_user(config.repo_root),
        airflow_password=SecretStr(password),
        model_server_url=urls["MODEL_SERVER_PORT"],
        model_server_reload_token=secrets.get("MODEL_SERVER_RELOAD_TOKEN"),
        model_name=config.model_name,
        **optional,
    )
