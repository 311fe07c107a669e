"""`default_args` shared by the DAGs: who owns the tasks and how a failed task is retried.

Transient S3/MLflow trouble is retried twice with exponential backoff (10 s, growing up to 5 min);
each DAG picks the time limit of one task try. Importing this module is cheap (stdlib only).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any


def default_args(*, execution_timeout: timedelta) -> dict[str, Any]:
    """The DAGs' common default_args, with `execution_timeout` as the limit of one task try."""
    return {
        "owner": "mlops",
        "retries": 2,
        "retry_delay": timedelta(seconds=10),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=5),
        "execution_timeout": execution_timeout,
    }
