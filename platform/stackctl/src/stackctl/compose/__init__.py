"""The Compose backend: the stack as containers of the project's own images on a Docker engine."""

from stackctl.compose.backend import ComposeBackend, ComposeOptions

__all__ = ["ComposeBackend", "ComposeOptions"]
