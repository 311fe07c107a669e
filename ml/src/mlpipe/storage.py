"""Read and write bytes, CSV, parquet and JSON at ``s3://bucket/key`` URIs or local paths.

Public API (stable):

- ``S3Uri`` / ``parse_s3_uri(uri)`` / ``is_s3_uri(uri)``: URI parsing with clear errors.
- ``Storage(client=None)`` (or ``Storage.from_settings(settings)``): one object whose methods accept
  either an ``s3://`` URI or a local path: ``read_bytes``, ``write_bytes``, ``exists``, ``list_uris``,
  ``copy``, ``put_if_changed`` (idempotent upload, returns whether bytes were written),
  ``read_csv``, ``write_csv``, ``read_parquet``, ``write_parquet``, ``read_json``, ``write_json``.
  The boto3 client is only needed (and only created lazily from settings) for ``s3://`` URIs.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from mlpipe.config import Settings, s3_client

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

S3_SCHEME = "s3://"


@dataclass(frozen=True)
class S3Uri:
    """A parsed ``s3://bucket/key`` URI (key may be empty or end in ``/`` for a prefix)."""

    bucket: str
    key: str

    def __str__(self) -> str:
        return f"{S3_SCHEME}{self.bucket}/{self.key}"


def is_s3_uri(uri: str | Path) -> bool:
    """True for ``s3://...`` strings."""
    return isinstance(uri, str) and uri.startswith(S3_SCHEME)


def parse_s3_uri(uri: str) -> S3Uri:
    """Split ``s3://bucket/key`` into bucket and key; raise ValueError naming the bad URI."""
    if not is_s3_uri(uri):
        raise ValueError(f"Not an S3 URI: {uri!r} (expected s3://bucket/key).")
    bucket, _, key = uri[len(S3_SCHEME) :].partition("/")
    if not bucket:
        raise ValueError(f"S3 URI {uri!r} has no bucket (expected s3://bucket/key).")
    return S3Uri(bucket=bucket, key=key)


def uri_name(uri: str | Path) -> str:
    """The last path component of a URI or path (``s3://b/landing/x.csv.gz`` -> ``x.csv.gz``)."""
    return str(uri).rstrip("/").rsplit("/", 1)[-1]


class MissingBucketError(FileNotFoundError):
    """The configured bucket does not exist (the message says how to create it)."""


