"""What each declared service really runs with on a Kubernetes backend, read from the rendered
manifests of its overlay: the drift check compares it with platform/config/services.toml.

Environment is resolved the way the kubelet does it (`envFrom` ConfigMaps, with their prefix,
then `env`); a value from a Secret reads `<secret NAME/KEY>`, since it is generated per stack.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from stackcontract.services import Effective, Services


def _config_maps(objects: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    return {
        str(obj["metadata"]["name"]): dict(obj.get("data") or {})
        for obj in objects
        if obj.get("kind") == "ConfigMap"
    }


def container_env(
    container: Mapping[str, Any], config_maps: Mapping[str, dict[str, str]]
) -> dict[str, str]:
    """The environment a container starts with (ConfigMap values resolved, Secrets named)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        ref = source.get("configMapRef")
        if ref is None:
            continue
        prefix = source.get("prefix", "")
        for key, value in config_maps.get(ref["name"], {}).items():
            env[prefix + key] = value
    for item in container.get("env") or []:
        if "value" in item:
            env[item["name"]] = str(item["value"])
        elif secret := (item.get("valueFrom") or {}).get("secretKeyRef"):
            env[item["name"]] = f"<secret {secret['name']}/{secret['key']}>"
        elif config := (item.get("valueFrom") or {}).get("configMapKeyRef"):
            env[item["name"]] = config_maps.get(config["name"], {}).get(config["key"], "")
    return env


def _probe_paths(container: Mapping[str, Any]) -> tuple[str, ...]:
    paths = []
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        http = (container.get(probe) or {}).get("httpGet")
        if http and http.get("path"):
            paths.append(str(http["path"]))
    return tuple(dict.fromkeys(paths))


def _workload(
    objects: Iterable[Mapping[str, Any]], kind: str, name: str
) -> Mapping[str, Any] | None:
    for obj in objects:
        if obj.get("kind") == kind and obj["metadata"]["name"] == name:
            return obj
    return None


def effective_settings(
    services: Services, objects: list[Mapping[str, Any]], backend: str
) -> dict[str, list[Effective]]:
    """Per service that `backend` runs: one `Effective` per declared container. A
    declared workload or container missing from the render is an `Effective` marked `missing`
    (the drift check names it)."""
    config_maps = _config_maps(objects)
    result: dict[str, list[Effective]] = {}
    for service in services.on(backend):
        entries: list[Effective] = []
        for index, reference in enumerate(service.kubernetes):
            kind_name, _, container_name = reference.partition(":")
            kind, _, name = kind_name.partition("/")
            workload = _workload(objects, kind, name)
            pod = ((workload or {}).get("spec") or {}).get("template", {}).get("spec", {})
            container = next(
                (c for c in pod.get("containers") or [] if c["name"] == container_name), None
            )
            if container is None:
                entries.append(Effective(where=reference, args=[], missing=True))
                continue
            ports = [p["containerPort"] for p in container.get("ports") or []]
            entries.append(
                Effective(
                    where=reference,
                    args=[str(arg) for arg in container.get("args") or []],
                    env=container_env(container, config_maps),
                    # the first workload carries the service's port and health
                    port=ports[0] if index == 0 and ports else None,
                    health=_probe_paths(container) if index == 0 else (),
                )
            )
        if entries:
            result[service.name] = entries
    return result
