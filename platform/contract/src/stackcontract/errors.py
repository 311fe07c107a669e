"""The contract's one error type: the configuration is missing or wrong, and the message says
where and how to fix it. The specific errors (`EnvFileError`, `RepoRootError`, `ServiceError`)
derive from it, so a caller that only reports catches `ConfigError`."""

from __future__ import annotations


class ConfigError(RuntimeError):
    """The stack configuration is missing or wrong; the message says how to fix it."""