class Storage:
    """Uniform byte/CSV/parquet/JSON access to S3 URIs and local paths."""

    def __init__(self, client: S3Client | None = None, settings: Settings | None = None) -> None:
        self._client = client
        self._settings = settings

    @classmethod
    def from_settings(cls, settings: Settings) -> Storage:
        """Storage whose S3 client is built lazily from ``settings``."""
        return cls(settings=settings)

    @property
    def client(self) -> S3Client:
        """The boto3 client; created on first use from the settings given at construction."""
        if self._client is None:
            if self._settings is None:
                raise RuntimeError("Storage has no S3 client and no settings to build one from.")
            self._client = s3_client(self._settings)
        return self._client

    # -- bytes -------------------------------------------------------------------------------
    def read_bytes(self, uri: str | Path) -> bytes:
        """The object's or file's bytes; FileNotFoundError naming the URI when absent."""
        if not is_s3_uri(uri):
            return Path(uri).read_bytes()
        location = parse_s3_uri(str(uri))
        try:
            response = self.client.get_object(Bucket=location.bucket, Key=location.key)
        except self.client.exceptions.NoSuchKey as error:
            raise FileNotFoundError(f"{uri} does not exist.") from error
        return response["Body"].read()

    def write_bytes(self, uri: str | Path, data: bytes) -> None:
        """Write (overwrite) ``data`` at ``uri``; local parent folders are created."""
        if not is_s3_uri(uri):
            path = Path(uri)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            return
        location = parse_s3_uri(str(uri))
        self.client.put_object(Bucket=location.bucket, Key=location.key, Body=data)

    def require_bucket(self, bucket: str) -> None:
        """``MissingBucketError`` (with the fix) unless ``bucket`` exists and can be read."""
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=bucket)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in {"404", "NoSuchBucket"}:
                raise
            raise MissingBucketError(
                f"bucket {bucket!r} does not exist at {self.client.meta.endpoint_url}. Fix: create "
                f"it (`stackctl up` provisions it; elsewhere `aws s3 mb s3://{bucket}`) or set "
                "S3_BUCKET to a bucket that exists."
            ) from None

    def exists(self, uri: str | Path) -> bool:
        """True when the object or file exists."""
        if not is_s3_uri(uri):
            return Path(uri).is_file()
        location = parse_s3_uri(str(uri))
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=location.bucket, Key=location.key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise
        return True

    def list_uris(self, prefix: str | Path, suffix: str = "") -> list[str]:
        """Sorted URIs (or paths) of objects under ``prefix`` whose names end with ``suffix``."""
        if not is_s3_uri(prefix):
            folder = Path(prefix)
            if not folder.is_dir():
                return []
            return sorted(
                str(p) for p in folder.iterdir() if p.is_file() and p.name.endswith(suffix)
            )
        location = parse_s3_uri(str(prefix))
        paginator = self.client.get_paginator("list_objects_v2")
        uris: list[str] = []
        for page in paginator.paginate(Bucket=location.bucket, Prefix=location.key):
            for item in page.get("Contents", []):
                key = item["Key"]
                if key.endswith(suffix) and not key.endswith("/"):
                    uris.append(str(S3Uri(location.bucket, key)))
        return sorted(uris)

    def copy(self, source: str | Path, destination: str | Path) -> None:
        """Byte-for-byte copy (server-side when both ends are in S3)."""
        if is_s3_uri(source) and is_s3_uri(destination):
            src, dst = parse_s3_uri(str(source)), parse_s3_uri(str(destination))
            self.client.copy_object(
                Bucket=dst.bucket, Key=dst.key, CopySource={"Bucket": src.bucket, "Key": src.key}
            )
            return
        self.write_bytes(destination, self.read_bytes(source))

    def put_if_changed(self, uri: str | Path, data: bytes) -> bool:
        """Idempotent upload: write only when absent or different; return whether it wrote."""
        if self.exists(uri) and self.read_bytes(uri) == data:
            return False
        self.write_bytes(uri, data)
        return True

    def delete(self, uri: str | Path) -> None:
        """Remove the object or file if present (no error when absent)."""
        if not is_s3_uri(uri):
            Path(uri).unlink(missing_ok=True)
            return
        location = parse_s3_uri(str(uri))
        self.client.delete_object(Bucket=location.bucket, Key=location.key)

    # -- formats -----------------------------------------------------------------------------
    def read_csv(self, uri: str | Path, **kwargs: Any) -> pd.DataFrame:
        """CSV (gzip inferred from a ``.gz`` name) into a DataFrame."""
        compression: Literal["gzip"] | None = "gzip" if str(uri).endswith(".gz") else None
        frame: pd.DataFrame = pd.read_csv(
            io.BytesIO(self.read_bytes(uri)), compression=compression, **kwargs
        )
        return frame

    def write_csv(self, uri: str | Path, frame: pd.DataFrame) -> None:
        """DataFrame as plain CSV without the index (``\\n`` line endings)."""
        self.write_bytes(uri, frame.to_csv(index=False, lineterminator="\n").encode("utf-8"))

    def read_parquet(self, uri: str | Path) -> pd.DataFrame:
        """Parquet into a DataFrame."""
        return pd.read_parquet(io.BytesIO(self.read_bytes(uri)))

    def write_parquet(self, uri: str | Path, frame: pd.DataFrame) -> None:
        """DataFrame as parquet without the index."""
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        self.write_bytes(uri, buffer.getvalue())

    def read_json(self, uri: str | Path) -> Any:
        """Parsed JSON document."""
        return json.loads(self.read_bytes(uri))

    def write_json(self, uri: str | Path, document: Any) -> None:
        """JSON, indented and key-sorted so identical documents give identical bytes."""
        self.write_bytes(uri, (json.dumps(document, indent=2, sort_keys=True) + "\n").encode())
