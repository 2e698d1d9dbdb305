"""Hostile files given to check_model_file: each class is refused with InvalidModelFile, a message
that names the problem and the file, a hint, and nothing written anywhere."""
from __future__ import annotations

import io
import os
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from zoo.errors import InvalidModelFile
from zoo.onnx import check_model_file

# ---------------------------------------------------------------------------------------------
# Factories: a tiny valid model, with its weights inline or in external data


def tiny_model() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["images", "w", "b"], ["logits"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])],
        "tiny",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 4, 8, 8])],
        [w, b],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    return model


def write_inline(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.onnx"
    onnx.save_model(tiny_model(), str(path))
    return path


def write_external(folder: Path, **entries: str) -> Path:
    """A model whose tensor 'w' lives in weights.bin; ``entries`` then override its external_data keys."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.onnx"
    onnx.save_model(tiny_model(), str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.bin", size_threshold=0)
    if entries:
        model = onnx.load_model(str(path), load_external_data=False)
        w = next(t for t in model.graph.initializer if t.name == "w")
        current = {e.key: e.value for e in w.external_data}
        current.update(entries)
        del w.external_data[:]
        for key, value in current.items():
            w.external_data.add(key=key, value=value)
        path.write_bytes(model.SerializeToString())  # as is: no onnx.save re-validation or rewrite
    return path


def _symlink(target: str | Path, link: Path) -> None:
    try:
        os.symlink(target, link)
    except (OSError, NotImplementedError) as exc:
        pytest.skip(f"symlinks unavailable here: {exc}")


# ---------------------------------------------------------------------------------------------
# Hostile classes: each factory writes into ``root`` and returns the path to give to the gate.


def missing_path(root: Path) -> Path:
    return root / "does-not-exist.onnx"


def directory(root: Path) -> Path:
    write_inline(root / "a-folder")
    return root / "a-folder"


def empty_file(root: Path) -> Path:
    (root / "empty.onnx").write_bytes(b"")
    return root / "empty.onnx"


def random_bytes(root: Path) -> Path:
    (root / "random.onnx").write_bytes(np.random.default_rng(1).bytes(64 * 1024))
    return root / "random.onnx"


def text_file(root: Path) -> Path:
    (root / "model.onnx").write_text("ir_version: 8\ngraph { name: 'not really' }\n", encoding="utf-8")
    return root / "model.onnx"


def zip_archive(root: Path) -> Path:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", b"weights")
    (root / "model.onnx").write_bytes(buf.getvalue())
    return root / "model.onnx"


def pickle_file(root: Path) -> Path:
    (root / "model.onnx").write_bytes(pickle.dumps({"conv.weight": [1.0, 2.0]}, protocol=4))
    return root / "model.onnx"


def truncated_file(root: Path) -> Path:
    path = write_inline(root / "m")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def gigantic_file(root: Path) -> Path:
    """Over 2 GiB (sparse, so no disk is used): no ONNX protobuf can be that big."""
    path = root / "huge.onnx"
    with open(path, "wb") as f:
        f.write(b"\x08\x08")
        f.truncate(2**31 + 4096)
    return path


def fifo(root: Path) -> Path:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes on this platform")
    os.mkfifo(root / "pipe.onnx")
    return root / "pipe.onnx"


def checker_failure(root: Path) -> Path:
    """Valid protobuf, invalid graph: a node reads a value nothing defines."""
    model = tiny_model()
    model.graph.node.append(helper.make_node("Relu", ["nowhere"], ["r"]))
    (root / "model.onnx").write_bytes(model.SerializeToString())
    return root / "model.onnx"


def shape_inference_failure(root: Path) -> Path:
    """Structurally valid, but the declared output type contradicts the graph (float vs int64)."""
    model = tiny_model()
    model.graph.output[0].type.tensor_type.elem_type = TensorProto.INT64
    (root / "model.onnx").write_bytes(model.SerializeToString())
    return root / "model.onnx"


def dotdot_location(root: Path) -> Path:
    path = write_external(root / "m", location="../weights.bin")
    (root / "weights.bin").write_bytes((root / "m" / "weights.bin").read_bytes())
    return path


def absolute_location(root: Path) -> Path:
    path = write_external(root / "m")
    return write_external(root / "m", location=str((path.parent / "weights.bin").resolve()))


def backslash_location(root: Path) -> Path:
    path = write_external(root / "m", location="sub\\weights.bin")
    (path.parent / "sub").mkdir()
    return path


def drive_letter_location(root: Path) -> Path:
    return write_external(root / "m", location="C:/weights.bin")


def symlinked_file(root: Path) -> Path:
    """The data file is a symlink, even though it points inside the model's folder."""
    path = write_external(root / "m")
    (path.parent / "weights.bin").rename(path.parent / "real.bin")
    _symlink("real.bin", path.parent / "weights.bin")
    return path


def symlinked_parent(root: Path) -> Path:
    """A folder on the way to the data is a symlink (to a folder inside the model's folder)."""
    path = write_external(root / "m", location="data/weights.bin")
    (path.parent / "real").mkdir()
    (path.parent / "weights.bin").rename(path.parent / "real" / "weights.bin")
    _symlink("real", path.parent / "data")
    return path


def symlink_escaping(root: Path) -> Path:
    (root / "outside").mkdir()
    path = write_external(root / "m")
    (path.parent / "weights.bin").rename(root / "outside" / "weights.bin")
    _symlink(root / "outside" / "weights.bin", path.parent / "weights.bin")
    return path


def hardlinked_file(root: Path) -> Path:
    path = write_external(root / "m")
    try:
        os.link(path.parent / "weights.bin", root / "elsewhere.bin")
    except OSError as exc:
        pytest.skip(f"hardlinks unavailable here: {exc}")
    return path


def missing_data_file(root: Path) -> Path:
    path = write_external(root / "m")
    (path.parent / "weights.bin").unlink()
    return path


def data_is_a_directory(root: Path) -> Path:
    path = write_external(root / "m")
    (path.parent / "weights.bin").unlink()
    (path.parent / "weights.bin").mkdir()
    return path


def location_is_the_model(root: Path) -> Path:
    return write_external(root / "m", location="model.onnx", offset="0", length="432")


def offset_beyond_file(root: Path) -> Path:
    return write_external(root / "m", offset=str(10**9))


def length_beyond_file(root: Path) -> Path:
    """offset + length runs past the end of the data file (a truncated or forged data file)."""
    path = write_external(root / "m")
    data = (path.parent / "weights.bin").read_bytes()
    (path.parent / "weights.bin").write_bytes(data[: len(data) // 2])
    return path


def length_mismatch(root: Path) -> Path:
    return write_external(root / "m", length="8")


def negative_offset(root: Path) -> Path:
    return write_external(root / "m", offset="-4")


def basepath_key(root: Path) -> Path:
    return write_external(root / "m", basepath="/etc")


def unknown_key(root: Path) -> Path:
    return write_external(root / "m", mmap_from="/dev/mem")


def empty_location(root: Path) -> Path:
    return write_external(root / "m", location="")


def non_ascii_offset(root: Path) -> Path:
    """'٠' (ARABIC-INDIC DIGIT ZERO): Python's int() reads 0, ONNX Runtime cannot parse it."""
    return write_external(root / "m", offset="\u0660")


def signed_length(root: Path) -> Path:
    return write_external(root / "m", length="+432")


def _with_training_info(root: Path, graph_field: str, location: str) -> Path:
    """A valid model plus training_info whose ``graph_field`` graph holds an external tensor at ``location``."""
    root.mkdir(parents=True, exist_ok=True)
    model = tiny_model()
    tensor = helper.make_tensor("lr", TensorProto.FLOAT, [1], [0.0])
    tensor.ClearField("float_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "4")):
        tensor.external_data.add(key=key, value=value)
    graph = helper.make_graph([], graph_field, [], [helper.make_tensor_value_info("lr", TensorProto.FLOAT, [1])], [tensor])
    info = model.training_info.add()
    getattr(info, graph_field).CopyFrom(graph)
    (root / "model.onnx").write_bytes(model.SerializeToString())
    return root / "model.onnx"


def training_info_dotdot(root: Path) -> Path:
    return _with_training_info(root / "m", "initialization", "../../../../etc/passwd")


def training_info_absolute(root: Path) -> Path:
    return _with_training_info(root / "m", "algorithm", "/etc/passwd")


def function_constant_dotdot(root: Path) -> Path:
    """A tensor in a Constant node of a local function (ModelProto.functions)."""
    root.mkdir(parents=True, exist_ok=True)
    model = tiny_model()
    tensor = helper.make_tensor("c", TensorProto.FLOAT, [1], [0.0])
    tensor.ClearField("float_data")
    tensor.data_location = TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value="../secret.bin")
    model.functions.append(helper.make_function(
        "local", "F", [], ["c"], [helper.make_node("Constant", [], ["c"], value=tensor)],
        opset_imports=[helper.make_opsetid("", 18)]))
    (root / "model.onnx").write_bytes(model.SerializeToString())
    return root / "model.onnx"


HOSTILE: dict[str, tuple[Callable[[Path], Path], str]] = {
    # the path itself
    "missing-path": (missing_path, r"No such file"),
    "directory": (directory, r"is a directory"),
    "fifo": (fifo, r"not a regular file"),
    # not ONNX at all
    "empty": (empty_file, r"is empty"),
    "random-bytes": (random_bytes, r"is not an ONNX model"),
    "text": (text_file, r"is a text file, not an ONNX model"),
    "zip": (zip_archive, r"is a zip archive"),
    "pickle": (pickle_file, r"is a Python pickle"),
    "gigantic": (gigantic_file, r"cannot exceed 2 GiB"),
    # ONNX, but broken
    "truncated": (truncated_file, r"is truncated in field 'graph'"),
    "checker": (checker_failure, r"fails the ONNX checker"),
    "shape-inference": (shape_inference_failure, r"fails ONNX shape inference"),
    # external data that escapes or lies
    "dotdot": (dotdot_location, r"escapes the model's folder"),
    "absolute": (absolute_location, r"absolute path"),
    "backslash": (backslash_location, r"backslash"),
    "drive-letter": (drive_letter_location, r"drive letter"),
    "symlink-file": (symlinked_file, r"symlink"),
    "symlink-parent": (symlinked_parent, r"symlink.*parent 'data'"),
    "symlink-escaping": (symlink_escaping, r"symlink"),
    "hardlink": (hardlinked_file, r"hardlink"),
    "missing-data": (missing_data_file, r"is missing"),
    "data-is-directory": (data_is_a_directory, r"not a regular file"),
    "data-is-model": (location_is_the_model, r"model file itself"),
    "offset-beyond-end": (offset_beyond_file, r"beyond the end"),
    "length-beyond-end": (length_beyond_file, r"beyond the end"),
    "length-mismatch": (length_mismatch, r"declares length 8"),
    "negative-offset": (negative_offset, r"negative offset"),
    "basepath": (basepath_key, r"sets 'basepath'"),
    "unknown-key": (unknown_key, r"unknown keys.*mmap_from"),
    "empty-location": (empty_location, r"empty location"),
    "non-ascii-offset": (non_ascii_offset, r"offset that is not a non-negative integer in ASCII digits"),
    "signed-length": (signed_length, r"length that is not a non-negative integer in ASCII digits"),
    # every tensor the format can hold is walked, not only the graph's
    "training-info-dotdot": (training_info_dotdot, r"tensor 'lr'.*escapes the model's folder.*etc/passwd"),
    "training-info-absolute": (training_info_absolute, r"tensor 'lr'.*absolute path"),
    "function-constant": (function_constant_dotdot, r"tensor 'c'.*escapes the model's folder"),
}


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every entry under root with its size and mtime: what 'nothing was written' compares."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            out[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.mark.parametrize("factory, problem", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_file_is_refused_and_nothing_is_written(tmp_path, monkeypatch, factory, problem):
    root = tmp_path / "given"
    root.mkdir()
    target = tmp_path / "store"
    target.mkdir()
    path = factory(root)
    before, before_target = _snapshot(root), _snapshot(target)
    monkeypatch.chdir(target)  # a gate that writes to the working directory would show up here

    with pytest.raises(InvalidModelFile, match=problem) as info:
        check_model_file(path)

    assert str(path) in info.value.message, "the message must name the file"
    assert info.value.hint, "every refusal carries a hint naming the fix"
    assert _snapshot(root) == before
    assert _snapshot(target) == before_target == {}


def test_the_same_factories_without_the_attack_pass(tmp_path):
    """The hostile cases differ from a valid model only in the attack."""
    inline = check_model_file(write_inline(tmp_path / "inline"))
    external = check_model_file(write_external(tmp_path / "external"))
    nested = check_model_file(write_external(tmp_path / "nested", location="./weights.bin"))
    assert inline.external_files == ()
    assert external.external_files == ("weights.bin",)
    assert nested.external_files == ("weights.bin",)


# ---------------------------------------------------------------------------------------------
# Check-then-copy races: the store copies the very file that was checked, or nothing.
# Deterministic version of a rename loop: the folder is swapped right after the registry's checks
# and inspection, before the store copies the data.


def _data_in_sub(root: Path) -> tuple[Path, bytes]:
    (root / "m" / "sub").mkdir(parents=True)
    path = root / "m" / "model.onnx"
    onnx.save_model(tiny_model(), str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="sub/weights.bin", size_threshold=0)
    data = (path.parent / "sub" / "weights.bin").read_bytes()
    return path, bytes(reversed(data))  # same size, other bytes: what an attacker would plant


def _swap_after_inspection(monkeypatch, swap: Callable[[], None]) -> None:
    import zoo.onnx

    inspect = zoo.onnx.inspect

    def inspect_then_swap(*args, **kwargs):
        facts = inspect(*args, **kwargs)
        swap()
        return facts

    monkeypatch.setattr(zoo.onnx, "inspect", inspect_then_swap)


def _stored_bytes(store: Path) -> list[bytes]:
    return [p.read_bytes() for p in store.rglob("*") if p.is_file() and not p.is_symlink()]


@pytest.mark.parametrize("target", ["outside", "inside"])
def test_a_parent_folder_swapped_for_a_symlink_is_not_followed_by_the_copy(tmp_path, monkeypatch, target):
    from zoo import open_registry

    path, planted = _data_in_sub(tmp_path / "given")
    decoy = tmp_path / "outside" if target == "outside" else path.parent / "decoy"
    decoy.mkdir()
    (decoy / "weights.bin").write_bytes(planted)

    def swap() -> None:
        (path.parent / "sub").rename(path.parent / "sub.checked")
        _symlink(decoy, path.parent / "sub")

    _swap_after_inspection(monkeypatch, swap)
    registry = open_registry(tmp_path / "store")
    with pytest.raises(InvalidModelFile, match=r"symlink \(its parent 'sub' is a symbolic link\)") as info:
        registry.register(path, name="m")
    assert str(path) in info.value.message and info.value.hint
    # the parent-folder swap refusal names the tensor where the tensor name belongs, and the file as received
    assert "of tensor 'sub/weights.bin'" not in info.value.message and info.value.message.endswith("'sub/weights.bin'")
    assert registry.list() == []
    assert planted not in _stored_bytes(tmp_path / "store")


def test_a_data_file_replaced_after_the_check_is_not_copied(tmp_path, monkeypatch):
    """A real folder (no link anywhere) with another file of the same size: the identity check refuses it."""
    from zoo import open_registry

    path, planted = _data_in_sub(tmp_path / "given")

    def swap() -> None:
        (path.parent / "sub").rename(path.parent / "sub.checked")
        (path.parent / "sub").mkdir()
        (path.parent / "sub" / "weights.bin").write_bytes(planted)

    _swap_after_inspection(monkeypatch, swap)
    registry = open_registry(tmp_path / "store")
    with pytest.raises(InvalidModelFile, match=r"Expected external-data file 'sub/weights.bin' .* to be the file that "
                                               r"was checked .*Received: device"):
        registry.register(path, name="m")
    assert registry.list() == []
    assert planted not in _stored_bytes(tmp_path / "store")


def test_data_in_a_subfolder_is_stored_when_nothing_moves(tmp_path):
    from zoo import open_registry

    path, _ = _data_in_sub(tmp_path / "given")
    registry = open_registry(tmp_path / "store")
    version = registry.register(path, name="m").version
    stored = registry.path(version).parent / "sub" / "weights.bin"
    assert stored.read_bytes() == (path.parent / "sub" / "weights.bin").read_bytes()


def test_deeply_nested_transform_metadata_is_a_bad_file_not_exit_70(tmp_path):
    """`zoo.transform` JSON nested 100,000 deep once raised RecursionError (exit 70): now exit 2 naming the file."""
    from click.testing import CliRunner

    from conftest import make_tiny_onnx
    from zoo.cli import main

    path = make_tiny_onnx(tmp_path / "m.onnx")
    model = onnx.load(str(path))
    model.metadata_props.add(key="zoo.transform", value="[" * 100_000 + "]" * 100_000)
    onnx.save(model, str(path))
    out = CliRunner().invoke(main, ["--store", str(tmp_path / "s"), "register", str(path), "--name", "m"])
    assert out.exit_code == 2 and "zoo.transform" in out.output and str(path) in out.output, out.output
