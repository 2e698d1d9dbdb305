"""The Registry API on a temporary store: register, dedupe, versions, aliases, tags, list, reports, load."""
from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import zoo
from zoo._registry import RegisterResult, Registry, metadata_props
from zoo.errors import Conflict, IntegrityError, InvalidInput, InvalidModelFile, InvalidName, InvalidReference, NotFound, StoreError
from zoo.records import ParamCounts, Transform, VersionMeta

TORCH = VersionMeta(arch="tiny", framework="torch", framework_version="2.13.0", plugin_version="0.1.0",
                    exporter="test", exporter_version="1", params=ParamCounts(trainable=1930, non_trainable=0),
                    num_classes=10, transform=Transform.for_input_size(8), provenance={"init_seed": 0})
TF = VersionMeta(arch="tiny", framework="tensorflow", num_classes=10)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_register_records_graph_facts_and_meta(store: Registry, tiny_onnx, backend):
    result = store.register(tiny_onnx(0), name="tiny", meta=TORCH, tags={"team": "vision"})
    assert isinstance(result, RegisterResult) and result.created
    v = result.version
    assert (v.name, v.version, v.ref) == ("tiny", 1, "tiny@1")
    assert [t.name for t in v.signature.inputs] == ["images"]
    assert v.signature.inputs[0].shape == ("batch", 3, 8, 8)
    assert v.signature.outputs[0].shape == ("batch", 10)
    assert v.opset == 18
    assert v.onnx_params == 10 * 192 + 10
    assert v.macs == 10 * 192
    assert (v.arch, v.framework, v.params, v.num_classes) == ("tiny", "torch", TORCH.params, 10)
    assert v.transform == TORCH.transform and v.input_size == (8, 8) and v.provenance == {"init_seed": 0}
    assert v.tags == {"team": "vision"} and v.aliases == ()
    stored = store.path(v)
    assert stored.name == "model.onnx" and stored.is_relative_to(backend.root / "objects")
    assert stored.parent.name == v.sha256 and stored.parent.parent.name == v.sha256[:2]
    assert sha256(stored) == v.sha256 and len(v.files) == 1 and v.files[0].size == stored.stat().st_size == v.size_bytes
    assert store.resolve("tiny@1") == v


def test_metadata_is_embedded_and_free_of_registry_facts(store: Registry, tiny_onnx):
    from zoo.onnx import read_metadata

    v = store.register(tiny_onnx(0), name="tiny", meta=TORCH).version
    props = read_metadata(store.path(v))
    assert props == metadata_props(TORCH)
    assert json.loads(props["zoo.params"]) == {"trainable": 1930, "non_trainable": 0}
    assert json.loads(props["zoo.transform"])["crop"] == [8, 8] and "zoo.preprocessing" not in props
    assert props["zoo.framework"] == "torch" and props["zoo.arch"] == "tiny" and "zoo.version" in props
    blob = store.path(v).read_bytes()
    assert b"tiny@1" not in blob and v.created_at.encode() not in blob


def test_source_file_is_not_modified(store: Registry, tiny_onnx):
    src = tiny_onnx(0)
    before = src.read_bytes()
    store.register(src, name="tiny", meta=TORCH)
    assert src.read_bytes() == before


def test_stale_zoo_metadata_in_the_source_is_replaced(store: Registry, tiny_onnx):
    from zoo.onnx import read_metadata

    first = store.register(tiny_onnx(0), name="tiny", meta=TORCH).version
    # A file copied out of the store, registered elsewhere as external ONNX, must not keep claiming torch.
    again = store.register(store.path(first), name="copy", meta=VersionMeta()).version
    props = read_metadata(store.path(again))
    assert not any(k in props for k in ("zoo.framework", "zoo.arch", "zoo.params")), props


