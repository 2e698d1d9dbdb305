"""What only the shared store has: URLs and redaction, explicit schema set-up, store identity, a read-only
PostgreSQL role, the lock timeout, the local read-through cache, multipart uploads, orphans and `zoo copy`.

(The registry's contract itself runs on both backends in test_registry.py and its siblings.)
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import zoo
from backends import Backend
from conftest import PYTHON, make_tiny_onnx, subprocess_env
from zoo.cli import main
from zoo.errors import InvalidInput, NotFound, StoreError
from zoo.records import Transform, VersionMeta
from zoo.store.location import parse_artifacts, parse_database, redact, scrub

META = VersionMeta(arch="tiny", framework="torch", num_classes=10, transform=Transform.for_input_size(8))


@pytest.fixture
def shared(shared_services, tmp_path: Path, monkeypatch):
    made = Backend.create("shared", tmp_path, shared_services)
    for key, value in made.env.items():
        monkeypatch.setenv(key, value)
    yield made
    made.drop()


def admin(backend: Backend):
    import psycopg

    return psycopg.connect(parse_database(backend.location).conninfo, autocommit=True)


def cli(*args: str, code: int = 0) -> str:
    """stdout alone for --json; stdout and stderr otherwise (messages)."""
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == code, (result.output, result.exception)
    return result.stdout if "--json" in args else result.output


# ---------------------------------------------------------------------- addressing and redaction


def test_urls_parse_and_redact():
    url = parse_database("postgresql://ci:s3cr%2Ft@db.example:5432/zoo?schema=team_a&sslmode=require&password=p2")
    assert url.schema == "team_a" and "schema=" not in url.conninfo and "sslmode=require" in url.conninfo
    assert "s3cr" not in url.shown and "p2" not in url.shown and url.shown.startswith("postgresql://ci:***@db.example:5432/zoo")
    assert parse_database("postgres://u@h/db").schema == "zoo"
    assert redact("postgresql://u:pw@h/db") == "postgresql://u:***@h/db"
    assert scrub("auth failed for pw at postgresql://u:pw@h/db", "postgresql://u:pw@h/db") == \
        "auth failed for *** at postgresql://u:***@h/db"
    with pytest.raises(InvalidInput, match="schema name"):
        parse_database("postgresql://u@h/db?schema=Robert'); DROP")
    assert parse_artifacts("s3://models/team-a/zoo").prefix == "team-a/zoo"
    assert parse_artifacts("./local-folder").folder == "./local-folder"
    for bad in ("s3://x", "s3://models/../up", "s3://user:secret@models/p", "gs://models/p", "s3://models/p?x=1"):
        with pytest.raises(InvalidInput) as exc:
            parse_artifacts(bad)
        assert "secret" not in exc.value.message


def test_a_password_never_reaches_the_output(shared: Backend):
    url = parse_database(shared.location)
    with_password = url.conninfo.replace("postgresql://postgres@", "postgresql://postgres:hunter2-secret@")
    bad_port = with_password.split("@", 1)[0] + "@127.0.0.1:1/zoo"
    for args in (["--store", bad_port, "list"], ["store", "info", bad_port], ["--store", bad_port, "show", "x"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 7, result.output
        assert "hunter2" not in result.output and "***" in result.output


def test_folder_store_refuses_artifacts(tmp_path: Path):
    import zoo

    with pytest.raises(InvalidInput, match="only with a PostgreSQL store"):
        zoo.open_registry(tmp_path / "store", artifacts="s3://models/x")


# ---------------------------------------------------------------------- explicit set-up, schema, identity


def test_an_uninitialised_database_is_not_found_and_nothing_is_created(shared: Backend):
    url = shared.location.replace(f"schema={shared.schema}", "schema=never_created")
    out = cli("--store", url, "list", code=3)
    assert "zoo store init" in out
    with admin(shared) as conn:
        assert conn.execute("SELECT to_regnamespace('never_created')").fetchone()[0] is None


def test_init_is_idempotent_and_a_newer_schema_is_refused(shared: Backend):
    first = json.loads(cli("store", "init", shared.location, "--json"))
    assert first["done"] == "unchanged" and first["artifacts"] == shared.artifacts and first["writable"]
    cli("store", "init", shared.location, "--artifacts", "s3://zoo/elsewhere", code=2)
    with admin(shared) as conn:
        conn.execute(f"UPDATE {shared.schema}.store SET schema_version = 99")
    for args in (["--store", shared.location, "list"], ["store", "init", shared.location]):
        assert "upgrade zoo" in cli(*args, code=7)


def test_artifacts_of_another_store_are_refused(shared: Backend, shared_services, tmp_path: Path, tiny_onnx):
    other = Backend.create("shared", tmp_path / "other", shared_services)
    registry = shared.open()
    registry.register(tiny_onnx(0), name="tiny")
    from zoo._registry import Registry

    with pytest.raises(StoreError, match="belong to another store"):  # checked on the first S3 request
        Registry.open_shared(shared.location, artifacts=other.artifacts, cache=tmp_path / "fresh").path("tiny@1")


# ---------------------------------------------------------------------- read-only consumers


def test_a_read_only_role_lists_shows_runs_and_loads_but_cannot_write(shared: Backend, tmp_path: Path, tiny_onnx):
    role = f"reader_{uuid.uuid4().hex[:8]}"
    with admin(shared) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
    src = tiny_onnx(0)
    shared.open().register(src, name="tiny", meta=META)
    cli("store", "init", shared.location, "--grant-read", role)
    reader = shared.location.replace("postgresql://postgres@", f"postgresql://{role}@")
    cache = tmp_path / "app-cache"  # another machine: nothing cached

    info = json.loads(cli("store", "info", reader, "--json"))
    assert info["writable"] is False
    assert "tiny@1" in cli("--store", reader, "list")
    assert "tiny@1" in cli("--store", reader, "show", "tiny@1")
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    os.environ["ZOO_CACHE"] = str(cache)  # (monkeypatched by the fixture: restored afterwards)
    ran = json.loads(cli("--store", reader, "run", "tiny@1", "--input", str(tmp_path / "x.npy"), "--json"))
    assert ran and (cache / "objects").is_dir()

    import onnxruntime as ort

    import zoo

    expected = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).run(None, {"images": x})[0]
    np.testing.assert_allclose(zoo.load("tiny@1", store=reader, provider="cpu").predict(x), expected, rtol=1e-5, atol=1e-5)

    registry = zoo.open_registry(reader)
    for write in (lambda: registry.register(tiny_onnx(1), name="tiny"), lambda: registry.set_alias("tiny@1", "prod"),
                  lambda: registry.attach("tiny@1", "bench", {}), lambda: registry.remove("tiny@1")):
        with pytest.raises(StoreError) as exc:
            write()
        assert "read-only" in exc.value.message and "INSERT privilege" in exc.value.message
    out = cli("--store", reader, "alias", "tiny@1", "prod", code=7)
    assert "read-only" in out and "INSERT privilege" in out
    assert [v.ref for v in shared.open().list()] == ["tiny@1"] and shared.scratch(shared.open()) == []


def test_missing_s3_permission_is_named(shared: Backend, tiny_onnx, monkeypatch):
    """Read-only S3 credentials: the denied request becomes a StoreError naming the IAM action."""
    from botocore.exceptions import ClientError

    registry = shared.open()
    client = registry._blobs._client

    def denied(**kwargs):
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"},
                           "ResponseMetadata": {"HTTPStatusCode": 403}}, "PutObject")

    monkeypatch.setattr(client, "put_object", denied)
    with pytest.raises(StoreError) as exc:
        registry.register(tiny_onnx(0), name="tiny")
    assert "s3:PutObject" in exc.value.message and registry.list() == []


# ---------------------------------------------------------------------- concurrency


def test_a_held_write_lock_is_waited_for_then_times_out_cleanly(shared: Backend, tiny_onnx, monkeypatch):
    registry = shared.open()
    registry.register(tiny_onnx(0), name="tiny")
    key = registry._meta._lock_key()
    blocker = admin(shared)
    blocker.execute("BEGIN")
    blocker.execute("SELECT pg_advisory_xact_lock(%s)", (key,))
    release = threading.Timer(0.5, lambda: blocker.execute("COMMIT"))
    release.start()
    t0 = time.monotonic()
    assert registry.set_tags("tiny@1", {"waited": "yes"}).tags == {"waited": "yes"}
    assert time.monotonic() - t0 >= 0.4
    release.join()
    blocker.execute("BEGIN")
    blocker.execute("SELECT pg_advisory_xact_lock(%s)", (key,))
    monkeypatch.setenv("ZOO_LOCK_TIMEOUT", "0.3")
    with pytest.raises(StoreError) as exc:
        registry.set_tags("tiny@1", {"waited": "no"})
    assert "Timed out" in exc.value.message and "ZOO_LOCK_TIMEOUT" in exc.value.hint
    blocker.execute("ROLLBACK")
    blocker.close()
    assert registry.resolve("tiny@1").tags == {"waited": "yes"}


def test_a_live_writers_upload_is_kept_until_the_crash_window_passes(shared: Backend, tiny_onnx, monkeypatch):
    registry = shared.open()
    staged = registry._blobs.stage(tiny_onnx(0).read_bytes(), {})
    other = shared.open(cache=shared.root.parent / "machine-b")
    monkeypatch.setenv("ZOO_CRASH_WINDOW", "3600")
    other.register(tiny_onnx(1), name="other")
    assert staged.digest in shared.objects(other)  # young: a live writer's, not collected
    monkeypatch.setenv("ZOO_CRASH_WINDOW", "0")
    proc = subprocess.run([PYTHON, "-c", "import sys, zoo; zoo.open_registry(sys.argv[1]).set_tags('other@1', {'k': 'v'})",
                           shared.location], env=subprocess_env(ZOO_CACHE=str(shared.root.parent / "machine-c")),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert staged.digest not in shared.objects(other)  # old enough: collected (it was unreferenced)
    with registry._write() as txn:  # the live writer still commits a complete version: publish re-uploads
        registry._blobs.publish(staged)
        assert txn.find("late", staged.digest) is None
    registry._blobs.discard(staged)
    assert staged.digest in shared.objects(other)


# ---------------------------------------------------------------------- the cache


def test_the_cache_is_filled_verified_and_refilled(shared: Backend, tmp_path: Path, tiny_onnx):
    v = shared.open().register(tiny_onnx(0, external_data=True), name="big").version
    cold = shared.open(cache=tmp_path / "machine-b")
    path = cold.path("big@1")
    assert path.is_relative_to(tmp_path / "machine-b") and hashlib.sha256(path.read_bytes()).hexdigest() == v.files[0].sha256
    data = path.parent / "model.onnx.data"
    data.chmod(0o644)
    data.write_bytes(b"\0" * data.stat().st_size)  # a damaged local copy is refetched, not an error
    again = shared.open(cache=tmp_path / "machine-b").path("big@1")
    assert hashlib.sha256((again.parent / "model.onnx.data").read_bytes()).hexdigest() == v.files[1].sha256


def test_the_cache_stays_within_its_size(tmp_path: Path):
    from zoo.records import StoredFile
    from zoo.store.cache import RECENT_S, ArtifactCache

    cache = ArtifactCache(tmp_path / "c", max_bytes=2500)
    digests = []
    for i in range(4):
        body = bytes([i]) * 1000
        f = StoredFile(relpath="model.onnx", sha256=hashlib.sha256(body).hexdigest(), size=len(body))
        cache.fill(f.sha256, [f], lambda _f, out, body=body: out.write(body))
        os.utime(cache.entry(f.sha256), (time.time() - RECENT_S - 100 + i, time.time() - RECENT_S - 100 + i))
        digests.append(f.sha256)
    cache.evict()
    kept = sorted(d for _, _, d in cache.entries())
    assert sum(size for _, size, _ in cache.entries()) <= 2500 and kept == sorted(digests[-2:])  # least recently used went


def test_several_processes_fill_one_cache_safely(shared: Backend, tmp_path: Path, tiny_onnx):
    v = shared.open().register(tiny_onnx(0, external_data=True), name="big").version
    code = "import sys, zoo; print(zoo.open_registry(sys.argv[1]).path('big@1'))"
    env = subprocess_env(ZOO_CACHE=str(tmp_path / "fresh"))
    procs = [subprocess.Popen([PYTHON, "-c", code, shared.location], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(4)]
    paths = set()
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        paths.add(out.strip())
    (path,) = paths
    assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == v.files[0].sha256
    assert list((tmp_path / "fresh" / "tmp").iterdir()) == []


def test_large_files_go_up_in_parts(shared: Backend, tmp_path: Path, monkeypatch):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from zoo.store import _s3io

    monkeypatch.setattr(_s3io, "MULTIPART_THRESHOLD", 1 << 20)
    monkeypatch.setattr(_s3io, "MIN_PART", 5 << 20)  # S3's smallest part
    weight = np.random.default_rng(0).standard_normal((3 * 8 * 8, 11 * 1024 * 1024 // (4 * 192))).astype(np.float32).T
    graph = helper.make_graph([helper.make_node("Flatten", ["images"], ["flat"], axis=1),
                               helper.make_node("Gemm", ["flat", "w"], ["logits"], transB=1)], "big",
                              [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, 8, 8])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", weight.shape[0]])],
                              initializer=[numpy_helper.from_array(weight, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    (tmp_path / "m").mkdir()
    onnx.save_model(model, tmp_path / "m" / "model.onnx", save_as_external_data=True, location="w.bin", size_threshold=0)
    v = shared.open().register(tmp_path / "m" / "model.onnx", name="big").version
    data = next(f for f in v.files if f.relpath == "w.bin")
    assert data.size > 10 << 20
    registry = shared.open(cache=tmp_path / "cold")
    blobs = registry._blobs
    head = blobs._client.head_object(Bucket=blobs.bucket, Key=blobs._key("objects", v.sha256, data.sha256))
    assert "-" in head["ETag"] and head["Metadata"]["sha256"] == data.sha256  # a multipart object
    assert [r.ok for r in registry.verify()] == [True]


# ---------------------------------------------------------------------- zoo copy


def test_copy_between_stores_keeps_everything_and_is_idempotent(shared: Backend, tmp_path: Path, tiny_onnx):
    import zoo

    local = zoo.open_registry(tmp_path / "scratch")
    local.register(tiny_onnx(0), name="tiny", meta=META, tags={"team": "vision"})
    local.register(tiny_onnx(1, external_data=True), name="tiny", meta=META)
    local.register(tiny_onnx(2), name="other")
    local.remove("tiny@1")  # the source's numbers have a hole: the target numbers its own
    local.set_alias("tiny@2", "prod")
    local.attach("tiny@2", "parity", {"max_abs": 1e-6})
    local.set_tags("tiny@2", {"passed": "yes"})

    out = json.loads(cli("--store", str(tmp_path / "scratch"), "copy", "--model", "tiny", "--to", shared.location, "--json"))
    assert [(r["source"], r["target"], r["created"], r["reports_added"], r["aliases_set"]) for r in out] == \
        [("tiny@2", "tiny@1", True, 1, ["prod"])]
    copied = shared.open().resolve("tiny@prod")
    original = local.resolve("tiny@prod")
    same = {k: v for k, v in original.to_dict().items() if k != "version"}
    assert {k: v for k, v in copied.to_dict().items() if k != "version"} == same
    assert [r.payload for r in shared.open().reports("tiny@1")] == [{"max_abs": 1e-6}]

    again = json.loads(cli("--store", str(tmp_path / "scratch"), "copy", "--all", "--to", shared.location, "--json"))
    assert [(r["source"], r["created"], r["reports_added"]) for r in again] == [("other@1", True, 0), ("tiny@2", False, 0)]
    back = json.loads(cli("copy", "--all", "--from", shared.location, "--to", str(tmp_path / "back"), "--json"))
    assert sorted(r["target"] for r in back) == ["other@1", "tiny@1"]
    returned = zoo.open_registry(tmp_path / "back").resolve("tiny@prod")
    assert returned.sha256 == original.sha256 and zoo.open_registry(tmp_path / "back").path(returned).is_file()
    assert cli("copy", "--to", shared.location, code=2)


def test_copy_of_a_missing_ref_is_not_found(shared: Backend, tmp_path: Path):
    out = cli("--store", str(tmp_path / "s"), "copy", "nothing@1", "--to", shared.location, code=3)
    assert "nothing" in out
    with pytest.raises(NotFound):
        from zoo._copying import select_versions

        select_versions(shared.open(), model="absent")


def test_no_database_or_s3_client_on_the_cold_path(tmp_path: Path):
    code = ("import sys; from click.testing import CliRunner; from zoo.cli import main; "
            "r = CliRunner().invoke(main, ['--store', sys.argv[1], 'list']); assert r.exit_code == 0, r.output; "
            "bad = [m for m in ('psycopg', 'boto3', 'botocore') if m in sys.modules]; assert not bad, bad")
    zoo.open_registry(tmp_path / "store").register(make_tiny_onnx(tmp_path / "m" / "model.onnx"), name="tiny")
    proc = subprocess.run([PYTHON, "-c", code, str(tmp_path / "store")], env=subprocess_env(), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
