"""Fixtures of tests/integration/dags_test (the helpers live in dagstest_stack.py and
dagstest_scenario.py).

The stack here is private to these tests: it never uses the integration tier's `stack` fixture.
Its scenario runs in the background, from the moment the tier's stack has its first champion
(started at once when no selected test needs that stack; both starting together would slow each
other on 2 cores), and its tests run at the end of the tier (before test_zz_stack_down), so its
~50 s overlap the tier's waits.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagstest_scenario import Outcome, Scenario
from stack_timings import tier_timings

HERE = Path(__file__).parent
SCENARIO = pytest.StashKey[Scenario]()
LAST_OF_ALL = "test_zz_stack_down.py"  # checks the tier's stack left nothing: stays last


def _mine(items: list[pytest.Item]) -> list[pytest.Item]:
    return [item for item in items if item.path.is_relative_to(HERE)]


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """These tests start their own services and no backend: one tier (the local one) runs them,
    after the others, while their scenario has run in the background."""
    backend = config.getoption("--backend")
    mine = _mine(items)
    if backend != "local":
        skip = pytest.mark.skip(
            reason=f"`airflow dags test` uses no backend: the local tier runs it (this run: {backend})"
        )
        for item in mine:
            item.add_marker(skip)
        return
    others = [item for item in items if item not in mine]
    last = [item for item in others if item.path.name == LAST_OF_ALL]
    items[:] = [item for item in others if item not in last] + mine + last


def pytest_collection_finish(session: pytest.Session) -> None:
    """Prepare the scenario once the selection is final, if any of its tests will run; start it
    now unless a selected test will bring the tier's stack up and train first."""
    config = session.config
    if config.option.collectonly or config.getoption("--backend") != "local":
        return
    mine = _mine(session.items)
    if not mine:
        return
    scenario = Scenario(Path(tempfile.mkdtemp(prefix="dags-test-")))
    config.stash[SCENARIO] = scenario
    others = [item for item in session.items if item not in mine]
    if not any("first_training" in getattr(item, "fixturenames", ()) for item in others):
        scenario.start()


def pytest_integration_stack_trained(config: pytest.Config) -> None:
    scenario = config.stash.get(SCENARIO, None)
    if scenario is not None:
        scenario.start()


@pytest.hookimpl(tryfirst=True)  # before the tier's timings are written
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Wait for the scenario's processes to stop (stopping them now after an interrupted run)
    and record every step's seconds."""
    scenario = session.config.stash.get(SCENARIO, None)
    if scenario is None:
        return
    for name, seconds in scenario.finish().items():
        tier_timings(session.config).phase(f"dags_test {name}", seconds)
    print(f"dags_test logs: {scenario.logs}")


@pytest.fixture(scope="module")
def scenario(request: pytest.FixtureRequest) -> Iterator[Outcome]:
    """What the background scenario left (its failure is raised here); the mini stack is
    stopped in the background after these tests, while the tier finishes."""
    running = request.config.stash.get(SCENARIO, None)
    if running is None:
        pytest.fail(
            "the dags_test scenario was not prepared: collection_finish never saw its tests"
        )
    running.start()  # already running unless the tier's first training never finished
    try:
        yield running.outcome()
    finally:
        running.stop_in_background()
