"""Create the stack's bucket if it is missing (idempotent); wait for the S3 endpoint first."""

import sys
import time

from botocore.exceptions import BotoCoreError, ClientError

from mlpipe.config import load_settings, s3_client

settings = load_settings()
client = s3_client(settings)
deadline = time.monotonic() + 300
while True:
    try:
        client.head_bucket(Bucket=settings.s3_bucket)
        print(f"bucket {settings.s3_bucket} already exists")
        break
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise
        location = (
            {} if settings.s3_region == "us-east-1" else {"LocationConstraint": settings.s3_region}
        )
        client.create_bucket(
            Bucket=settings.s3_bucket,
            **({"CreateBucketConfiguration": location} if location else {}),
        )
        print(f"bucket {settings.s3_bucket} created")
        break
    except BotoCoreError as error:  # endpoint not up yet
        if time.monotonic() > deadline:
            sys.exit(f"S3 endpoint {settings.s3_endpoint_url} unreachable for 300 s: {error}")
        time.sleep(5)
