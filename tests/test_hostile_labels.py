"""Hostile labels files: each refusal names the file and the line, says what was expected, and hints the fix."""
from __future__ import annotations

import pytest

from zoo.errors import InvalidInput, NotFound
from zoo.labels import MAX_LABEL_LENGTH, Labels, read_labels, resolve_labels


def refused(tmp_path, data: bytes, error=InvalidInput):
    path = tmp_path / "labels.txt"
    path.write_bytes(data)
    with pytest.raises(error) as info:
        read_labels(path)
    exc = info.value
    assert exc.message.startswith("Expected") and "Received:" in exc.message and exc.hint, exc.message
    return exc


@pytest.mark.parametrize("data,fragments", [
    (b"cat\n\xff\xfedog\n", ["UTF-8", "line 2", "0xff"]),
    (b"cat\n\ndog\n", ["blank line", "line 2"]),
    (b"cat\n   \ndog\n", ["blank line", "line 2"]),
    (b"cat\ndog\ncat\n", ["distinct", "lines 1 and 3"]),
    (b"cat\n" + b"x" * (MAX_LABEL_LENGTH + 1) + b"\n", [f"at most {MAX_LABEL_LENGTH}", "line 2"]),
    (b"cat\nd\x00og\n", ["printable", "U+0000"]),
    (b"c\tat\n", ["printable", "U+0009"]),
    (b"cat\n\x1b[31mdog\n", ["printable", "U+001B", "line 2"]),
    ("cat\nevil\u202egod\n".encode(), ["printable", "U+202E"]),
    ("cat\u2028dog\n".encode(), ["printable", "U+2028"]),
    (b"", ["at least one class name"]),
    (b"\n\n\n", ["at least one class name"]),
], ids=["not-utf8", "blank", "whitespace-only", "duplicate", "too-long", "nul", "tab", "escape", "bidi", "line-separator",
        "empty", "only-blank"])
def test_bad_labels_files_are_refused(tmp_path, data, fragments):
    exc = refused(tmp_path, data)
    for fragment in fragments:
        assert fragment in exc.message, exc.message
    assert exc.exit_code == 2


def test_harmless_variations_are_accepted(tmp_path):
    path = tmp_path / "pets.txt"
    path.write_bytes(b"\xef\xbb\xbf  cat \r\ndog\r\nchat \xc3\xa0 neuf\n\n\n")  # BOM, CRLF, spaces, UTF-8, trailing blanks
    assert read_labels(path) == Labels("pets", ("cat", "dog", "chat \u00e0 neuf"))
    path.write_bytes(b"cat\ndog")  # no final newline
    assert read_labels(path).classes == ("cat", "dog")


def test_missing_file_is_not_found_and_folder_refused(tmp_path):
    with pytest.raises(NotFound) as info:
        read_labels(tmp_path / "nope.txt")
    assert info.value.exit_code == 3 and "imagenet-1k" in info.value.hint
    with pytest.raises(InvalidInput, match="folder"):
        read_labels(tmp_path)


def test_huge_file_is_refused_without_reading_it(tmp_path):
    path = tmp_path / "huge.txt"
    with open(path, "wb") as f:
        f.truncate(17 << 20)  # sparse: nothing is written
    with pytest.raises(InvalidInput, match="16 MiB"):
        read_labels(path)


@pytest.mark.parametrize("spec,fragment", [
    (["cat", 3], "text"),
    (["cat", ""], "blank"),
    ([], "at least one"),
    (42, "list of class names"),
    (b"cat\ndog", "list of class names"),
])
def test_bad_label_lists_are_refused(spec, fragment):
    with pytest.raises(InvalidInput, match=fragment):
        resolve_labels(spec)
