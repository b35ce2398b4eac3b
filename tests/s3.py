"""A real S3 API for tests: moto's standalone server in a subprocess.

``moto_server`` (session) starts one server per pytest process (so one per xdist
worker) on a free port and stops it at the end; ``s3_storage`` (function) creates a
fresh bucket on it and points Django's default storage at it, configured as
``fileconvert.settings`` does when ``S3_BUCKET`` is set. Django's ``setting_changed``
handler resets ``default_storage`` when STORAGES changes, so ``storage.is_s3()``
follows the override.

Import both fixtures in a conftest: ``from tests.s3 import moto_server, s3_storage``.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from django.test import override_settings

ACCESS_KEY = "testing-access-key"
SECRET_KEY = "testing-secret-key"
REGION = "us-east-1"
STARTUP_TIMEOUT = 30.0
_RUNNING_ON = re.compile(r"Running on (http://127\.0\.0\.1:\d+)")


def _moto_command() -> list[str]:
    # Port 0: the server binds a free port itself (no race between xdist workers) and logs it.
    script = Path(sys.executable).with_name("moto_server")
    if script.exists():
        return [str(script), "-p", "0", "-H", "127.0.0.1"]
    return [sys.executable, "-m", "moto.server", "-p", "0", "-H", "127.0.0.1"]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/moto-api/", timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def s3_client(endpoint_url: str) -> Any:
    """A plain boto3 client on the moto server, for assertions from outside the product."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


def s3_storage_setting(*, endpoint_url: str, bucket: str) -> dict[str, Any]:
    """STORAGES["default"] as fileconvert.settings builds it for S3."""
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": endpoint_url,
            "region_name": REGION,
            "access_key": ACCESS_KEY,
            "secret_key": SECRET_KEY,
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": False,
            "addressing_style": "path",
            "signature_version": "s3v4",
        },
    }


@contextlib.contextmanager
def storage_on_bucket(*, endpoint_url: str, bucket: str) -> Iterator[None]:
    """Django's default storage on ``bucket`` (which need not exist) for the duration."""
    from django.conf import settings

    storages = {**settings.STORAGES, "default": s3_storage_setting(endpoint_url=endpoint_url, bucket=bucket)}
    with override_settings(STORAGES=storages):
        yield


@dataclass
class S3Bucket:
    endpoint_url: str
    bucket: str
    client: Any

    def keys(self, prefix: str = "") -> list[str]:
        listed = self.client.list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return sorted(o["Key"] for o in listed.get("Contents", []))

    def head(self, key: str) -> dict[str, Any] | None:
        try:
            return dict(self.client.head_object(Bucket=self.bucket, Key=key))
        except self.client.exceptions.ClientError as exc:
            if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def get(self, key: str) -> bytes:
        return bytes(self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def multipart_uploads(self) -> list[dict[str, Any]]:
        return list(self.client.list_multipart_uploads(Bucket=self.bucket).get("Uploads", []))


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """The endpoint URL of a moto server running in a subprocess of this pytest process."""
    with tempfile.NamedTemporaryFile(prefix="moto-server-", suffix=".log") as log:
        process = subprocess.Popen(
            _moto_command(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            url = None
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while process.poll() is None and time.monotonic() < deadline:
                if url is None:
                    found = _RUNNING_ON.search(Path(log.name).read_text(errors="replace"))
                    url = found.group(1) if found else None
                if url is not None and _answers(url):
                    break
                time.sleep(0.1)
            else:
                pytest.fail(f"moto server did not start: {Path(log.name).read_text(errors='replace')[-2000:]}")
            yield url
        finally:
            _stop(process)


@pytest.fixture
def s3_storage(moto_server: str) -> Iterator[S3Bucket]:
    """A fresh bucket on the moto server, used as Django's default storage."""
    client = s3_client(moto_server)
    bucket = f"fileconvert-test-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=bucket)
    with storage_on_bucket(endpoint_url=moto_server, bucket=bucket):
        from fileconvert import storage

        assert storage.is_s3(), "STORAGES override did not reset default_storage"
        yield S3Bucket(endpoint_url=moto_server, bucket=bucket, client=client)
