"""Dev secrets, overlay rendering and server-side apply commands (nothing is applied)."""

from __future__ import annotations

import json
import stat
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from kind_helpers import RecordingRunner, ok

from stackctl.k8s import deploy
from stackctl.k8s.commands import CommandFailedError, CommandResult, run_command

REPO = Path(__file__).resolve().parents[3]


def _overlay(tmp_path: Path, generators: list[dict[str, object]]) -> Path:
    overlay = tmp_path / "overlay"
    overlay.mkdir(parents=True)
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({"secretGenerator": generators}))
    return overlay


def test_secrets_path_comes_from_the_overlay_generator(tmp_path: Path) -> None:
    overlay = _overlay(tmp_path, [{"name": "stack-secrets", "envs": ["secrets/dev.env"]}])
    assert deploy.secrets_env_path(overlay) == (overlay / "secrets/dev.env").resolve()
    with pytest.raises(deploy.DeployConfigError, match="no secretGenerator named stack-secrets"):
        deploy.secrets_env_path(_overlay(tmp_path / "other", [{"name": "x", "envs": ["a"]}]))
    with pytest.raises(deploy.DeployConfigError, match="kind overlay is missing"):
        deploy.secrets_env_path(tmp_path / "nowhere")


def test_required_keys_are_read_from_secret_key_refs(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        yaml.safe_dump_all(
            [
                {"kind": "Deployment", "spec": {"template": {"spec": {"containers": [{"env": [
                    {"name": "X", "valueFrom": {"secretKeyRef": {"name": "stack-secrets", "key": "B_KEY"}}},
                    {"name": "Y", "valueFrom": {"secretKeyRef": {"name": "other", "key": "NOPE"}}},
                ]}]}}}},
                {"kind": "Job", "env": [{"valueFrom": {"secretKeyRef": {"name": "stack-secrets", "key": "A_KEY"}}}]},
            ]
        )
    )  # fmt: skip
    assert deploy.required_secret_keys([tmp_path]) == ["A_KEY", "B_KEY"]
    # The real manifests reference the S3 credentials.
    real = deploy.required_secret_keys([REPO / "platform/k8s"])
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(real)


def test_dev_secrets_come_from_the_k8s_generator_and_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "secrets.env"
    keys = ["AWS_ACCESS_KEY_ID", "AIRFLOW_ADMIN_PASSWORD", "AIRFLOW_CONN_MLOPS_S3"]

    def generate(args: list[str], **_kw: object) -> CommandResult:
        runner.calls.append(list(args))
        path.write_text("AWS_ACCESS_KEY_ID=k\nAIRFLOW_ADMIN_PASSWORD=p\nAIRFLOW_CONN_MLOPS_S3={}\n")
        return CommandResult(list(args), 0, "", "")

    runner = RecordingRunner()
    values = deploy.ensure_dev_secrets(generate, "py", tmp_path, path, keys, 30)
    assert values["AIRFLOW_ADMIN_PASSWORD"] == "p"
    assert runner.calls == [
        ["py", "-m", "stackctl.k8s.manifests", "--root", str(tmp_path), "secrets", str(path)]
    ]
    deploy.ensure_dev_secrets(generate, "py", tmp_path, path, keys, 30)
    assert len(runner.calls) == 1  # complete file: kept, not rotated
    # A key the manifests now need but the file lacks: regenerate with --force.
    path.write_text("AWS_ACCESS_KEY_ID=k\n")
    deploy.ensure_dev_secrets(generate, "py", tmp_path, path, keys, 30)
    assert runner.calls[-1][-1] == "--force"


def test_generator_missing_a_referenced_key_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "secrets.env"
    path.write_text("AWS_ACCESS_KEY_ID=k\n")
    with pytest.raises(deploy.DeployConfigError, match=r"lacks NEW_KEY .* add them to dev_secrets"):
        deploy.ensure_dev_secrets(RecordingRunner(), "py", tmp_path, path, ["NEW_KEY"], 30)


