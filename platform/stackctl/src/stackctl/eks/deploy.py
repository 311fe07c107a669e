"""`deploy-eks`: a dry run that needs no credentials, or (`--apply`) a checked, smoke-tested deploy
that rolls back to the last good release when anything after the apply fails."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from rich.console import Console

from stackctl.eks import access, release
from stackctl.eks.cluster import ClusterSpec
from stackctl.eks.digests import ImageDigests
from stackctl.eks.inputs import DeployInputs
from stackctl.eks.kubectl import Kubectl
from stackctl.eks.render import (
    ObjectRef,
    parse_objects,
    plan_table,
    redact_secrets,
    render,
    without_secrets,
)
from stackctl.k8s.commands import CommandFailedError, Runner, require_tool
from stackctl.k8s.readiness import DeployFailure, ReadinessPolicy, wait_for_ready

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job")
# EKS is slower than kind: nodes may scale up, images come from ECR, EBS volumes attach.
EKS_READINESS = ReadinessPolicy(
    poll_interval_seconds=5.0, creating_timeout_seconds=300.0, unschedulable_grace_seconds=600.0
)

WaitFn = Callable[[str, str, Sequence[str]], None]
"""(context, namespace, expected objects) -> None; raises DeployFailure when not ready."""
SmokeFn = Callable[[str, str, Sequence[Mapping[str, Any]]], None]
"""(context, namespace, rendered objects) -> None; raises SmokeFailure when the smoke tests fail."""


class DeployError(RuntimeError):
    """The release failed; the message says what failed and what the rollback did."""


class SmokeFailure(RuntimeError):
    """The smoke subset of the integration suite failed against the new release."""


@dataclass(frozen=True)
class Target:
    """Where and what to deploy."""

    repo_root: Path
    overlay: Path
    cluster: ClusterSpec
    digests: ImageDigests | None
    reports: Path
    kubectl: str
    runner: Runner
    console: Console = field(default_factory=Console)
    inputs: DeployInputs | None = None

    def render(self) -> str:
        return render(
            self.overlay,
            self.digests,
            kubectl=self.kubectl,
            runner=self.runner,
            inputs=self.inputs,
            repo_root=self.repo_root,
        )

    @property
    def release_name(self) -> str:
        return self.digests.release if self.digests else "unreleased"


def app_namespace(objects: Sequence[Mapping[str, Any]]) -> str:
    """The stack's namespace: the one the Namespace object declares, else the most used one."""
    declared = [ObjectRef.of(o).name for o in objects if o.get("kind") == "Namespace"]
    if len(declared) == 1:
        return declared[0]
    used = Counter(ObjectRef.of(o).namespace for o in objects if ObjectRef.of(o).namespace)
    if not used:
        raise DeployError("The eks overlay puts no object in a namespace; set `namespace:` in it.")
    return used.most_common(1)[0][0]


def expected_workloads(objects: Sequence[Mapping[str, Any]], namespace: str) -> list[str]:
    """`Kind/name` of every workload the readiness engine must see ready."""
    return sorted(
        f"{ref.kind}/{ref.name}"
        for ref in map(ObjectRef.of, objects)
        if ref.kind in WORKLOAD_KINDS and ref.namespace == namespace
    )


def dry_run(target: Target, *, context: str | None = None) -> str:
    """Render, print the plan, and diff against the cluster when one is reachable; no credentials."""
    manifest = target.render()
    objects = parse_objects(manifest)
    plan_dir = target.reports / "plan"
    plan_dir.mkdir(parents=True, exist_ok=True)
    (plan_dir / "manifest.yaml").write_text(redact_secrets(manifest))
    target.console.print(plan_table(objects))
    for note in target.inputs.notes if target.inputs else ():
        target.console.print(f"note: {note}")
    target.console.print(f"Rendered manifest: {plan_dir / 'manifest.yaml'}")
    reason = live_diff(target, manifest, context)
    if reason is not None:
        target.console.print(f"No diff against a live cluster was possible: {reason}")
    return manifest


def live_diff(target: Target, manifest: str, context: str | None) -> str | None:
    """Print `kubectl diff` against the cluster; return why not when it cannot be done."""
    try:
        context = access.find_context(target.kubectl, target.runner, target.cluster, context)
    except access.AccessError as error:
        return str(error)
    result = Kubectl(target.kubectl, target.runner, context).diff(manifest)
    if result.returncode == 0:
        target.console.print(f"kubectl diff against context {context}: no changes.")
    elif result.returncode == 1:
        target.console.print(f"kubectl diff against context {context}:")
        target.console.print(result.stdout, markup=False, highlight=False)
    else:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        return f"`kubectl diff` against context {context} failed: {tail[0]}"
    return None


