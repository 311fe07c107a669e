"""The one backend interface: every backend (local, kind, eks) brings a stack up, reports its
endpoints, collects its logs, and tears it down. Tests only ever talk to `Endpoints`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ConfigDict, SecretStr


class Endpoints(BaseModel):
    """Where a running stack answers, and the credentials it generated. Written to
    `<state dir>/endpoints.json` by `up`; read by the integration fixtures and the load tests."""

    model_config = ConfigDict(frozen=True)

    backend: str
    s3_url: str
    s3_access_key: str
    s3_secret_key: SecretStr
    s3_bucket: str
    mlflow_url: str
    airflow_url: str
    airflow_username: str
    airflow_password: SecretStr
    model_server_url: str
    model_name: str
    prometheus_url: str | None = None
    pushgateway_url: str | None = None
    grafana_url: str | None = None

    def dump(self, path: Path) -> None:
        """Write the endpoints, secrets included, to a file only the owner can read."""
        data = self.model_dump(mode="json")
        data["s3_secret_key"] = self.s3_secret_key.get_secret_value()
        data["airflow_password"] = self.airflow_password.get_secret_value()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2) + "\n")
        path.chmod(0o600)

    @classmethod
    def load(cls, path: Path) -> Endpoints:
        """Read endpoints written by `dump`, with a clear error when no stack has written them."""
        if not path.is_file():
            raise FileNotFoundError(
                f"No stack endpoints at {path}. Bring a stack up first (`nox -s up`) "
                "or point the tests at a running one with --stack-endpoints PATH."
            )
        return cls.model_validate_json(path.read_text())


class Backend(Protocol):
    """What the local, kind and eks backends each implement."""

    name: str

    def up(self) -> Endpoints:
        """Bring the stack up (or reuse a matching running one) and return its endpoints."""
        ...

    def endpoints(self) -> Endpoints:
        """Endpoints of the stack this backend is already running."""
        ...

    def collect_logs(self, dest: Path) -> Path:
        """Gather logs and diagnostics under `dest` and return the index file written there."""
        ...

    def down(self, *, purge: bool = False) -> None:
        """Stop everything this backend started (and delete its data with `purge`)."""
        ...
