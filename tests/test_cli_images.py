"""Labels and transforms from the command line: `export`/`register` options, `show`, `run --image`.

Most tests use the tiny external ONNX model of conftest (images [batch, 3, 8, 8] -> 10 logits), so
they need no framework; one exports a reference build with PyTorch to check the defaults.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from zoo._eval_options import TransformOptions, export_eval_meta, reference_transform
from zoo.cli import main
from zoo.errors import InvalidInput
from zoo.transforms import Transform

NAMES = ["cat", "dog", "bird", "fish", "frog", "horse", "ship", "truck", "plane", "deer"]


@pytest.fixture
def zoo(tmp_path):
    runner = CliRunner()

    def invoke(*args: str, code: int = 0):
        result = runner.invoke(main, ["--store", str(tmp_path / "store"), *args], catch_exceptions=False)
        assert result.exit_code == code, (result.stdout, result.stderr)
        return result

    return invoke


@pytest.fixture
def labels_file(tmp_path) -> Path:
    path = tmp_path / "classes.txt"
    path.write_text("\n".join(NAMES) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def images(tmp_path) -> list[Path]:
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = []
    for name, size, mode in (("a.jpg", (40, 30), "RGB"), ("b.png", (12, 20), "RGBA"), ("c.png", (9, 9), "L")):
        pixels = rng.integers(0, 256, (size[1], size[0], len(mode)), dtype=np.uint8)
        image = Image.fromarray(pixels[:, :, 0] if mode == "L" else pixels, mode)
        paths.append(tmp_path / name)
        image.save(paths[-1])
    return paths


# --------------------------------------------------------------------------- export / register options


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--labels", "missing.txt"], "'missing.txt' (no such file)"),
        (["--labels", "imagenet-1k"], "Expected 10 class names"),
        (["--labels", "."], "a folder"),
        (["--crop", "32"], "Expected --crop to equal --input-size (64)"),
        (["--resize", "0"], "Expected --resize to be a positive number"),
        (["--mean", "0.5,0.5"], "Expected --mean as three comma-separated"),
        (["--std", "0.2,0.2,0"], "Expected --std as three comma-separated finite numbers R,G,B > 0"),
        (["--mean", "nan,0,0"], "--mean"),
        (["--interpolation", "lanczos"], "lanczos"),
    ],
)
@pytest.mark.parametrize("command", ["export", "register"])
def test_options_are_refused_before_anything_is_built_or_written(zoo, tmp_path, tiny_onnx, monkeypatch, command, args, needle):
    monkeypatch.chdir(tmp_path)
    if command == "register" and args[0] == "--crop":
        args, needle = ["--crop", "32"], "Expected the crop to match the model's fixed input size 8 x 8"
    if command == "export":
        argv = ["export", "resnet18", "--num-classes", "10", "--input-size", "64", *args]
    else:
        argv = ["register", str(tiny_onnx(0)), "--name", "tiny", *args]
    result = zoo(*argv, code=2)
    assert needle in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "store").exists()  # nothing built, nothing written


def test_wrong_count_labels_file_is_refused(zoo, tmp_path, tiny_onnx):
    short = tmp_path / "short.txt"
    short.write_text("a\nb\n", encoding="utf-8")
    result = zoo("register", str(tiny_onnx(0)), "--name", "tiny", "--labels", str(short), code=2)
    assert "Expected 10 class names, one per model output. Received: 2 in 'short'" in result.stderr


def test_register_records_labels_and_transform_and_reads_them_back_from_a_copied_file(zoo, tmp_path, tiny_onnx, labels_file):
    zoo("register", str(tiny_onnx(0)), "--name", "tiny", "--labels", str(labels_file), "--resize", "10",
        "--mean", "0.5,0.5,0.5", "--std", "0.25,0.25,0.25")
    shown = json.loads(zoo("show", "tiny", "--json", "--fields", "all").stdout)
    assert shown["transform"] == Transform(resize=10, crop=(8, 8), mean=(0.5,) * 3, std=(0.25,) * 3).to_dict()
    assert shown["labels"]["name"] == "classes" and shown["labels"]["classes"] == NAMES and shown["labels"]["count"] == 10
    assert shown["transform"]["mean"] == [0.5] * 3 and shown["num_classes"] == 10

    import zoo as zoo_api

    copied = tmp_path / "copied.onnx"
    shutil.copyfile(zoo_api.open_registry(tmp_path / "store").path("tiny"), copied)
    zoo("register", str(copied), "--name", "again")  # no options: the file's zoo.* metadata is read back
    again = json.loads(zoo("show", "again", "--json", "--fields", "all").stdout)
    assert again["transform"] == shown["transform"] and again["labels"] == shown["labels"]

    reversed_file = tmp_path / "reversed.txt"
    reversed_file.write_text("\n".join(reversed(NAMES)), encoding="utf-8")
    zoo("register", str(copied), "--name", "mixed", "--interpolation", "bicubic", "--labels", str(reversed_file))
    mixed = json.loads(zoo("show", "mixed", "--json", "--fields", "all").stdout)
    assert mixed["transform"] == {**shown["transform"], "interpolation": "bicubic"}  # explicit wins, field by field
    assert mixed["labels"]["classes"] == list(reversed(NAMES))


def test_register_refuses_malformed_embedded_metadata(zoo, tmp_path, tiny_onnx):
    import onnx

    model = onnx.load(str(tiny_onnx(0)))
    model.metadata_props.add(key="zoo.transform", value='{"resize": -3}')
    path = tmp_path / "bad.onnx"
    onnx.save_model(model, str(path))
    result = zoo("register", str(path), "--name", "bad", code=2)
    assert "zoo.transform" in result.stderr and "resize" in result.stderr


def test_show_prints_transform_and_labels(zoo, tiny_onnx, labels_file):
    zoo("register", str(tiny_onnx(0)), "--name", "tiny", "--labels", str(labels_file), "--crop", "8")
    out = zoo("show", "tiny").stdout
    from zoo.labels import Labels

    digest = Labels(name="classes", classes=tuple(NAMES)).sha256
    assert "resize 9 (bilinear), crop 8x8" in out
    assert f"classes, 10 classes, sha256 {digest[:12]}: cat, dog, bird, fish, frog, ..." in out
    assert "horse" not in out  # the first few names only; --json has them all


def test_a_record_of_the_old_shape_reads_as_its_transform(zoo, tmp_path, tiny_onnx):
    """A version stored by zoo 0.1 recorded ``preprocessing`` (no transform): it reads as the transform it implies."""
    import sqlite3

    import zoo as zoo_api
    from zoo.records import VersionMeta

    zoo_api.open_registry(tmp_path / "store").register(tiny_onnx(0), name="old", meta=VersionMeta(num_classes=10))
    db = sqlite3.connect(tmp_path / "store" / "registry.db")
    (record,) = db.execute("SELECT record FROM versions WHERE name = 'old'").fetchone()
    old = {**json.loads(record), "transform": None, "preprocessing": {
        "layout": "NCHW", "color": "BGR", "scale": 1 / 255, "mean": [0.5] * 3, "std": [0.25] * 3, "input_size": [8, 8]}}
    with db:  # the store refuses UPDATEs of a version: this test plays an old zoo's database file
        db.execute("DROP TRIGGER versions_immutable")
        db.execute("UPDATE versions SET record = ? WHERE name = 'old'", (json.dumps(old),))
    db.close()
    shown = json.loads(zoo("show", "old", "--json").stdout)
    assert "preprocessing" not in shown and shown["labels"] is None
    assert {k: shown["transform"][k] for k in ("resize", "crop", "channels", "mean", "std")} == {
        "resize": 9, "crop": [8, 8], "channels": "BGR", "mean": [0.5] * 3, "std": [0.25] * 3}
    assert "resize 9 (bilinear), crop 8x8, BGR" in zoo("show", "old").stdout


def test_a_file_with_the_old_preprocessing_metadata_registers_with_its_transform(zoo, tiny_onnx, tmp_path):
    """An artifact copied out of an older store embeds ``zoo.preprocessing`` and no ``zoo.transform``."""
    import onnx

    model = onnx.load(str(tiny_onnx(0)))
    model.metadata_props.add(key="zoo.preprocessing", value=json.dumps({"color": "RGB", "scale": 1 / 255, "mean": [0.5] * 3,
                                                                        "std": [0.25] * 3, "input_size": [8, 8]}))
    onnx.save(model, str(tmp_path / "old.onnx"))
    zoo("register", str(tmp_path / "old.onnx"), "--name", "copied")
    shown = json.loads(zoo("show", "copied", "--json").stdout)
    assert (shown["transform"]["crop"], shown["transform"]["mean"], shown["transform"]["resize"]) == ([8, 8], [0.5] * 3, 9)


# --------------------------------------------------------------------------- run --image


def test_run_images_prints_top_k_with_label_names(zoo, tiny_onnx, labels_file, images):
    zoo("register", str(tiny_onnx(0)), "--name", "tiny", "--labels", str(labels_file))
    rows = json.loads(zoo("run", "tiny", "--image", *map(str, images), "--top-k", "3", "--json").stdout)
    assert [r["image"] for r in rows] == [str(p) for p in images]
    for row in rows:
        assert len(row["top"]) == 3 and all(t["label"] == NAMES[t["class"]] for t in row["top"])
        probs = [t["prob"] for t in row["top"]]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-9

    # the same logits as the transform applied by hand and predict (no transform recorded: the graph's 8 x 8)
    import zoo as zoo_api
    from zoo.transforms import preprocess

    model = zoo_api.load("tiny", store=Path(labels_file).parent / "store", provider="cpu")
    assert model.version.transform is None
    logits = model.predict(preprocess(images, Transform(resize=9, crop=(8, 8))))
    for row, sample in zip(rows, logits, strict=True):
        assert row["top"][0]["class"] == int(np.argmax(sample))
        assert row["top"][0]["logit"] == pytest.approx(float(sample.max()), rel=1e-6)

    table = zoo("run", "tiny", "--image", str(images[0]), "--top-k", "2").stdout
    best = rows[0]["top"][0]
    assert "label" in table and best["label"] in table and str(images[0]) in table


def test_run_images_without_labels_or_transform_gives_class_ids(zoo, tiny_onnx, images, tmp_path):
    zoo("register", str(tiny_onnx(0)), "--name", "ext")
    result = zoo("run", "ext", "--image", str(images[0]), "--json")
    (row,) = json.loads(result.stdout)
    assert all(t["label"] is None for t in row["top"]) and len(row["top"]) == 5
    assert "none recorded" in result.stderr and "crop 8x8" in result.stderr  # the graph's fixed size
    out = tmp_path / "logits.npy"
    zoo("run", "ext", "--image", *map(str, images), "--output", str(out))
    assert np.load(out).shape == (3, 10)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--image"], "at least one image file after --image"),
        (["--image", "IMG", "--random", "1"], "Expected exactly one of --image FILE..., --input FILE.npy and --random N. "
                                              "Received: --image and --random"),
        (["--image", "IMG", "--input", "x.npy"], "Received: --image and --input"),
        (["IMG"], "put --image before them"),
        ([], "Received: none of them"),
        (["--image", "missing.jpg"], "'missing.jpg' (no such file)"),
        (["--image", "."], "(a folder)"),
        (["--image", "NOTIMAGE"], "image"),
        (["--image", "IMG", "--top-k", "0"], "Expected --top-k >= 1"),
    ],
)
def test_run_image_errors_exit_2(zoo, tiny_onnx, images, tmp_path, monkeypatch, args, needle):
    zoo("register", str(tiny_onnx(0)), "--name", "ext")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "not-an-image.jpg").write_bytes(b"this is text, not a JPEG")
    argv = [{"IMG": str(images[0]), "NOTIMAGE": "not-an-image.jpg"}.get(a, a) for a in args]
    result = zoo("run", "ext", *argv, code=2)
    assert needle in result.stderr and "Traceback" not in result.stderr


def test_run_by_digest(zoo, tiny_onnx, images, tmp_path):
    (row,) = [json.loads(zoo("register", str(tiny_onnx(0)), "--name", "ext", "--json").stdout)["version"]]
    zoo("register", str(tiny_onnx(1)), "--name", "ext")
    by_digest = json.loads(zoo("run", f"ext@sha256:{row['sha256'][:12]}", "--image", str(images[0]), "--json").stdout)
    by_number = json.loads(zoo("run", "ext@1", "--image", str(images[0]), "--json").stdout)
    assert by_digest == by_number
    assert "at least 12 hex digits" in zoo("run", f"ext@sha256:{row['sha256'][:6]}", "--random", "1", code=2).stderr


# --------------------------------------------------------------------------- defaults of reference builds


def test_export_defaults():
    transform, labels = export_eval_meta(num_classes=1000, input_size=224)
    assert transform == Transform(resize=256, crop=(224, 224), interpolation="bilinear") == reference_transform(224)
    assert labels is not None and labels.name == "imagenet-1k" and len(labels) == 1000
    transform, labels = export_eval_meta(num_classes=10, input_size=64)
    assert transform == Transform(resize=73, crop=(64, 64)) and labels is None
    options = TransformOptions.parse(resize=80, interpolation="BICUBIC", mean="0.5, 0.5, 0.5")
    transform, _ = export_eval_meta(num_classes=10, input_size=64, transform=options)
    assert (transform.resize, transform.crop, transform.interpolation, transform.mean) == (80, (64, 64), "bicubic", (0.5,) * 3)
    with pytest.raises(InvalidInput, match="--crop to equal --input-size"):
        export_eval_meta(num_classes=10, input_size=64, transform=Transform(crop=(32, 32)))


@pytest.fixture(scope="module")
def reference_export(tmp_path_factory):
    """torch's ResNet-18 exported once with its defaults (1000 classes; 32 px, the smallest size) into an
    embedded store: (the stored file, its version)."""
    from zoo import open_registry
    from zoo._exporting import export_and_register
    from zoo.plugins import get_plugin

    registry = open_registry(tmp_path_factory.mktemp("reference") / "store")
    result = export_and_register(registry, get_plugin("torch"), "resnet18", input_size=32, seed=0)
    return registry.path(result.version), result.version


@pytest.mark.torch
def test_reference_export_records_imagenet_labels_and_the_torchvision_transform(reference_export, backend, store):
    """One export; on each backend, `zoo register` of its file reads labels and transform back and stores them."""
    import onnx

    from conftest import cli_on

    path, exported = reference_export
    cli_on(backend.location)("register", str(path), "--name", "resnet18")
    registered = store.resolve("resnet18@1")
    for v in (exported, registered):
        assert v.labels is not None and v.labels.name == "imagenet-1k" and v.labels[0] == "tench"
        assert v.transform == Transform(resize=36, crop=(32, 32), interpolation="bilinear")
        assert v.input_size == (32, 32)
    props = {p.key: p.value for p in onnx.load(str(store.path(registered)), load_external_data=False).metadata_props}
    assert json.loads(props["zoo.transform"]) == exported.transform.to_dict()
    assert json.loads(props["zoo.labels"])["classes"][:2] == ["tench", "goldfish"]
