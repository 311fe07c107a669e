"""The local backend's readiness wait: a death is only a failure if the check still fails after
it (a one-shot process may finish between the check and the death watch)."""

from __future__ import annotations

import threading

import pytest

from stackctl.local.readiness import StartupError, wait_until


def test_a_one_shot_process_that_finishes_between_check_and_death_watch_is_ready() -> None:
    # `airflow db migrate` is still running when checked, has exited 0 when the watch looks
    state = {"running": True}

    def check() -> str | None:
        return "migrating" if state["running"] else None

    def died() -> str | None:
        state["running"] = False
        return "process airflow-db-migrate exited with code 0"

    wait_until("airflow", check, budget=10, died=died, cancel=threading.Event(), interval=0)


def test_a_service_that_died_fails_with_what_died() -> None:
    with pytest.raises(StartupError, match="mlflow: process mlflow exited with code 1 before it"):
        wait_until(
            "mlflow",
            lambda: "GET /health -> connection refused",
            budget=10,
            died=lambda: "process mlflow exited with code 1",
            cancel=threading.Event(),
            interval=0,
        )
