"""The last good release, kept in the cluster, and how to roll back to it.

After a release passes its smoke tests, `deploy-eks` stores its rendered manifest (gzip, in the
ConfigMap `stackctl-eks-release` of the stack's namespace). When a later release fails to become
ready or fails its smoke tests, the rollback re-applies that stored manifest (Deployments and
StatefulSets go back to the previous images and specs) and deletes the objects the failed release
added, except the kinds that hold data or cluster-wide state, which are kept and reported.
"""

from __future__ import annotations

import base64
import gzip
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from stackctl.eks.render import ObjectRef, parse_objects

RELEASE_CONFIGMAP = "stackctl-eks-release"
MANIFEST_KEY = "manifest.yaml.gz"
# A ConfigMap holds at most 1 MiB; keep a margin for the other keys and metadata.
MAX_STORED_BYTES = 900_000
# A rollback never deletes these: they hold data (volumes) or are shared beyond this release.
NEVER_DELETE = frozenset(
    {
        "Namespace",
        "Secret",
        "PersistentVolumeClaim",
        "PersistentVolume",
        "StorageClass",
        "CustomResourceDefinition",
        "ServiceAccount",
    }
)


class ReleaseRecordError(RuntimeError):
    """The stored release cannot be written or read."""


@dataclass(frozen=True)
class ReleaseRecord:
    release: str
    manifest: str
    applied_at: str

    def objects(self) -> list[ObjectRef]:
        return sorted(ObjectRef.of(obj) for obj in parse_objects(self.manifest))


def release_configmap(record: ReleaseRecord, namespace: str) -> dict[str, Any]:
    """The ConfigMap that stores `record`."""
    packed = gzip.compress(record.manifest.encode(), mtime=0)
    if len(packed) > MAX_STORED_BYTES:
        raise ReleaseRecordError(
            f"The compressed manifest is {len(packed)} bytes, over the {MAX_STORED_BYTES} a "
            "ConfigMap can keep; store releases elsewhere (e.g. S3) before the overlay grows further."
        )
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": RELEASE_CONFIGMAP,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "stackctl-eks"},
        },
        "data": {"release": record.release, "applied-at": record.applied_at},
        "binaryData": {MANIFEST_KEY: base64.b64encode(packed).decode()},
    }


def record_from_configmap(configmap: Mapping[str, Any]) -> ReleaseRecord:
    data = configmap.get("data") or {}
    packed = (configmap.get("binaryData") or {}).get(MANIFEST_KEY)
    if packed is None or "release" not in data:
        raise ReleaseRecordError(
            f"ConfigMap {RELEASE_CONFIGMAP} lacks `release` or `{MANIFEST_KEY}`."
        )
    manifest = gzip.decompress(base64.b64decode(packed)).decode()
    return ReleaseRecord(str(data["release"]), manifest, str(data.get("applied-at", "")))


def new_record(release: str, manifest: str) -> ReleaseRecord:
    return ReleaseRecord(release, manifest, datetime.now(UTC).isoformat(timespec="seconds"))


@dataclass(frozen=True)
class RollbackPlan:
    """What a rollback does: re-apply `previous` and delete `delete`; `kept` are left in place."""

    previous: ReleaseRecord | None
    delete: tuple[ObjectRef, ...]
    kept: tuple[ObjectRef, ...]

    def describe(self) -> str:
        if self.previous is None:
            return (
                "No earlier release is recorded (first deploy): nothing to roll back to; the failed "
                "release is left in place for diagnosis."
            )
        lines = [
            f"Roll back to release {self.previous.release} (applied {self.previous.applied_at})."
        ]
        lines += [f"  delete {ref} (added by the failed release)" for ref in self.delete]
        lines += [
            f"  keep {ref} (added by the failed release; holds data or shared state)"
            for ref in self.kept
        ]
        return "\n".join(lines)


def plan_rollback(
    previous: ReleaseRecord | None, failed: Sequence[Mapping[str, Any]]
) -> RollbackPlan:
    """Re-apply the previous release; delete what only the failed release has (never data)."""
    if previous is None:
        return RollbackPlan(None, (), ())
    before = set(previous.objects())
    # Secrets are never recorded (the live one outlives releases), so they are never "added".
    added = sorted({ObjectRef.of(obj) for obj in failed if obj.get("kind") != "Secret"} - before)
    return RollbackPlan(
        previous,
        tuple(ref for ref in added if ref.kind not in NEVER_DELETE),
        tuple(ref for ref in added if ref.kind in NEVER_DELETE),
    )
