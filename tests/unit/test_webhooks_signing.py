"""Webhook signatures: a round trip, refusals, the secret file, and the verification snippet
of docs/api.md run as written against ``sign``."""

from __future__ import annotations

import re
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from dacirco.webhooks import load_or_create_secret, sign, verify

SECRET = b"s3cret-key"
BODY = b'{"id": "job-1", "state": "Completed"}'
API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def test_round_trip_and_header_format() -> None:
    now = 1_796_292_001
    header = sign(SECRET, BODY, now)
    assert re.fullmatch(r"t=1796292001,v1=[0-9a-f]{64}", header)
    assert verify(SECRET, BODY, header, now)
    assert verify(SECRET, BODY, header, now + 299.0)
    assert verify(SECRET, BODY, header, now - 299.0)  # a receiver's clock a little behind


@pytest.mark.parametrize("delta", [301.0, -301.0, 86400.0])
def test_refuses_timestamps_out_of_tolerance(delta: float) -> None:
    now = 1_796_292_001
    header = sign(SECRET, BODY, now)
    assert not verify(SECRET, BODY, header, now + delta)
    assert verify(SECRET, BODY, header, now + delta, tolerance=abs(delta) + 1)


def test_refuses_other_body_secret_or_garbage() -> None:
    now = 1_796_292_001
    header = sign(SECRET, BODY, now)
    assert not verify(SECRET, BODY + b" ", header, now)
    assert not verify(b"other", BODY, header, now)
    # The timestamp is signed: moving it forward breaks the signature.
    moved = header.replace("t=1796292001", "t=1796292002")
    assert not verify(SECRET, BODY, moved, now)
    for bad in ("", "t=,v1=", "v1=abc", f"t={now}", f"t=x,v1={'0' * 64}", "garbage"):
        assert not verify(SECRET, BODY, bad, now)


def test_several_v1_one_of_them_right() -> None:
    now = 1_796_292_001
    header = sign(SECRET, BODY, now)
    rotated = f"{header},v1={sign(b'old', BODY, now).split('v1=')[1]}"
    assert verify(SECRET, BODY, rotated, now)
    assert verify(b"old", BODY, rotated, now)


def test_secret_given_wins_and_nothing_is_written(tmp_path: Path) -> None:
    assert load_or_create_secret(tmp_path, "  operator-secret ") == b"operator-secret"
    assert not (tmp_path / "webhook-secret").exists()


def test_secret_created_once_private_and_reused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = load_or_create_secret(data_dir, None)
    path = data_dir / "webhook-secret"
    assert len(first) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_secret(data_dir, None) == first
    assert load_or_create_secret(data_dir, "") == first  # an empty option is no option
    assert [p.name for p in data_dir.iterdir()] == ["webhook-secret"]  # no temporary left


def test_empty_secret_file_is_an_error_not_an_empty_key(tmp_path: Path) -> None:
    (tmp_path / "webhook-secret").write_text("\n")
    with pytest.raises(ValueError, match="empty"):
        load_or_create_secret(tmp_path, None)


def _doc_snippet() -> Callable[..., bool]:
    text = API_DOC.read_text()
    heading = re.search(r"^## Webhooks$", text, re.M)
    assert heading, "docs/api.md has no Webhooks section"
    section = text[heading.start() :]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code, "docs/api.md: the Webhooks section has no python snippet"
    namespace: dict[str, object] = {}
    exec(compile(code.group(1), str(API_DOC), "exec"), namespace)
    func = namespace["verify_dacirco_signature"]
    assert callable(func)
    return func  # type: ignore[return-value]


def test_the_documented_snippet_verifies_what_sign_makes() -> None:
    check = _doc_snippet()
    now = int(time.time())
    header = sign(SECRET, BODY, now)
    assert check(SECRET, BODY, header)
    assert not check(SECRET, BODY + b"x", header)
    assert not check(b"other", BODY, header)
    assert not check(SECRET, BODY, sign(SECRET, BODY, now - 3600))  # too old: replay
    assert not check(SECRET, BODY, sign(SECRET, BODY, now + 3600))  # from the future
    assert check(SECRET, BODY, sign(SECRET, BODY, now - 3600), tolerance=4000)
    assert not check(SECRET, BODY, "v1=" + "0" * 64)
