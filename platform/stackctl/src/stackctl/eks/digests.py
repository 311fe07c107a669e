"""The image-digests file: which immutable image each manifest image name is deployed as.

`push-images` writes it after pushing to ECR; `deploy-eks --image-digests FILE` substitutes it into
the eks overlay, so a release deploys exactly the bytes that were built, never a re-pushed tag::

    {"release": "v1.4.0",
     "images": {"mlops/model-server": "<acct>.dkr.ecr.<region>.amazonaws.com/mlops/model-server@sha256:<64 hex>"}}
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

# [registry[:port]/]path@sha256:<64 hex>; no tag (a tag beside a digest is ambiguous).
_PINNED = re.compile(
    r"^(?P<repository>(?:[a-z0-9.-]+(?::\d+)?/)?[a-z0-9._-]+(?:/[a-z0-9._-]+)*)"
    r"@(?P<digest>sha256:[0-9a-f]{64})$"
)


class DigestsFileError(ValueError):
    """The digests file is missing or malformed; the message says what and how to fix it."""


def split_pinned(reference: str) -> tuple[str, str]:
    """`repository@sha256:...` -> (repository, digest); ValueError for anything not pinned."""
    match = _PINNED.match(reference)
    if match is None:
        raise ValueError(
            f"{reference!r} is not pinned by digest; expected <registry>/<repository>@sha256:<64 hex>"
        )
    return match["repository"], match["digest"]


class ImageDigests(BaseModel):
    model_config = ConfigDict(frozen=True)

    release: str
    images: dict[str, str]

    @field_validator("images")
    @classmethod
    def _pinned(cls, images: dict[str, str]) -> dict[str, str]:
        if not images:
            raise ValueError("lists no images")
        for reference in images.values():
            split_pinned(reference)
        return images

    @classmethod
    def load(cls, path: Path) -> ImageDigests:
        if not path.is_file():
            raise DigestsFileError(
                f"Image digests file {path} does not exist. Write it with "
                "`nox -s push-images -- --registry <ECR registry> --tag <release> "
                f"--digests-file {path}`."
            )
        try:
            return cls.model_validate_json(path.read_text())
        except ValidationError as error:
            raise DigestsFileError(f"Image digests file {path} is malformed: {error}") from None

    def dump(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.model_dump(), indent=2, sort_keys=True) + "\n")

    def kustomize_images(self) -> list[dict[str, str]]:
        """The `images:` entries of a kustomization that pin every image to its digest."""
        entries = []
        for name, reference in sorted(self.images.items()):
            repository, digest = split_pinned(reference)
            entries.append({"name": name, "newName": repository, "digest": digest})
        return entries
