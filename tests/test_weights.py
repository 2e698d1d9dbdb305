"""Weight files as hostile input: only tensors get in, nothing executes, every mismatch is named.

Covers the canonical format (safetensors round trip, reproducible bytes and sha256), ``.pth`` read
with ``torch.load(weights_only=True)`` (a pickle that would run code is refused and does not run),
refused formats, missing / unexpected / mis-shaped tensors, the seeded random canonical weights,
and ``zoo weights import`` recording the file's sha256 on every version it registers.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from zoo import weights as W
from zoo.errors import InvalidWeights

needs_torch = pytest.mark.torch  # markers only: the dev install has both plugins, a broken one fails
needs_tf = pytest.mark.tensorflow

# A miniature torchvision-style layout: a stem, one residual block, a classifier.
SHAPES = {
    "conv1.weight": (8, 3, 3, 3),
    "bn1.weight": (8,), "bn1.bias": (8,), "bn1.running_mean": (8,), "bn1.running_var": (8,),
    "layer1.0.conv1.weight": (8, 8, 3, 3),
    "layer1.0.bn1.weight": (8,), "layer1.0.bn1.bias": (8,), "layer1.0.bn1.running_mean": (8,), "layer1.0.bn1.running_var": (8,),
    "layer1.0.conv2.weight": (8, 8, 3, 3),
    "layer1.0.bn2.weight": (8,), "layer1.0.bn2.bias": (8,), "layer1.0.bn2.running_mean": (8,), "layer1.0.bn2.running_var": (8,),
    "fc.weight": (10, 8), "fc.bias": (10,),
}


def _state(seed: int = 0) -> dict[str, np.ndarray]:
    return W.random_canonical_weights(SHAPES, seed=seed)


class Payload:
    """Unpickling this calls ``open(marker, "w")``: a file appears iff the pickle's code ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


# --------------------------------------------------------------------------- safetensors


def test_safetensors_round_trip_is_exact_and_hashes_the_file(tmp_path):
    state = _state()
    meta = {"arch": "mini", "seed": 0, "num_classes": 10, "note": "x"}
    path = tmp_path / "w.safetensors"
    sha = W.save_weights(state, path, metadata=meta)
    loaded, loaded_sha = W.load_weights(path)
    assert sha == loaded_sha == W.file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    assert W.state_sha256(state, metadata=meta) == sha, "the sha is computable without writing the file"
    assert set(loaded) == set(state)
    for k in state:
        assert loaded[k].dtype == np.float32 and loaded[k].shape == state[k].shape
        np.testing.assert_array_equal(loaded[k], state[k])
    assert W.read_metadata(path) == meta


def test_canonical_bytes_are_reproducible_across_processes(tmp_path):
    """safetensors writes metadata from a hash map; zoo's one-key header keeps the sha stable."""
    script = (
        "import sys; from zoo import weights as W\n"
        "shapes = {'a.weight': (4, 3, 3, 3), 'a.bias': (4,), 'fc.weight': (2, 4)}\n"
        "state = W.random_canonical_weights(shapes, seed=7)\n"
        "print(W.save_weights(state, sys.argv[1], metadata={'z': 1, 'a': 2, 'm': 3, 'arch': 'x', 'seed': 7}))\n"
    )
    shas = set()
    for i, hash_seed in enumerate(("1", "2", "3")):
        out = subprocess.run([sys.executable, "-c", script, str(tmp_path / f"{i}.safetensors")], capture_output=True,
                             text=True, check=True, env={**_env(), "PYTHONHASHSEED": hash_seed})
        shas.add(out.stdout.strip())
    assert len(shas) == 1


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}


def test_save_refuses_other_suffixes(tmp_path):
    with pytest.raises(InvalidWeights, match=r"\.safetensors"):
        W.save_weights(_state(), tmp_path / "w.pth")


def test_corrupt_safetensors_is_refused(tmp_path):
    path = tmp_path / "w.safetensors"
    W.save_weights(_state(), path)
    path.write_bytes(path.read_bytes()[:200])  # truncated
    with pytest.raises(InvalidWeights, match="w.safetensors"):
        W.load_weights(path)


def test_pickle_named_safetensors_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps({"w": Payload(marker)}))
    with pytest.raises(InvalidWeights, match="evil.safetensors"):
        W.load_weights(path)
    assert not marker.exists()


def test_integer_tensors_are_refused(tmp_path):
    from safetensors.numpy import save_file

    path = tmp_path / "ints.safetensors"
    save_file({"conv.weight": np.ones((2, 2), np.float32), "index": np.arange(3)}, str(path))
    with pytest.raises(InvalidWeights, match="index"):
        W.load_weights(path)