def preflight(
    target: Target,
    *,
    context: str | None,
    update_kubeconfig: bool,
    client_factory: Callable[..., Any] = boto3.client,
) -> tuple[access.Identity, str]:
    """Credentials, then the kubeconfig context, before anything is rendered or applied."""
    identity = access.check_aws_credentials(target.cluster.region, client_factory)
    target.console.print(f"AWS identity: {identity.arn}")
    if update_kubeconfig:
        aws = require_tool(
            "aws", fix="install the AWS CLI v2 (preinstalled on GitHub's ubuntu runners)"
        )
        target.runner([aws, *target.cluster.update_kubeconfig_command()[1:]], timeout=120)
    return identity, access.find_context(target.kubectl, target.runner, target.cluster, context)


def apply_release(
    target: Target,
    *,
    identity: access.Identity,
    context: str,
    wait: WaitFn,
    smoke: SmokeFn,
) -> release.ReleaseRecord:
    """Apply, wait, smoke-test and record the release; roll back and raise DeployError on failure."""
    manifest = target.render()
    objects = parse_objects(manifest)
    namespace = app_namespace(objects)
    kubectl = Kubectl(target.kubectl, target.runner, context)
    access.check_cluster_access(
        target.kubectl, target.runner, context, namespace, identity, target.cluster
    )
    previous = read_record(kubectl, namespace)
    out = target.reports / target.release_name
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.yaml").write_text(redact_secrets(manifest))
    target.console.print(
        f"Deploying {target.release_name} to {target.cluster.name}/{namespace} "
        f"(previous good release: {previous.release if previous else 'none'})."
    )
    try:
        apply_manifest(kubectl, objects, manifest)
        wait(context, namespace, expected_workloads(objects, namespace))
        smoke(context, namespace, objects)
    except (DeployFailure, SmokeFailure, CommandFailedError) as failure:
        plan = release.plan_rollback(previous, objects)
        (out / "rollback.txt").write_text(f"{failure}\n\n{plan.describe()}\n")
        target.console.print(f"[red]Release {target.release_name} failed:[/] {failure}")
        target.console.print(plan.describe(), markup=False)
        outcome = roll_back(kubectl, plan, namespace, context, wait)
        raise DeployError(
            f"Release {target.release_name} failed ({type(failure).__name__}: {failure}); {outcome}"
        ) from failure
    # Secrets stay out of the record: it is a ConfigMap, and the live Secret outlives releases.
    record = release.new_record(target.release_name, without_secrets(manifest))
    kubectl.apply_object(release.release_configmap(record, namespace))
    target.console.print(
        f"[green]Release {record.release} is live and recorded as the last good release.[/]"
    )
    return record


def read_record(kubectl: Kubectl, namespace: str) -> release.ReleaseRecord | None:
    configmap = kubectl.get(ObjectRef("ConfigMap", namespace, release.RELEASE_CONFIGMAP))
    return None if configmap is None else release.record_from_configmap(configmap)


def apply_manifest(kubectl: Kubectl, objects: Sequence[Mapping[str, Any]], manifest: str) -> None:
    """Apply a manifest. Job specs are immutable, and the stack's Jobs are idempotent one-shot tasks
    (migrations, bucket provisioning), so they are deleted first and run again."""
    for ref in map(ObjectRef.of, objects):
        if ref.kind == "Job":
            kubectl.delete(ref, wait=True)
    kubectl.apply(manifest)


def roll_back(
    kubectl: Kubectl, plan: release.RollbackPlan, namespace: str, context: str, wait: WaitFn
) -> str:
    """Carry out `plan`; say what state the cluster is left in."""
    if plan.previous is None:
        return "no earlier release was recorded, so nothing was rolled back"
    previous_objects = parse_objects(plan.previous.manifest)
    try:
        for ref in plan.delete:
            kubectl.delete(ref)
        apply_manifest(kubectl, previous_objects, plan.previous.manifest)
        wait(context, namespace, expected_workloads(previous_objects, namespace))
    except (DeployFailure, CommandFailedError) as error:
        return f"the rollback to {plan.previous.release} ALSO FAILED: {error}"
    return f"rolled back to {plan.previous.release}, which is ready again"


def readiness_wait(seconds: float) -> WaitFn:
    """The real wait: the kind backend's readiness engine, with EKS thresholds."""

    def wait(context: str, namespace: str, expected: Sequence[str]) -> None:
        from kubernetes import config as kube_config

        # The kubernetes package ships no type hints.
        client = kube_config.new_client_from_config(context=context)  # type: ignore[no-untyped-call,unused-ignore]
        try:
            wait_for_ready(client, namespace, seconds, expected=expected, policy=EKS_READINESS)
        finally:
            client.close()

    return wait
