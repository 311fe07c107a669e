"""Prometheus' scrape configuration and the Pushgateway's basic-auth web configuration, for
every backend that runs them itself (local processes, Compose): the same jobs, only the targets
differ (loopback ports locally, service names on a container network)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from stackcontract.errors import ConfigError

# How often every backend's Prometheus scrapes and evaluates rules, declared once: in the
# `global:` section of the Kubernetes configuration; the local and Compose ones read it there.
INTERVALS_FILE = Path("platform/k8s/base/prometheus/prometheus.yml")
INTERVAL_KEYS = ("scrape_interval", "evaluation_interval")

PUSHGATEWAY_USER = "monitoring"


def pushgateway_web_config(password: str) -> dict[str, Any]:
    """The Pushgateway's --web.config.file: every endpoint (push, delete, /metrics, health)
    needs basic auth as PUSHGATEWAY_USER."""
    import bcrypt

    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode()
    return {"basic_auth_users": {PUSHGATEWAY_USER: hashed}}


def scrape_intervals(repo_root: Path) -> dict[str, str]:
    """The `global:` scrape and evaluation intervals of INTERVALS_FILE."""
    path = repo_root / INTERVALS_FILE
    try:
        section = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("global") or {}
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"Cannot read the Prometheus intervals from {path}: {error}") from None
    missing = [key for key in INTERVAL_KEYS if not section.get(key)]
    if missing:
        raise ConfigError(f"{path}: `global:` lacks {', '.join(missing)}.")
    return {key: str(section[key]) for key in INTERVAL_KEYS}


def _job(name: str, target: str, *, path: str = "/metrics", **extra: Any) -> dict[str, Any]:
    return {
        "job_name": name,
        "metrics_path": path,
        "static_configs": [{"targets": [target]}],
        **extra,
    }


def prometheus_config(
    *,
    intervals: Mapping[str, str],
    model_server: str,
    mlflow: str,
    s3_metrics: tuple[str, str] | None,
    pushgateway: str | None,
    pushgateway_password_file: Path | None = None,
    mlflow_auth: tuple[str, Path] | None = None,
    rule_files: list[Path] | None = None,
) -> dict[str, Any]:
    """The scrape configuration of the local stack; `intervals` are `scrape_intervals(repo)`,
    targets are `host:port` strings,
    `s3_metrics` is `(target, metrics path)` and `mlflow_auth` `(user, password file)` (MLflow's
    auth app guards /metrics too)."""
    mlflow_extra: dict[str, Any] = {}
    if mlflow_auth is not None:
        mlflow_extra["basic_auth"] = {
            "username": mlflow_auth[0],
            "password_file": str(mlflow_auth[1]),
        }
    jobs = [_job("model-server", model_server), _job("mlflow", mlflow, **mlflow_extra)]
    if s3_metrics is not None:
        jobs.append(_job("s3", s3_metrics[0], path=s3_metrics[1]))
    if pushgateway is not None:
        # honor_labels keeps the job/instance labels of the pushed series (job="ml_monitoring").
        auth = {"username": PUSHGATEWAY_USER, "password_file": str(pushgateway_password_file)}
        extra: dict[str, Any] = {"basic_auth": auth} if pushgateway_password_file else {}
        jobs.append(_job("pushgateway", pushgateway, honor_labels=True, **extra))
    config: dict[str, Any] = {
        "global": dict(intervals),
        "scrape_configs": jobs,
    }
    if rule_files:
        config["rule_files"] = [str(path) for path in rule_files]
    return config


def alert_rule_files(repo_root: Path) -> list[Path]:
    """Prometheus rule files the observability code keeps under platform/observability."""
    folder = repo_root / "platform" / "observability"
    if not folder.is_dir():
        return []
    return sorted(
        path
        for path in folder.rglob("*.y*ml")
        if path.suffix in {".yml", ".yaml"} and _is_rule_file(path)
    )


def _is_rule_file(path: Path) -> bool:
    try:
        loaded = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, OSError):
        return False
    groups = loaded.get("groups") if isinstance(loaded, dict) else None
    return isinstance(groups, list) and all(
        isinstance(group, dict) and "rules" in group for group in groups
    )
