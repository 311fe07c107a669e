"""mlpipe.storage against moto's in-process S3 server and the local filesystem."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mlpipe.config import Settings
from mlpipe.storage import S3Uri, Storage, parse_s3_uri, uri_name


def test_parse_s3_uri() -> None:
    assert parse_s3_uri("s3://bucket/a/b.csv") == S3Uri("bucket", "a/b.csv")
    assert str(S3Uri("bucket", "a/")) == "s3://bucket/a/"
    assert uri_name("s3://bucket/a/b.csv") == "b.csv"


@pytest.mark.parametrize("bad", ["bucket/key", "s3:///key", "http://x/y"])
def test_parse_s3_uri_rejects(bad: str) -> None:
    with pytest.raises(ValueError, match="S3 URI"):
        parse_s3_uri(bad)


@pytest.fixture(params=["s3", "local"])
def base(request: pytest.FixtureRequest, s3_settings: Settings, tmp_path: Path) -> str:
    return f"s3://{s3_settings.s3_bucket}" if request.param == "s3" else str(tmp_path)


@pytest.fixture
def storage(s3_settings: Settings) -> Storage:
    return Storage.from_settings(s3_settings)


def test_bytes_round_trip_and_listing(storage: Storage, base: str) -> None:
    storage.write_bytes(f"{base}/p/a.csv.gz", b"1")
    storage.write_bytes(f"{base}/p/b.txt", b"2")
    assert storage.read_bytes(f"{base}/p/a.csv.gz") == b"1"
    assert [uri_name(u) for u in storage.list_uris(f"{base}/p/")] == ["a.csv.gz", "b.txt"]
    assert [uri_name(u) for u in storage.list_uris(f"{base}/p/", ".csv.gz")] == ["a.csv.gz"]
    assert storage.exists(f"{base}/p/a.csv.gz")
    assert not storage.exists(f"{base}/p/missing")
    storage.delete(f"{base}/p/b.txt")
    assert not storage.exists(f"{base}/p/b.txt")


def test_read_missing_is_file_not_found(storage: Storage, base: str) -> None:
    with pytest.raises(FileNotFoundError, match="missing"):
        storage.read_bytes(f"{base}/missing")


def test_formats_round_trip(storage: Storage, base: str) -> None:
    frame = pd.DataFrame({"carat": [0.5, 1.25], "cut": ["Ideal", "Fair"], "price": [1000, 2000]})
    storage.write_csv(f"{base}/f.csv", frame)
    storage.write_parquet(f"{base}/f.parquet", frame)
    storage.write_json(f"{base}/f.json", {"b": 1, "a": [1, 2]})
    pd.testing.assert_frame_equal(storage.read_csv(f"{base}/f.csv"), frame, check_dtype=False)
    pd.testing.assert_frame_equal(
        storage.read_parquet(f"{base}/f.parquet"), frame, check_dtype=False
    )
    assert storage.read_json(f"{base}/f.json") == {"a": [1, 2], "b": 1}


def test_copy_is_byte_identical(storage: Storage, base: str) -> None:
    payload = bytes(range(256)) * 10
    storage.write_bytes(f"{base}/src.bin", payload)
    storage.copy(f"{base}/src.bin", f"{base}/dst/copy.bin")
    assert storage.read_bytes(f"{base}/dst/copy.bin") == payload


def test_put_if_changed_is_idempotent(storage: Storage, base: str) -> None:
    uri = f"{base}/idem.bin"
    assert storage.put_if_changed(uri, b"v1") is True
    assert storage.put_if_changed(uri, b"v1") is False
    assert storage.put_if_changed(uri, b"v2") is True
    assert storage.read_bytes(uri) == b"v2"


def test_storage_without_client_or_settings_fails_clearly() -> None:
    with pytest.raises(RuntimeError, match="no S3 client"):
        Storage().read_bytes("s3://b/k")
