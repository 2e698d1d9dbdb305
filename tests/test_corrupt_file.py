"""Corrupt stored files: a flipped byte is caught by path()/load()/verify(), naming file and both hashes."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from zoo._registry import Registry
from zoo.errors import IntegrityError


def flip_byte(path: Path, offset: int = -20, *, keep_mtime: bool = False) -> str:  # (embedded-only tests)
    """Flip one byte in place (store files are read-only: that is the point); return the new sha256."""
    st = path.stat()
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    path.chmod(0o444)
    if keep_mtime:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    return hashlib.sha256(bytes(data)).hexdigest()


def test_stored_files_are_read_only(store: Registry, tiny_onnx):
    v = store.register(tiny_onnx(0), name="tiny").version
    assert store.path(v).stat().st_mode & 0o222 == 0


@pytest.mark.parametrize("keep_mtime", [False, True], ids=["plain", "mtime-restored"])
def test_flipped_byte_raises_integrity_error_naming_file_and_hashes(store: Registry, tiny_onnx, keep_mtime, backend):
    v = store.register(tiny_onnx(0), name="tiny").version
    path = store.path(v)  # verified once: the fast-path cache now knows this file
    where, actual = backend.damage(store, v, keep_mtime=keep_mtime)
    for call in (lambda: store.path("tiny@1"), lambda: store.path(v), lambda: store.load("tiny")):
        with pytest.raises(IntegrityError) as exc:
            call()
        message = exc.value.message
        assert where in message and v.sha256 in message and actual in message
        assert "expected" in message and "actual" in message
    assert store.path(v, verify=False).parent.name == path.parent.name == v.sha256  # an explicit opt-out still works


def test_verify_reports_every_corrupt_version(store: Registry, tiny_onnx, backend):
    versions = [store.register(tiny_onnx(seed), name=name).version for seed, name in enumerate(["a", "b", "c", "a"])]
    bad = {versions[1].ref: backend.damage(store, versions[1]), versions[3].ref: backend.damage(store, versions[3], offset=100)}
    results = {f"{r.name}@{r.version}": r for r in store.verify()}
    assert set(results) == {"a@1", "a@2", "b@1", "c@1"}
    for ref, r in results.items():
        if ref in bad:
            where, actual = bad[ref]
            assert not r.ok and actual in r.problem and where in r.problem
        else:
            assert r.ok and r.problem is None
    assert [r.ok for r in store.verify("b@1")] == [False]
    assert [r.ok for r in store.verify("c")] == [True]


def test_corrupt_external_data_is_caught(store: Registry, tiny_onnx, backend):
    v = store.register(tiny_onnx(0, external_data=True), name="big").version
    expected = next(f.sha256 for f in v.files if f.relpath == "model.onnx.data")
    where, actual = backend.damage(store, v, "model.onnx.data", 10)
    with pytest.raises(IntegrityError) as exc:
        store.path(v)
    assert where in exc.value.message and expected in exc.value.message and actual in exc.value.message
    assert not store.verify()[0].ok


def test_missing_file_is_caught(store: Registry, tiny_onnx, backend):
    v = store.register(tiny_onnx(0, external_data=True), name="big").version
    backend.delete_file(store, v, "model.onnx.data")
    with pytest.raises(IntegrityError, match="missing"):
        store.path(v)
    assert "missing" in store.verify()[0].problem


def test_a_replaced_symlink_is_not_followed(embedded_store: Registry, tiny_onnx, tmp_path: Path):
    store = embedded_store
    v = store.register(tiny_onnx(0), name="tiny").version
    path = store.path(v)
    outside = tmp_path / "outside.onnx"
    outside.write_bytes(path.read_bytes())  # same bytes, so only the link itself is wrong
    path.unlink()
    path.symlink_to(outside)
    with pytest.raises(IntegrityError, match="not a regular file"):
        store.path(v)


def test_re_registering_the_original_repairs_the_copy(store: Registry, tiny_onnx, backend):
    src = tiny_onnx(0)
    v = store.register(src, name="tiny").version
    backend.damage(store, v)
    again = store.register(src, name="tiny")
    assert not again.created and again.version.version == 1
    assert store.path(v) and all(r.ok for r in store.verify())
