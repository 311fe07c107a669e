"""`python -m stackctl.compose.preflight`: can this machine run the Compose backend? Checks a
Docker engine answers and Compose v2 is there, and prints each fix; exit 1 when one is missing."""

from __future__ import annotations

import sys

from stackctl.compose.tool import ComposeError, find_compose
from stackctl.images.build import ImageBuildError, docker_client


def problems() -> list[str]:
    found = []
    try:
        docker_client()
    except ImageBuildError as error:
        found.append(str(error))
    try:
        find_compose()
    except ComposeError as error:
        found.append(str(error))
    return found


def main() -> int:
    found = problems()
    for problem in found:
        print(f"compose preflight: {problem}", file=sys.stderr)
    if not found:
        print(
            "compose preflight: a Docker engine answers and Compose v2 is installed",
            file=sys.stderr,
        )
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