def test_identical_bytes_dedupe_and_new_bytes_get_the_next_number(store: Registry, tiny_onnx):
    first = store.register(tiny_onnx(0), name="tiny", meta=TORCH)
    again = store.register(tiny_onnx(0), name="tiny", meta=TORCH)  # another file, same content
    assert again.created is False and again.version.version == 1 and again.version.sha256 == first.version.sha256
    second = store.register(tiny_onnx(1), name="tiny", meta=TORCH)
    assert second.created and second.version.version == 2
    assert [v.version for v in store.list("tiny")] == [1, 2]


def test_dedupe_applies_new_tags_to_the_existing_version(store: Registry, tiny_onnx):
    store.register(tiny_onnx(0), name="tiny", meta=TORCH, tags={"a": "1"})
    again = store.register(tiny_onnx(0), name="tiny", meta=TORCH, tags={"b": "2"})
    assert not again.created and again.version.tags == {"a": "1", "b": "2"}


def test_same_model_different_meta_is_a_new_version(store: Registry, tiny_onnx):
    a = store.register(tiny_onnx(0), name="tiny", meta=TORCH).version
    b = store.register(tiny_onnx(0), name="tiny", meta=TF).version
    assert a.sha256 != b.sha256 and b.version == 2


def test_same_bytes_under_two_names_share_one_object(store: Registry, tiny_onnx, backend):
    a = store.register(tiny_onnx(0), name="a", meta=TORCH).version
    b = store.register(tiny_onnx(0), name="b", meta=TORCH).version
    assert a.sha256 == b.sha256 and store.path(a) == store.path(b)
    assert (a.version, b.version) == (1, 1)
    assert backend.objects(store) == [a.sha256]


def test_latest_is_implicit_and_aliases_move(store: Registry, tiny_onnx):
    for seed in range(3):
        store.register(tiny_onnx(seed), name="tiny", meta=TORCH)
    assert store.resolve("tiny").version == store.resolve("tiny@latest").version == 3
    assert store.set_alias("tiny@1", "prod").aliases == ("prod",)
    assert store.resolve("tiny@prod").version == 1
    moved = store.set_alias("tiny@2", "prod")
    assert moved.version == 2 and moved.aliases == ("prod",)
    assert store.resolve("tiny@prod").version == 2 and store.resolve("tiny@1").aliases == ()
    store.set_alias("tiny@prod", "candidate")  # an alias may be set from another alias
    assert store.resolve("tiny@candidate").version == 2
    store.register(tiny_onnx(3), name="tiny", meta=TORCH)
    assert store.resolve("tiny").version == 4 and store.resolve("tiny@prod").version == 2
    store.remove_alias("tiny", "prod")
    with pytest.raises(NotFound, match="no alias 'prod'"):
        store.resolve("tiny@prod")
    with pytest.raises(NotFound):
        store.remove_alias("tiny", "prod")


@pytest.mark.parametrize("alias", ["latest", "3", "007"])
def test_reserved_aliases_are_refused(store: Registry, tiny_onnx, alias):
    store.register(tiny_onnx(0), name="tiny", meta=TORCH)
    with pytest.raises(InvalidName) as exc:
        store.set_alias("tiny@1", alias)
    assert exc.value.message.endswith(f"Received: '{alias}'")


def test_resolve_errors_name_what_exists(store: Registry, tiny_onnx):
    store.register(tiny_onnx(0), name="resnet50", meta=TORCH)
    with pytest.raises(NotFound) as exc:
        store.resolve("resnet5")
    assert "resnet50" in exc.value.hint
    with pytest.raises(NotFound, match="no version 7") as exc:
        store.resolve("resnet50@7")
    assert "1" in exc.value.hint


