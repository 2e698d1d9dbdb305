"""The `zoo` commands end to end, in-process, on a temporary store.

Uses the PyTorch plugin at a small configuration (ResNet-18, 10 classes, 64 px) so that the
whole tour (export, list, show, alias, run, verify, register, rm) runs in seconds.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from zoo.cli import main

pytestmark = pytest.mark.torch

SMALL = ["--num-classes", "10", "--input-size", "64"]


def _invoker(store):
    runner = CliRunner()

    def invoke(*args: str, code: int = 0):
        result = runner.invoke(main, ["--store", str(store), *args], catch_exceptions=False)
        assert result.exit_code == code, (result.stdout, result.stderr)
        return result

    return invoke


@pytest.fixture
def zoo(tmp_path):
    return _invoker(tmp_path / "store")


@pytest.fixture(scope="module")
def template_store(tmp_path_factory):
    """One export per module; each test gets its own copy of the store."""
    store = tmp_path_factory.mktemp("template") / "store"
    (row,) = json.loads(_invoker(store)("export", "resnet18", *SMALL, "--json").stdout)
    return store, row["version"]


@pytest.fixture
def exported(template_store, tmp_path):
    store, version = template_store
    shutil.copytree(store, tmp_path / "store")
    return version


@pytest.fixture(scope="module")
def template_two_versions(template_store, tmp_path_factory):
    """The template plus resnet18@2 (seed 1), exported once per module: (store, that export's --json row)."""
    store = tmp_path_factory.mktemp("template2") / "store"
    shutil.copytree(template_store[0], store)
    (row,) = json.loads(_invoker(store)("export", "resnet18", *SMALL, "--seed", "1", "--json").stdout)
    return store, row


def test_export_list_show(zoo, exported):
    assert (exported["name"], exported["version"], exported["framework"]) == ("resnet18", 1, "torch")
    listed = json.loads(zoo("list", "--json").stdout)
    assert [(v["name"], v["version"]) for v in listed] == [("resnet18", 1)]
    shown = json.loads(zoo("show", "resnet18@1", "--json").stdout)
    assert shown["sha256"] == exported["sha256"] and len(shown["sha256"]) == 64
    assert shown["transform"]["mean"] == [0.485, 0.456, 0.406] and "preprocessing" not in shown
    assert shown["params"]["trainable"] > 0 and shown["onnx_params"] > 0 and shown["macs"] > 0
    assert "resnet18@1" in zoo("list").stdout  # the table renders


def test_reexport_dedupes(zoo, exported, template_two_versions):
    (again,) = json.loads(zoo("export", "resnet18", *SMALL, "--json").stdout)
    assert again["created"] is False and again["version"]["version"] == exported["version"]
    _, other = template_two_versions  # the same export with --seed 1, on a copy of the same store
    assert other["created"] is True and other["version"]["version"] == 2


def test_alias_moves_and_resolves(zoo, template_two_versions, tmp_path):
    shutil.copytree(template_two_versions[0], tmp_path / "store")  # resnet18@1 (seed 0) and @2 (seed 1)
    zoo("alias", "resnet18@1", "prod")
    assert json.loads(zoo("show", "resnet18@prod", "--json").stdout)["version"] == 1
    zoo("alias", "resnet18@2", "prod")
    assert json.loads(zoo("show", "resnet18@prod", "--json").stdout)["version"] == 2
    assert json.loads(zoo("show", "resnet18", "--json").stdout)["version"] == 2  # latest
    assert json.loads(zoo("show", "resnet18:torch", "--json").stdout)["version"] == 2


def test_run_prints_topk_and_writes_logits(zoo, exported, tmp_path):
    batch = np.random.default_rng(0).standard_normal((2, 3, 64, 64), dtype=np.float32)
    np.save(tmp_path / "x.npy", batch)
    rows = json.loads(zoo("run", "resnet18", "--input", str(tmp_path / "x.npy"), "--json").stdout)
    assert len(rows) == 2 and [len(r["top"]) for r in rows] == [5, 5]
    zoo("run", "resnet18", "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy"))
    logits = np.load(tmp_path / "y.npy")
    assert logits.shape == (2, 10)
    assert [t["class"] for t in rows[0]["top"]] == list(np.argsort(-logits[0])[:5])
    assert "top-5" in zoo("run", "resnet18", "--random", "1").stdout


def test_register_external_onnx_and_verify(zoo, exported, tmp_path):
    from zoo import open_registry

    src = open_registry(tmp_path / "store").path("resnet18@1")
    out = json.loads(zoo("register", str(src), "--name", "imported", "--tag", "team=vision", "--json").stdout)
    assert out["created"] and out["version"]["tags"] == {"team": "vision"}
    checks = json.loads(zoo("verify", "--json").stdout)
    assert len(checks) == 2 and all(c["ok"] for c in checks)


