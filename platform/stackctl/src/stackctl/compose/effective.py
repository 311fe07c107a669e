"""What each declared service really runs with on Compose, read from `docker compose config`
(env_file and interpolation resolved by Compose itself): the drift check compares it with
platform/config/services.toml."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from stackcontract.services import Effective, Services

_PROBE_URL = re.compile(r"http://(?:[^@/\s]+@)?127\.0\.0\.1:\d+(/[^'\"\s)]*)")


def probe_paths(service: Mapping[str, Any]) -> tuple[str, ...]:
    """HTTP paths the service's health check requests (`http://127.0.0.1:<port>/<path>`)."""
    test = (service.get("healthcheck") or {}).get("test") or []
    text = " ".join(test) if isinstance(test, list) else str(test)
    return tuple(dict.fromkeys(_PROBE_URL.findall(text)))


def effective_settings(
    services: Services, rendered: Mapping[str, Any], backend: str = "compose"
) -> dict[str, list[Effective]]:
    """Per service that `backend` runs: one `Effective` per declared compose service (the first
    carries the service's port and health); one missing from the file is marked `missing`."""
    containers = rendered.get("services") or {}
    result: dict[str, list[Effective]] = {}
    for service in services.on(backend):
        entries: list[Effective] = []
        for index, name in enumerate(service.compose):
            container = containers.get(name)
            if container is None:
                entries.append(Effective(where=name, args=[], missing=True))
                continue
            ports = [int(p["target"]) for p in container.get("ports") or [] if "target" in p]
            env = {
                key: "" if value is None else str(value)
                for key, value in (container.get("environment") or {}).items()
            }
            entries.append(
                Effective(
                    where=name,
                    args=[str(arg) for arg in container.get("command") or []],
                    env=env,
                    port=ports[0] if index == 0 and ports else None,
                    health=probe_paths(container) if index == 0 else (),
                )
            )
        if entries:
            result[service.name] = entries
    return result
