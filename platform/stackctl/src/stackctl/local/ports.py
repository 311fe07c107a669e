"""Check, before starting anything, that every port the stack needs is free."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterable
from dataclasses import dataclass

import psutil

from stackcontract.settings import Ports

HOST = "127.0.0.1"


@dataclass(frozen=True)
class PortClaim:
    """One port one component needs; `field` names the Ports field (and so its override)."""

    component: str
    field: str
    port: int

    @property
    def override(self) -> str:
        return Ports.override_variable(self.field)


class PortConflictError(RuntimeError):
    """A needed port is taken (or claimed twice); the message says by whom and how to move it."""


def port_is_free(port: int, host: str = HOST) -> bool:
    """True when a listener could bind `host:port` now (TIME_WAIT sockets do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def port_holder(port: int) -> str | None:
    """Describe the process listening on `port`, when the OS lets us see it."""
    with contextlib.suppress(psutil.AccessDenied, OSError):
        for conn in psutil.net_connections(kind="inet"):
            if conn.status != psutil.CONN_LISTEN or not conn.laddr or conn.laddr.port != port:
                continue
            if conn.pid is None:
                return None
            try:
                proc = psutil.Process(conn.pid)
                command = " ".join(proc.cmdline())[:120] or proc.name()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                return f"pid {conn.pid}"
            return f"pid {conn.pid} ({command})"
    return None


def conflict_message(claim: PortClaim, holder: str | None) -> str:
    who = f"held by {holder}" if holder else "held by another process"
    suggestion = claim.port + 1 if claim.port < 65535 else 1024
    return (
        f"port {claim.port} needed by {claim.component} ({claim.field}) is already in use, {who}. "
        f"Stop that process or move {claim.component}: "
        f"{claim.override}={suggestion} stackctl up"
    )


def check_ports(claims: Iterable[PortClaim]) -> None:
    """Raise one PortConflictError listing every taken or doubly-claimed port."""
    problems: list[str] = []
    owners: dict[int, PortClaim] = {}
    for claim in claims:
        if (first := owners.get(claim.port)) is not None:
            problems.append(
                f"port {claim.port} is configured for both {first.field} and {claim.field}; "
                f"give one of them another port, e.g. {claim.override}={claim.port + 1}"
            )
            continue
        owners[claim.port] = claim
        if not port_is_free(claim.port):
            problems.append(conflict_message(claim, port_holder(claim.port)))
    if problems:
        raise PortConflictError("Cannot start the stack:\n  - " + "\n  - ".join(problems))
