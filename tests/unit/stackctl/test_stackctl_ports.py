"""Port pre-flight: a taken port is reported with its owner and the override that moves it."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

import pytest

from stackctl.local.ports import PortClaim, PortConflictError, check_ports, port_is_free


def test_free_ports_pass(port_factory: Callable[[], int]) -> None:
    check_ports([PortClaim("mlflow", "mlflow_port", port_factory())])


def test_taken_port_names_port_component_holder_and_override() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert not port_is_free(port)
        with pytest.raises(PortConflictError) as raised:
            check_ports([PortClaim("mlflow", "mlflow_port", port)])
    message = str(raised.value)
    assert f"port {port} needed by mlflow" in message
    assert f"pid {os.getpid()}" in message  # psutil can see our own listener
    assert f"STACK_MLFLOW_PORT={port + 1} stackctl up" in message


def test_one_port_claimed_twice_is_a_configuration_error(port_factory: Callable[[], int]) -> None:
    port = port_factory()
    claims = [PortClaim("s3", "s3_port", port), PortClaim("mlflow", "mlflow_port", port)]
    with pytest.raises(PortConflictError, match=r"configured for both s3_port and mlflow_port"):
        check_ports(claims)


def test_all_conflicts_are_reported_at_once() -> None:
    with (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as first,
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as second,
    ):
        for sock in (first, second):
            sock.bind(("127.0.0.1", 0))
            sock.listen()
        claims = [
            PortClaim("s3", "s3_port", first.getsockname()[1]),
            PortClaim("airflow", "airflow_api_port", second.getsockname()[1]),
        ]
        with pytest.raises(PortConflictError) as raised:
            check_ports(claims)
    assert "STACK_S3_PORT" in str(raised.value)
    assert "STACK_AIRFLOW_API_PORT" in str(raised.value)