# --------------------------------------------------------------------------- refused formats


@pytest.mark.parametrize("suffix", [".pkl", ".pickle", ".h5", ".npz", ".onnx", ".bin", ".ckpt", ""])
def test_unsupported_formats_are_refused_before_reading(tmp_path, suffix):
    marker = tmp_path / "pwned"
    path = tmp_path / f"weights{suffix}"
    path.write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(InvalidWeights) as err:
        W.load_weights(path)
    assert str(path) in err.value.message and "Allowed formats" in err.value.message
    assert not marker.exists()


def test_native_formats_are_read_by_the_plugin_that_claims_them():
    """The core reads safetensors only; .pth/.keras come from the plugins' weight_formats hook, named nowhere in zoo.weights."""
    from zoo.plugins import weight_formats

    claims = weight_formats()
    assert claims[".pth"][0] == claims[".pt"][0] == "torch" and "weights_only=True" in claims[".pth"][1]
    assert claims[".keras"][0] == "tensorflow" and "safe_mode" in claims[".keras"][1]
    assert all(suffix in W.allowed_formats() for suffix in (".safetensors", ".pth", ".keras"))
    package = Path(W.__file__).parent
    for module in package.glob("*.py"):
        code = module.read_text(encoding="utf-8")
        assert not re.search(r"^\s*(import|from) (torch|tensorflow|keras)\b", code, re.M), module.name
        assert not re.search(r"get_plugin\([\'\"]", code), f"{module.name} names a plugin"


def test_missing_file_is_named(tmp_path):
    with pytest.raises(InvalidWeights, match="nope.safetensors"):
        W.load_weights(tmp_path / "nope.safetensors")


# --------------------------------------------------------------------------- .pth


@needs_torch
@pytest.mark.parametrize("wrap", ["plain", "state_dict", "model", "module-prefix"])
def test_pth_is_read_with_weights_only(tmp_path, wrap):
    import torch

    state = _state()
    tensors = {k: torch.from_numpy(v.copy()) for k, v in state.items()}
    tensors["bn1.num_batches_tracked"] = torch.tensor(5)  # torchvision checkpoints carry it
    tensors["fc.bias"] = tensors["fc.bias"].half()  # fp16 checkpoints are widened to float32
    if wrap == "state_dict":
        obj = {"state_dict": tensors, "epoch": 3}
    elif wrap == "model":
        obj = {"model": tensors}
    elif wrap == "module-prefix":
        obj = {f"module.{k}": v for k, v in tensors.items()}
    else:
        obj = tensors
    path = tmp_path / "w.pth"
    torch.save(obj, path)
    loaded, sha = W.load_weights(path)
    assert sha == W.file_sha256(path)
    assert set(loaded) == set(state), "num_batches_tracked is dropped, wrappers and prefixes removed"
    np.testing.assert_array_equal(loaded["conv1.weight"], state["conv1.weight"])
    assert loaded["fc.bias"].dtype == np.float32
    np.testing.assert_allclose(loaded["fc.bias"], state["fc.bias"], rtol=1e-3, atol=1e-3)


@needs_torch
@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("writer", ["torch.save", "pickle"])
def test_malicious_pth_is_refused_and_does_not_run(tmp_path, writer):
    import torch

    # The payload is live: a plain unpickle runs it.
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(Payload(probe)))
    assert probe.exists()

    marker = tmp_path / "pwned"
    obj = {"conv1.weight": torch.zeros(2, 3, 3, 3), "evil": Payload(marker)}
    path = tmp_path / "evil.pth"
    if writer == "torch.save":
        torch.save(obj, path)  # zip format, what torch.save writes
    else:
        path.write_bytes(pickle.dumps(obj))  # legacy: a bare pickle
    with pytest.raises(InvalidWeights) as err:
        W.load_weights(path)
    assert "evil.pth" in err.value.message and "weights_only" in err.value.message
    assert not marker.exists(), "the pickle's code ran"


@needs_torch
def test_pth_with_non_tensor_values_lists_them(tmp_path):
    import torch

    path = tmp_path / "mixed.pth"
    torch.save({"conv1.weight": torch.zeros(2, 3, 3, 3), "lr": 0.1, "name": "resnet"}, path)
    with pytest.raises(InvalidWeights) as err:
        W.load_weights(path)
    assert "'lr'" in err.value.message and "'name'" in err.value.message


