#!/bin/sh
# Runs once, on an empty data directory (docker-entrypoint-initdb.d): one role + database per client.
# Sourced by the image's entrypoint (not executable in a ConfigMap): no `set` here, it would leak
# into the entrypoint's shell; ON_ERROR_STOP makes a failed statement fail the init.
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres <<SQL
CREATE ROLE airflow LOGIN PASSWORD '${AIRFLOW_DB_PASSWORD}';
CREATE DATABASE airflow OWNER airflow;
CREATE ROLE mlflow LOGIN PASSWORD '${MLFLOW_DB_PASSWORD}';
CREATE DATABASE mlflow OWNER mlflow;
SQL