def test_rm_needs_yes(zoo, exported):
    result = zoo("rm", "resnet18@1", code=2)
    assert "--yes" in result.stderr
    zoo("rm", "resnet18@1", "--yes")
    assert json.loads(zoo("list", "--json").stdout) == []


@pytest.mark.parametrize(
    "args,code,needle",
    [
        (["export", "resnet5"], 3, "'resnet5'"),
        (["export", "resnet18", "--framework", "caffe"], 3, "'caffe'"),
        (["show", "nothing-here"], 3, "nothing-here"),
        (["show", "../etc"], 2, "../etc"),
        (["export", "resnet18", "--num-classes", "0"], 2, "Received: 0"),
        (["run", "resnet18"], 2, "--input"),
    ],
)
def test_errors_name_the_bad_value_without_traceback(zoo, args, code, needle):
    result = zoo(*args, code=code)
    assert needle in result.stderr
    assert "Traceback" not in result.stderr and "hint:" in result.stderr


def _run_cold(store, *args: str) -> subprocess.CompletedProcess:
    """``zoo ARGS`` in a fresh interpreter that then fails if a framework (or onnx) was imported; its last
    line on stderr names the modules of :mod:`zoo.cli` it imported."""
    probe = (
        "import sys; from zoo.cli import main\n"
        "try: main(['--store', *sys.argv[1:]])\n"
        "except SystemExit as e: assert e.code in (0, None), e.code\n"
        "heavy = sorted(m for m in ('torch', 'tensorflow', 'onnx', 'onnxruntime', 'keras') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
        "print(*sorted(m for m in sys.modules if m.startswith('zoo.cli.')), file=sys.stderr)"
    )
    return subprocess.run([sys.executable, "-c", probe, str(store), *args], capture_output=True, text=True)


def test_cold_commands_import_no_framework_and_only_their_own_module(tmp_path):
    (tmp_path / "s").mkdir()  # an empty folder lists as an empty registry (a missing one is exit 3)
    result = _run_cold(tmp_path / "s", "list")
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[-1].split() == ["zoo.cli._app", "zoo.cli._render", "zoo.cli._table", "zoo.cli.browse"]


def test_every_command_comes_from_the_module_the_group_names():
    """`zoo CMD` imports only ``COMMAND_MODULES[CMD]``: importing every command module registers exactly
    those names, each defined in the module named, and no command module is left out."""
    import importlib

    from zoo.cli._app import COMMAND_MODULES

    here = Path(importlib.import_module("zoo.cli").__file__).parent
    modules = sorted(p.stem for p in here.glob("*.py") if not p.stem.startswith("_"))
    assert sorted(set(COMMAND_MODULES.values())) == modules
    for module in modules:
        importlib.import_module(f"zoo.cli.{module}")
    defined = {name: cmd.callback.__module__ for name, cmd in main.commands.items()}
    assert defined == {name: f"zoo.cli.{module}" for name, module in COMMAND_MODULES.items()}


