"""The benchmark's MLServer is locked on its own (tests/load/mlserver/uv.lock) but serves the
champion's own estimator, pickled by the stack's scikit-learn: the two locks must agree on it."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
SHARED = ("scikit-learn", "numpy", "scipy")


def locked_versions(lock: Path) -> dict[str, set[str]]:
    packages = tomllib.loads(lock.read_text())["package"]
    versions: dict[str, set[str]] = {}
    for package in packages:
        versions.setdefault(package["name"], set()).add(package["version"])
    return versions


def test_mlserver_loads_the_champion_with_the_stacks_scikit_learn() -> None:
    stack = locked_versions(REPO / "uv.lock")
    bench = locked_versions(REPO / "tests" / "load" / "mlserver" / "uv.lock")
    assert "mlserver-sklearn" in bench
    differing = {name: (stack[name], bench[name]) for name in SHARED if stack[name] != bench[name]}
    assert not differing, (
        f"tests/load/mlserver/uv.lock pins {differing} differently from uv.lock: a joblib file "
        "of the champion may not load; `uv lock --upgrade-package NAME` there"
    )
