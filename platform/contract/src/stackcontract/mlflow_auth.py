"""MLflow's basic-auth app as the stack runs it: the declared settings file every backend hands
to `mlflow server --app-name=basic-auth`, and the one user the stack's clients authenticate as."""

from __future__ import annotations

from typing import Final

from stackcontract.services import Services

# Under platform/config; MLFLOW_AUTH_CONFIG_PATH points at it (or at its mounted copy).
AUTH_CONFIG_FILE: Final = "services/mlflow-auth.ini"
ADMIN_USERNAME_KEY: Final = "MLFLOW_AUTH_ADMIN_USERNAME"
# What MLflow's clients (its Python client, `mlflow models serve`) read their credentials from.
USERNAME_ENV: Final = "MLFLOW_TRACKING_USERNAME"
PASSWORD_ENV: Final = "MLFLOW_TRACKING_PASSWORD"


def admin_username(services: Services) -> str:
    """The admin user declared in services/mlflow.env."""
    return services["mlflow"].env[ADMIN_USERNAME_KEY]


def client_env(username: str, password: str) -> dict[str, str]:
    """The environment variables an MLflow client of the stack authenticates with."""
    return {USERNAME_ENV: username, PASSWORD_ENV: password}
