"""Without a Docker daemon the kind backend refuses clearly instead of pretending a cluster ran."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from stackcontract.settings import load_config
from stackctl.k8s import dockerprobe
from stackctl.k8s.backend import KindBackend, KindOptions
from stackctl.k8s.preflight import PreflightError

REPO = Path(__file__).resolve().parents[3]


def test_up_raises_a_preflight_error_naming_docker_when_no_daemon_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a machine without a daemon, whether or not this one runs one
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'no-daemon.sock'}")
    options = KindOptions(reports_dir=tmp_path / "reports", image_cache=tmp_path / "cache")
    backend = KindBackend(load_config(environ={}, start=REPO), options=options)
    with pytest.raises(PreflightError) as info:
        backend.up()
    message = str(info.value)
    assert "[FAIL] docker: No Docker daemon answered at" in message
    assert "Fix: start Docker" in message
    assert backend.cluster is None  # nothing was created, nothing claims to be running
    durations = (tmp_path / "reports/durations.json").read_text()
    assert '"stage": "preflight"' in durations
    assert '"outcome": "failed"' in durations


def test_skip_reason_names_the_socket_and_the_fix(tmp_path: Path) -> None:
    missing = tmp_path / "docker.sock"
    reason = dockerprobe.skip_reason({"DOCKER_HOST": f"unix://{missing}"}, timeout=1)
    assert reason is not None
    assert reason.startswith(f"No Docker daemon answered at unix://{missing} (")
    assert "the kind backend needs Docker. Fix: start Docker" in reason


def test_a_socket_that_answers_ping_means_no_skip(tmp_path: Path) -> None:
    path = tmp_path / "d.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(1024)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        assert dockerprobe.skip_reason({"DOCKER_HOST": f"unix://{path}"}, timeout=2) is None
    finally:
        thread.join(timeout=5)
        server.close()
