"""Fixtures shared by the upload tests. A real S3 API (moto's server) lives in tests/s3.py."""

from tests.s3 import moto_server, s3_storage  # noqa: F401