def test_framework_selection(store: Registry, tiny_onnx):
    store.register(tiny_onnx(0), name="tiny", meta=TORCH)  # 1
    store.register(tiny_onnx(1), name="tiny", meta=TF)  # 2
    store.register(tiny_onnx(2), name="tiny", meta=TORCH)  # 3
    store.register(tiny_onnx(3), name="tiny", meta=TF)  # 4
    assert store.resolve("tiny:torch").version == 3
    assert store.resolve("tiny:pytorch").version == 3
    assert store.resolve("tiny:tensorflow").version == 4
    assert store.resolve("tiny:tf@latest").version == 4
    assert store.resolve("tiny", framework="torch").version == 3
    assert store.resolve("tiny:torch@1").version == 1
    with pytest.raises(NotFound, match="tiny@2 was built by 'tensorflow', not by 'torch'"):
        store.resolve("tiny:torch@2")
    store.set_alias("tiny@4", "prod")
    assert store.resolve("tiny:tensorflow@prod").version == 4
    with pytest.raises(NotFound) as exc:
        store.resolve("tiny:torch@prod")
    assert "'tensorflow'" in exc.value.message and "'torch'" in exc.value.message and "tiny@4" in exc.value.message
    with pytest.raises(NotFound, match="no version built by 'jax'") as exc:
        store.resolve("tiny:jax")
    assert "tensorflow" in exc.value.hint and "torch" in exc.value.hint
    with pytest.raises(InvalidInput):
        store.resolve("tiny:torch", framework="tensorflow")


def test_list_filters_and_sorting(store: Registry, tiny_onnx):
    store.register(tiny_onnx(0), name="zeta", meta=TORCH)
    store.register(tiny_onnx(1), name="alpha", meta=TF)
    store.register(tiny_onnx(2), name="alpha", meta=VersionMeta(arch="other", framework="torch"))
    store.register(tiny_onnx(3), name="alpha", meta=VersionMeta())
    assert [v.ref for v in store.list()] == ["alpha@1", "alpha@2", "alpha@3", "zeta@1"]
    assert [v.ref for v in store.list("alpha")] == ["alpha@1", "alpha@2", "alpha@3"]
    assert [v.ref for v in store.list(framework="torch")] == ["alpha@2", "zeta@1"]
    assert [v.ref for v in store.list(framework="pytorch", arch="tiny")] == ["zeta@1"]
    assert [v.ref for v in store.list(arch="tiny")] == ["alpha@1", "zeta@1"]
    assert store.list("nothing") == []
    assert store.models() == ["alpha", "zeta"]


def test_rows_are_the_listing_columns_of_what_list_selects(store: Registry, tiny_onnx):
    """`rows` (the `zoo list` table, read without parsing records) selects and orders as `list` does, and each
    column equals the version's field; params is the native trainable count, else the ONNX initializers'."""
    store.register(tiny_onnx(0), name="zeta", meta=TORCH, tags={"team": "vision"})
    store.register(tiny_onnx(1), name="alpha", meta=TF)
    store.register(tiny_onnx(2), name="alpha", meta=VersionMeta(arch="other", framework="torch"), tags={"team": "vision"})
    store.set_alias("alpha@2", "prod")
    store.set_alias("alpha@2", "canary")
    store.attach("zeta@1", "parity", {"passed": True})
    for filters in ({}, {"name": "alpha"}, {"framework": "torch"}, {"tags": {"team": "vision"}}, {"alias": "prod"},
                    {"require": ["parity"]}, {"name": "nothing"}):
        expected = [(v.ref, v.framework, v.arch, v.params.trainable if v.params else v.onnx_params, v.size_bytes, v.sha256,
                     v.aliases, v.created_at) for v in store.list(**filters)]
        rows = [(r.ref, r.framework, r.arch, r.params, r.size_bytes, r.sha256, r.aliases, r.created_at)
                for r in store.rows(**filters)]
        assert rows == expected, filters
    assert store.rows("alpha")[1].aliases == ("canary", "prod") and store.rows("zeta")[0].params == 1930


def test_tags_set_and_remove(store: Registry, tiny_onnx):
    store.register(tiny_onnx(0), name="tiny", meta=TORCH, tags={"team": "vision"})
    v = store.set_tags("tiny@1", {"team": "research", "stage": "beta"})
    assert v.tags == {"stage": "beta", "team": "research"}
    v = store.remove_tag("tiny@1", "stage")
    assert v.tags == {"team": "research"} == store.resolve("tiny").tags
    with pytest.raises(NotFound, match="no tag 'stage'"):
        store.remove_tag("tiny@1", "stage")


