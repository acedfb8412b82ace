"""Signed URLs, the bucket's key layout, and the embedded LocalStorage."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from dacirco.storage.base import InvalidKey, StorageError, check_key, input_key, output_key
from dacirco.storage.local import LocalStorage
from dacirco.storage.signing import UrlSigner

NOW = 1_700_000_000
KEY = "input-videos/bbb_1.mp4"
EXPIRES = NOW + 60


@pytest.fixture
def signer() -> UrlSigner:
    return UrlSigner(b"unit-test-secret")


@pytest.fixture
def storage(fast_tmp: Path, signer: UrlSigner) -> LocalStorage:
    return LocalStorage(fast_tmp / "data", base_url="http://127.0.0.1:1/", signer=signer)


def upload(storage: LocalStorage, key: str, data: bytes, **metadata: str) -> None:
    src = storage.root.parent / "upload.bin"
    src.write_bytes(data)
    storage.put_file(key, src, metadata=metadata or None)


# ---- signed URLs --------------------------------------------------------------------------
def test_a_valid_signature_passes(signer: UrlSigner) -> None:
    sig = signer.signature("GET", KEY, EXPIRES)
    assert signer.check("GET", KEY, EXPIRES, sig, NOW) is None
    assert signer.check("get", KEY, EXPIRES, sig, EXPIRES) is None  # until the last second


@pytest.mark.parametrize(
    ("method", "key", "expires", "sig_of", "now", "reason"),
    [
        ("GET", KEY, EXPIRES, "tampered", NOW, "bad signature"),
        ("GET", "input-videos/bbb_2.mp4", EXPIRES, "GET", NOW, "bad signature"),
        ("PUT", KEY, EXPIRES, "GET", NOW, "bad signature"),
        ("GET", KEY, EXPIRES + 3600, "GET", NOW, "bad signature"),  # a stretched deadline
        ("GET", KEY, EXPIRES, "GET", EXPIRES + 1, "expired"),
    ],
    ids=["tampered", "other-key", "other-method", "other-expiry", "expired"],
)
def test_a_url_is_refused_with_a_reason(
    signer: UrlSigner, method: str, key: str, expires: int, sig_of: str, now: int, reason: str
) -> None:
    sig = signer.signature("GET", KEY, EXPIRES)
    if sig_of == "tampered":
        sig = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    refused = signer.check(method, key, expires, sig, now)
    assert refused is not None and reason in refused


def test_a_signature_from_another_secret_is_refused(signer: UrlSigner) -> None:
    forged = UrlSigner(b"another-secret").signature("GET", KEY, EXPIRES)
    assert "bad signature" in (signer.check("GET", KEY, EXPIRES, forged, NOW) or "")


def test_a_non_ascii_signature_is_refused_not_raised(signer: UrlSigner) -> None:
    assert signer.check("GET", KEY, EXPIRES, "é" * 64, NOW) is not None


def test_storage_urls_are_signed_for_one_key_and_method(fast_tmp: Path, signer: UrlSigner) -> None:
    storage = LocalStorage(fast_tmp, base_url="http://h:9/", signer=signer, clock=lambda: NOW)
    urls = (("GET", storage.get_url(KEY, 30)), ("PUT", storage.put_url(KEY, 30, task="t1")))
    for method, url in urls:
        parts = urlsplit(url)
        assert (parts.netloc, parts.path) == ("h:9", f"/files/{KEY}")
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        assert int(query["expires"]) == NOW + 30
        key = unquote(parts.path.removeprefix("/files/"))
        task = query.get("task")
        assert (method, task) in (("GET", None), ("PUT", "t1"))
        assert signer.check(method, key, NOW + 30, query["sig"], NOW, task) is None
        assert storage.check(method, key, NOW + 30, query["sig"], task) is None
    # A PUT URL is for one task: without it, or with another, it opens nothing.
    sig = parse_qs(urlsplit(urls[1][1]).query)["sig"][0]
    assert storage.check("PUT", KEY, NOW + 30, sig, None) == "an upload URL must name its task"
    assert "bad signature" in (storage.check("PUT", KEY, NOW + 30, sig, "t2") or "")


def test_signed_urls_need_a_base_url(fast_tmp: Path) -> None:
    with pytest.raises(StorageError, match="base URL"):
        LocalStorage(fast_tmp).get_url(KEY, 30)


# ---- keys -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "key",
    [
        "input-videos/../x",
        "input-videos/..",
        "output-videos/../../etc/passwd",
        "/input-videos/bbb_1.mp4",
        "/etc/passwd",
        "other/bbb_1.mp4",
        "bbb_1.mp4",
        "input-videos/",
        "input-videos/.meta",
        "input-videos/a/b.mp4",
        "",
    ],
)
def test_check_key_refuses_keys_outside_the_layout(key: str) -> None:
    with pytest.raises(InvalidKey):
        check_key(key)


def test_check_key_accepts_the_bucket_layout() -> None:
    assert check_key(KEY) == KEY
    assert input_key("bbb_9.mp4") == "input-videos/bbb_9.mp4"
    assert output_key("bbb_9-500k-fast-1f.mp4") == "output-videos/bbb_9-500k-fast-1f.mp4"
    for bad in ("../x", "", "a/b"):
        with pytest.raises(InvalidKey):
            input_key(bad)


# ---- LocalStorage -----------------------------------------------------------------------
def test_put_stat_list_and_metadata_round_trip(storage: LocalStorage, fast_tmp: Path) -> None:
    upload(storage, "input-videos/bbb_2.mp4", b"2" * 20, duration="12.5", height="720")
    upload(storage, KEY, b"1" * 10, duration="10")
    upload(storage, "output-videos/out.mp4", b"o" * 5)
    info = storage.stat(KEY)
    assert info is not None
    assert (info.key, info.name, info.size, info.metadata) == (
        KEY,
        "bbb_1.mp4",
        10,
        {"duration": "10"},
    )
    assert [(i.name, i.size) for i in storage.list("input-videos/")] == [
        ("bbb_1.mp4", 10),
        ("bbb_2.mp4", 20),
    ]
    assert storage.list("input-videos")[1].metadata == {"duration": "12.5", "height": "720"}
    assert [i.metadata for i in storage.list("output-videos")] == [{}]
    storage.get_file(KEY, fast_tmp / "back.bin")
    assert (fast_tmp / "back.bin").read_bytes() == b"1" * 10


def test_stat_of_a_missing_object_is_none(storage: LocalStorage) -> None:
    assert storage.stat("input-videos/nope.mp4") is None
    with pytest.raises(StorageError):
        storage.get_file("input-videos/nope.mp4", storage.root.parent / "x")


def test_delete_removes_the_object_and_its_metadata(storage: LocalStorage) -> None:
    upload(storage, KEY, b"1", duration="10")
    storage.delete(KEY)
    assert storage.stat(KEY) is None and storage.list("input-videos") == []
    upload(storage, KEY, b"22")
    info = storage.stat(KEY)
    assert info is not None and (info.size, info.metadata) == (2, {})
    storage.delete("input-videos/never-there.mp4")  # a no-op


def test_a_partial_upload_is_not_listed(storage: LocalStorage) -> None:
    (storage.root / "input-videos" / ".bbb_3.mp4.part").write_bytes(b"half")
    assert storage.list("input-videos") == []


def test_put_file_refuses_an_escaping_key_and_writes_nothing(storage: LocalStorage) -> None:
    with pytest.raises(InvalidKey):
        upload(storage, "input-videos/../escaped.mp4", b"x")
    assert not (storage.root / "escaped.mp4").exists()


def test_partial_uploads_left_by_a_killed_run_are_swept(fast_tmp: Path) -> None:
    import os

    now = 1_700_000_000.0
    storage = LocalStorage(fast_tmp, clock=lambda: now)
    out = fast_tmp / "output-videos"
    inp = fast_tmp / "input-videos"
    cut = out / ".bbb_1-1000k-fast-j1.mp4.0f3a.part"  # an upload cut by kill -9
    fresh_input = inp / ".new.mp4.part"  # `catalog add` may be writing it right now
    old_input = inp / ".old.mp4.part"
    done = out / "bbb_1-1000k-fast-j0.mp4"
    for path in (cut, fresh_input, old_input, done):
        path.write_bytes(b"x")
    os.utime(cut, (now - 5, now - 5))
    os.utime(fresh_input, (now - 60, now - 60))
    os.utime(old_input, (now - 7200, now - 7200))
    assert storage.sweep_partial() == 2
    left = sorted(p.name for p in (*out.iterdir(), *inp.iterdir()))
    assert left == sorted([done.name, fresh_input.name])
