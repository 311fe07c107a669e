"""Before `deploy-eks --apply` changes anything: are there AWS credentials, a kubeconfig context for
the cluster, and RBAC to deploy? Each check fails with what is missing and the exact fix."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    TokenRetrievalError,
)

from stackctl.eks.cluster import ClusterSpec
from stackctl.k8s.commands import Runner

_EXPIRED_CODES = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired"})
_REJECTED_CODES = frozenset({"InvalidClientTokenId", "SignatureDoesNotMatch", "AccessDenied"})
_ASSUMED_ROLE = re.compile(
    r"^arn:(?P<partition>[\w-]+):sts::(?P<account>\d{12}):assumed-role/(?P<role>[^/]+)/"
)
_UNAUTHORIZED = ("Unauthorized", "You must be logged in", "provide credentials")
_UNREACHABLE = (
    "Unable to connect to the server",
    "no such host",
    "i/o timeout",
    "connection refused",
)
# What a deploy does in the stack's namespace (apply, Jobs re-run, rollback deletes, release record).
REQUIRED_VERBS: tuple[tuple[str, str], ...] = (
    ("patch", "deployments.apps"),
    ("patch", "statefulsets.apps"),
    ("delete", "jobs.batch"),
    ("create", "jobs.batch"),
    ("patch", "configmaps"),
    ("delete", "deployments.apps"),
)

CI_FIX = (
    "in GitHub Actions the release workflow gets them through OIDC "
    "(aws-actions/configure-aws-credentials with role-to-assume)"
)


class AccessError(RuntimeError):
    """Something `--apply` needs is missing; the message names it and says how to fix it."""


@dataclass(frozen=True)
class Identity:
    arn: str
    account: str

    @property
    def principal_arn(self) -> str:
        """The IAM role an assumed-role session belongs to: what an EKS access entry names."""
        match = _ASSUMED_ROLE.match(self.arn)
        if match is None:
            return self.arn
        return f"arn:{match['partition']}:iam::{match['account']}:role/{match['role']}"


def check_aws_credentials(
    region: str, client_factory: Callable[..., Any] = boto3.client
) -> Identity:
    """Who we are to AWS (STS GetCallerIdentity), or AccessError saying why not."""
    try:
        reply = client_factory("sts", region_name=region).get_caller_identity()
    except (NoCredentialsError, PartialCredentialsError) as error:
        raise AccessError(
            f"No AWS credentials ({error}). Fix: {CI_FIX}; locally run `aws sso login --profile "
            "<profile>` and `export AWS_PROFILE=<profile>` (or `aws configure`)."
        ) from None
    except TokenRetrievalError as error:
        raise AccessError(
            f"The AWS SSO token is expired or missing ({error}). Fix: `aws sso login --profile <profile>`."
        ) from None
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in _EXPIRED_CODES:
            raise AccessError(
                f"The AWS session token has expired ({code}). Fix: renew it (`aws sso login`, or "
                "re-run the release workflow, whose OIDC session lasts one hour)."
            ) from None
        if code in _REJECTED_CODES:
            raise AccessError(
                f"AWS rejected the credentials ({code}): they are wrong or revoked. Fix: check "
                "AWS_PROFILE / AWS_ACCESS_KEY_ID, or the role's trust policy for GitHub OIDC."
            ) from None
        raise AccessError(f"AWS STS GetCallerIdentity failed: {error}") from None
    except EndpointConnectionError as error:
        raise AccessError(
            f"Cannot reach AWS STS ({error}). Fix: check the network and AWS_REGION."
        ) from None
    except BotoCoreError as error:
        raise AccessError(f"AWS credentials could not be used: {error}") from None
    return Identity(arn=str(reply["Arn"]), account=str(reply["Account"]))


def cluster_context(kubeconfig: Mapping[str, Any], cluster: ClusterSpec) -> str | None:
    """The kubeconfig context pointing at the EKS cluster, preferring the current one.

    `aws eks update-kubeconfig` names cluster entries by ARN (`...:cluster/<name>`); eksctl names
    them `<name>.<region>.eksctl.io`.
    """

    def is_ours(context: Mapping[str, Any]) -> bool:
        entry = str((context.get("context") or {}).get("cluster", ""))
        return (entry.endswith(f":cluster/{cluster.name}") and f":{cluster.region}:" in entry) or (
            entry == f"{cluster.name}.{cluster.region}.eksctl.io"
        )

    ours = [str(c["name"]) for c in kubeconfig.get("contexts") or [] if is_ours(c)]
    current = kubeconfig.get("current-context")
    if current in ours:
        return str(current)
    return ours[0] if ours else None


def find_context(kubectl: str, runner: Runner, cluster: ClusterSpec, explicit: str | None) -> str:
    """The context to deploy with, or AccessError with the `aws eks update-kubeconfig` fix."""
    view = runner([kubectl, "config", "view", "-o", "json"], timeout=30, check=False)
    kubeconfig = json.loads(view.stdout) if view.returncode == 0 and view.stdout.strip() else {}
    if explicit is not None:
        if explicit not in {c.get("name") for c in kubeconfig.get("contexts") or []}:
            raise AccessError(f"The kubeconfig has no context named {explicit!r}.")
        return explicit
    context = cluster_context(kubeconfig, cluster)
    if context is None:
        raise AccessError(
            f"No kubeconfig context for EKS cluster {cluster.name!r} ({cluster.region}). Fix: "
            f"`{' '.join(cluster.update_kubeconfig_command())}` (or pass --update-kubeconfig), "
            "or name one with --context."
        )
    return context


def check_cluster_access(
    kubectl: str,
    runner: Runner,
    context: str,
    namespace: str,
    identity: Identity,
    cluster: ClusterSpec,
) -> None:
    """The identity can reach the cluster and has every permission a deploy uses."""
    for verb, resource in REQUIRED_VERBS:
        result = runner(
            [kubectl, "--context", context, "auth", "can-i", verb, resource, "-n", namespace],
            timeout=60,
            check=False,
        )
        output = result.stdout + result.stderr
        if result.returncode == 0 and result.stdout.strip() == "yes":
            continue
        if any(marker in output for marker in _UNAUTHORIZED):
            raise AccessError(
                f"EKS cluster {cluster.name!r} does not know {identity.principal_arn}: it has no "
                "access entry. Fix: add it under accessConfig.accessEntries in "
                "platform/eks/cluster.yaml and run `eksctl create accessentry -f <rendered config>`"
                f" (or `aws eks create-access-entry --cluster-name {cluster.name} --principal-arn "
                f"{identity.principal_arn}` plus an access policy)."
            )
        if any(marker in output for marker in _UNREACHABLE):
            raise AccessError(
                f"Cannot reach the API server of EKS cluster {cluster.name!r} from here "
                f"({output.strip()}). Fix: check the cluster endpoint access (public/private CIDRs)."
            )
        raise AccessError(
            f"{identity.principal_arn} may not {verb} {resource} in namespace {namespace!r} on "
            f"cluster {cluster.name!r} (kubectl auth can-i said: {output.strip() or 'no'}). Fix: "
            "associate an access policy that allows deploying (see platform/eks/README.md)."
        )
