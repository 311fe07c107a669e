"""Wait for a component to become ready within its time budget, failing fast if it died."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx


class StartupError(RuntimeError):
    """A component did not come up; `component` names it so its log can be shown."""

    def __init__(self, component: str, message: str) -> None:
        super().__init__(message)
        self.component = component


class Cancelled(RuntimeError):
    """Bring-up was interrupted (Ctrl-C or another component failed)."""


# A check returns None when ready, else a short reason why not (shown on timeout).
Check = Callable[[], str | None]
# Returns a description of a process that exited, or None while all are running.
DeathWatch = Callable[[], str | None]


def wait_until(
    component: str,
    check: Check,
    *,
    budget: float,
    died: DeathWatch,
    cancel: threading.Event,
    interval: float = 0.5,
    on_wait: Callable[[str], None] | None = None,
) -> float:
    """Poll `check` until it passes; return the seconds it took. Raise StartupError when a
    process died or the budget ran out, Cancelled when `cancel` is set."""
    started = time.monotonic()
    reason = "not checked yet"
    while True:
        if cancel.is_set():
            raise Cancelled(component)
        outcome = _probe(check)
        if outcome is None:
            return time.monotonic() - started
        reason = outcome
        if on_wait is not None:
            on_wait(reason)
        if (dead := died()) is not None:
            # A process that ended between the check and the death watch may have ended the
            # way the check waits for (a one-shot `airflow db migrate` exiting 0): ask again.
            if _probe(check) is None:
                return time.monotonic() - started
            raise StartupError(component, f"{component}: {dead} before it was ready")
        if time.monotonic() - started > budget:
            raise StartupError(
                component, f"{component} not ready after {budget:.0f}s (last check: {reason})"
            )
        cancel.wait(interval)


def _probe(check: Check) -> str | None:
    try:
        return check()
    except StartupError:
        raise
    except Exception as exc:  # any failure of a probe just means "not ready yet"
        return f"{type(exc).__name__}: {exc}"


def http_ok(
    url: str, *, expect: int = 200, timeout: float = 3.0, auth: tuple[str, str] | None = None
) -> Check:
    """A check that passes when GET `url` (with basic `auth`, if given) answers `expect`."""

    def check() -> str | None:
        response = httpx.get(url, timeout=timeout, auth=auth)
        if response.status_code == expect:
            return None
        return f"GET {url} -> {response.status_code}"

    return check
