"""State-changing endpoints of a running stack refuse callers without credentials (and accept the
ones the stack generated). The SeaweedFS, MLflow and Pushgateway endpoints are not covered yet."""

from __future__ import annotations

import httpx
import pytest

from stackcontract.endpoints import Endpoints

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-the-token"}],
    ids=["no token", "wrong token"],
)
def test_model_server_reload_refuses_callers_without_the_token(
    endpoints: Endpoints, headers: dict[str, str]
) -> None:
    response = httpx.post(f"{endpoints.model_server_url}/reload", headers=headers, timeout=60)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"


def test_model_server_reload_accepts_the_stack_token(endpoints: Endpoints) -> None:
    response = httpx.post(
        f"{endpoints.model_server_url}/reload", headers=endpoints.reload_headers(), timeout=120
    )
    # 200 once a champion exists, 503 "no champion yet" before: either way the token was accepted.
    assert response.status_code in {200, 503}, response.text


@pytest.mark.parametrize("path", ["/-/reload", "/-/quit"])
def test_prometheus_lifecycle_api_is_off(endpoints: Endpoints, path: str) -> None:
    if endpoints.prometheus_url is None:
        pytest.skip(f"the {endpoints.backend} stack runs no Prometheus (prometheus_url is None)")
    response = httpx.post(f"{endpoints.prometheus_url}{path}", timeout=30)
    assert response.status_code == 403, response.text
    assert "Lifecycle API is not enabled" in response.text
    assert httpx.get(f"{endpoints.prometheus_url}/-/healthy", timeout=30).status_code == 200
