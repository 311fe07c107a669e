"""Airflow-side glue shared by the DAG files: settings from connections/variables, pod resources.

Kept out of DAG discovery by `.airflowignore`; importing it is cheap (no network, no DB).
"""
