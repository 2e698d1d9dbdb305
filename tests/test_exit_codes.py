"""The README's exit-code table, walked: one code per kind of error, each documented (issue 10.9).

Every ``zoo.errors`` class has a row with its exit code; every CLI case below exits with the code its
kind has in the table, with a message and no traceback (``--debug`` adds one and keeps the code).
"""
from __future__ import annotations

import inspect
import json
import re
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import zoo.errors as errors
from conftest import REPO_ROOT
from onnx_models import reference_logits, tiny_cnn
from zoo import open_registry
from zoo.cli import main
from zoo.records import ExportInfo, ParamCounts, VersionMeta

SIZE = 16


def readme_table() -> dict[int, str]:
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("| exit | kind |", 1)[1].split("\n\n", 1)[0]
    rows = re.findall(r"^\| (\d+) \| (.+)$", section, re.MULTILINE)
    assert rows, "the README has an exit-code table"
    return {int(code): rest for code, rest in rows}


def test_every_error_class_is_in_the_table_with_its_code():
    table = readme_table()
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, errors.ZooError) and c is not errors.ZooError]
    for cls in classes:
        assert cls.exit_code in table, cls
        assert f"`{cls.__name__}`" in table[cls.exit_code], (cls, table[cls.exit_code])
    codes = {c.exit_code for c in classes}
    assert codes | {0, errors.INTERNAL_ERROR_EXIT, errors.INTERRUPTED_EXIT} == set(table)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    registry = open_registry(root)
    registry.register(tiny_cnn(tmp_path / "m.onnx", size=SIZE), name="tiny",
                      meta=VersionMeta(provenance={"source_file": "\x1b[2J\x1b[31mevil\x07.onnx"}))
    registry.register(tiny_cnn(tmp_path / "m2.onnx", size=SIZE, seed=1), name="tiny")
    registry.set_alias("tiny@2", "prod")
    registry.attach("tiny@1", "bench", {"ms": float("nan"), "spread": [float("inf"), 1.0]})
    return root


def zoo(store: Path, *args: str):
    return CliRunner().invoke(main, ["--store", str(store), *args])


