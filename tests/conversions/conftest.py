"""A real S3 API (moto's server) for the storage-agnostic conversion tests."""

from tests.s3 import moto_server, s3_storage  # noqa: F401