@needs_torch
def test_pth_holding_a_list_is_refused(tmp_path):
    import torch

    path = tmp_path / "list.pth"
    torch.save([torch.zeros(2)], path)
    with pytest.raises(InvalidWeights, match="not a state dict"):
        W.load_weights(path)


@needs_tf
def test_keras_file_with_code_is_refused_by_safe_mode(tmp_path):
    """A .keras archive can carry a Lambda layer's bytecode; safe_mode refuses it and nothing runs."""
    import keras

    marker = tmp_path / "pwned"
    inputs = keras.Input((4,))
    touch = eval(f"lambda x: (open({str(marker)!r}, 'w').close(), x)[1]")  # no closure: Keras marshals its bytecode
    outputs = keras.layers.Lambda(touch)(inputs)
    path = tmp_path / "evil.keras"
    keras.Model(inputs, outputs).save(path)
    marker.unlink()  # building the model ran the lambda once; loading must not run it again
    with pytest.raises(InvalidWeights, match="evil.keras"):
        W.load_weights(path)
    assert not marker.exists()
    keras.saving.load_model(path, safe_mode=False)  # the payload is live: an unsafe load runs it
    assert marker.exists()


# --------------------------------------------------------------------------- fitting an architecture


def test_check_state_lists_missing_unexpected_and_misshaped():
    state = _state()
    del state["layer1.0.bn2.running_var"]
    state["layer9.weight"] = np.zeros((1,), np.float32)
    state["fc.weight"] = np.zeros((10, 9), np.float32)
    with pytest.raises(InvalidWeights) as err:
        W.check_state(state, SHAPES, source="w.safetensors", what="mini")
    msg = err.value.message
    assert "1 missing: layer1.0.bn2.running_var" in msg
    assert "1 unexpected: layer9.weight" in msg
    assert "1 mis-shaped: fc.weight: expected (10, 8), got (10, 9)" in msg
    W.check_state(_state(), SHAPES)  # a fitting state passes silently


def test_infer_num_classes_reads_the_classifier():
    shapes_1000 = {**SHAPES, "fc.weight": (1000, 8), "fc.bias": (1000,)}
    assert W.infer_num_classes(_state(), shapes_1000, assumed=1000) == 10
    assert W.infer_num_classes(W.random_canonical_weights(shapes_1000, seed=0), shapes_1000, assumed=1000) == 1000
    odd = {**_state(), "conv1.weight": np.zeros((8, 3, 5, 5), np.float32)}
    assert W.infer_num_classes(odd, shapes_1000, assumed=1000) is None


# --------------------------------------------------------------------------- random canonical weights


def test_random_canonical_weights_are_seeded_and_order_independent():
    a = W.random_canonical_weights(SHAPES, seed=3)
    b = W.random_canonical_weights(dict(reversed(list(SHAPES.items()))), seed=3)
    c = W.random_canonical_weights(SHAPES, seed=4)
    assert set(a) == set(SHAPES)
    for k in SHAPES:
        assert a[k].dtype == np.float32 and a[k].shape == SHAPES[k]
        np.testing.assert_array_equal(a[k], b[k])
        assert not np.array_equal(a[k], c[k])
    assert W.state_sha256(a) == W.state_sha256(b) != W.state_sha256(c)


def test_random_canonical_weights_exercise_batchnorm_and_keep_scale():
    s = W.random_canonical_weights(SHAPES, seed=0)
    for bn in ("bn1", "layer1.0.bn1", "layer1.0.bn2"):
        var, mean = s[f"{bn}.running_var"], s[f"{bn}.running_mean"]
        assert np.all((var >= 0.5) & (var <= 2.0)) and np.std(var) > 0.1, "running_var is random and positive"
        assert np.any(mean != 0), "running_mean is not left at zero"
    assert np.all((s["layer1.0.bn1.weight"] >= 0.5) & (s["layer1.0.bn1.weight"] <= 1.5))
    assert np.all(s["layer1.0.bn2.weight"] <= 0.3), "the last BN of a residual branch is scaled down"
    w = s["layer1.0.conv1.weight"]
    np.testing.assert_allclose(w.reshape(8, -1).mean(axis=1), 0, atol=1e-6)  # zero-mean filters
    assert 0.5 < w.std() * np.sqrt(8 * 9 / W.RELU_GAIN) < 1.5


