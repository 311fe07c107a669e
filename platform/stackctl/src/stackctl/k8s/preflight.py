"""Can this machine run the kind stack? Every check that fails says the exact fix.

Checks: Docker daemon reachable (docker SDK ping), CPUs >= 2 and available memory >= 6 GiB
(of the Docker engine when it answers, else of the host), free disk >= 20 GiB where Docker keeps
its data, inotify limits (kind's known issues: max_user_watches >= 524288, max_user_instances >=
512), kind on PATH (at the pinned version), kubectl on PATH within one minor version of the
node image's Kubernetes, and the pinned node image present or pullable (with an engine answering). `run_preflight` runs them all (so one run lists every problem) and raises
`PreflightError` if any failed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stackctl.k8s import dockerprobe
from stackctl.k8s.commands import resolve_tool
from stackctl.k8s.versions import KindVersions

GiB = 1024**3
MIN_CPUS = 2
MIN_MEMORY_BYTES = 6 * GiB
MIN_DISK_BYTES = 20 * GiB
INOTIFY_LIMITS = {
    "fs.inotify.max_user_watches": 524288,
    "fs.inotify.max_user_instances": 512,
}


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        mark = "ok  " if self.ok else "FAIL"
        text = f"[{mark}] {self.name}: {self.detail}"
        return f"{text}\n       Fix: {self.fix}" if not self.ok and self.fix else text


class PreflightError(RuntimeError):
    """One or more preflight checks failed; the message lists each with its fix."""

    def __init__(self, checks: Sequence[Check]) -> None:
        self.checks = tuple(checks)
        failed = [c for c in checks if not c.ok]
        lines = [f"kind preflight failed ({len(failed)} of {len(checks)} checks):"]
        lines += [c.line() for c in failed]
        super().__init__("\n".join(lines))


def _docker_info() -> Mapping[str, Any]:
    import docker  # the k8s dependency group

    client = docker.from_env(timeout=10)
    try:
        client.ping()
        info: Mapping[str, Any] = client.info()
        return info
    finally:
        client.close()


def _node_image_problem(reference: str) -> str | None:
    """None when the engine has `reference` or can pull it, else why not."""
    import docker
    from docker.errors import DockerException, ImageNotFound

    client = docker.from_env(timeout=600)
    try:
        try:
            client.images.get(reference)
            return None
        except ImageNotFound:
            client.images.pull(reference)
            return None
    except DockerException as error:
        return str(getattr(error, "explanation", None) or error).strip().splitlines()[0][:300]
    finally:
        client.close()


def _read_sysctl(name: str) -> int | None:
    path = Path("/proc/sys") / name.replace(".", "/")
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _tool_output(args: Sequence[str]) -> str:
    return subprocess.run(
        list(args), capture_output=True, text=True, timeout=20, check=True
    ).stdout.strip()


def _available_memory() -> int:
    import psutil

    return int(psutil.virtual_memory().available)


@dataclass
class Probes:
    """What the checks look at; tests replace these with canned answers."""

    docker_info: Callable[[], Mapping[str, Any]] = _docker_info
    cpu_count: Callable[[], int] = lambda: os.cpu_count() or 1
    available_memory: Callable[[], int] = _available_memory
    disk_free: Callable[[str], int] = lambda path: shutil.disk_usage(path).free
    sysctl: Callable[[str], int | None] = _read_sysctl
    which: Callable[[str], str | None] = resolve_tool
    tool_output: Callable[[Sequence[str]], str] = _tool_output
    node_image_problem: Callable[[str], str | None] = _node_image_problem
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))


def check_docker(probes: Probes) -> tuple[Check, Mapping[str, Any] | None]:
    try:
        info = probes.docker_info()
    except Exception as exc:
        host = dockerprobe.docker_host(probes.environ)
        return (
            Check(
                "docker",
                False,
                f"No Docker daemon answered at {host} ({type(exc).__name__}: {exc})",
                dockerprobe.FIX.removeprefix("Fix: "),
            ),
            None,
        )
    return Check("docker", True, f"Docker {info.get('ServerVersion', '?')} answers"), info


def check_resources(probes: Probes, info: Mapping[str, Any] | None) -> list[Check]:
    cpus = int(info["NCPU"]) if info and info.get("NCPU") else probes.cpu_count()
    memory = probes.available_memory()
    if info and info.get("MemTotal"):  # Docker Desktop's VM can be smaller than the host
        memory = min(memory, int(info["MemTotal"]))
    disk_path = str(info.get("DockerRootDir")) if info and info.get("DockerRootDir") else "/"
    if not Path(disk_path).exists():
        disk_path = "/"
    disk = probes.disk_free(disk_path)
    return [
        Check(
            "cpu",
            cpus >= MIN_CPUS,
            f"{cpus} CPUs (need >= {MIN_CPUS})",
            "give Docker at least 2 CPUs (Docker Desktop: Settings > Resources > CPUs)",
        ),
        Check(
            "memory",
            memory >= MIN_MEMORY_BYTES,
            f"{memory / GiB:.1f} GiB available (need >= {MIN_MEMORY_BYTES / GiB:.0f} GiB)",
            "stop other containers/programs (`docker ps`, `kind get clusters` then "
            "`kind delete cluster --name NAME`) or give Docker more memory",
        ),
        Check(
            "disk",
            disk >= MIN_DISK_BYTES,
            f"{disk / GiB:.1f} GiB free at {disk_path} (need >= {MIN_DISK_BYTES / GiB:.0f} GiB)",
            "free space: `docker system prune` and `docker builder prune` "
            "(and `rm -rf ~/.cache/airflow-on-k8s/kind-images` for the image cache)",
        ),
    ]


def check_inotify(probes: Probes) -> list[Check]:
    checks = []
    for name, minimum in INOTIFY_LIMITS.items():
        value = probes.sysctl(name)
        checks.append(
            Check(
                name,
                value is not None and value >= minimum,
                f"{value if value is not None else 'unreadable'} (need >= {minimum})",
                f"`sudo sysctl {name}={minimum}` (persist it: "
                f"`echo {name}={minimum} | sudo tee -a /etc/sysctl.d/99-kind.conf`)",
            )
        )
    return checks


def _minor(version: str) -> tuple[int, int]:
    major, minor, *_ = version.lstrip("v").split(".")
    return int(major), int("".join(ch for ch in minor if ch.isdigit()) or 0)


def check_tools(probes: Probes, versions: KindVersions) -> list[Check]:
    checks = []
    kind = probes.which("kind")
    if kind is None:
        checks.append(Check("kind", False, "not on PATH", versions.kind_install_fix()))
    else:
        try:
            found = "v" + probes.tool_output([kind, "version", "-q"]).lstrip("v")
        except (OSError, subprocess.SubprocessError) as exc:
            found = f"unknown ({exc})"
        same = found == versions.kind_version
        checks.append(
            Check(
                "kind",
                True,
                f"{kind} {found}"
                + (
                    ""
                    if same
                    else f" (pinned {versions.kind_version}; node images are built per "
                    "kind release, so a different kind is best effort)"
                ),
            )
        )
    kubectl = probes.which("kubectl")
    if kubectl is None:
        checks.append(Check("kubectl", False, "not on PATH", versions.kubectl_install_fix()))
        return checks
    try:
        raw = probes.tool_output([kubectl, "version", "--client", "-o", "json"])
        client = str(json.loads(raw)["clientVersion"]["gitVersion"])
    except (OSError, subprocess.SubprocessError, ValueError, KeyError) as exc:
        checks.append(
            Check(
                "kubectl",
                False,
                f"{kubectl}: cannot read its version ({exc})",
                versions.kubectl_install_fix(),
            )
        )
        return checks
    (c_major, c_minor), (s_major, s_minor) = _minor(client), _minor(versions.kubernetes_version)
    skew_ok = c_major == s_major and abs(c_minor - s_minor) <= 1
    checks.append(
        Check(
            "kubectl",
            skew_ok,
            f"{kubectl} {client}, node Kubernetes v{versions.kubernetes_version}"
            + ("" if skew_ok else " (more than one minor version apart)"),
            versions.kubectl_install_fix(),
        )
    )
    return checks


def check_node_image(probes: Probes, versions: KindVersions) -> Check:
    """The pinned node image, present or pullable: kind cannot create a cluster without it."""
    problem = probes.node_image_problem(versions.node_image)
    if problem is None:
        return Check("node image", True, f"{versions.node_image} present or pullable")
    return Check(
        "node image",
        False,
        f"{versions.node_image} is not present and cannot be pulled ({problem})",
        "make kindest/node pullable from this machine (registry access or a mirror), or "
        "`docker load -i` an archive of that exact image made where it can be pulled",
    )


def preflight_checks(versions: KindVersions, probes: Probes | None = None) -> list[Check]:
    probes = probes or Probes()
    docker_check, info = check_docker(probes)
    checks = [
        docker_check,
        *check_resources(probes, info),
        *check_inotify(probes),
        *check_tools(probes, versions),
    ]
    if docker_check.ok:
        checks.append(check_node_image(probes, versions))
    return checks


def run_preflight(versions: KindVersions, probes: Probes | None = None) -> list[Check]:
    """All checks; raises PreflightError listing every failed one with its fix."""
    checks = preflight_checks(versions, probes)
    if not all(c.ok for c in checks):
        raise PreflightError(checks)
    return checks


def main(argv: Sequence[str] | None = None, probes: Probes | None = None) -> int:
    """`python -m stackctl.k8s.preflight`: every check, one line each (failures with their
    fix); exit 1 if any failed. `nox -s integration-kind` runs it before collecting the suite."""
    from stackcontract.repo import find_repo_root
    from stackctl.k8s.versions import load_versions

    del argv  # no options: the pinned versions come from the checkout
    checks = preflight_checks(load_versions(find_repo_root()), probes)
    failed = [c for c in checks if not c.ok]
    for check in checks:
        print(check.line())
    if failed:
        print(f"kind preflight failed ({len(failed)} of {len(checks)} checks): fix the above first")
        return 1
    print(f"kind preflight passed ({len(checks)} checks)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
