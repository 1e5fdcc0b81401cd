"""A local S3-compatible server (moto) for the embedded broker's ``s3://`` storage."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.broker import free_port
from monitor.child_process import spawn, stop_process

#: moto's server, installed with the dev dependencies next to this interpreter.
MOTO_SERVER = Path(sys.executable).with_name("moto_server")
#: Loopback requests must not go through a proxy from the environment.
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class S3Server:
    """A running moto server with one bucket."""

    endpoint: str
    bucket: str
    #: What Tansu (object_store) needs in its environment to use the bucket.
    env: dict[str, str]
    process: subprocess.Popen[bytes]

    @property
    def storage(self) -> str:
        """The ``--storage-engine`` URL of the bucket."""
        return f"s3://{self.bucket}/"


def _answers(endpoint: str) -> bool:
    try:
        with DIRECT.open(endpoint, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True  # it answered, if not with 200
    except OSError:
        return False


@contextmanager
def s3_server(
    log_path: Path | None = None, bucket: str = "tansu", timeout: float = 20.0
) -> Iterator[S3Server]:
    """Start moto_server on a free loopback port, create ``bucket``, yield it; stop it after.

    Fails fast if the process exits before it answers, and after ``timeout``
    seconds if it never does.
    """
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        "AWS_ENDPOINT": endpoint,
        "AWS_ALLOW_HTTP": "true",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    process = spawn([str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)], log_path)
    try:
        deadline = time.monotonic() + timeout
        while not _answers(endpoint):
            if process.poll() is not None:
                log = f"; see {log_path}" if log_path else ""
                raise RuntimeError(f"moto_server exited with code {process.returncode}{log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"moto_server did not answer on {endpoint} in {timeout} s")
            time.sleep(0.05)
        client = s3_client(endpoint, env)
        client.create_bucket(Bucket=bucket)
        yield S3Server(endpoint, bucket, env, process)
    finally:
        stop_process(process)


def s3_client(endpoint: str, env: dict[str, str]) -> Any:
    """A boto3 S3 client of ``endpoint`` with the credentials in ``env``."""
    import boto3  # type: ignore[import-untyped]  # installed with moto; slow to import

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )


def object_count(server: S3Server) -> int:
    """How many objects the bucket holds now."""
    client = s3_client(server.endpoint, server.env)
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=server.bucket)
    return sum(int(page.get("KeyCount", 0)) for page in pages)