def test_real_generator_covers_every_secret_key_ref(tmp_path: Path) -> None:
    path = tmp_path / "secrets.env"
    keys = deploy.required_secret_keys([REPO / "platform/k8s"])
    values = deploy.ensure_dev_secrets(run_command, sys.executable, REPO, path, keys, 60)
    assert set(keys) <= set(values)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(values["AIRFLOW_CONN_MLOPS_S3"])["login"] == values["AWS_ACCESS_KEY_ID"]


def test_kustomize_and_server_side_apply_commands(tmp_path: Path) -> None:
    rendered = yaml.safe_dump_all(
        [
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "mlflow", "namespace": "mlops"}},
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "mlops"}},
            {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate", "namespace": "mlops"}},
        ]
    )  # fmt: skip
    runner = RecordingRunner(responses={("kubectl", "kustomize"): ok(rendered)})
    text = deploy.render_overlay(runner, "kubectl", tmp_path / "overlay", timeout=30)
    assert runner.calls[0] == ["kubectl", "kustomize", str(tmp_path / "overlay")]
    docs = deploy.parse_manifests(text)
    assert deploy.expected_workloads(docs, "mlops") == ["Deployment/mlflow", "Job/migrate"]
    assert deploy.workload_namespaces(docs) == ["mlops"]

    manifest = tmp_path / "manifests.yaml"
    manifest.write_text(text)
    deploy.apply_manifests(runner, "kubectl", tmp_path / "kc", "kind-aok8s-1", manifest, 120)
    first, delete_jobs, second = runner.calls[1:]
    kubectl = ["kubectl", "--kubeconfig", str(tmp_path / "kc"), "--context", "kind-aok8s-1"]
    prefix = [*kubectl, "apply", "--server-side", "--field-manager=stackctl", "--force-conflicts",
              "-f"]  # fmt: skip
    assert first[:-1] == prefix
    # Jobs are immutable: the ones about to be applied are deleted (and waited for) first.
    assert delete_jobs == [
        *kubectl, "delete", "job", "migrate", "-n", "mlops", "--ignore-not-found", "--wait=true"
    ]  # fmt: skip
    assert second[:-1] == prefix
    assert [d["kind"] for d in yaml.safe_load_all(Path(first[-1]).read_text())] == ["Namespace"]
    assert [d["kind"] for d in yaml.safe_load_all(Path(second[-1]).read_text())] == [
        "Deployment",
        "Job",
    ]
    assert runner.timeouts[1:] == [120, 120, 120]


def _job(image: str) -> dict[str, object]:
    container = {"name": "migrate", "image": image}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "airflow-db-migrate", "namespace": "mlops"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [container]}}},
    }


@dataclass
class JobStore:
    """kubectl against in-memory Jobs with the API server's rule: a Job's template is immutable."""

    jobs: dict[str, dict[str, object]] = field(default_factory=dict)

    def __call__(self, args: Sequence[str], **_kwargs: object) -> CommandResult:
        verb_args = list(args[5:])  # after: kubectl --kubeconfig K --context C
        if verb_args[:2] == ["delete", "job"]:
            for name in verb_args[2 : verb_args.index("-n")]:
                self.jobs.pop(name, None)
        elif verb_args[0] == "apply":
            for doc in yaml.safe_load_all(Path(args[-1]).read_text()):
                name = doc["metadata"]["name"]
                if doc["kind"] == "Job" and name in self.jobs and self.jobs[name] != doc:
                    raise CommandFailedError(
                        list(args),
                        1,
                        f'The Job "{name}" is invalid: spec.template: field is immutable',
                    )
                if doc["kind"] == "Job":
                    self.jobs[name] = doc
        return CommandResult(list(args), 0, "", "")


def test_reapplying_a_changed_job_replaces_it(tmp_path: Path) -> None:
    cluster = JobStore()
    manifest = tmp_path / "manifests.yaml"
    for image in ("airflow-on-k8s/airflow:dev", "airflow-on-k8s/airflow:next"):
        manifest.write_text(yaml.safe_dump(_job(image)))
        deploy.apply_manifests(cluster, "kubectl", tmp_path / "kc", "kind-x", manifest, 60)
    assert cluster.jobs["airflow-db-migrate"] == _job("airflow-on-k8s/airflow:next")
