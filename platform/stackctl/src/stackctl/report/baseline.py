"""Main's report, kept as a CI artifact: each push to main uploads its reports/ (with
report/report.json) as the artifact `report-main` (.github/workflows/pr.yml, job `report`); a pull
request's run fetches the newest one through the GitHub REST API (the job's token, `actions: read`).

Why an artifact and not a committed baseline: a committed file would have to be re-committed by
every change that moves a figure, and timings measured on one machine mean little on another; the
artifact is always main's latest run on the same kind of runner.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path

import httpx

ARTIFACT = "report-main"
MEMBER = "report/report.json"  # inside the artifact, which holds reports/
API = "https://api.github.com"


class BaselineUnavailable(RuntimeError):
    """No report of main could be fetched; the message says why (the report goes on without)."""


def fetch_main_report(
    dest: Path, *, environ: Mapping[str, str] = os.environ, client: httpx.Client | None = None
) -> Path:
    """Download the newest unexpired `report-main` artifact of main into `dest` (report.json)."""
    token, repository = environ.get("GITHUB_TOKEN"), environ.get("GITHUB_REPOSITORY")
    if not token or not repository:
        raise BaselineUnavailable(
            "GITHUB_TOKEN and GITHUB_REPOSITORY are not set: fetching main's report works in "
            "GitHub Actions; elsewhere pass --baseline FILE."
        )
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json"}
    http = client or httpx.Client(timeout=60, follow_redirects=True)
    try:
        listing = http.get(
            f"{API}/repos/{repository}/actions/artifacts",
            params={"name": ARTIFACT, "per_page": 30},
            headers=headers,
        )
        listing.raise_for_status()
        candidates = [
            artifact
            for artifact in listing.json().get("artifacts", [])
            if not artifact.get("expired")
            and (artifact.get("workflow_run") or {}).get("head_branch") == "main"
        ]
        if not candidates:
            raise BaselineUnavailable(
                f"{repository} has no unexpired {ARTIFACT} artifact from main yet (it is "
                "recorded by the first run on main after this workflow lands)."
            )
        newest = max(candidates, key=lambda artifact: str(artifact.get("created_at", "")))
        archive = http.get(newest["archive_download_url"], headers=headers)
        archive.raise_for_status()
    except httpx.HTTPError as error:
        raise BaselineUnavailable(f"Fetching main's report failed: {error}") from error
    finally:
        if client is None:
            http.close()
    with zipfile.ZipFile(io.BytesIO(archive.content)) as bundle:
        if MEMBER not in bundle.namelist():
            raise BaselineUnavailable(f"The {ARTIFACT} artifact holds no {MEMBER}.")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(bundle.read(MEMBER))
    return dest
