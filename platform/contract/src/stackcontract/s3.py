"""The one boto3 S3 client factory of the repo.

Against a custom endpoint (SeaweedFS, MinIO, moto) the client uses path-style addressing and
computes/validates checksums only when an operation requires them: SeaweedFS rejects the
default CRC trailers of boto3 >= 1.36 (the `AWS_*_CHECKSUM_*=when_required` of stack.env).
Against AWS (no endpoint) boto3's defaults stay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

DEFAULT_ATTEMPTS = 5


def s3_client(
    *,
    endpoint_url: str | None,
    region: str,
    access_key: str | None = None,
    secret_key: str | None = None,
    max_attempts: int = DEFAULT_ATTEMPTS,
    connect_timeout: float = 10,
    read_timeout: float = 60,
) -> S3Client:
    """A client for `endpoint_url` (None: AWS itself, with credentials from the default chain
    when none are given)."""
    import boto3
    from botocore.config import Config

    options: dict[str, Any] = {
        "retries": {"max_attempts": max_attempts, "mode": "standard"},
        "connect_timeout": connect_timeout,
        "read_timeout": read_timeout,
    }
    if endpoint_url is not None:
        options |= {
            "s3": {"addressing_style": "path"},
            "request_checksum_calculation": "when_required",
            "response_checksum_validation": "when_required",
        }
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(**options),
    )


def is_aws_endpoint(url: str | None) -> bool:
    """True when `url` is AWS S3 itself (or absent), i.e. no custom endpoint is needed."""
    return url is None or url.rstrip("/").endswith(".amazonaws.com")
