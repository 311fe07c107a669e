"""Fetching main's report from the `report-main` artifact, against a recorded GitHub API."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import httpx
import pytest

from stackctl.report.baseline import BaselineUnavailable, fetch_main_report

ENV = {"GITHUB_TOKEN": "t0ken", "GITHUB_REPOSITORY": "acme/airflow-on-k8s"}


def _zip(name: str, content: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr(name, content)
    return buffer.getvalue()


def _artifact(number: int, branch: str, created: str, expired: bool = False) -> dict[str, object]:
    return {
        "id": number, "name": "report-main", "expired": expired, "created_at": created,
        "workflow_run": {"head_branch": branch},
        "archive_download_url": f"https://api.github.com/artifacts/{number}/zip",
    }  # fmt: skip


def _client(artifacts: list[dict[str, object]], archive: bytes) -> tuple[httpx.Client, list[str]]:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        assert request.headers["Authorization"] == "Bearer t0ken"
        if request.url.path.endswith("/actions/artifacts"):
            assert request.url.params["name"] == "report-main"
            return httpx.Response(200, json={"artifacts": artifacts})
        return httpx.Response(200, content=archive)

    return httpx.Client(transport=httpx.MockTransport(answer)), seen


def test_the_newest_unexpired_report_of_main_is_fetched(tmp_path: Path) -> None:
    client, seen = _client(
        [
            _artifact(1, "main", "2026-11-01T00:00:00Z"),
            _artifact(2, "main", "2026-11-03T00:00:00Z", expired=True),
            _artifact(3, "feature", "2026-11-04T00:00:00Z"),
            _artifact(4, "main", "2026-11-02T00:00:00Z"),
        ],
        _zip("report/report.json", b'{"commit": "abc"}'),
    )
    path = fetch_main_report(tmp_path / "baseline/report.json", environ=ENV, client=client)
    assert path.read_text() == '{"commit": "abc"}'
    assert seen[-1] == "https://api.github.com/artifacts/4/zip"


@pytest.mark.parametrize(
    ("environ", "artifacts", "archive", "message"),
    [
        ({}, [], b"", "GITHUB_TOKEN and GITHUB_REPOSITORY are not set"),
        (ENV, [_artifact(3, "feature", "x")], b"", "no unexpired report-main artifact from main"),
        (
            ENV,
            [_artifact(1, "main", "x")],
            _zip("report.json", b"{}"),
            "holds no report/report.json",
        ),
    ],
)
def test_no_baseline_says_why(
    tmp_path: Path,
    environ: dict[str, str],
    artifacts: list[dict[str, object]],
    archive: bytes,
    message: str,
) -> None:
    client, _ = _client(artifacts, archive)
    with pytest.raises(BaselineUnavailable, match=message):
        fetch_main_report(tmp_path / "report.json", environ=environ, client=client)


def test_an_api_error_is_reported_not_raised_raw(tmp_path: Path) -> None:
    client = httpx.Client(transport=httpx.MockTransport(lambda _r: httpx.Response(403)))
    with pytest.raises(BaselineUnavailable, match=r"Fetching main's report failed: .*403"):
        fetch_main_report(tmp_path / "report.json", environ=ENV, client=client)
