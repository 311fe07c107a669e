"""Nox sessions: lint and unit by default; the slow tiers (integration, load, kind, eks) are opt-in."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import time
from pathlib import Path

import nox

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "uv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["lint", "unit"]

# The supported Pythons (pyproject: >=3.11,<3.14). `lint` and `unit` run on the first; the PR
# workflow runs `unit` and `unit-slow` on each with `nox -s unit unit-slow --force-python X.Y`.
PYTHONS = ("3.11", "3.12", "3.13")
PYTHON = PYTHONS[0]
# lint and unit share one venv per Python (.nox/dev-X.Y): mypy sees every import the tests use.
DEV_GROUPS = ("test", "airflow", "k8s", "load", "lint", "compose")
# Every sync compiles bytecode: where PYTHONDONTWRITEBYTECODE is set (these CI machines), Python
# never caches what it compiles, and each process recompiled sklearn, MLflow and Airflow on import
# (measured: `import sklearn` 4.5 s -> 1.6 s, `import airflow` 4.5 s -> 2.4 s). The sessions'
# processes may cache bytecode too: the workspace packages (editable) and pytest's rewritten test
# modules are compiled by no sync, and were recompiled by every process (collecting the unit tier:
# 26 s -> 10 s per process). An empty value unsets the variable for Python.
CACHE_BYTECODE = {"PYTHONDONTWRITEBYTECODE": ""}
# What `nox -s report` measures itself (fixed inputs) before collecting what the tiers wrote.
REPORT_MEASURES = {
    "mlpipe.scorecard": "reports/model/scorecard.json",
    "stackctl.report.dag_parse": "reports/dags/parse.json",
}
# The integration suite, against whichever backend `--backend` names (local by default).
INTEGRATION_SUITE = ("pytest", "tests/integration", "-m", "integration")


def sync_command(groups: tuple[str, ...], *, project: bool = True) -> list[str]:
    """`uv sync` of the locked ``groups`` (and the workspace packages unless not ``project``)."""
    args = ["uv", "sync", "--locked", "--no-default-groups", "--compile-bytecode"]
    # project=False: only the groups, not the workspace's own dependencies (e.g. checkov's group
    # conflicts with pins those pull in).
    args += [f"--group={group}" if project else f"--only-group={group}" for group in groups]
    if not project:
        args += ["--no-install-project", "--no-install-workspace"]
    return args


def install(session: nox.Session, *, groups: tuple[str, ...], project: bool = True) -> None:
    """Install the locked dependencies of ``groups`` (and the workspace packages) into the session."""
    command = sync_command(groups, project=project)
    session.run_install(*command, env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location})
    session.env.update(CACHE_BYTECODE)


def dev_venv(session: nox.Session) -> Path:
    """Sync the venv lint and unit share (.nox/dev-<python>, DEV_GROUPS); return its bin folder."""
    python = str(session.python)
    if python not in PYTHONS:
        session.error(f"Python {python} is not supported here; use one of {', '.join(PYTHONS)}.")
    location = Path(".nox", f"dev-{python}").resolve()
    sync = [*sync_command(DEV_GROUPS), "--python", interpreter(session, python)]
    env = {"UV_PROJECT_ENVIRONMENT": str(location), "UV_PYTHON_DOWNLOADS": "never"}
    session.run_install(*sync, env=env, external=True)
    session.env["VIRTUAL_ENV"] = str(location)  # subprocesses of the tests find the venv's tools
    session.env.update(CACHE_BYTECODE)
    session.env["PATH"] = os.pathsep.join([str(location / "bin"), os.environ.get("PATH", "")])
    return location / "bin"


def interpreter(session: nox.Session, python: str) -> str:
    """The executable of Python ``python`` (X.Y) on PATH, or stop with how to provide one."""
    found = shutil.which(f"python{python}")
    probe = [found, "-c", "import sys; print(sys.executable)"] if found else None
    result = subprocess.run(probe, capture_output=True, text=True, check=False) if probe else None
    if result is None or result.returncode != 0:
        session.error(
            f"python{python} is not runnable here. Fix: install Python {python} and put it on "
            f"PATH (with pyenv: `pyenv global {PYTHON} {python}`), or run on Python {PYTHON}"
        )
    return result.stdout.strip()


def require_tool(session: nox.Session, tool: str, *, fix: str) -> str:
    """Return the path of an external ``tool`` or stop the session with the exact fix."""
    path = shutil.which(tool)
    if path is None:
        session.error(f"`{tool}` is not on PATH. Fix: {fix}")
    return path


def optional_tool(session: nox.Session, tool: str, *args: str, fix: str) -> None:
    """Run an external linter when it is installed; otherwise say it was skipped and how to get it."""
    if shutil.which(tool) is None:
        session.warn(f"`{tool}` is not on PATH: its check is SKIPPED. Fix: {fix}")
        return
    session.run(tool, *args, external=True)


@nox.session(python=PYTHON, venv_backend="none")
def lint(session: nox.Session) -> None:
    """Every linter: ruff (AIR rules on the DAGs), mypy --strict, hadolint, promtool, actionlint, checkov."""
    tools = dev_venv(session)
    session.run(tools / "ruff", "check", *(session.posargs or ["."]), external=True)
    session.run(tools / "ruff", "format", "--check", *(session.posargs or ["."]), external=True)
    session.run(tools / "mypy", external=True)
    dockerfiles = sorted(glob.glob("platform/images/*Dockerfile"))
    session.run(tools / "hadolint", "--failure-threshold", "warning", *dockerfiles, external=True)
    rules = "platform/observability/alerts.yaml"
    optional_tool(session, "promtool", "check", "rules", rules, fix="apt-get install prometheus")
    workflows = sorted(glob.glob(".github/workflows/*.yml"))
    fix = "put the actionlint binary on PATH (its PyPI wrapper downloads one, which fails offline)"
    optional_tool(session, "actionlint", "-no-color", *workflows, fix=fix)
    session.notify("manifests")  # checkov needs its own venv (its pins conflict with Airflow's)


def unit_tests(session: nox.Session, *, marker: str) -> None:
    """tests/unit selected by `marker`, on one worker per core."""
    tools = dev_venv(session)
    parallel = ["-n", "auto", "--dist", "loadfile"]  # a module's fixtures stay on one worker
    args = session.posargs or ["tests/unit"]
    session.run(tools / "pytest", "-m", marker, *parallel, *args, external=True)


@nox.session(python=PYTHON, venv_backend="none")
def unit(session: nox.Session) -> None:
    """Fast unit tier: ml code/data/model, DAG integrity, serving, manifests, backends (not `slow`)."""
    unit_tests(session, marker="not slow")


@nox.session(python=PYTHON, venv_backend="none", name="unit-slow")
def unit_slow(session: nox.Session) -> None:
    """Unit tests marked `slow`: DAG tasks in process, real SeaweedFS/Locust runs, notebook, full training."""
    unit_tests(session, marker="slow")


@nox.session(python=PYTHON)
def manifests(session: nox.Session) -> None:
    """Render every overlay and check it with checkov (schema and wiring tests run in `unit`)."""
    install(session, groups=("policy", "k8s"), project=False)  # checkov: no Airflow here
    # The renderer (stackctl.k8s.manifests) needs only pyyaml and the contract package, not
    # stackctl's own dependencies.
    packages = ("-e", "platform/contract", "-e", "platform/stackctl")
    session.run_install("uv", "pip", "install", "--no-deps", *packages)
    rendered = f"{session.create_tmp()}/manifests"
    session.run("stack-manifests", "export", rendered)
    # A closed local proxy: checkov's update check must not leave the machine (skip-download in
    # the config covers its guideline download).
    closed = "http://127.0.0.1:9"
    offline = {"HTTPS_PROXY": closed, "HTTP_PROXY": closed, "NO_PROXY": ""}
    config = "platform/k8s/.checkov.yaml"
    session.run("checkov", "--config-file", config, "-d", rendered, env=offline)


@nox.session(python=PYTHON)
def up(session: nox.Session) -> None:
    """Bring the stack up on a backend (local by default) and train a first champion."""
    install(session, groups=("airflow",))
    session.run("stackctl", "up", *session.posargs)


@nox.session(python=PYTHON)
def down(session: nox.Session) -> None:
    """Stop everything `nox -s up` started (add --purge to delete the stack's data)."""
    install(session, groups=("airflow",))
    session.run("stackctl", "down", *session.posargs)


@nox.session(python=PYTHON)
def integration(session: nox.Session) -> None:
    """Integration tier: bring a stack up on a backend (local by default) and run tests/integration against it."""
    install(session, groups=("test", "airflow", "k8s"))
    session.run(*INTEGRATION_SUITE, *session.posargs)


@nox.session(python=PYTHON, name="integration-compose")
def integration_compose(session: nox.Session) -> None:
    """Integration tier on Docker Compose: build the images, start the containers, test, remove them."""
    install(session, groups=("test", "airflow", "k8s", "compose"))
    # Once, before the suite: no engine (or no Compose v2) is one clear stop, not 50 errors.
    session.run("python", "-m", "stackctl.compose.preflight")
    session.run(*INTEGRATION_SUITE, "--backend", "compose", *session.posargs)


@nox.session(python=PYTHON, name="integration-all")
def integration_all(session: nox.Session) -> None:
    """Both integration tiers at once (local and Compose), each logged under reports/integration/."""
    install(session, groups=("test", "airflow", "k8s", "compose"))
    session.run("python", "-m", "stackctl.compose.preflight")
    suite = [*INTEGRATION_SUITE, *session.posargs]
    tiers = {"local": suite, "compose": [*suite, "--backend", "compose"]}
    run_together(session, commands=tiers)


def run_together(session: nox.Session, *, commands: dict[str, list[str]]) -> None:
    """Start every command at once in the session's venv, each writing reports/integration/<name>
    /pytest.log; print each log when its command ends; fail naming the ones that failed."""
    path = os.pathsep.join([session.bin, os.environ.get("PATH", "")])
    env = {**os.environ, "PATH": path, "VIRTUAL_ENV": str(session.virtualenv.location)}
    running: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    for name, command in commands.items():
        log = Path("reports", "integration", name, "pytest.log")
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("wb") as out:
            running[name] = (
                subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env),
                log,
            )
        session.log(f"{name}: {' '.join(command)} (log: {log})")
    failed = []
    while running:
        for name, (process, log) in list(running.items()):
            if process.poll() is None:
                continue
            del running[name]
            print(f"\n===== {name} (exit {process.returncode}): {log} =====\n{log.read_text()}")
            if process.returncode != 0:
                failed.append(name)
        if running:
            time.sleep(2)
    if failed:
        session.error(f"integration tier failed on {', '.join(failed)}: see the logs above")


