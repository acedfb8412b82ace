"""S3 user metadata read back into the local backend's keys; S3 options from the environment."""

from __future__ import annotations

from types import SimpleNamespace

from dacirco.storage.cli import s3_config
from dacirco.storage.s3 import S3Config, user_metadata


def test_amz_meta_headers_become_the_lowercase_keys():
    obj = SimpleNamespace(
        metadata={
            "X-Amz-Meta-Duration": "1.800000",
            "x-amz-meta-video-codec": "h264",
            "Content-Type": "video/mp4",
            "ETag": '"abc"',
        }
    )
    assert user_metadata(obj) == {"duration": "1.800000", "video-codec": "h264"}
    assert user_metadata(SimpleNamespace(metadata=None)) == {}


def test_endpoint_from_the_environment_unless_given(monkeypatch):
    monkeypatch.setenv("DACIRCO_S3_ENDPOINT", "s3.example.org:9100")
    assert s3_config(None, None, "a", "b", True) == S3Config("s3.example.org", 9100, "a", "b", True)
    assert s3_config("other", 9000, "a", "b", False).endpoint == "other:9000"
    monkeypatch.delenv("DACIRCO_S3_ENDPOINT")
    assert s3_config(None, None, "minio", "pass4minio", False) == S3Config()
