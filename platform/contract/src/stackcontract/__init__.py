"""The stack's contract: one implementation of each thing more than one part of the repo needs.

- `envfile`: the strict `KEY=value` parser of `platform/config/*.env` (line numbers in errors).
- `repo`: where the checkout is.
- `settings`: stack.env, ports.env and their overrides (`StackConfig`).
- `services`: each service declared once (`platform/config/services.toml`).
- `endpoints`: where a running stack answers (`Endpoints`).
- `s3`: the one boto3 S3 client factory.
- `airflow_api`: the one Airflow REST API v2 client (token login).
- `metrics`: metric names shared by exporters, dashboards, alerts and tests.
"""
