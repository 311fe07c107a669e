"""Preflight checks with canned probes: each failure names the exact fix."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from stackctl.k8s import preflight
from stackctl.k8s.versions import load_versions

REPO = Path(__file__).resolve().parents[3]
VERSIONS = load_versions(REPO)
GiB = 1024**3


def _info() -> Mapping[str, Any]:
    return {"ServerVersion": "28.5.1", "NCPU": 4, "MemTotal": 16 * GiB, "DockerRootDir": "/"}


def _tool_output(args: Sequence[str]) -> str:
    if args[1:] == ["version", "-q"]:
        return VERSIONS.kind_version.lstrip("v")
    return json.dumps({"clientVersion": {"gitVersion": "v" + VERSIONS.kubernetes_version}})


def healthy() -> preflight.Probes:
    return preflight.Probes(
        docker_info=_info,
        cpu_count=lambda: 8,
        available_memory=lambda: 12 * GiB,
        disk_free=lambda _path: 100 * GiB,
        sysctl=lambda name: preflight.INOTIFY_LIMITS[name],
        which=lambda tool: f"/usr/local/bin/{tool}",
        tool_output=_tool_output,
        node_image_problem=lambda _reference: None,
        environ={},
    )


def _failed(probes: preflight.Probes) -> dict[str, preflight.Check]:
    with pytest.raises(preflight.PreflightError) as info:
        preflight.run_preflight(VERSIONS, probes)
    return {c.name: c for c in info.value.checks if not c.ok}


def test_healthy_machine_passes_every_check() -> None:
    checks = preflight.run_preflight(VERSIONS, healthy())
    assert all(c.ok for c in checks)
    assert [c.name for c in checks] == [
        "docker", "cpu", "memory", "disk", "fs.inotify.max_user_watches",
        "fs.inotify.max_user_instances", "kind", "kubectl", "node image",
    ]  # fmt: skip


def test_no_docker_daemon_says_how_to_start_it() -> None:
    def down() -> Mapping[str, Any]:
        raise ConnectionError("connection refused")

    failed = _failed(
        replace(healthy(), docker_info=down, environ={"DOCKER_HOST": "tcp://1.2.3.4:2375"})
    )
    assert list(failed) == ["docker"]
    assert "No Docker daemon answered at tcp://1.2.3.4:2375" in failed["docker"].detail
    assert "systemctl start docker" in failed["docker"].fix


def test_small_docker_vm_fails_cpu_memory_and_disk() -> None:
    def small() -> Mapping[str, Any]:
        return {"NCPU": 1, "MemTotal": 4 * GiB, "DockerRootDir": "/"}

    failed = _failed(replace(healthy(), docker_info=small, disk_free=lambda _p: 5 * GiB))
    assert set(failed) == {"cpu", "memory", "disk"}
    assert "1 CPUs (need >= 2)" in failed["cpu"].detail
    assert "4.0 GiB available" in failed["memory"].detail  # the VM's total caps host memory
    assert "docker system prune" in failed["disk"].fix


def test_inotify_limits_give_the_sysctl_commands() -> None:
    failed = _failed(replace(healthy(), sysctl=lambda name: 8192 if "watches" in name else 128))
    assert failed["fs.inotify.max_user_watches"].fix.startswith(
        "`sudo sysctl fs.inotify.max_user_watches=524288`"
    )
    assert "max_user_instances=512" in failed["fs.inotify.max_user_instances"].fix
    message = str(preflight.PreflightError(list(failed.values())))
    assert "Fix: `sudo sysctl" in message


def test_missing_kind_gives_the_pinned_install_command() -> None:
    failed = _failed(
        replace(healthy(), which=lambda tool: None if tool == "kind" else "/x/kubectl")
    )
    assert list(failed) == ["kind"]
    assert f"go install sigs.k8s.io/kind@{VERSIONS.kind_version}" in failed["kind"].fix
    assert f"releases/download/{VERSIONS.kind_version}/kind-linux-amd64" in failed["kind"].fix


def test_kubectl_version_skew_is_reported() -> None:
    def old_kubectl(args: Sequence[str]) -> str:
        return json.dumps({"clientVersion": {"gitVersion": "v1.30.2"}})

    failed = _failed(replace(healthy(), tool_output=old_kubectl))
    assert "more than one minor version apart" in failed["kubectl"].detail
    assert VERSIONS.kubectl_version in failed["kubectl"].fix


def test_different_kind_version_is_only_a_note() -> None:
    def other_kind(args: Sequence[str]) -> str:
        return "0.20.0" if args[1:] == ["version", "-q"] else _tool_output(args)

    checks = preflight.run_preflight(VERSIONS, replace(healthy(), tool_output=other_kind))
    kind = next(c for c in checks if c.name == "kind")
    assert kind.ok
    assert "best effort" in kind.detail


def test_the_command_lists_every_check_and_fails_with_the_fixes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    no_kind = replace(healthy(), which=lambda tool: None if tool == "kind" else f"/bin/{tool}")
    assert preflight.main([], no_kind) == 1
    out = capsys.readouterr().out
    assert out.count("[ok  ]") == 8
    assert "[FAIL] kind:" in out
    assert "Fix:" in out
    assert "kind preflight failed (1 of 9 checks)" in out
    assert preflight.main([], healthy()) == 0
    assert "kind preflight passed (9 checks)" in capsys.readouterr().out


def test_a_node_image_that_cannot_be_had_is_a_failure_with_the_fix() -> None:
    from dataclasses import replace

    probes = replace(
        healthy(),
        node_image_problem=lambda ref: (
            f"Get https://registry-1.docker.io/v2/: no such host ({ref})"
        ),
    )
    failed = _failed(probes)
    assert set(failed) == {"node image"}
    check = failed["node image"]
    assert "kindest/node:" in check.detail
    assert "cannot be pulled (Get https://registry-1.docker.io/v2/: no such host" in check.detail
    assert "docker load -i" in check.fix
