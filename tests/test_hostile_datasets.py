"""Hostile labelled sets for `zoo eval`: each gets a clear error (exit 2 naming the fault) or a counted skip.

Never a crash, never a file read from outside the set's folder.
"""
from __future__ import annotations

import json
import os

import pytest

from test_eval import picture, setup  # noqa: F401  (the fixture: colours@1 and a good set)


def run(zoo, data, *args, code=0):
    result = zoo("eval", "colours@1", "--data", str(data), "--json", "--no-attach", *args, code=code)
    return json.loads(result.stdout) if code == 0 else result.stderr


def test_non_images_are_skipped_and_counted(setup):  # noqa: F811
    zoo, data, _ = setup
    (data / "red" / "notes.txt").write_text("not a picture")
    (data / "red" / "fake.jpg").write_bytes(b"\xff\xd8 truncated jpeg")
    payload = run(zoo, data)
    skipped = payload["data"]["skipped"]
    assert skipped == {"not an image file (by suffix)": 1, "could not be decoded": 1}
    assert payload["data"]["images"] == 10 and "red/fake.jpg" in payload["data"]["skipped_examples"]["could not be decoded"]


def test_unknown_class_folders_are_refused_naming_them_or_skipped_on_request(setup):  # noqa: F811
    zoo, data, _ = setup
    picture(data / "purple" / "x.png", "blue")
    error = run(zoo, data, code=2)
    assert "'purple'" in error and "--skip-unknown" in error
    payload = run(zoo, data, "--skip-unknown")
    assert payload["data"]["skipped"] == {"class not among the model's labels": 1} and payload["data"]["images"] == 10


def test_symlinks_out_of_the_folder_are_never_followed(setup, tmp_path):  # noqa: F811
    zoo, data, _ = setup
    outside = picture(tmp_path / "elsewhere" / "secret.png", "green")
    os.symlink(outside, data / "green" / "link.png")
    os.symlink(outside.parent, data / "blue" / "linked-folder")
    os.symlink(outside.parent, data / "magenta")  # a whole class folder that leaves the set
    payload = run(zoo, data)
    assert payload["data"]["skipped"] == {"symlink or path leading outside the data set": 3}
    assert payload["data"]["images"] == 10


def test_a_fifo_is_not_read(setup):  # noqa: F811
    zoo, data, _ = setup
    os.mkfifo(data / "red" / "pipe.png")
    assert run(zoo, data)["data"]["skipped"] == {"not a regular file": 1}


def test_csv_paths_that_leave_the_folder_are_skipped(setup, tmp_path):  # noqa: F811
    zoo, data, _ = setup
    picture(tmp_path.parent / "above.png", "red")
    listing = tmp_path / "list.csv"
    listing.write_text(f"val/red/00.png,red\n../above.png,red\n{tmp_path / 'val/red/01.png'},red\n")
    payload = run(zoo, listing)
    assert payload["data"]["images"] == 1
    assert payload["data"]["skipped"] == {"symlink or path leading outside the data set": 2}


@pytest.mark.parametrize("content, needle", [
    ("a.png,red,extra\n", "Expected two columns"),
    ("val/red/00.png,nope\n", "'nope'"),
    ("path,label\n", "Expected at least one usable labelled image"),
])
def test_malformed_csv_is_refused(setup, tmp_path, content, needle):  # noqa: F811
    zoo, _, _ = setup
    (tmp_path / "bad.csv").write_text(content)
    assert needle in run(zoo, tmp_path / "bad.csv", code=2)


@pytest.mark.parametrize("make, args, needle", [
    (lambda p: p / "missing", (), "no such file or folder"),
    (lambda p: (p / "flat").mkdir() or p / "flat", (), "no subfolders"),
    (lambda p: (p / "x.txt").write_text("x") and p / "x.txt", (), "regular .csv file"),
    (lambda p: p / "val", ("--limit", "0"), "(limit) >= 1"),
    (lambda p: p / "val", ("--batch-size", "0"), "batch size >= 1"),
])
def test_bad_arguments_exit_2(setup, tmp_path, make, args, needle):  # noqa: F811
    zoo, _, _ = setup
    assert needle in run(zoo, make(tmp_path), *args, code=2)


def test_a_set_of_only_empty_classes_is_refused(setup, tmp_path):  # noqa: F811
    zoo, _, _ = setup
    (tmp_path / "empty" / "red").mkdir(parents=True)
    assert "Expected at least one usable labelled image" in run(zoo, tmp_path / "empty", code=2)
