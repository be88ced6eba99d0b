"""app.safety.safe_io: only regular files within their limit are read; only strict JSON is
parsed."""

from __future__ import annotations

import os

import pytest

from app.safety.safe_io import JsonError, check_regular_file, parse_json, read_regular_file


def test_reads_a_regular_file_within_its_limit(tmp_path):
    path = tmp_path / "a.json"
    path.write_bytes(b"12345")
    assert read_regular_file(path, max_bytes=5) == b"12345"
    assert check_regular_file(path, max_bytes=5) == 5
    with pytest.raises(OSError, match="over the 4 bytes limit"):
        read_regular_file(path, max_bytes=4)
    with pytest.raises(OSError, match="over the 4 bytes limit"):
        check_regular_file(path, max_bytes=4)


@pytest.mark.parametrize(
    ("kind", "reason"),
    [("fifo", "not a regular file"), ("dev-zero", "not a regular file"), ("folder", "folder")],
)
def test_refuses_what_is_not_a_regular_file_without_blocking(tmp_path, kind, reason):
    path = tmp_path / "x"
    if kind == "fifo":
        os.mkfifo(path)  # opening it for reading would block until a writer came
    elif kind == "dev-zero":
        path.symlink_to("/dev/zero")  # endless: reading it would never stop
    else:
        path.mkdir()
    for read in (read_regular_file, check_regular_file):
        with pytest.raises(OSError, match=reason) as info:
            read(path, max_bytes=1 << 20)
        assert info.value.filename == str(path)


def test_missing_file_is_the_usual_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_regular_file(tmp_path / "none", max_bytes=10)


def test_strict_json_accepts_a_byte_order_mark():
    assert parse_json(b'\xef\xbb\xbf{"a": [1, 2.5]}') == {"a": [1, 2.5]}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"[NaN]", "NaN is not a valid JSON number"),
        (b"[-Infinity]", "-Infinity is not a valid JSON number"),
        (b"[1e400]", "the number 1e400 is too large"),
        (b"[" + b"9" * 400 + b"]", "an integer of 400 digits is too large"),
        (b"[" * 65 + b"]" * 65, "nested more than 64 levels deep"),
        (b"[" * 100_000 + b"]" * 100_000, "nested more than 64 levels deep"),
        (b"\xff\xfe{}", "not UTF-8 text (byte 0 is 0xff)"),
        (b'{"a": 1', "not valid JSON (Expecting ',' delimiter at line 1 column 8)"),
    ],
)
def test_strict_json_refuses_in_one_line(raw, reason):
    with pytest.raises(JsonError) as info:
        parse_json(raw)
    assert str(info.value) == reason
