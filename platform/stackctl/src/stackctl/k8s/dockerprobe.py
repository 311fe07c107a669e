"""Is a Docker daemon answering? Standard library only, so the noxfile can run this file with a
bare interpreter (`python dockerprobe.py`) to decide whether to skip the kind session.

Exit status 0 and no output when `GET /_ping` answers OK; exit status 2 and the skip reason
otherwise."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Mapping
from urllib.parse import urlparse

DEFAULT_HOST = "unix:///var/run/docker.sock"
FIX = (
    "Fix: start Docker (`sudo systemctl start docker`, or start Docker Desktop) or point "
    "DOCKER_HOST at a running daemon, then check with `docker info`"
)


def docker_host(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return env.get("DOCKER_HOST") or DEFAULT_HOST


def _connect(host: str, timeout: float) -> socket.socket:
    url = urlparse(host)
    if url.scheme == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(url.path)
        return sock
    if url.scheme in ("tcp", "http"):
        return socket.create_connection((url.hostname or "127.0.0.1", url.port or 2375), timeout)
    raise OSError(f"cannot probe a {url.scheme}:// Docker host without the docker CLI")


def ping_error(host: str, timeout: float = 3.0) -> str | None:
    """None if the daemon at `host` answers `/_ping` with 200, else what went wrong."""
    try:
        with _connect(host, timeout) as sock:
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            head = sock.recv(256).decode("latin-1")
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
    status = head.split("\r\n", 1)[0]
    return None if " 200 " in f"{status} " else f"unexpected answer {status!r}"


def skip_reason(environ: Mapping[str, str] | None = None, timeout: float = 3.0) -> str | None:
    """The exact reason to skip the kind tier, or None when Docker answers."""
    host = docker_host(environ)
    error = ping_error(host, timeout)
    if error is None:
        return None
    return f"No Docker daemon answered at {host} ({error}): the kind backend needs Docker. {FIX}"


if __name__ == "__main__":
    reason = skip_reason()
    if reason:
        print(reason)
        sys.exit(2)
