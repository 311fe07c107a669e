"""Deploy the kind overlay: write the dev secrets file its secretGenerator reads (through
`stackctl.k8s.manifests`), render the overlay with `kubectl kustomize`, and apply it with
`kubectl apply --server-side`.

The overlay (platform/k8s/overlays/kind, owned by the Kubernetes engineer) generates the Secret
`stack-secrets` from an env file that is never committed. Its path is read from the overlay's
kustomization.yaml (the `secretGenerator` entry named `stack-secrets`), and the keys it must hold
from the `secretKeyRef`s of the manifests (checked against the file), so neither is repeated here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from stackcontract.envfile import parse_env_file
from stackctl.k8s.commands import Runner

SECRET_NAME = "stack-secrets"
KIND_OVERLAY = Path("platform/k8s/overlays/kind")
K8S_DIR = Path("platform/k8s")
SECRETS_GENERATOR = "stackctl.k8s.manifests"
FIELD_MANAGER = "stackctl"


class DeployConfigError(RuntimeError):
    """The overlay is not deployable as it stands; the message says what to change."""


def secrets_env_path(overlay_dir: Path) -> Path:
    """The env file of the overlay's `stack-secrets` secretGenerator."""
    kustomization = overlay_dir / "kustomization.yaml"
    if not kustomization.is_file():
        raise DeployConfigError(f"{kustomization} does not exist: the kind overlay is missing.")
    doc = yaml.safe_load(kustomization.read_text()) or {}
    for generator in doc.get("secretGenerator") or []:
        if generator.get("name") == SECRET_NAME:
            envs = generator.get("envs") or []
            if len(envs) != 1:
                raise DeployConfigError(
                    f"{kustomization}: secretGenerator {SECRET_NAME} must read exactly one env file."
                )
            return (overlay_dir / str(envs[0])).resolve()
    raise DeployConfigError(f"{kustomization} has no secretGenerator named {SECRET_NAME}.")


def _walk(node: Any) -> Iterator[Mapping[str, Any]]:
    if isinstance(node, Mapping):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def required_secret_keys(manifest_dirs: Sequence[Path]) -> list[str]:
    """Every key of `stack-secrets` referenced by a secretKeyRef under `manifest_dirs`."""
    keys: set[str] = set()
    for directory in manifest_dirs:
        for path in sorted(directory.rglob("*.yaml")):
            for doc in yaml.safe_load_all(path.read_text()):
                for node in _walk(doc):
                    ref = node.get("secretKeyRef")
                    if isinstance(ref, Mapping) and ref.get("name") == SECRET_NAME:
                        keys.add(str(ref["key"]))
    return sorted(keys)


def secrets_command(python: str, root: Path, path: Path, *, force: bool) -> list[str]:
    """The Kubernetes engineer's generator (`stack-manifests secrets`) writes the dev secrets."""
    args = [python, "-m", SECRETS_GENERATOR, "--root", str(root), "secrets", str(path)]
    return [*args, "--force"] if force else args


def ensure_dev_secrets(
    runner: Runner, python: str, root: Path, path: Path, keys: Sequence[str], timeout: float
) -> dict[str, str]:
    """The dev secrets env file, written by `stack-manifests secrets` if missing; kept if it already
    holds every required key (a re-run must not rotate a running cluster's credentials), rewritten
    (`--force`) if a key is missing, so a new secretKeyRef never deploys half-configured."""
    complete = path.is_file() and set(keys) <= set(parse_env_file(path))
    if not complete:
        runner(secrets_command(python, root, path, force=path.is_file()), timeout=timeout)
    values = parse_env_file(path) if path.is_file() else {}
    missing = sorted(set(keys) - set(values))
    if missing:
        raise DeployConfigError(
            f"{path} lacks {', '.join(missing)} although manifests reference them in "
            f"secretKeyRef: add them to dev_secrets() in {SECRETS_GENERATOR}."
        )
    return values


def kustomize_args(kubectl: str, overlay_dir: Path) -> list[str]:
    return [kubectl, "kustomize", str(overlay_dir)]


def render_overlay(runner: Runner, kubectl: str, overlay_dir: Path, timeout: float) -> str:
    """The overlay rendered by kubectl's built-in kustomize (YAML stream)."""
    return runner(kustomize_args(kubectl, overlay_dir), timeout=timeout).stdout


def parse_manifests(rendered: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(rendered) if isinstance(doc, dict)]


def apply_args(kubectl: str, kubeconfig: Path, context: str, manifest: Path) -> list[str]:
    """Server-side apply: kubectl computes no client-side diff, conflicts with other managers
    are taken over (`--force-conflicts`) since stackctl owns this cluster."""
    return [
        kubectl, "--kubeconfig", str(kubeconfig), "--context", context,
        "apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "--force-conflicts",
        "-f", str(manifest),
    ]  # fmt: skip


def delete_jobs_args(
    kubectl: str, kubeconfig: Path, context: str, namespace: str, names: Sequence[str]
) -> list[str]:
    """Delete these Jobs (if present) and wait until they are gone."""
    return [
        kubectl, "--kubeconfig", str(kubeconfig), "--context", context,
        "delete", "job", *names, "-n", namespace, "--ignore-not-found", "--wait=true",
    ]  # fmt: skip


def _jobs_by_namespace(docs: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    jobs: dict[str, list[str]] = {}
    for doc in docs:
        if doc.get("kind") == "Job":
            metadata = doc.get("metadata", {})
            jobs.setdefault(str(metadata.get("namespace", "default")), []).append(
                str(metadata["name"])
            )
    return jobs


def apply_manifests(
    runner: Runner, kubectl: str, kubeconfig: Path, context: str, manifest: Path, timeout: float
) -> str:
    """Apply the rendered manifests; Namespaces and CRDs first so the rest can land. A Job's pod
    template is immutable, so re-applying a changed one onto a cluster that still has it fails:
    the stack's Jobs are idempotent one-shot tasks (migration, bucket provisioning), so they are
    deleted first and run again (a no-op on a fresh cluster)."""
    first, rest = _split_first(parse_manifests(manifest.read_text()))
    output = []
    for part, docs in (("00-cluster-scoped", first), ("10-resources", rest)):
        if not docs:
            continue
        for namespace, names in _jobs_by_namespace(docs).items():
            runner(
                delete_jobs_args(kubectl, kubeconfig, context, namespace, names), timeout=timeout
            )
        path = manifest.with_name(f"{manifest.stem}.{part}.yaml")
        path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
        result = runner(apply_args(kubectl, kubeconfig, context, path), timeout=timeout)
        output.append(result.stdout)
    return "".join(output)


def _split_first(
    docs: Sequence[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    early = {"Namespace", "CustomResourceDefinition"}
    return [d for d in docs if d.get("kind") in early], [
        d for d in docs if d.get("kind") not in early
    ]


def expected_workloads(docs: Sequence[Mapping[str, Any]], namespace: str) -> list[str]:
    """`Kind/name` of every workload the readiness engine must see in `namespace`."""
    kinds = {"Deployment", "StatefulSet", "DaemonSet", "Job"}
    return sorted(
        f"{d['kind']}/{d['metadata']['name']}"
        for d in docs
        if d.get("kind") in kinds and d.get("metadata", {}).get("namespace", namespace) == namespace
    )


def workload_namespaces(docs: Sequence[Mapping[str, Any]]) -> list[str]:
    kinds = {"Deployment", "StatefulSet", "DaemonSet", "Job"}
    return sorted(
        {
            str(d.get("metadata", {}).get("namespace", "default"))
            for d in docs
            if d.get("kind") in kinds
        }
    )
