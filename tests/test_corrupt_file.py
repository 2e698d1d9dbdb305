"""Corrupt stored files: a flipped byte is caught by path()/load()/verify(), naming file and both hashes."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from zoo._registry import Registry
from zoo.errors import IntegrityError


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


# --------------------------------------------------------------------------- the database itself (issue 10.1)

def _two_models(root: Path, tiny_onnx) -> list[str]:
    registry = Registry.open(root)
    for seed, name in enumerate(["a", "b"]):
        registry.register(tiny_onnx(seed), name=name)
    registry.close()
    return sorted(str(p) for p in (root / "objects").rglob("*") if p.is_file())


def _truncate(db: Path, other: Path) -> None:
    db.write_bytes(b"")


def _remove(db: Path, other: Path) -> None:
    db.unlink()


def _other_stores(db: Path, other: Path) -> None:
    import shutil

    shutil.copyfile(other / "registry.db", db)


def _foreign_sqlite(db: Path, other: Path) -> None:
    import sqlite3

    db.unlink()
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE notes(x)")


def _recreated_by_an_old_zoo(db: Path, other: Path) -> None:
    """What zoo before store ids did on `zoo list` after registry.db was lost: a new, empty schema."""
    import sqlite3

    from zoo.store.sqlite import _SCHEMA

    db.unlink()
    (db.parent / "store.json").unlink()
    with sqlite3.connect(db) as conn:
        conn.executescript(_SCHEMA.split("CREATE TABLE IF NOT EXISTS store_info")[0])


@pytest.mark.parametrize("damage", [_truncate, _remove, _other_stores, _foreign_sqlite, _recreated_by_an_old_zoo],
                         ids=["truncated", "removed", "another-store", "foreign-sqlite", "recreated-empty"])
def test_a_lost_database_never_costs_an_artifact(tmp_path: Path, tiny_onnx, damage):
    """The issue's repro: two models, registry.db damaged, then every command. Exit 7 with the way to
    recover; every object file still there; no command starts a new registry over them."""
    from click.testing import CliRunner

    from zoo.cli import main

    root = tmp_path / "store"
    objects = _two_models(root, tiny_onnx)
    other = tmp_path / "other"
    Registry.open(other).register(tiny_onnx(5), name="x")
    for leftover in ("registry.db-wal", "registry.db-shm"):
        (root / leftover).unlink(missing_ok=True)
    damage(root / "registry.db", other)
    runner = CliRunner()
    for args in (["verify"], ["gc", "--yes", "--older-than", "0"], ["list"], ["show", "a"],
                 ["register", str(tiny_onnx(9)), "--name", "c"], ["rm", "a@1", "--yes"]):
        result = runner.invoke(main, ["--store", str(root), *args])
        assert result.exit_code == 7, (args, result.output)
        assert "registry.db" in result.stderr and "backup" in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    assert sorted(str(p) for p in (root / "objects").rglob("*") if p.is_file()) == objects


def test_a_store_from_before_store_ids_is_adopted(tmp_path: Path, tiny_onnx):
    """A store written by an older zoo (no store.json, no id in the database) keeps working; its
    next write records the identity in both halves."""
    import sqlite3

    root = tmp_path / "store"
    _two_models(root, tiny_onnx)
    (root / "store.json").unlink()
    with sqlite3.connect(root / "registry.db") as conn:
        conn.execute("DROP TRIGGER store_info_immutable")
        conn.execute("DROP TABLE store_info")
    registry = Registry.open(root)
    assert [v.ref for v in registry.list()] == ["a@1", "b@1"]
    registry.set_alias("a@1", "prod")
    marker = json.loads((root / "store.json").read_text())
    with sqlite3.connect(root / "registry.db") as conn:
        (stored,) = conn.execute("SELECT value FROM store_info WHERE key='store_id'").fetchone()
    assert stored == marker["store_id"] and len(stored) == 32
    assert all(r.ok for r in Registry.open(root).verify())