def test_reports_are_appended_in_order(store: Registry, tiny_onnx):
    v = store.register(tiny_onnx(0), name="tiny", meta=TORCH).version
    first = store.attach(v, "parity", {"max_abs": 1e-6, "pairs": [["torch", "onnx"]]})
    second = store.attach("tiny@1", "bench", {"p50_ms": 0.2})
    third = store.attach("tiny", "parity", {"max_abs": 2e-6})
    assert first.payload == {"max_abs": 1e-6, "pairs": [["torch", "onnx"]]}
    reports = store.reports("tiny@1")
    assert [(r.kind, r.payload) for r in reports] == [(r.kind, r.payload) for r in (first, second, third)]
    assert [r.payload["max_abs"] for r in store.reports(v, "parity")] == [1e-6, 2e-6]
    assert store.resolve("tiny@1") == v  # attaching changes nothing on the version
    with pytest.raises(InvalidInput):
        store.attach(v, "bench", {"not json": object()})
    with pytest.raises(InvalidName):
        store.attach(v, "../kind", {})


def test_external_data_model_is_one_version_hashed_over_all_files(store: Registry, tiny_onnx, backend):
    src = tiny_onnx(5, external_data=True)
    assert (src.parent / "model.onnx.data").is_file()
    result = store.register(src, name="big", meta=TORCH)
    v = result.version
    assert result.created and v.version == 1
    assert [f.relpath for f in v.files] == ["model.onnx", "model.onnx.data"]
    folder = store.path(v).parent
    for f in v.files:
        assert sha256(folder / f.relpath) == f.sha256 and (folder / f.relpath).stat().st_size == f.size
    manifest = "".join(f"{f.sha256}  {f.relpath}\n" for f in sorted(v.files, key=lambda f: f.relpath))
    assert v.sha256 == hashlib.sha256(manifest.encode()).hexdigest()
    assert v.size_bytes == sum(f.size for f in v.files)
    assert v.onnx_params == 1930
    assert store.register(src, name="big", meta=TORCH).created is False
    assert [r.ok for r in store.verify()] == [True]
    assert backend.scratch(store) == []

    import onnxruntime as ort

    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8), dtype=np.float32)
    session = ort.InferenceSession(str(store.path(v)), providers=["CPUExecutionProvider"])
    expected = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).run(None, {"images": x})[0]
    np.testing.assert_array_equal(session.run(None, {"images": x})[0], expected)


def test_remove_deletes_one_version_and_never_reuses_its_number(store: Registry, tiny_onnx):
    for seed in range(3):
        store.register(tiny_onnx(seed), name="tiny", meta=TORCH)
    store.set_alias("tiny@3", "prod")
    gone = store.remove("tiny@3", force=True)  # an alias points at it: only with force (see the next test)
    assert gone.version == 3 and not store.path(gone, verify=False).exists()
    assert [v.version for v in store.list("tiny")] == [1, 2]
    with pytest.raises(NotFound):
        store.resolve("tiny@prod")
    assert store.register(tiny_onnx(9), name="tiny", meta=TORCH).version.version == 4


def test_remove_refuses_while_aliases_point_at_the_version(store: Registry, tiny_onnx):
    """Issue 10.8: removing the version `prod` points at would break every app loading `@prod`."""
    for seed in range(2):
        store.register(tiny_onnx(seed), name="tiny", meta=TORCH)
    store.set_alias("tiny@2", "prod")
    store.set_alias("tiny@2", "canary")
    with pytest.raises(Conflict) as exc:
        store.remove("tiny@2")
    assert "tiny@canary" in exc.value.message and "tiny@prod" in exc.value.message and "--force" in exc.value.hint
    assert exc.value.exit_code == 11
    assert store.resolve("tiny@prod").version == 2 and store.path("tiny@2").is_file()  # nothing was removed
    store.remove("tiny@1")  # no alias: no question asked
    assert store.remove("tiny@2", force=True).aliases == ("canary", "prod")
    assert store.list() == []


