"""Our rules for the workflows hold on the real files, and each rule bites on a mutated copy with a
message that names the workflow, the job and the step to fix."""

from __future__ import annotations

import ast
import copy
import tomllib
from collections.abc import Callable
from typing import Any

import gha_rules
import pytest
from gha_rules import REPO, WORKFLOWS, Workflow, load_workflow_text
from packaging.specifiers import SpecifierSet


def text_of(name: str) -> str:
    return (WORKFLOWS / name).read_text()


def parsed(name: str) -> Workflow:
    return load_workflow_text(text_of(name))


def noxfile_sessions() -> set[str]:
    """Session names the noxfile defines (function name, or the decorator's `name=`)."""
    tree = ast.parse((REPO / "noxfile.py").read_text())
    names = set()
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        for decorator in node.decorator_list:
            call = decorator if isinstance(decorator, ast.Call) else None
            target = call.func if call else decorator
            if ast.unparse(target) not in ("nox.session", "session"):
                continue
            explicit = [kw.value for kw in (call.keywords if call else []) if kw.arg == "name"]
            names.add(
                explicit[0].value
                if explicit and isinstance(explicit[0], ast.Constant)
                else node.name
            )
    return names


@pytest.mark.parametrize("name", ["pr.yml", "release.yml"])
def test_real_workflow_follows_every_rule(name: str) -> None:
    assert gha_rules.check_all(name, text_of(name)) == []


def test_pr_jobs_cover_every_tier() -> None:
    assert gha_rules.nox_sessions(parsed("pr.yml")) == {
        "lint",
        "unit",
        "integration",
        "integration-compose",
        "integration-kind",
        "load",
        "report",
    }


def test_load_job_runs_a_short_load_test() -> None:
    commands = [
        command
        for step in parsed("pr.yml")["jobs"]["load"]["steps"]
        for command in gha_rules.run_commands(step.get("run", ""))
    ]
    assert any(c.endswith("nox -s load -- --duration 30s") for c in commands), commands


def test_unit_matrix_is_every_python_the_project_supports() -> None:
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    supported = [f"3.{minor}" for minor in range(8, 20) if f"3.{minor}" in SpecifierSet(requires)]
    matrix = parsed("pr.yml")["jobs"]["unit"]["strategy"]["matrix"]["python"]
    assert matrix == supported
    tree = ast.parse((REPO / "noxfile.py").read_text())
    declared = next(
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "PYTHONS"
    )
    assert list(declared) == matrix, "the noxfile's PYTHONS and the PR unit matrix differ"


def test_every_session_the_workflows_run_exists_in_the_noxfile() -> None:
    called = gha_rules.nox_sessions(parsed("pr.yml")) | gha_rules.nox_sessions(
        parsed("release.yml")
    )
    missing = called - noxfile_sessions()
    assert not missing, f"workflows call sessions the noxfile lacks: {sorted(missing)}"


def test_kind_versions_come_from_the_kind_backends_pins() -> None:
    """CI installs the kind version and caches the node image that stackctl pins, read from
    platform/kind/versions.env at run time rather than copied into the workflow."""
    job = parsed("pr.yml")["jobs"]["integration-kind"]
    text = (REPO / "platform" / "kind" / "versions.env").read_text()
    exported = {line.split("=", 1)[0] for line in text.splitlines() if line[:1].isupper()}
    kind = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("helm/kind-action@"))
    cache_keys = [str(s.get("with", {}).get("key", "")) for s in job["steps"]]
    assert {"KIND_VERSION", "KIND_NODE_IMAGE"} <= exported
    assert kind["with"]["version"] == "${{ env.KIND_VERSION }}"
    assert any("${{ env.KIND_NODE_IMAGE }}" in key for key in cache_keys)


def test_kind_job_installs_kind_without_creating_a_cluster() -> None:
    """The nox session owns the cluster; the action only installs the pinned kind binary."""
    steps = parsed("pr.yml")["jobs"]["integration-kind"]["steps"]
    kind = [s for s in steps if str(s.get("uses", "")).startswith("helm/kind-action@")]
    assert len(kind) == 1
    assert kind[0]["with"]["install_only"] is True


# --- each rule bites -------------------------------------------------------------------------


Mutation = Callable[[Workflow], None]


