"""Backends are loaded one way: by name from the `stackctl.backends` entry points, each built with
the same constructor, each refusing the choices it cannot honour."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from stackcontract.settings import load_config
from stackctl.backend import BackendError, backend_names, load_backend
from stackctl.cli import app
from stackctl.compose import ComposeBackend
from stackctl.eks.backend import EksBackend
from stackctl.k8s.backend import KindBackend
from stackctl.local import LocalBackend, S3Flavor


def test_the_four_backends_are_registered_and_load_by_name() -> None:
    assert backend_names() == ["compose", "eks", "kind", "local"]
    assert load_backend("compose") is ComposeBackend
    assert load_backend("local") is LocalBackend
    assert load_backend("kind") is KindBackend
    assert load_backend("eks") is EksBackend


def test_an_unknown_backend_names_the_registered_ones() -> None:
    with pytest.raises(
        BackendError, match=r"No backend 'swarm'\. Registered backends: compose, eks, kind, local"
    ):
        load_backend("swarm")


def test_every_backend_takes_the_one_constructor(fake_repo: Path, tmp_path: Path) -> None:
    config = load_config({"STACK_REPO_ROOT": str(fake_repo)})
    local = load_backend("local")(config, state_dir=tmp_path / "local", options={"s3": "minio"})
    assert isinstance(local, LocalBackend)
    assert local.state_dir == tmp_path / "local"
    assert local.options.s3 is S3Flavor.minio
    kind = load_backend("kind")(config, state_dir=tmp_path / "kind", options={})
    assert isinstance(kind, KindBackend)
    assert kind.state_dir == tmp_path / "kind"
    compose = load_backend("compose")(config, state_dir=tmp_path / "c", options={"s3": "minio"})
    assert isinstance(compose, ComposeBackend)
    assert compose.state_dir == tmp_path / "c"
    assert compose.options.s3 is S3Flavor.minio


def test_a_choice_a_backend_cannot_honour_is_refused_with_where_it_is_made(
    fake_repo: Path,
) -> None:
    config = load_config({"STACK_REPO_ROOT": str(fake_repo)})
    with pytest.raises(ValueError, match=r"kind backend has no option s3: the kind overlay"):
        load_backend("kind")(config, options={"s3": "minio"})
    with pytest.raises(ValueError, match=r"eks backend has no option train: it connects"):
        load_backend("eks")(config, options={"train": False})
    with pytest.raises(
        ValueError,
        match=r"compose backend has no option mlflow_backend_store_uri: Compose runs MLflow",
    ):
        load_backend("compose")(config, options={"mlflow_backend_store_uri": "sqlite://"})
    with pytest.raises(ValueError, match=r"local backend has no option nodes: it has s3, "):
        load_backend("local")(config, options={"nodes": 3})


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["up", "--backend", "swarm"], "is not a registered backend (compose, eks, kind, local)"),
        (["up", "--backend", "kind", "--s3", "minio"], "kind backend has no option s3"),
        # a checkout without platform/eks: the eks backend says what is missing, before any call
        (["down", "--backend", "eks"], "cluster.yaml does not exist"),
    ],
)
def test_the_cli_selects_backends_through_the_loader(
    fake_repo: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], says: str
) -> None:
    monkeypatch.setenv("STACK_REPO_ROOT", str(fake_repo))
    result = CliRunner().invoke(app, args)
    # rich wraps long messages in a box: compare the words only
    words = " ".join(result.output.replace("│", " ").split())
    assert result.exit_code == 2, words
    assert says in words
