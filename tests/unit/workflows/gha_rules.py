"""Our own rules for the GitHub workflows, on top of GitHub's JSON schema.

Each check takes the workflow's file name and its parsed (or raw) content and returns a list of
violations; every violation names the workflow, the job and the step, so a failing test says exactly
what to fix. The tests run them on the real workflows (no violations) and on mutated copies (each
check must bite).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[3]
WORKFLOWS = REPO / ".github" / "workflows"

Workflow = dict[str, Any]

_SHA_REF = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}$")
_USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)(?P<rest>.*)$")
_VERSION_COMMENT = re.compile(r"^\s+#\s+v\d+(?:\.\d+){0,2}\s*$")

# A `run:` line must either run nox (directly or through the bootstrap script that installs the
# pinned uv and nox) or be one of these machine-setup commands. Anything else is logic that belongs
# in a nox session, where developers run it too.
# A session name (the unit job adds `--force-python ${{ matrix.python }}` after it).
NOX_COMMAND = re.compile(r"^(?:platform/bootstrap\.sh\s+)?nox\s+-s\s+(?P<session>[\w-]+)(?:\s|$)")
SETUP_COMMANDS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^sudo apt-get update -qq$"), "refresh the apt index"),
    (
        re.compile(r"^sudo apt-get install -y -qq --no-install-recommends [a-z0-9 .+-]+$"),
        "install Debian packages the stack needs (prometheus, pushgateway)",
    ),
    (re.compile(r"^docker image (?:load|save|pull) [^;&|`]+$"), "cache the kind node image"),
    (re.compile(r"^mkdir -p ~/\.cache/[\w./-]+$"), "create a cache directory"),
    (
        re.compile(r"""^grep -E '\^\[A-Z_\]\+=' platform/kind/versions\.env >> "\$GITHUB_ENV"$"""),
        "export the pinned kind versions (one source of truth) to later steps",
    ),
)
# Shell chaining would let any command ride along an allowed prefix.
_SHELL_CHAINING = re.compile(r"&&|\|\||;|\||`|\$\(")
# Expressions an attacker controls (PR titles, branch names, tag names) must reach scripts through
# `env:`, never be pasted into the script text.
_UNTRUSTED_EXPRESSION = re.compile(r"\$\{\{\s*github\.(?:event\.|head_ref)")

ALLOWED_JOB_PERMISSIONS = {"contents": "read", "id-token": "write"}


@dataclass(frozen=True)
class Located:
    """A job or step, with the words a violation message uses to point at it."""

    where: str
    body: dict[str, Any]


class _Yaml12Loader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false. PyYAML's 1.1 rules turn the `on:` key into True."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|false)$"), list("tf")
)


def load_workflow_text(text: str) -> Workflow:
    """Parse workflow YAML the way GitHub does (`on` stays a string key)."""
    data = yaml.load(text, Loader=_Yaml12Loader)  # a SafeLoader subclass
    if not isinstance(data, dict):
        raise ValueError("a workflow must be a YAML mapping")
    return data


def load_workflow(path: Path) -> Workflow:
    return load_workflow_text(path.read_text())


def jobs(name: str, workflow: Workflow) -> list[Located]:
    return [
        Located(f"{name}: job '{job_id}'", body)
        for job_id, body in workflow.get("jobs", {}).items()
    ]


def steps(name: str, workflow: Workflow) -> list[Located]:
    found = []
    for job in jobs(name, workflow):
        for index, step in enumerate(job.body.get("steps", []), start=1):
            label = step.get("name") or step.get("uses") or str(step.get("run", "")).splitlines()[0]
            found.append(Located(f"{job.where} step {index} ({label!r})", step))
    return found


def run_commands(script: str) -> list[str]:
    """The commands of a `run:` script: comments and blank lines dropped, continuations joined."""
    joined = re.sub(r"\\\n\s*", " ", script)
    lines = (line.strip() for line in joined.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def job_sessions(job: dict[str, Any]) -> set[str]:
    """Nox sessions one job runs."""
    sessions = set()
    for step in job.get("steps", []):
        for command in run_commands(str(step.get("run", ""))):
            if match := NOX_COMMAND.match(command):
                sessions.add(match["session"])
    return sessions


def nox_sessions(workflow: Workflow) -> set[str]:
    """Nox sessions the workflow runs."""
    return set().union(*(job_sessions(job) for job in workflow.get("jobs", {}).values()))


def check_actions_pinned(name: str, workflow: Workflow) -> list[str]:
    """Every action and reusable workflow is pinned to a full 40-hex commit SHA."""
    problems = []
    for step in steps(name, workflow):
        ref = step.body.get("uses")
        if ref is None or ref.startswith("./"):
            continue
        if ref.startswith("docker://"):
            if "@sha256:" not in ref:
                problems.append(f"{step.where}: docker action {ref!r} is not pinned by digest")
        elif not _SHA_REF.match(ref):
            problems.append(
                f"{step.where}: {ref!r} is not pinned to a full 40-hex commit SHA "
                "(use owner/repo@<sha> # vX.Y.Z)"
            )
    for job in jobs(name, workflow):
        ref = job.body.get("uses")
        if ref is not None and not ref.startswith("./") and not _SHA_REF.match(ref):
            problems.append(f"{job.where}: reusable workflow {ref!r} is not pinned to a commit SHA")
    return problems


def check_version_comments(name: str, text: str) -> list[str]:
    """Every pinned `uses:` line says which release the SHA is (`# vX.Y.Z`), for humans and Dependabot."""
    problems = []
    for number, line in enumerate(text.splitlines(), start=1):
        match = _USES_LINE.match(line)
        if match is None or match["ref"].startswith("./"):
            continue
        if not _VERSION_COMMENT.match(match["rest"]):
            problems.append(
                f"{name} line {number}: `{match['ref']}` has no `# vX.Y.Z` comment naming the release"
            )
    return problems


def check_run_steps(name: str, workflow: Workflow) -> list[str]:
    """Every `run:` command calls a nox session or is an allow-listed machine-setup command."""
    problems = []
    for step in steps(name, workflow):
        script = step.body.get("run")
        if script is None:
            continue
        for command in run_commands(str(script)):
            if _SHELL_CHAINING.search(command):
                problems.append(
                    f"{step.where}: chains shell commands in {command!r}; use one per step"
                )
            elif not NOX_COMMAND.match(command) and not any(
                pattern.match(command) for pattern, _ in SETUP_COMMANDS
            ):
                problems.append(
                    f"{step.where}: runs {command!r}, which is neither a nox session nor an "
                    "allow-listed setup command; move the logic into a nox session"
                )
    return problems


def check_no_untrusted_expressions(name: str, workflow: Workflow) -> list[str]:
    """Event data reaches scripts through env, so a crafted branch or tag name cannot inject shell."""
    return [
        f"{step.where}: expands event data inside the script; pass it through `env:` instead"
        for step in steps(name, workflow)
        if _UNTRUSTED_EXPRESSION.search(str(step.body.get("run", "")))
    ]


def check_timeouts(name: str, workflow: Workflow) -> list[str]:
    """Every job has a timeout, so a hung job cannot hold a runner for GitHub's default six hours."""
    problems = []
    for job in jobs(name, workflow):
        timeout = job.body.get("timeout-minutes")
        if not isinstance(timeout, int) or not 0 < timeout <= 120:
            problems.append(
                f"{job.where}: needs `timeout-minutes` between 1 and 120 (has {timeout!r})"
            )
    return problems