def _step(workflow: Workflow, job: str, uses_prefix: str = "", run_prefix: str = "") -> Any:
    for step in workflow["jobs"][job]["steps"]:
        if uses_prefix and str(step.get("uses", "")).startswith(uses_prefix):
            return step
        if run_prefix and str(step.get("run", "")).startswith(run_prefix):
            return step
    raise AssertionError(f"no step {uses_prefix or run_prefix!r} in job {job}")


def _unpin_checkout(workflow: Workflow) -> None:
    _step(workflow, "unit", uses_prefix="actions/checkout@")["uses"] = "actions/checkout@v4"


def _short_sha(workflow: Workflow) -> None:
    _step(workflow, "lint", uses_prefix="actions/setup-python@")["uses"] = (
        "actions/setup-python@a26af69be951a213d495a4c3e4e4022e16d8706"
    )


def _curl_step(workflow: Workflow) -> None:
    workflow["jobs"]["integration"]["steps"].append(
        {"name": "fetch", "run": "curl -sSf https://example.invalid/install.sh"}
    )


def _chained_step(workflow: Workflow) -> None:
    _step(workflow, "lint", run_prefix="platform/bootstrap.sh")["run"] = (
        "platform/bootstrap.sh nox -s lint && rm -rf reports"
    )


def _pip_in_multiline_script(workflow: Workflow) -> None:
    _step(workflow, "lint", run_prefix="platform/bootstrap.sh")["run"] = (
        "# lint\nplatform/bootstrap.sh nox -s lint\npython -m pytest tests/unit\n"
    )


def _injection(workflow: Workflow) -> None:
    _step(workflow, "lint", run_prefix="platform/bootstrap.sh")["run"] = (
        "platform/bootstrap.sh nox -s lint -- ${{ github.event.pull_request.title }}"
    )


def _no_timeout(workflow: Workflow) -> None:
    del workflow["jobs"]["load"]["timeout-minutes"]


def _write_all(workflow: Workflow) -> None:
    workflow["permissions"] = "write-all"


def _id_token_on_pr_job(workflow: Workflow) -> None:
    workflow["jobs"]["unit"]["permissions"] = {"contents": "read", "id-token": "write"}


def _packages_write(workflow: Workflow) -> None:
    workflow["jobs"]["unit"]["permissions"] = {"packages": "write"}


def _no_upload_on_failure(workflow: Workflow) -> None:
    _step(workflow, "integration-kind", uses_prefix="actions/upload-artifact@")["if"] = "success()"


def _keep_superseded_runs(workflow: Workflow) -> None:
    workflow["concurrency"]["cancel-in-progress"] = False


def _no_path_filter(workflow: Workflow) -> None:
    workflow["on"]["pull_request"] = {}


PR_MUTATIONS: dict[str, tuple[Mutation, str]] = {
    "tag instead of SHA": (_unpin_checkout, "pr.yml: job 'unit' step 1 ('actions/checkout@v4')"),
    "39-hex SHA": (_short_sha, "pr.yml: job 'lint' step 2"),
    "arbitrary command": (_curl_step, "pr.yml: job 'integration' step 9 ('fetch'): runs 'curl"),
    "chained command": (
        _chained_step,
        "pr.yml: job 'lint' step 4 ('platform/bootstrap.sh nox -s lint && rm -rf reports'): chains",
    ),
    "second command in a script": (_pip_in_multiline_script, "runs 'python -m pytest tests/unit'"),
    "event data in a script": (
        _injection,
        "pr.yml: job 'lint' step 4 ('platform/bootstrap.sh nox -s lint -- ${{ github.event.pull_request.title }}'): expands event data",
    ),
    "missing timeout": (_no_timeout, "pr.yml: job 'load': needs `timeout-minutes`"),
    "write-all token": (
        _write_all,
        "pr.yml: top-level `permissions` must be exactly `contents: read`",
    ),
    "OIDC on a PR job": (_id_token_on_pr_job, "pr.yml: job 'unit': `id-token: write` is only for"),
    "write scope": (_packages_write, "pr.yml: job 'unit': must not be granted `packages: write`"),
    "no failure upload": (
        _no_upload_on_failure,
        "pr.yml: job 'integration-kind': no actions/upload-artifact",
    ),
    "superseded runs kept": (
        _keep_superseded_runs,
        "pr.yml: needs top-level `concurrency` with `cancel-in-progress: true`",
    ),
    "no path filter": (
        _no_path_filter,
        "pr.yml: `on.pull_request` needs `paths` or `paths-ignore`",
    ),
}


