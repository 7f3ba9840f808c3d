"""A local S3 for tests: moto's server on 127.0.0.1, a fresh bucket per test, and everything pointed at it by
environment variables, so a storage URI stays an ordinary `s3://BUCKET/PREFIX`.

pyarrow's S3FileSystem (and so sweeper's Storage and Ray's storage_path) reads `AWS_ENDPOINT_URL` each time a
filesystem is made from a URI, as boto3 does; a driver subprocess, and the Ray workers it starts, inherit the
variables. Import the fixtures into a test module: `from tests.s3 import s3_fixture, s3_server_fixture  # noqa: F401`
(they are named `s3` and `s3_server`).
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

_buckets = itertools.count()


@dataclass(frozen=True)
class S3:
    """One empty bucket on the local server."""

    endpoint: str  # http://127.0.0.1:PORT
    bucket: str
    env: dict[str, str]  # os.environ with the server's variables: for subprocesses

    def uri(self, prefix: str = "") -> str:
        return f"s3://{self.bucket}/{prefix}".rstrip("/")

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def keys(self, prefix: str = "") -> list[str]:
        """Every object key under prefix (the bucket's own listing, not pyarrow's)."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def filesystem(self) -> pafs.S3FileSystem:
        return pafs.S3FileSystem(endpoint_override=self.endpoint, access_key="testing", secret_key="testing",
                                 region="us-east-1")

    def read_bytes(self, key: str) -> bytes:
        return self.client().get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def read_table(self, key: str) -> pa.Table:
        return pq.read_table(pa.BufferReader(self.read_bytes(key)))

    def write_table(self, key: str, table: pa.Table) -> None:
        """Replace an object with a Parquet table: one put, so readers see the old or the new file."""
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        self.client().put_object(Bucket=self.bucket, Key=key, Body=sink.getvalue().to_pybytes())


@pytest.fixture(scope="module", name="s3_server")
def s3_server_fixture() -> Iterator[dict[str, str]]:
    """moto's S3 on a free local port; yields the environment variables that point pyarrow, boto3 and Ray at it
    (also set in os.environ while the module's tests run)."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",  # never ask an instance metadata service for credentials
    }
    with pytest.MonkeyPatch.context() as mp:
        for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
            mp.delenv(key, raising=False)
        for key, value in env.items():
            mp.setenv(key, value)
        try:
            yield env
        finally:
            server.stop()


@pytest.fixture(name="s3")
def s3_fixture(s3_server: dict[str, str]) -> S3:
    """A new, empty bucket for one test."""
    bucket = S3(s3_server["AWS_ENDPOINT_URL"], f"sweeper-test-{os.getpid()}-{next(_buckets)}", dict(os.environ))
    bucket.client().create_bucket(Bucket=bucket.bucket)
    return bucket
