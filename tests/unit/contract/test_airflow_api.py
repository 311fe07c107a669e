"""The Airflow REST client against a recorded API (httpx.MockTransport): login, token renewal,
waiting for a run, and the observers that see every run it returns."""

from __future__ import annotations

import json

import httpx
import pytest

from stackcontract.airflow_api import AirflowAPIError, AirflowClient, DagRun

RUN_PATH = "/api/v2/dags/ml_training/dagRuns/r1"


class FakeAirflow:
    """Answers like the api-server: the run is `running` for `running_polls` polls, then `final`."""

    def __init__(self, *, running_polls: int, final: str = "success") -> None:
        self.running_polls = running_polls
        self.final = final
        self.tokens = 0
        self.polls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/auth/token":
            self.tokens += 1
            return httpx.Response(201, json={"access_token": f"token-{self.tokens}"})
        if request.headers.get("Authorization") != f"Bearer token-{self.tokens}":
            return httpx.Response(401, json={"detail": "expired"})
        if request.url.path == RUN_PATH:
            self.polls += 1
            state = "running" if self.polls <= self.running_polls else self.final
            return httpx.Response(200, json={"state": state})
        if request.url.path == f"{RUN_PATH}/taskInstances":
            body = {"task_instances": [{"task_id": "ingest", "state": "success", "duration": 1.5}]}
            return httpx.Response(200, content=json.dumps(body))
        return httpx.Response(404, json={"detail": "no such path"})


def client(api: FakeAirflow) -> AirflowClient:
    return AirflowClient(
        "http://airflow.test", "admin", "secret", transport=httpx.MockTransport(api)
    )


def test_wait_for_run_polls_until_finished_and_tells_every_observer_once() -> None:
    api = FakeAirflow(running_polls=2)
    seen: list[DagRun] = []
    with client(api) as airflow:
        airflow.run_observers.append(seen.append)
        run = airflow.wait_for_run("ml_training", "r1", timeout=30, interval=0)
    assert run.state == "success"
    assert api.polls == 3
    assert seen == [run]
    assert run.tasks["ingest"]["duration"] == 1.5


def test_a_run_past_its_timeout_is_reported_as_timeout_to_the_observers() -> None:
    api = FakeAirflow(running_polls=10**6)
    seen: list[str] = []
    with client(api) as airflow:
        airflow.run_observers.append(lambda run: seen.append(run.state))
        run = airflow.wait_for_run("ml_training", "r1", timeout=0, interval=0)
    assert run.state == "timeout"
    assert seen == ["timeout"]


def test_an_expired_token_is_renewed_once() -> None:
    api = FakeAirflow(running_polls=0)
    with client(api) as airflow:
        assert airflow.run_state("ml_training", "r1") == "success"
        api.tokens += 1  # the server forgets the token it issued: the next call gets a 401
        assert airflow.run_state("ml_training", "r1") == "success"
    assert api.tokens == 3


def test_an_error_names_method_path_and_status() -> None:
    expected = pytest.raises(AirflowAPIError, match=r"GET /api/v2/nowhere -> 404")
    with client(FakeAirflow(running_polls=0)) as airflow, expected as raised:
        airflow.request("GET", "/api/v2/nowhere")
    assert raised.value.status_code == 404
