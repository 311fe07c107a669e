"""Turn the MLOPS_* Airflow connections and the stack variables into `mlpipe.config.Settings`.

Called inside tasks at RUN time only: `Connection.get` / `Variable.get` may reach the API server or a
secrets backend, which must never happen while the DAG processor parses a file.

Contract (team brief): `AIRFLOW_CONN_MLOPS_S3` (aws: login/password = keys, extra.endpoint_url,
extra.region_name), `AIRFLOW_CONN_MLOPS_MLFLOW` (http: schema/host/port, login/password = the
tracking server's basic-auth user), `AIRFLOW_CONN_MLOPS_MODEL_SERVER`,
`AIRFLOW_CONN_MLOPS_PUSHGATEWAY` (http: schema/host/port), and one `AIRFLOW_VAR_<KEY>` per key of
platform/config/stack.env (variable key = key lower-cased). Every connection is optional: without
it the plain environment (and stack.env defaults) still apply, so a run on AWS with IAM roles works.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlpipe.config import Settings

log = logging.getLogger(__name__)

S3_CONN_ID = "mlops_s3"
MLFLOW_CONN_ID = "mlops_mlflow"
MODEL_SERVER_CONN_ID = "mlops_model_server"
PUSHGATEWAY_CONN_ID = "mlops_pushgateway"

# Settings that come from connections (or secrets), never from stack variables.
_FROM_CONNECTIONS = frozenset(
    {
        "s3_endpoint_url",
        "aws_access_key_id",
        "aws_secret_access_key",
        "mlflow_tracking_uri",
        "mlflow_tracking_username",
        "mlflow_tracking_password",
        "mlflow_s3_endpoint_url",
        "model_server_url",
        "pushgateway_url",
    }
)


def get_connection(conn_id: str) -> Any | None:
    """The Airflow connection, or None when it is not configured anywhere."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return Connection.get(conn_id)
    except AirflowNotFoundException:
        return None


def http_url(connection: Any) -> str:
    """`scheme://host:port` of an http-type connection (`schema` holds the scheme, default http)."""
    if not connection.host:
        raise ValueError(
            f"connection {connection.conn_id!r} has no host; set it as JSON "
            '{"conn_type":"http","host":"...","port":...,"schema":"http"}.'
        )
    scheme = connection.schema or "http"
    host = connection.host if "://" not in connection.host else connection.host.split("://", 1)[1]
    port = f":{connection.port}" if connection.port else ""
    return f"{scheme}://{host.rstrip('/')}{port}"


def service_url(conn_id: str) -> str | None:
    """Base URL of an optional http service connection, or None when it is not configured."""
    connection = get_connection(conn_id)
    return http_url(connection) if connection is not None else None


def _env_from_s3_connection(connection: Any) -> dict[str, str]:
    extra = connection.extra_dejson
    values = {
        "AWS_ACCESS_KEY_ID": connection.login,
        "AWS_SECRET_ACCESS_KEY": connection.password,
        "S3_ENDPOINT_URL": extra.get("endpoint_url"),
        "MLFLOW_S3_ENDPOINT_URL": extra.get("endpoint_url"),
        "S3_REGION": extra.get("region_name"),
    }
    return {key: str(value) for key, value in values.items() if value}


def airflow_env() -> dict[str, str]:
    """Settings env vars derived from the Airflow variables and connections that exist."""
    from airflow.sdk import Variable

    from mlpipe.config import Settings

    env: dict[str, str] = {}
    for name in Settings.model_fields:
        if name in _FROM_CONNECTIONS:
            continue
        value = Variable.get(name, default=None)
        if value is not None:
            env[name.upper()] = str(value)

    s3 = get_connection(S3_CONN_ID)
    if s3 is not None:
        env.update(_env_from_s3_connection(s3))
    for conn_id, key in (
        (MLFLOW_CONN_ID, "MLFLOW_TRACKING_URI"),
        (MODEL_SERVER_CONN_ID, "MODEL_SERVER_URL"),
        (PUSHGATEWAY_CONN_ID, "PUSHGATEWAY_URL"),
    ):
        url = service_url(conn_id)
        if url is not None:
            env[key] = url
    mlflow = get_connection(MLFLOW_CONN_ID)
    if mlflow is not None and mlflow.login and mlflow.password:
        env["MLFLOW_TRACKING_USERNAME"] = str(mlflow.login)
        env["MLFLOW_TRACKING_PASSWORD"] = str(mlflow.password)
    return env


def load_airflow_settings() -> Settings:
    """`Settings` from the process environment overlaid with Airflow variables and connections.

    Also exports the S3 endpoint/credentials for MLflow's artifact client, which reads them from the
    environment (see `mlpipe.config.export_mlflow_env`).
    """
    from mlpipe.config import export_mlflow_env, load_settings

    overlay = airflow_env()
    settings = load_settings(env={**os.environ, **overlay})
    export_mlflow_env(settings)
    log.info(
        "settings: bucket=%s s3=%s mlflow=%s model_server=%s pushgateway=%s",
        settings.s3_bucket,
        settings.s3_endpoint_url or "AWS",
        settings.mlflow_tracking_uri,
        settings.model_server_url,
        settings.pushgateway_url,
    )
    return settings