@needs_torch
def test_random_weights_keep_resnet152_logits_order_one():
    """Through 50 residual blocks the logits stay O(1) and depend on the input (a real top-1 test)."""
    from zoo.metrics import verification_batch
    from zoo.plugins import get_plugin

    plugin = get_plugin("torch")
    model = plugin.build("resnet152", num_classes=10, seed=0)
    state = W.random_canonical_weights(W.shapes_of(plugin.state_dict(model)), seed=0)
    assert W.shapes_of(state) == W.shapes_of(plugin.state_dict(model))
    plugin.load_state_dict(model, state)
    logits = plugin.predict(model, verification_batch(64, batch=8, seed=0))
    assert np.all(np.isfinite(logits))
    assert 0.3 < float(np.std(logits)) < 10.0
    per_sample = float(np.std(logits - logits.mean(axis=0)))
    assert per_sample > 0.25 * float(np.std(logits)), "logits vary with the image, not only a shared offset"
    assert len(set(np.argmax(logits, axis=1))) > 1


# --------------------------------------------------------------------------- zoo weights import / export


@needs_torch
def test_weights_import_records_the_files_sha256(tmp_path):
    from zoo import open_registry
    from zoo.cli import main

    store = tmp_path / "store"
    runner = CliRunner()
    weights = tmp_path / "tiny.safetensors"
    out = runner.invoke(main, ["--store", str(store), "weights", "export", "resnet18", "--framework", "torch",
                               "--num-classes", "10", "--seed", "1", "-o", str(weights)])
    assert out.exit_code == 0, out.output
    sha = W.file_sha256(weights)
    out = runner.invoke(main, ["--store", str(store), "weights", "import", "resnet18", str(weights), "--framework", "torch",
                               "--input-size", "32", "--json"])
    assert out.exit_code == 0, out.output
    (row,) = json.loads(out.stdout)
    assert row["created"] and row["weights_sha256"] == sha and row["verify_error"] <= 1e-4
    v = open_registry(store).resolve(f"resnet18@{row['version']['version']}")
    assert v.provenance["weights_sha256"] == sha
    assert v.num_classes == 10, "the class count is read from the classifier's shape"
    assert v.framework == "torch" and v.arch == "resnet18"


@needs_torch
def test_weights_import_lists_misfits_and_registers_nothing(tmp_path):
    from zoo.cli import main
    from zoo.plugins import get_plugin

    plugin_shapes = W.expected_shapes(get_plugin("torch"), "resnet18", num_classes=10)
    state = W.random_canonical_weights(plugin_shapes, seed=0)
    del state["layer2.0.downsample.1.running_var"]
    state["layer1.0.conv1.weight"] = state["layer1.0.conv1.weight"][:, :32]
    state["head.extra"] = np.zeros(3, np.float32)
    path = tmp_path / "bad.safetensors"
    W.save_weights(state, path)
    store = tmp_path / "store"
    out = CliRunner().invoke(main, ["--store", str(store), "weights", "import", "resnet18", str(path), "--framework", "torch",
                                    "--num-classes", "10", "--input-size", "32"])
    assert out.exit_code == 2, out.output
    assert "layer2.0.downsample.1.running_var" in out.output and "head.extra" in out.output
    assert "layer1.0.conv1.weight" in out.output and "mis-shaped" in out.output
    assert not store.exists()  # nothing registered: the store was not even created


