"""Smoke: start the object store through the component code on free ports, use it, stop it."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import psutil
import pytest
from stackctl_helpers import free_port

from stackcontract.settings import Ports, load_config
from stackctl.local.components.s3 import MinIO, SeaweedFS, ensure_bucket, s3_client
from stackctl.local.context import Credentials, LocalOptions, RunContext, S3Flavor
from stackctl.local.paths import StatePaths
from stackctl.local.supervisor import Supervisor

SEAWEED_FIELDS = [field for field in Ports.model_fields if field.startswith(("s3_", "seaweed_"))]


@pytest.mark.slow
def test_seaweedfs_starts_serves_s3_with_generated_keys_and_stops(fake_repo: Path) -> None:
    environ = {"STACK_REPO_ROOT": str(fake_repo)}
    environ |= {Ports.override_variable(field): str(free_port()) for field in SEAWEED_FIELDS}
    config = load_config(environ=environ)
    paths = StatePaths(fake_repo / ".stack" / "local")
    paths.ensure()
    supervisor = Supervisor(paths.pids, "smoke-test")
    ctx = RunContext(
        config=config,
        paths=paths,
        credentials=Credentials.generate(),
        supervisor=supervisor,
        options=LocalOptions(),
        cancel=threading.Event(),
    )
    component = SeaweedFS()
    try:
        component.bring_up(ctx, status=lambda _: None)
        assert ensure_bucket(ctx) is True
        assert ensure_bucket(ctx) is False  # idempotent
        client = s3_client(ctx)
        client.put_object(Bucket=config.bucket, Key="landing/x.txt", Body=b"hello")
        assert (
            client.get_object(Bucket=config.bucket, Key="landing/x.txt")["Body"].read() == b"hello"
        )
        assert (paths.generated / "s3-identities.json").stat().st_mode & 0o777 == 0o600
    finally:
        reports = Supervisor(paths.pids, "").stop_all(grace=20)
    assert [report.outcome for report in reports] == ["stopped"]
    record_pid = component.records[0].pid
    assert (
        not psutil.pid_exists(record_pid)
        or psutil.Process(record_pid).status() == psutil.STATUS_ZOMBIE
    )
    print(f"\nSeaweedFS stop took {reports[0].seconds:.1f}s")


FAKE_MINIO = """#!/bin/sh
# Stand-in for a MinIO binary: `minio server DIR --address HOST:PORT --console-address ...`
# serves S3 through moto on the requested address.
[ -n "$MINIO_ROOT_USER" ] && [ -n "$MINIO_ROOT_PASSWORD" ] || { echo "no root credentials"; exit 2; }
address="$4"
exec "{moto}" -H "${address%%:*}" -p "${address##*:}"
"""


@pytest.mark.slow
def test_minio_component_runs_the_minio_binary_on_path(
    fake_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    moto = Path(sys.executable).parent / "moto_server"
    if not moto.is_file():
        pytest.skip("moto_server is not installed (dependency group `test`)")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "minio"
    script.write_text(FAKE_MINIO.replace("{moto}", str(moto)))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    environ = {
        "STACK_REPO_ROOT": str(fake_repo),
        "STACK_S3_PORT": str(free_port()),
        "STACK_MINIO_CONSOLE_PORT": str(free_port()),
    }
    config = load_config(environ=environ)
    paths = StatePaths(fake_repo / ".stack" / "local")
    paths.ensure()
    ctx = RunContext(
        config=config,
        paths=paths,
        credentials=Credentials.generate(),
        supervisor=Supervisor(paths.pids, "minio-test"),
        options=LocalOptions(s3=S3Flavor.minio),
        cancel=threading.Event(),
    )
    component = MinIO()
    assert component.preflight(ctx) is None
    try:
        component.bring_up(ctx, status=lambda _: None)
        assert ensure_bucket(ctx) is True
    finally:
        reports = Supervisor(paths.pids, "").stop_all(grace=10)
    assert [report.outcome for report in reports] == ["stopped"]
