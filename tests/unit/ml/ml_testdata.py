"""Shared helpers of the ml unit tests (paths, settings factory, CSV builder, free ports)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pandas as pd

from mlpipe import data
from mlpipe.config import Settings, load_settings

REPO_ROOT = Path(__file__).resolve().parents[3]
CONFIG_DIR = REPO_ROOT / "platform" / "config"
DATASET = REPO_ROOT / "ai-analysis" / "data" / "diamonds.csv.gz"
BATCHES_DIR = REPO_ROOT / "ai-analysis" / "data" / "batches"


def free_port() -> int:
    """A port the OS says is free on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def make_settings(**env: str) -> Settings:
    """Settings from the repo's stack.env plus ``env`` (no ambient environment leaks in)."""
    return load_settings(env={k.upper(): v for k, v in env.items()}, config_dir=CONFIG_DIR)


def csv_bytes(rows: list[dict[str, Any]] | pd.DataFrame, columns: list[str] | None = None) -> bytes:
    """CSV bytes of ``rows`` (the dataset's column order unless ``columns`` is given)."""
    frame = pd.DataFrame(rows)
    return (
        frame[columns or list(data.DATASET_COLUMNS)]
        .to_csv(index=False, lineterminator="\n")
        .encode()
    )
