"""Where the local backend keeps its state: one gitignored folder, `.stack/local/`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StatePaths:
    """Layout of `.stack/local/`: logs, pid files, service data, generated config, endpoints."""

    root: Path

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def pids(self) -> Path:
        return self.root / "pids"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def generated(self) -> Path:
        """Generated configuration files (S3 identities, prometheus.yml)."""
        return self.root / "config"

    @property
    def airflow_home(self) -> Path:
        return self.root / "airflow"

    @property
    def endpoints(self) -> Path:
        return self.root / "endpoints.json"

    @property
    def ports(self) -> Path:
        """The ports the running stack was started with (a later `up` reuses them)."""
        return self.root / "ports.json"

    @property
    def credentials(self) -> Path:
        return self.root / "credentials.json"

    def log(self, component: str) -> Path:
        return self.logs / f"{component}.log"

    def ensure(self) -> None:
        for folder in (self.logs, self.pids, self.data, self.generated, self.airflow_home):
            folder.mkdir(parents=True, exist_ok=True)