def check_permissions(name: str, workflow: Workflow) -> list[str]:
    """Least privilege: read-only token at the top; only a job deploying to a protected environment
    may add `id-token: write` (for OIDC), and nothing may ask for any other write scope."""
    problems = []
    if workflow.get("permissions") != {"contents": "read"}:
        problems.append(
            f"{name}: top-level `permissions` must be exactly `contents: read` "
            f"(has {workflow.get('permissions')!r})"
        )
    for job in jobs(name, workflow):
        granted = job.body.get("permissions")
        if granted is None:
            continue
        if not isinstance(granted, dict):
            problems.append(f"{job.where}: `permissions: {granted}` is too broad; list scopes")
            continue
        for scope, level in granted.items():
            if level in ("read", "none") and scope != "id-token":
                continue
            if ALLOWED_JOB_PERMISSIONS.get(scope) != level:
                problems.append(f"{job.where}: must not be granted `{scope}: {level}`")
            elif scope == "id-token" and "environment" not in job.body:
                problems.append(
                    f"{job.where}: `id-token: write` is only for a job that deploys to a "
                    "protected `environment`"
                )
    return problems


def check_failure_diagnostics(name: str, workflow: Workflow) -> list[str]:
    """Every job uploads `reports/` when it fails, so a red run can be diagnosed without a rerun."""
    problems = []
    for job in jobs(name, workflow):
        uploads = [
            step
            for step in job.body.get("steps", [])
            if str(step.get("uses", "")).startswith("actions/upload-artifact@")
            and "reports"
            in [
                p.strip().rstrip("/")
                for p in str(step.get("with", {}).get("path", "")).splitlines()
            ]
            and str(step.get("if", "")) in ("failure()", "always()")
        ]
        if not uploads:
            problems.append(
                f"{job.where}: no actions/upload-artifact step uploading reports/ with "
                "`if: failure()` (or always())"
            )
    return problems


