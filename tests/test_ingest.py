"""The one ingest step shared by Registry.register and zoo copy: a failed commit takes back what it published."""
from __future__ import annotations

import pytest

from faults import FailingCommit
from zoo import open_registry
from zoo._copying import copy_versions, select_versions
from zoo.errors import StoreError


def test_a_copy_whose_commit_fails_takes_back_what_it_published(tmp_path, tiny_onnx):
    source = open_registry(tmp_path / "source")
    v = source.register(tiny_onnx(0), name="m").version
    target = open_registry(tmp_path / "target")
    target._prepare_write()
    target._meta = FailingCommit(target._meta)  # type: ignore[assignment]
    with pytest.raises(StoreError, match="no space left on device"):
        copy_versions(source, target, select_versions(source, refs=[v.ref]))
    assert target.list() == []
    assert target._blobs.problems(v.sha256, v.files), "the published object was taken back"
    (copied,) = copy_versions(source, target, select_versions(source, refs=[v.ref]))  # the retry works
    assert copied.created and target.resolve(copied.target).sha256 == v.sha256
    assert target._blobs.problems(v.sha256, v.files) == []
