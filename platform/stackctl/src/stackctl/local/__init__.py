"""The local backend: the whole stack as supervised processes on this machine."""

from stackctl.local.backend import LocalBackend, StackError
from stackctl.local.context import LocalOptions, S3Flavor

__all__ = ["LocalBackend", "LocalOptions", "S3Flavor", "StackError"]