@needs_torch
def test_googlenet_file_import_makes_transform_input_explicit(tmp_path):
    """A GoogLeNet checkpoint file does not say whether it expects transform_input: the import refuses to guess,
    and each explicit choice reproduces torchvision's forward with that setting (recorded, shown by `zoo show`)."""
    from zoo import open_registry
    from zoo.architectures import TRANSFORM_INPUT_OFFSET, TRANSFORM_INPUT_SCALE
    from zoo.cli import main
    from zoo.metrics import verification_batch
    from zoo.plugins import get_plugin

    torch_plugin = get_plugin("torch")
    model = torch_plugin.build("googlenet", num_classes=10, seed=0, aux_logits=False)
    state = W.random_canonical_weights(W.shapes_of(torch_plugin.state_dict(model)), seed=0)
    torch_plugin.load_state_dict(model, state)
    path = tmp_path / "googlenet.safetensors"
    W.save_weights(state, path)
    store, runner = tmp_path / "store", CliRunner()
    base = ["--store", str(store), "weights", "import", "googlenet", str(path), "-f", "torch", "--input-size", "32"]
    out = runner.invoke(main, base)
    assert out.exit_code == 2 and "--transform-input or --no-transform-input" in out.output, out.output
    assert "IMAGENET1K_V1" in out.output and not store.exists()
    out = runner.invoke(main, [*base[:4], "resnet18", *base[5:], "--transform-input"])
    assert out.exit_code == 2 and "only with a GoogLeNet" in out.output, out.output
    batch = verification_batch(32, batch=2, seed=1)
    scale, offset = (np.array(c, np.float32)[:, None, None] for c in (TRANSFORM_INPUT_SCALE, TRANSFORM_INPUT_OFFSET))
    registry = open_registry(store)
    out = runner.invoke(main, [*base, "--transform-input", "--json"])  # torchvision's pretrained file: on
    assert out.exit_code == 0, out.output
    expected = torch_plugin.predict(model, (batch * scale + offset).astype(np.float32))  # the affine, then the network
    version = registry.resolve("googlenet")
    assert version.provenance["build_options"]["transform_input"] is True
    np.testing.assert_allclose(registry.load(version).predict(batch), expected, atol=1e-4 * np.abs(expected).max())
    shown = runner.invoke(main, ["--store", str(store), "show", version.ref])
    assert "'transform_input': True" in shown.output
    # off: the build the import plans for --no-transform-input is torchvision's forward without the affine
    plan = W.plan_import(torch_plugin, "googlenet", state, build_options={"transform_input": False})
    off = torch_plugin.build("googlenet", num_classes=plan.num_classes, **plan.build_options)
    torch_plugin.load_state_dict(off, plan.state)
    np.testing.assert_allclose(torch_plugin.predict(off, batch), torch_plugin.predict(model, batch), rtol=1e-6, atol=1e-7)
    other = torch_plugin.predict(model, (batch * scale + offset).astype(np.float32))
    assert np.abs(other - torch_plugin.predict(model, batch)).max() > 1e-2 * np.abs(other).max(), "the two settings differ"


# --------------------------------------------------------------------------- hostile weight files (issue 18)


@pytest.mark.parametrize("bad", [np.nan, np.inf, 1e300])
def test_nan_or_inf_weights_are_bad_input_naming_the_tensor(tmp_path, bad):
    from zoo.cli import main

    state = _state()
    name = sorted(state)[0]
    state = {k: v.astype(np.float64) for k, v in state.items()}  # 1e300 overflows float32 to inf
    state[name].flat[0] = bad
    from safetensors.numpy import save_file

    path = tmp_path / "bad.safetensors"
    save_file(state, str(path))
    with pytest.raises(InvalidWeights, match=rf"NaN or infinite values .* {re.escape(name)} \(1 of "):
        W.load_weights(path)
    out = CliRunner().invoke(main, ["--store", str(tmp_path / "s"), "weights", "import", "resnet18", str(path)])
    assert out.exit_code == 2 and name in out.output and "report it" not in out.output, out.output


def test_weights_import_names_the_real_fault(tmp_path):
    from zoo.cli import main
    from zoo.plugins import get_plugin

    state = W.random_canonical_weights(W.expected_shapes(get_plugin("torch"), "resnet18", num_classes=1000), seed=0)
    state["conv1.weight"] = state["conv1.weight"][:, :1]  # a one-channel stem: nothing to do with classes
    path = tmp_path / "gray.safetensors"
    W.save_weights(state, path)
    out = CliRunner().invoke(main, ["--store", str(tmp_path / "s"), "weights", "import", "resnet18", str(path), "-f", "torch"])
    assert out.exit_code == 2 and "conv1.weight" in out.output and "classes" not in out.output.split("hint")[0], out.output
    fifo = tmp_path / "fifo.safetensors"
    os.mkfifo(fifo)
    for given, kind in (("/dev/zero", "a device"), (str(fifo), "a FIFO"), (str(tmp_path), "a folder")):
        with pytest.raises(InvalidWeights, match=f"which is {kind}"):
            W.load_weights(given)
    with pytest.raises(InvalidWeights, match="not found"):
        W.load_weights(tmp_path / "missing.safetensors")


def test_weights_export_into_a_missing_folder_or_over_a_dangling_symlink(tmp_path):
    from zoo.cli import main

    runner = CliRunner()
    base = ["--store", str(tmp_path / "s"), "weights", "export", "resnet18", "-f", "torch", "--num-classes", "10"]
    out = runner.invoke(main, [*base, "-o", str(tmp_path / "missing" / "dir" / "x.safetensors")])
    assert out.exit_code == 2 and "existing folder" in out.output, out.output
    assert not (tmp_path / "missing").exists()
    link = tmp_path / "link.safetensors"
    link.symlink_to(tmp_path / "nowhere")
    out = runner.invoke(main, [*base, "-o", str(link)])
    assert out.exit_code == 2 and "Refusing to overwrite" in out.output, out.output
    assert link.is_symlink() and not (tmp_path / "nowhere").exists()
