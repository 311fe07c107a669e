"""The object store: a byte-exact round trip and the seeded landing batches."""

from __future__ import annotations

import hashlib
import os
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from stackcontract.endpoints import Endpoints

pytestmark = pytest.mark.integration


def test_s3_round_trip_is_byte_exact(s3: Any, endpoints: Endpoints) -> None:
    key = f"integration-tests/{uuid.uuid4().hex}.bin"
    payload = os.urandom(256 * 1024)
    s3.put_object(Bucket=endpoints.s3_bucket, Key=key, Body=payload)
    try:
        head = s3.head_object(Bucket=endpoints.s3_bucket, Key=key)
        assert head["ContentLength"] == len(payload)
        body = s3.get_object(Bucket=endpoints.s3_bucket, Key=key)["Body"].read()
        assert hashlib.sha256(body).digest() == hashlib.sha256(payload).digest()
        listed = s3.list_objects_v2(Bucket=endpoints.s3_bucket, Prefix="integration-tests/")
        assert key in [item["Key"] for item in listed.get("Contents", [])]
    finally:
        s3.delete_object(Bucket=endpoints.s3_bucket, Key=key)
    with pytest.raises(ClientError) as missing:
        s3.head_object(Bucket=endpoints.s3_bucket, Key=key)
    assert missing.value.response["Error"]["Code"] in {"404", "NoSuchKey", "NotFound"}


def test_landing_holds_the_seeded_batches(s3: Any, endpoints: Endpoints) -> None:
    listed = s3.list_objects_v2(Bucket=endpoints.s3_bucket, Prefix="landing/")
    names = [item["Key"].removeprefix("landing/") for item in listed.get("Contents", [])]
    batches = [name for name in names if name.startswith("diamonds_") and name.endswith(".csv.gz")]
    assert len(batches) >= 4, f"landing/ should hold the committed batches, has {names}"