@nox.session(python=PYTHON, name="integration-kind")
def integration_kind(session: nox.Session) -> None:
    """Integration tier on an ephemeral kind cluster: create, deploy, test, collect diagnostics, delete."""
    probe = "platform/stackctl/src/stackctl/k8s/dockerprobe.py"  # stdlib only: runs before install
    no_docker = session.run("python", probe, silent=True, success_codes=[0, 2])
    if isinstance(no_docker, str) and no_docker.strip():
        session.skip(no_docker.strip())
    args = list(session.posargs)
    env = {"STACK_KIND_KEEP_CLUSTER": "1"} if "--keep-cluster" in args else {}
    args = [a for a in args if a != "--keep-cluster"]
    install(session, groups=("test", "airflow", "k8s"))
    # Once, before the suite: a machine that cannot run kind gets every fix in one list.
    session.run("python", "-m", "stackctl.k8s.preflight")
    session.run(*INTEGRATION_SUITE, "--backend", "kind", *args, env=env)


@nox.session(python=PYTHON, name="deploy-eks")
def deploy_eks(session: nox.Session) -> None:
    """Render the eks overlay and show the plan; with --apply, deploy to EKS, smoke-test, roll back on failure."""
    install(session, groups=("test", "k8s"))
    session.run("python", "-m", "stackctl.eks", "deploy", *session.posargs)


