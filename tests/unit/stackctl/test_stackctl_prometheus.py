"""The generated prometheus.yml scrapes every local service; promtool accepts it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import cast

import pytest
import yaml

from stackcontract.errors import ConfigError
from stackctl.local.components.monitoring import (
    PUSHGATEWAY_USER,
    Prometheus,
    Pushgateway,
    alert_rule_files,
    prometheus_config,
    pushgateway_web_config,
)
from stackctl.local.context import RunContext
from stackctl.prometheus import INTERVALS_FILE, scrape_intervals

REPO = Path(__file__).resolve().parents[3]


INTERVALS = scrape_intervals(REPO)


def test_every_backend_reads_the_intervals_the_kubernetes_prometheus_declares(
    tmp_path: Path,
) -> None:
    k8s = yaml.safe_load((REPO / INTERVALS_FILE).read_text())["global"]
    assert config()["global"] == k8s == INTERVALS
    broken = tmp_path / INTERVALS_FILE
    broken.parent.mkdir(parents=True)
    broken.write_text("global:\n  scrape_interval: 15s\n")
    with pytest.raises(ConfigError, match="`global:` lacks evaluation_interval"):
        scrape_intervals(tmp_path)


def config(*, pushgateway: str | None = "127.0.0.1:9091") -> dict[str, object]:
    return prometheus_config(
        intervals=INTERVALS,
        model_server="127.0.0.1:8000",
        mlflow="127.0.0.1:5000",
        s3_metrics=("127.0.0.1:9327", "/metrics"),
        pushgateway=pushgateway,
    )


def jobs(generated: dict[str, object]) -> dict[str, dict[str, object]]:
    scrape = generated["scrape_configs"]
    assert isinstance(scrape, list)
    return {job["job_name"]: job for job in scrape}


def test_every_service_is_scraped_at_its_port() -> None:
    by_name = jobs(config())
    targets = {name: job["static_configs"][0]["targets"] for name, job in by_name.items()}  # type: ignore[index]
    assert targets == {
        "model-server": ["127.0.0.1:8000"],
        "mlflow": ["127.0.0.1:5000"],
        "s3": ["127.0.0.1:9327"],
        "pushgateway": ["127.0.0.1:9091"],
    }


def test_mlflow_is_scraped_as_the_stacks_mlflow_user(tmp_path: Path) -> None:
    """MLflow's auth app guards /metrics too: without the user the target would be down (401)."""
    assert "basic_auth" not in jobs(config())["mlflow"]
    generated = prometheus_config(
        intervals=INTERVALS,
        model_server="127.0.0.1:8000",
        mlflow="127.0.0.1:5000",
        s3_metrics=None,
        pushgateway=None,
        mlflow_auth=("stack-admin", tmp_path / "mlflow-password"),
    )
    assert jobs(generated)["mlflow"]["basic_auth"] == {
        "username": "stack-admin",
        "password_file": str(tmp_path / "mlflow-password"),
    }
    assert "basic_auth" not in jobs(generated)["model-server"]


def test_pushgateway_keeps_the_pushed_job_label() -> None:
    assert jobs(config())["pushgateway"]["honor_labels"] is True


def test_no_pushgateway_no_pushgateway_job() -> None:
    assert "pushgateway" not in jobs(config(pushgateway=None))


def test_rule_files_are_listed_when_given(tmp_path: Path) -> None:
    rules = tmp_path / "alerts.yml"
    generated = prometheus_config(
        intervals=INTERVALS,
        model_server="a:1",
        mlflow="b:2",
        s3_metrics=None,
        pushgateway=None,
        rule_files=[rules],
    )
    assert generated["rule_files"] == [str(rules)]
    assert "s3" not in jobs(generated)


def test_alert_rule_files_finds_only_rule_groups(tmp_path: Path) -> None:
    folder = tmp_path / "platform" / "observability"
    folder.mkdir(parents=True)
    (folder / "alerts.yaml").write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": []}]}))
    (folder / "dashboard.yaml").write_text(yaml.safe_dump({"panels": []}))
    assert alert_rule_files(tmp_path) == [folder / "alerts.yaml"]


@pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool not installed (apt-get install prometheus)"
)
def test_prometheus_scrapes_the_pushgateway_with_its_basic_auth(tmp_path: Path) -> None:
    password_file = tmp_path / "pushgateway-password"
    generated = prometheus_config(
        intervals=INTERVALS,
        model_server="127.0.0.1:8000",
        mlflow="127.0.0.1:5000",
        s3_metrics=("127.0.0.1:9327", "/metrics"),
        pushgateway="127.0.0.1:9091",
        pushgateway_password_file=password_file,
    )
    assert jobs(generated)["pushgateway"]["basic_auth"] == {
        "username": PUSHGATEWAY_USER,
        "password_file": str(password_file),
    }


def test_the_pushgateway_web_config_holds_only_a_hash_of_the_password() -> None:
    import bcrypt

    web = pushgateway_web_config("s3cret-password")
    (user, hashed), *others = web["basic_auth_users"].items()
    assert user == PUSHGATEWAY_USER
    assert not others
    assert "s3cret-password" not in hashed
    assert bcrypt.checkpw(b"s3cret-password", hashed.encode())


def test_promtool_accepts_the_generated_config(tmp_path: Path) -> None:
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config()))
    checked = subprocess.run(
        ["promtool", "check", "config", str(path)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_missing_binaries_are_skipped_with_the_install_hint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    ctx = cast(RunContext, None)  # skip_reason only looks at PATH
    for component in (Prometheus(with_pushgateway=True), Pushgateway()):
        reason = component.skip_reason(ctx)
        assert reason is not None
        assert reason.startswith("skipped:")
        assert "apt-get install prometheus prometheus-pushgateway" in reason
