"""The workflows are valid GitHub Actions workflows, checked offline against the schema that
check-jsonschema vendors (SchemaStore's github-workflow schema), and by actionlint when installed."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
from gha_rules import WORKFLOWS, load_workflow, load_workflow_text

WORKFLOW_FILES = sorted(WORKFLOWS.glob("*.yml"))


def github_workflow_schema() -> dict[str, object]:
    vendored = resources.files("check_jsonschema") / "builtin_schemas/vendor/github-workflows.json"
    schema: dict[str, object] = json.loads(vendored.read_text())
    return schema


def schema_errors(workflow: dict[str, object]) -> list[str]:
    schema = github_workflow_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in validator.iter_errors(workflow)
    ]


def test_both_workflows_exist() -> None:
    assert {path.name for path in WORKFLOW_FILES} >= {"pr.yml", "release.yml"}


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda path: path.name)
def test_workflow_matches_github_schema(path: Path) -> None:
    assert schema_errors(load_workflow(path)) == []


def test_schema_check_bites_on_a_misspelt_key() -> None:
    broken = load_workflow_text((WORKFLOWS / "pr.yml").read_text())
    broken["jobs"]["lint"]["runs_on"] = broken["jobs"]["lint"].pop("runs-on")
    errors = schema_errors(broken)
    assert any(error.startswith("jobs/lint") for error in errors), errors


def test_check_jsonschema_cli_accepts_the_workflows() -> None:
    """The same check a developer runs by hand: check-jsonschema's vendored workflow schema."""
    cli = Path(sys.executable).with_name("check-jsonschema")
    result = subprocess.run(
        [str(cli), "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOW_FILES)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
