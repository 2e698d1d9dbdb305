"""The export check's tolerance is relative to the native model's own float32 rounding noise (measured against
its float64 run on the verification batch, with a floor), is reported beside the error, can be set with --rtol,
and still catches real conversion bugs (errors of order 1). Models get calibrated BatchNorm statistics (random
batches in train mode), as published checkpoints have, not random ones."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from zoo import metrics
from zoo.errors import ExportError, InvalidInput

torch = pytest.importorskip("torch")


def test_tolerance_is_relative_to_float32_noise_within_floor_and_ceiling():
    assert metrics.export_tolerance(None) == metrics.VERIFY_RTOL_FLOOR  # not measurable: the floor
    assert metrics.export_tolerance(1e-7) == metrics.VERIFY_RTOL_FLOOR
    assert metrics.export_tolerance(3.8e-4) == pytest.approx(metrics.NOISE_FACTOR * 3.8e-4)  # ResNet-152's noise
    assert metrics.export_tolerance(0.5) == metrics.VERIFY_RTOL_CEILING  # a broken flatten (1.3) is never tolerated
    assert metrics.export_tolerance(3.8e-4, rtol=1e-6) == 1e-6  # a given rtol wins
    for bad in (0, -1.0, float("nan"), float("inf"), True, "1e-4"):
        with pytest.raises(InvalidInput, match="rtol"):
            metrics.check_rtol(bad)


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory) -> tuple[Path, object]:
    """A resnet18 (10 classes) whose BatchNorm statistics were set by random batches in train mode, saved."""
    from zoo import weights as W
    from zoo.plugins import get_plugin

    plugin = get_plugin("torch")
    torch.manual_seed(0)
    model = plugin.build("resnet18", num_classes=10)
    model.train()
    with torch.no_grad():
        for _ in range(4):
            model(torch.randn(8, 3, 64, 64))
    model.eval()
    path = tmp_path_factory.mktemp("calibrated") / "resnet18.safetensors"
    W.save_weights({k: v.detach().numpy() for k, v in model.state_dict().items()
                    if not k.endswith("num_batches_tracked")}, path)
    return path, model


SIZE = 32  # the cheapest input that runs every resnet18 stage


@pytest.fixture(scope="module")
def imported(calibrated, tmp_path_factory) -> tuple[Path, dict]:
    """The calibrated checkpoint imported once through the CLI: (store, its --json row)."""
    from zoo.cli import main

    store = tmp_path_factory.mktemp("tolerance") / "s"
    out = CliRunner().invoke(main, ["--store", str(store), "weights", "import", "resnet18", str(calibrated[0]), "-f",
                                    "torch", "--input-size", str(SIZE), "--json"])
    assert out.exit_code == 0, out.output
    (row,) = json.loads(out.stdout)
    return store, row


def test_calibrated_import_reports_the_float32_noise_beside_the_error(calibrated, imported):
    from zoo import open_registry

    model, (store, row) = calibrated[1], imported
    verify = open_registry(store).resolve("resnet18").provenance["verify"]
    batch = metrics.verification_batch(SIZE)
    with torch.no_grad():  # the noise, measured here independently: float32 vs float64 of the same model
        fp32 = model(torch.from_numpy(batch)).numpy()
        fp64 = model.double()(torch.from_numpy(batch).double()).numpy()
        model.float()
    assert verify["fp32_noise"] == pytest.approx(metrics.relative_error(fp32, fp64), rel=0.05)
    assert 0 < verify["fp32_noise"] < 1e-4 and verify["rtol"] == metrics.export_tolerance(verify["fp32_noise"])
    assert row["verify_error"] == verify["max_rel_error"] <= verify["rtol"]


def test_export_check_still_catches_a_broken_transpose(calibrated, imported):
    """An exporter that swapped H and W (a broken transpose) disagrees by O(1): refused, with the noise shown."""
    from zoo import open_registry
    from zoo._exporting import _rounding_noise, verify_export
    from zoo.plugins import get_plugin

    model, plugin = calibrated[1], get_plugin("torch")
    onnx_path = open_registry(imported[0]).path("resnet18")
    batch = metrics.verification_batch(SIZE)
    swapped = plugin.predict(model, np.ascontiguousarray(batch.transpose(0, 1, 3, 2)))
    noise = _rounding_noise(plugin, model, batch, plugin.predict(model, batch))
    assert noise is not None and noise < 1e-4
    with pytest.raises(ExportError, match=r"max relative error \d.* rounding noise on this batch, vs float64: "):
        verify_export(onnx_path, batch, swapped, what="Exported 'resnet18'", plugin="torch", rtol=None, noise=noise,
                      hint="")


def test_rtol_option_on_weights_import_and_export(calibrated, tmp_path):
    from zoo.cli import main

    runner = CliRunner()
    for command in (["weights", "import", "resnet18", str(calibrated[0])], ["export", "resnet18", "--num-classes", "10"]):
        out = runner.invoke(main, ["--store", str(tmp_path / "s"), *command, "-f", "torch", "--rtol", "0"])
        assert out.exit_code == 2 and "positive" in out.output, out.output
    out = runner.invoke(main, ["--store", str(tmp_path / "s"), "weights", "import", "resnet18", str(calibrated[0]),
                               "-f", "torch", "--input-size", str(SIZE), "--rtol", "1e-12"])  # stricter than float32
    assert out.exit_code == 8 and "> 1e-12" in out.output, out.output
    assert not (tmp_path / "s").exists()  # nothing registered


@pytest.mark.tensorflow
def test_both_plugins_float64_runs_agree_so_the_noise_is_the_models(calibrated):
    """The fp64 native run (the noise reference) exists in both plugins and computes the same function: the
    TensorFlow build's float64 logits equal PyTorch's to ~1e-12, so each framework's noise is measured
    against the same exact answer."""
    from zoo.plugins import get_plugin, native_runner

    model, tp, tf = calibrated[1], get_plugin("torch"), get_plugin("tensorflow")
    keras_model = tf.build("resnet18", num_classes=10)
    tf.load_state_dict(keras_model, tp.state_dict(model))
    batch = metrics.verification_batch(SIZE)
    torch64 = native_runner(tp, model, precision="fp64")(batch)
    keras64 = native_runner(tf, keras_model, precision="fp64")(batch)
    assert torch64.dtype == keras64.dtype == np.float64
    assert metrics.relative_error(keras64, torch64) < 1e-10
    assert 0 < metrics.rounding_noise(tf.predict(keras_model, batch), keras64) < 1e-4