def test_deleting_an_alias_checks_the_version_it_points_at(store: Registry, tiny_onnx):
    for seed in range(2):
        store.register(tiny_onnx(seed), name="tiny", meta=TORCH)
    store.set_alias("tiny@2", "prod")
    with pytest.raises(Conflict, match=r"points at tiny@2, not at tiny@1"):
        store.remove_alias("tiny", "prod", version=1)
    assert store.resolve("tiny@prod").version == 2
    store.remove_alias("tiny", "prod", version=2)
    with pytest.raises(NotFound):
        store.resolve("tiny@prod")


def test_bad_files_are_refused_before_anything_is_stored(store: Registry, tmp_path: Path, backend):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"definitely not a protobuf \x00\x01")
    with pytest.raises(InvalidModelFile):
        store.register(junk, name="junk")
    with pytest.raises(InvalidModelFile):
        store.register(tmp_path / "missing.onnx", name="junk")
    assert store.list() == [] and backend.objects(store) == []
    assert backend.scratch(store) == []


def test_open_refuses_a_store_path_that_is_a_file(tmp_path: Path):
    path = tmp_path / "not-a-folder"
    path.write_text("x")
    with pytest.raises(StoreError, match="not a folder"):
        Registry.open(path)


def test_open_refuses_a_non_database(tmp_path: Path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "registry.db").write_bytes(b"garbage" * 1000)
    with pytest.raises(StoreError, match="registry.db"):
        Registry.open(tmp_path / "s")


def test_open_is_idempotent_and_sees_the_same_data(store: Registry, tiny_onnx, backend):
    store.register(tiny_onnx(0), name="tiny", meta=TORCH)
    again = backend.open()
    assert [v.ref for v in again.list()] == ["tiny@1"]


def test_package_entry_point_opens_the_store(tmp_path: Path, tiny_onnx, monkeypatch):

    monkeypatch.setenv("ZOO_STORE", str(tmp_path / "env-store"))
    zoo.open_registry().register(tiny_onnx(0), name="tiny")
    assert (tmp_path / "env-store" / "registry.db").is_file()


def test_load_predicts(store: Registry, tiny_onnx):
    import onnxruntime as ort

    src = tiny_onnx(0)
    store.register(src, name="tiny", meta=TORCH)
    x = np.random.default_rng(1).standard_normal((3, 3, 8, 8), dtype=np.float32)
    expected = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).run(None, {"images": x})[0]
    model = store.load("tiny@latest", provider="cpu")
    np.testing.assert_allclose(model.predict(x), expected, rtol=1e-6, atol=1e-6)


def test_paths_are_absolute_even_for_a_relative_store(tmp_path: Path, tiny_onnx, monkeypatch):
    """Issue 10.10: an app that chdirs after opening the registry must still find its files."""
    monkeypatch.chdir(tmp_path)
    registry = Registry.open("rel-store")
    registry.register(tiny_onnx(0), name="tiny", meta=TORCH)
    path = registry.path("tiny")
    assert path.is_absolute() and registry.root.is_absolute()
    monkeypatch.chdir("/")
    assert registry.path("tiny") == path and path.is_file()


# --------------------------------------------------------------------------- pin by content


def test_resolve_by_sha256_prefix_or_full_digest(store: Registry, tiny_onnx):
    one = store.register(tiny_onnx(0), name="tiny", meta=TORCH).version
    two = store.register(tiny_onnx(1), name="tiny", meta=TF).version
    for v in (one, two):
        assert store.resolve(f"tiny@sha256:{v.sha256[:12]}") == v
        assert store.resolve(f"tiny@sha256:{v.sha256}") == v
        assert store.resolve(f"tiny@sha256:{v.sha256[:30].upper()}") == v
    assert store.resolve(f"tiny:tensorflow@sha256:{two.sha256[:12]}") == two
    with pytest.raises(NotFound, match="built by 'torch', not by 'tensorflow'"):
        store.resolve(f"tiny:tensorflow@sha256:{one.sha256[:12]}")