CASES = {
    "random-negative": (["run", "tiny", "--random", "-1"], 2, "Received: -1"),
    "random-huge": (["run", "tiny", "--random", "1000000000"], 2, "Received: 1000000000"),
    "output-missing-folder": (["run", "tiny", "--random", "1", "--output", "/missing/dir/x.npy"], 2, "does not exist"),
    "top-k-negative": (["run", "tiny", "--random", "1", "--top-k", "-3"], 2, "Received: -3"),
    "run-missing-input": (["run", "tiny", "--input", "/no/such/file.npy"], 2, "/no/such/file.npy"),
    "register-missing-file": (["register", "/no/such/file.onnx", "--name", "x"], 2, "/no/such/file.onnx"),
    "bad-name": (["register", "/no/such/file.onnx", "--name", "../x"], 2, "Received: '../x'"),
    "not-found": (["show", "nothing"], 3, "'nothing'"),
    "rm-aliased": (["rm", "tiny@2", "--yes"], 11, "tiny@prod"),
    "alias-delete-elsewhere": (["alias", "tiny@1", "prod", "--delete"], 11, "points at tiny@2"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_kind_of_error_exits_with_its_documented_code(store: Path, case: str):
    args, code, needle = CASES[case]
    assert code in readme_table()
    result = zoo(store, *args)
    assert result.exit_code == code, (result.exit_code, result.output)
    assert needle in result.stderr and "hint:" in result.stderr and "Traceback" not in result.stderr


def test_an_empty_store_path_is_bad_input_not_the_current_folder(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["--store", "", "list"])
    assert result.exit_code == 2 and "Received: ''" in result.stderr, result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_adds_the_traceback_and_keeps_the_code(store: Path, where: str):
    args = ["show", "nothing"]
    argv = ["--debug", *args] if where == "before" else [*args, "--debug"]
    result = zoo(store, *argv)
    assert result.exit_code == 3, result.output
    assert "Traceback" in result.stderr and "error: No model named 'nothing'" in result.stderr


@pytest.mark.parametrize("corrupt,commands", [
    ("'{\"broken'", [["list"], ["list", "--json"], ["show", "tiny@1"]]),
    # valid JSON the record checks refuse: the table (its columns only) still lists it; reading the record does not
    ("json_set(record, '$.transform', json('{\"resize\": -1}'))", [["list", "--json"], ["show", "tiny@1"]]),
], ids=["not-json", "fails-the-checks"])
def test_a_corrupt_record_row_is_a_store_error(store: Path, corrupt: str, commands: list[list[str]]):
    with sqlite3.connect(store / "registry.db") as conn:
        conn.execute("DROP TRIGGER versions_immutable")
        conn.execute(f"UPDATE versions SET record = {corrupt} WHERE version = 1")
    for args in commands:
        result = zoo(store, *args)
        assert result.exit_code == 7, result.output
        assert "corrupt record for tiny@1" in result.stderr and "Traceback" not in result.stderr


def test_corrupt_bytes_exit_5(store: Path):
    target = open_registry(store).path("tiny@1")
    target.chmod(0o644)
    data = bytearray(target.read_bytes())
    data[-10] ^= 0xFF
    target.write_bytes(bytes(data))
    assert zoo(store, "verify").exit_code == 5
    assert zoo(store, "run", "tiny@1", "--random", "1").exit_code == 5


def test_show_json_is_valid_json_with_nan_as_null(store: Path):
    result = zoo(store, "show", "tiny@1", "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert shown["reports"][0]["payload"] == {"ms": None, "spread": [None, 1.0]}


def test_escape_codes_in_recorded_text_are_printed_escaped(store: Path):
    result = zoo(store, "show", "tiny@1")
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "\\x1b[31mevil\\x07.onnx" in result.stdout


class _Opset17Plugin:
    """A plugin whose exporter ignores the requested opset (writes 17), like an exporter whose
    version conversion failed and kept its native opset."""

    name, display_name, version = "fixed17", "Fixed-17", "1.0"

    def framework_version(self):
        return "1.0"

    def architectures(self):
        return ["tinycnn"]

    def build(self, arch, *, num_classes=10, **options):
        return object()

    def count_params(self, model):
        return ParamCounts(trainable=1, non_trainable=0)

    def export_onnx(self, model, path, *, opset=18, input_size=224):
        tiny_cnn(path, size=None)
        return ExportInfo(exporter="fixed", exporter_version="1", opset=opset)

    def predict(self, model, images):
        return reference_logits(images)


@pytest.mark.parametrize("opset", [13, 17])
def test_an_opset_the_exporter_did_not_honour_is_an_export_error(tmp_path: Path, opset: int):
    from zoo._exporting import export_and_register

    registry = open_registry(tmp_path / "store")
    if opset == 17:
        result = export_and_register(registry, _Opset17Plugin(), "tinycnn", num_classes=10, opset=17, input_size=32)
        assert result.version.opset == 17
        return
    with pytest.raises(errors.ExportError, match="at opset 17, not at the requested opset 13") as exc:
        export_and_register(registry, _Opset17Plugin(), "tinycnn", num_classes=10, opset=13, input_size=32)
    assert exc.value.exit_code == 8
    assert not (tmp_path / "store").exists()  # nothing was registered (or even created)


def test_random_batches_use_the_graphs_fixed_input_size(store: Path):
    """`zoo run EXTERNAL --random N` on a graph fixed at 16x16 (no recorded preprocessing) used 224."""
    result = zoo(store, "run", "tiny", "--random", "2", "--json")
    assert result.exit_code == 0, result.output
    expected = reference_logits(np.random.default_rng(0).standard_normal((2, 3, SIZE, SIZE), dtype=np.float32), seed=1)
    rows = json.loads(result.stdout)
    assert [r["top"][0]["class"] for r in rows] == list(np.argmax(expected, axis=1))