@nox.session(python=PYTHON, name="push-images")
def push_images(session: nox.Session) -> None:
    """Build the project images and push them: to ECR for a release, or to a loopback registry."""
    args = list(session.posargs)
    registry = args[args.index("--registry") + 1] if "--registry" in args[:-1] else ""
    if registry.startswith(("127.0.0.1:", "localhost:")):  # a local registry: the docker SDK pushes
        install(session, groups=("compose",))
        session.run("stackctl", "images", "push", *session.posargs)
        return
    install(session, groups=("k8s",))
    require_tool(session, "docker", fix="install Docker with the buildx plugin")
    session.run("python", "-m", "stackctl.eks", "push-images", *session.posargs)


@nox.session(python=PYTHON, venv_backend="none")
def report(session: nox.Session) -> None:
    """What this change did against main's report: model, data and performance deltas, gated."""
    tools = dev_venv(session)  # the scorecard trains; the parse timing imports Airflow
    for module, out in REPORT_MEASURES.items():  # measured here: the same inputs for main and PR
        session.run(tools / "python", "-m", module, "--out", out, external=True)
    session.run(tools / "python", "-m", "stackctl.report", *session.posargs, external=True)


@nox.session(python=PYTHON)
def load(session: nox.Session) -> None:
    """Load tier: Locust profiles against the local stack (brought up if needed), gated on SLOs."""
    install(session, groups=("airflow", "load"))
    session.run("stackctl", "up")  # reuses the running stack when there is one
    session.run("python", "-m", "stackctl.loadtest", "run", *session.posargs)