def test_same_digest_under_two_names_resolves_per_name(store: Registry, tiny_onnx):
    path = tiny_onnx(0)
    a = store.register(path, name="a").version
    b = store.register(path, name="b").version
    assert a.sha256 == b.sha256
    assert store.resolve(f"a@sha256:{a.sha256[:12]}").ref == "a@1"
    assert store.resolve(f"b@sha256:{a.sha256[:12]}").ref == "b@1"


def test_unknown_digest_names_the_versions_that_exist(store: Registry, tiny_onnx):
    v = store.register(tiny_onnx(0), name="tiny").version
    other = "0" * 64 if not v.sha256.startswith("0") else "f" * 64
    for ref in (f"tiny@sha256:{other[:12]}", f"tiny@sha256:{other}"):
        with pytest.raises(NotFound) as exc:
            store.resolve(ref)
        assert f"tiny@1 (sha256:{v.sha256[:12]})" in exc.value.hint
    with pytest.raises(NotFound, match="No model named 'nothing'"):
        store.resolve(f"nothing@sha256:{other[:12]}")


def test_ambiguous_digest_prefix_lists_the_candidates(store: Registry, tiny_onnx):
    """Two artifacts sharing 12 hex digits are astronomically rare: records with crafted digests stand in
    (resolve reads only metadata)."""
    v = store.register(tiny_onnx(0), name="tiny").version
    shared = "abcdef012345"
    with store._write() as txn:
        for n, tail in enumerate(("1" * 52, "2" * 52), start=1):
            txn.add_version(replace(v, version=0, sha256=shared + tail, created_at=f"2026-01-0{n}T00:00:00+00:00"))
    with pytest.raises(InvalidReference) as exc:
        store.resolve(f"tiny@sha256:{shared}")
    assert "tiny@2" in exc.value.message and "tiny@3" in exc.value.message and "more hex digits" in exc.value.hint
    assert store.resolve(f"tiny@sha256:{shared}2").ref == "tiny@3"


def test_load_refuses_a_different_artifact_than_the_pinned_one(store: Registry, tiny_onnx):
    one = store.register(tiny_onnx(0), name="tiny").version
    two = store.register(tiny_onnx(1), name="tiny").version
    assert store.load("tiny@1", provider="cpu", sha256=one.sha256).version == one
    assert store.load("tiny@1", provider="cpu", sha256="sha256:" + one.sha256[:12]).version == one
    store.set_alias("tiny@2", "prod")  # the alias moves: an app pinned to version 1's bytes must notice
    with pytest.raises(IntegrityError) as exc:
        store.load("tiny@prod", provider="cpu", sha256=one.sha256)
    assert one.sha256 in exc.value.message and two.sha256 in exc.value.message
    with pytest.raises(IntegrityError):
        zoo.load("tiny", store=store.location, provider="cpu", sha256=one.sha256[:12])
    with pytest.raises(InvalidReference):
        store.load("tiny@1", provider="cpu", sha256=one.sha256[:8])  # too short to pin anything


NAMES = tuple(f"class {i}" for i in range(10))


def test_class_names_are_stored_once_per_list_and_read_back_per_version(store: Registry, tiny_onnx):
    """A version's record names its labels by digest and the names are stored once per list (1,000 ImageNet
    versions do not hold 1,000 copies of 1,000 names); each version reads back its own name and names."""
    from zoo.labels import Labels

    given = [Labels("pets", NAMES), Labels("animals", NAMES), Labels("reversed", NAMES[::-1])]
    for seed, labels in enumerate(given):
        store.register(tiny_onnx(seed), name="m", meta=replace(TORCH, labels=labels))
    assert [v.labels for v in store.list("m")] == given
    assert store.resolve("m@2").labels == given[1] and store.resolve("m@2").labels.classes == NAMES
    with store._meta.read() as txn:
        stored = sorted(d for (d,) in txn._x("SELECT sha256 FROM {p}labels").fetchall())
        records = [r for (r,) in txn._x("SELECT record FROM {p}versions").fetchall()]
    assert stored == sorted({labels.sha256 for labels in given})
    assert not any(NAMES[3] in record for record in records)