def _violations(name: str, workflow: Workflow) -> list[str]:
    checks = [
        gha_rules.check_actions_pinned,
        gha_rules.check_run_steps,
        gha_rules.check_no_untrusted_expressions,
        gha_rules.check_timeouts,
        gha_rules.check_permissions,
    ]
    if name == "pr.yml":
        checks += [gha_rules.check_pr_triggers, gha_rules.check_failure_diagnostics]
    else:
        checks += [gha_rules.check_release_deploy]
    return [problem for check in checks for problem in check(name, workflow)]


def assert_rule_bites(name: str, mutate: Mutation, expected: str) -> None:
    """`mutate` applied to a copy of workflow `name` is reported with a problem containing
    `expected`."""
    workflow = copy.deepcopy(parsed(name))
    mutate(workflow)
    problems = _violations(name, workflow)
    assert any(expected in problem for problem in problems), problems


@pytest.mark.parametrize("case", PR_MUTATIONS, ids=str)
def test_pr_rule_bites(case: str) -> None:
    assert_rule_bites("pr.yml", *PR_MUTATIONS[case])


def _cancel_deploys(workflow: Workflow) -> None:
    workflow["concurrency"]["cancel-in-progress"] = True


def _no_environment(workflow: Workflow) -> None:
    del workflow["jobs"]["deploy"]["environment"]


def _static_keys(workflow: Workflow) -> None:
    inputs = _step(workflow, "deploy", uses_prefix="aws-actions/configure-aws-credentials@")["with"]
    del inputs["role-to-assume"]
    inputs["aws-access-key-id"] = "${{ secrets.AWS_ACCESS_KEY_ID }}"
    inputs["aws-secret-access-key"] = "${{ secrets.AWS_SECRET_ACCESS_KEY }}"


def _oidc_at_top(workflow: Workflow) -> None:
    workflow["permissions"] = {"contents": "read", "id-token": "write"}


def _tag_in_script(workflow: Workflow) -> None:
    step = _step(workflow, "deploy", run_prefix="platform/bootstrap.sh nox -s deploy-eks")
    step["run"] = step["run"].replace('"$RELEASE_TAG"', "${{ github.event.release.tag_name }}")


def _on_push(workflow: Workflow) -> None:
    workflow["on"] = {"push": {"tags": ["v*"]}}


RELEASE_MUTATIONS: dict[str, tuple[Mutation, str]] = {
    "cancelling deploys": (
        _cancel_deploys,
        "release.yml: needs `concurrency: {group: deploy-eks, cancel-in-progress: false}`",
    ),
    "no protected environment": (
        _no_environment,
        "release.yml: job 'deploy': deploys without `environment: production`",
    ),
    "static AWS keys": (
        _static_keys,
        "release.yml: job 'deploy' step 3 ('aws-actions/configure-aws-credentials@",
    ),
    "OIDC for every job": (
        _oidc_at_top,
        "release.yml: top-level `permissions` must be exactly `contents: read`",
    ),
    "tag pasted into the script": (_tag_in_script, "release.yml: job 'deploy' step 7"),
    "wrong trigger": (_on_push, "release.yml: must run `on: release: types: [published]`"),
}


@pytest.mark.parametrize("case", RELEASE_MUTATIONS, ids=str)
def test_release_rule_bites(case: str) -> None:
    assert_rule_bites("release.yml", *RELEASE_MUTATIONS[case])


def test_missing_version_comment_is_reported_with_its_line() -> None:
    text = text_of("pr.yml")
    first = text.index(" # v4.2.2")
    line = text[:first].count("\n") + 1
    problems = gha_rules.check_version_comments(
        "pr.yml", text[:first] + text[first + len(" # v4.2.2") :]
    )
    assert problems == [
        f"pr.yml line {line}: `actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683` "
        "has no `# vX.Y.Z` comment naming the release"
    ]


def test_yaml_on_key_stays_a_string() -> None:
    """PyYAML would read `on:` as True; GitHub reads it as the trigger key."""
    assert "on" in parsed("pr.yml")
    assert True not in parsed("pr.yml")