def test_version_is_the_distributions_and_cold(tmp_path):
    from zoo._distribution import version

    result = _run_cold(tmp_path / "s", "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"zoo, version {version()}" and version() != "0+unknown"


def test_json_is_one_line_in_a_pipe_and_indented_on_a_terminal(monkeypatch, capsys):
    from zoo.cli import emit_json
    from zoo.records import TensorSpec

    emit_json({"spec": TensorSpec("images", "float32", ("batch", 3)), "error": float("nan")})
    assert capsys.readouterr().out == '{"spec": {"name": "images", "dtype": "float32", "shape": ["batch", 3]}, "error": null}\n'
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    emit_json({"a": 1})
    assert capsys.readouterr().out == '{\n  "a": 1\n}\n'


def test_archs_counts_equal_the_reference_without_building(tmp_path):
    """`zoo archs` counts from the architecture tables: no framework is imported, nothing is built."""
    from zoo.architectures import ARCHITECTURES, REFERENCE_PARAMS
    from zoo.plugins import plugin_statuses

    result = _run_cold(tmp_path / "s", "archs", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["arch"] for r in rows] == list(ARCHITECTURES)
    available = {s.name for s in plugin_statuses() if s.available}
    for row in rows:
        assert set(row["frameworks"]) == available
        for counts in row["frameworks"].values():
            assert counts["trainable"] == REFERENCE_PARAMS[row["arch"]] == row["reference"]
            assert counts["matches_reference"] is True and counts["source"] == "tables"


def test_archs_build_counts_the_built_models_and_compares_them(zoo):
    args = ("archs", "--framework", "torch", "--num-classes", "10", "--json")
    tables = json.loads(zoo(*args).stdout)
    built = json.loads(zoo(*args, "--build").stdout)
    assert [r["arch"] for r in built] == [r["arch"] for r in tables]
    for fast, slow in zip(tables, built, strict=True):
        f, b = fast["frameworks"]["torch"], slow["frameworks"]["torch"]
        assert (b["source"], b["matches_tables"]) == ("built", True)
        assert (b["trainable"], b["non_trainable"]) == (f["trainable"], f["non_trainable"])
        assert fast["reference"] is None, "the published counts are for 1000 classes"


def test_json_has_one_shape_for_a_version_and_label_names_only_when_asked(tmp_path, tiny_onnx):
    """register, list, show, alias, tag: the same version object; --fields selects fields; labels (or all) brings the 10 names."""
    from conftest import cli_on

    zoo = cli_on(tmp_path / "store")
    classes = tmp_path / "classes.txt"
    classes.write_text("".join(f"c{i}\n" for i in range(10)))
    registered = json.loads(zoo("register", str(tiny_onnx()), "--name", "m", "--labels", str(classes), "--json").stdout)
    version = registered["version"]
    assert registered["created"] and version["labels"] == {"name": "classes", "count": 10, "sha256": version["labels"]["sha256"]}
    (listed,) = json.loads(zoo("list", "--json").stdout)
    shown = json.loads(zoo("show", "m@1", "--json").stdout)
    shown.pop("reports")
    aliased = json.loads(zoo("alias", "m@1", "prod", "--json").stdout)["version"]
    assert listed == shown == version and aliased == {**version, "aliases": ["prod"]}
    full = json.loads(zoo("show", "m@1", "--json", "--fields", "all").stdout)
    assert full["labels"]["classes"] == [f"c{i}" for i in range(10)] and full == {
        **version, "aliases": ["prod"], "ref": "m@1", "labels": {**version["labels"], "classes": [f"c{i}" for i in range(10)]}}
    chosen = json.loads(zoo("list", "--json", "--fields", "sha256,ref,labels").stdout)
    assert chosen == [{"sha256": version["sha256"], "ref": "m@1", "labels": full["labels"]}], "those fields, in that order"
    assert list(chosen[0]) == ["sha256", "ref", "labels"]
    assert json.loads(zoo("show", "m@1", "--json", "--fields", "version").stdout) == {"version": 1}
    error = zoo("list", "--json", "--fields", "sha256,everything", code=2).stderr
    assert "Received: everything" in error and "ref, arch, framework" in error and ", all." in error


def test_register_resolves_the_digest_of_the_file_the_user_holds(tmp_path, tiny_onnx):
    """The stored bytes embed zoo's metadata; NAME@sha256:<sha256sum FILE> resolves too (source_sha256)."""
    import hashlib

    from conftest import cli_on

    zoo = cli_on(tmp_path / "store")
    source = tiny_onnx()
    held = hashlib.sha256(source.read_bytes()).hexdigest()
    version = json.loads(zoo("register", str(source), "--name", "m", "--json").stdout)["version"]
    assert version["sha256"] != held and version["provenance"]["source_sha256"] == held
    for digest in (held[:12], held, version["sha256"][:12]):
        assert json.loads(zoo("show", f"m@sha256:{digest}", "--json").stdout)["version"] == 1


def test_list_require_is_the_stores_report_search(tmp_path, tiny_onnx):
    """`zoo list --require` passes each requirement to the store's search; a refused one names the fix."""
    import zoo as zoo_api
    from conftest import cli_on

    zoo = cli_on(tmp_path / "store")
    zoo("register", str(tiny_onnx(0)), "--name", "m")
    zoo("register", str(tiny_onnx(1)), "--name", "m")
    registry = zoo_api.open_registry(tmp_path / "store")
    registry.attach("m@1", "eval", {"top1": 0.8, "top5": 0.9, "data": {"digest": "d"}})
    registry.attach("m@2", "parity", {"passed": True})
    listed = json.loads(zoo("list", "--require", "eval.top1 >= 75%", "--json", "--fields", "ref").stdout)
    assert listed == [{"ref": "m@1"}]
    assert "m@2" in zoo("list", "--require", "parity").stdout
    assert "no versions match requirement 'parity', requirement 'eval.top1 >= 0.5'" in zoo(
        "list", "--require", "parity", "--require", "eval.top1 >= 0.5").stderr
    assert "zoo policy" in zoo("list", "--require", "eval.top1 >= prod", code=2).stderr