def test_inline_labels_of_older_records_still_read_and_a_lost_list_is_a_store_error(embedded_store: Registry, tiny_onnx):
    """Records written before schema 4 hold their class names inline; a record whose list is missing from the
    labels table is reported as a corrupt record, naming the version."""
    import sqlite3

    from zoo.labels import Labels

    embedded_store.register(tiny_onnx(0), name="m", meta=replace(TORCH, labels=Labels("pets", NAMES)))
    conn = sqlite3.connect(embedded_store.root / "registry.db")
    with conn:
        (record,) = conn.execute("SELECT record FROM versions").fetchone()
        body = {**json.loads(record), "labels": {"name": "pets", "classes": list(NAMES)}}  # the schema-3 shape
        conn.execute("INSERT INTO models(name, last_version) VALUES ('old', 1)")
        conn.execute("INSERT INTO versions(name, version, sha256, created_at, record) SELECT 'old', 1, sha256, created_at, ?"
                     " FROM versions", (json.dumps(body),))
    assert embedded_store.resolve("old@1").labels == Labels("pets", NAMES)
    with conn:
        conn.execute("DELETE FROM labels")
    conn.close()
    assert embedded_store.resolve("old@1").labels == Labels("pets", NAMES)
    with pytest.raises(StoreError, match="corrupt record for m@1"):
        embedded_store.resolve("m@1")


SEARCHES = ["parity", "eval.top1 >= 0.7", "eval.top1 > 75%", "eval.top5 >= 0.9", "bench.p50 <= 12", "bench.throughput >= 80",
            "fp16-parity"]


def test_search_by_report_figures_selects_what_a_policy_with_those_requirements_accepts(store: Registry, tiny_onnx):
    """`list(require=...)` runs in the store's query and agrees with zoo.gates.check on every version: the newest
    report of the kind decides, a bench figure is read at the smallest batch size, a missing report never matches."""
    from zoo.gates import Policy, check

    reports = [  # per version: (kind, payload) in the order attached
        [("parity", {"passed": True}), ("eval", {"top1": 0.8, "top5": 0.95, "data": {"digest": "a"}})],
        [("parity", {"passed": True}), ("parity", {"passed": False}), ("eval", {"top1": 0.9, "top5": 0.99, "data": {"digest": "a"}}),
         ("eval", {"top1": 0.72, "top5": 0.91, "data": {"digest": "b"}})],
        [("bench", {"results": [{"batch": 8, "onnxruntime": {"p50_ms": 40.0, "throughput": 200.0}},
                                {"batch": 1, "onnxruntime": {"p50_ms": 10.5, "throughput": 95.0}}]})],
        [("bench", {"results": [{"batch": 1, "onnxruntime": {"p50_ms": 30.0, "throughput": 33.0}}]}),
         ("bench", {"results": [{"batch": 1, "onnxruntime": {"p50_ms": 11.0, "throughput": 90.0}}]}), ("fp16-parity", {"passed": True})],
        [],
    ]
    for seed, attached in enumerate(reports):
        version = store.register(tiny_onnx(seed), name="m").version
        for kind, payload in attached:
            store.attach(version, kind, payload)
    versions = store.list("m")
    for search in [*([s] for s in SEARCHES), ["parity", "eval.top1 >= 0.75"], ["bench.p50 <= 12", "fp16-parity"]]:
        policy = Policy.parse("m", "prod", search)
        expected = [v.version for v in versions if check(policy, v, None, lambda v, kind: store.reports(v, kind)).passed]
        assert [v.version for v in store.list("m", require=search)] == expected, search
    assert [v.version for v in store.list(require=["eval.top1 >= 0.75"])] == [1]  # the newest eval of m@2 is 0.72
    assert [v.version for v in store.list(require="bench.p50 <= 11")] == [3, 4]  # 10.5 at batch 1; 11.0 the newest
    with pytest.raises(InvalidInput, match="absolute bound"):
        store.list(require=["eval.top1 >= prod - 0.5%"])
    with pytest.raises(InvalidInput, match="metric"):
        store.list(require=["eval.accuracy >= 0.5"])
