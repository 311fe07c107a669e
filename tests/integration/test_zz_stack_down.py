"""Runs last (file order): `stackctl down` on the local backend leaves no process behind and
frees every port. Stops the session's stack, so it only runs on a stack this session started."""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urlsplit

import psutil
import pytest

from stackctl.local.supervisor import INSTANCE_ENV, scan_processes, stack_processes

pytestmark = pytest.mark.integration


def instance_processes(instances: set[str]) -> list[psutil.Process]:
    """Live processes whose environment carries one of the stack's instance markers."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(INSTANCE_ENV) in instances and proc.status() != "zombie":
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
            continue
    return found


def port_open(url: str) -> bool:
    parts = urlsplit(url)
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((parts.hostname or "127.0.0.1", parts.port or 80)) == 0


def test_stack_down_leaves_no_process_behind(stack: Any) -> None:
    local = stack.local()
    records = local.supervisor().records()
    assert records, "the stack has no recorded processes"
    seen = scan_processes()
    processes = {proc.pid: proc for record in records for proc in stack_processes(record, seen)}
    instances = {record.instance for record in records}
    endpoints = stack.endpoints
    urls = [endpoints.s3_url, endpoints.mlflow_url, endpoints.airflow_url]
    urls += [endpoints.model_server_url, endpoints.prometheus_url, endpoints.pushgateway_url]
    listening = [url for url in urls if url and port_open(url)]
    assert listening, "nothing was listening before down"

    stack.stop()  # LocalBackend.down(): what `stackctl down` runs

    _, alive = psutil.wait_procs(list(processes.values()), timeout=5)
    assert not alive, f"still running after down: {[(p.pid, p.name()) for p in alive]}"
    assert not instance_processes(instances), "descendants of the stack survived down"
    # Processes started while the stack stopped (the LocalExecutor's fork server and workers, whose
    # environment setproctitle overwrites) are in the leaders' sessions.
    seen = scan_processes()
    late = [proc for record in records for proc in stack_processes(record, seen)]
    assert not late, f"started during down and left running: {[(p.pid, p.name()) for p in late]}"
    assert not [url for url in listening if port_open(url)], "ports still bound after down"
    assert not local.supervisor().records(), "pid files left behind"


def test_compose_down_purge_leaves_no_container_network_or_volume(stack: Any) -> None:
    if stack.backend_name != "compose" or stack.backend is None:
        pytest.skip(
            f"needs a compose stack started by this session (this run: {stack.backend_name})"
        )
    import docker

    client = docker.from_env()
    backend = stack.backend
    owned = {"label": f"com.docker.compose.project={backend.project}"}
    assert client.containers.list(all=True, filters=owned), "no container before down"
    assert client.volumes.list(filters=owned), "no volume before down"
    endpoints = stack.endpoints
    urls = [
        endpoints.s3_url,
        endpoints.mlflow_url,
        endpoints.airflow_url,
        endpoints.model_server_url,
    ]
    assert all(port_open(url) for url in urls), "not every published port answered before down"

    backend.down(purge=True)  # what `stackctl down --backend compose --purge` runs
    stack.stopped = True

    assert client.containers.list(all=True, filters=owned) == []
    assert client.networks.list(filters=owned) == []
    assert client.volumes.list(filters=owned) == []
    assert not [url for url in urls if port_open(url)], "ports still published after down"
    assert not backend.state_dir.exists(), "state (credentials) left behind by --purge"