def check_pr_triggers(name: str, workflow: Workflow) -> list[str]:
    """PR runs are filtered by path and a newer push cancels the superseded run."""
    problems = []
    trigger = workflow.get("on", {})
    pull_request = trigger.get("pull_request") if isinstance(trigger, dict) else None
    if not isinstance(pull_request, dict) or not (
        pull_request.get("paths") or pull_request.get("paths-ignore")
    ):
        problems.append(f"{name}: `on.pull_request` needs `paths` or `paths-ignore` filters")
    concurrency = workflow.get("concurrency")
    if not isinstance(concurrency, dict) or concurrency.get("cancel-in-progress") is not True:
        problems.append(f"{name}: needs top-level `concurrency` with `cancel-in-progress: true`")
    elif "github.event.pull_request.number" not in str(concurrency.get("group", "")):
        problems.append(f"{name}: the concurrency group must be per pull request")
    return problems


def check_release_deploy(name: str, workflow: Workflow) -> list[str]:
    """Deploys are serialised and never cancelled, gated by a protected environment, and use OIDC."""
    problems = []
    trigger = workflow.get("on", {})
    release = trigger.get("release") if isinstance(trigger, dict) else None
    if not isinstance(release, dict) or release.get("types") != ["published"]:
        problems.append(f"{name}: must run `on: release: types: [published]`")
    concurrency = workflow.get("concurrency")
    if not (
        isinstance(concurrency, dict)
        and concurrency.get("group") == "deploy-eks"
        and concurrency.get("cancel-in-progress") is False
    ):
        problems.append(
            f"{name}: needs `concurrency: {{group: deploy-eks, cancel-in-progress: false}}` "
            "so two deploys never overlap or get cut short"
        )
    deploying = [job for job in jobs(name, workflow) if "deploy-eks" in job_sessions(job.body)]
    if not deploying:
        problems.append(f"{name}: no job runs `nox -s deploy-eks`")
    for job in deploying:
        if job.body.get("environment") != "production":
            problems.append(f"{job.where}: deploys without `environment: production`")
        credentials = [
            step
            for step in job.body.get("steps", [])
            if str(step.get("uses", "")).startswith("aws-actions/configure-aws-credentials@")
        ]
        if len(credentials) != 1 or "role-to-assume" not in credentials[0].get("with", {}):
            problems.append(
                f"{job.where}: must get AWS credentials from one configure-aws-credentials step "
                "with `role-to-assume` (GitHub OIDC)"
            )
    for step in steps(name, workflow):
        inputs = step.body.get("with", {}) or {}
        static = {"aws-access-key-id", "aws-secret-access-key"} & set(inputs)
        if static:
            problems.append(f"{step.where}: uses static AWS keys ({', '.join(sorted(static))})")
    return problems


def check_all(name: str, text: str) -> list[str]:
    """Every rule that applies to the workflow called `name`."""
    workflow = load_workflow_text(text)
    problems = [
        *check_actions_pinned(name, workflow),
        *check_version_comments(name, text),
        *check_run_steps(name, workflow),
        *check_no_untrusted_expressions(name, workflow),
        *check_timeouts(name, workflow),
        *check_permissions(name, workflow),
    ]
    if name == "pr.yml":
        problems += check_pr_triggers(name, workflow) + check_failure_diagnostics(name, workflow)
    if name == "release.yml":
        problems += check_release_deploy(name, workflow)
    return problems
