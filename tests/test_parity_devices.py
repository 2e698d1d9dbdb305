"""The parity gate runs the native side on the device ONNX Runtime runs on (simulated here: no GPU)."""
from __future__ import annotations

import numpy as np

from zoo.parity import engine


class _GpuPlugin:
    """A plugin that says it can run on CUDA; records how it was asked to run."""

    name = "gpu-stub"

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def devices(self) -> tuple[str, ...]:
        return ("cpu", "cuda")

    def predict(self, model, images):
        self.calls.append(("predict", "cpu"))
        return images.reshape(len(images), -1)[:, :4]

    def native_runner(self, model, *, device, precision):
        self.calls.append((device, precision))
        return lambda images: images.reshape(len(images), -1)[:, :4] * 2


def test_native_logits_use_the_plugins_runner_on_the_gpu():
    plugin, images = _GpuPlugin(), np.ones((2, 3, 4, 4), np.float32)
    out = engine._native_logits(plugin, None, images, device="cuda")  # type: ignore[arg-type]
    assert plugin.calls == [("cuda", "fp32")] and out.dtype == np.float32
    np.testing.assert_array_equal(out, np.full((2, 4), 2, np.float32))


def test_native_logits_on_the_cpu_are_predict():
    plugin, images = _GpuPlugin(), np.ones((2, 3, 4, 4), np.float32)
    engine._native_logits(plugin, None, images)  # type: ignore[arg-type]
    assert plugin.calls == [("predict", "cpu")]


def test_ort_device_follows_the_provider_choice(monkeypatch):
    from zoo import runtime

    class _Choice:
        def __init__(self, name: str) -> None:
            self.name = name

    for provider, device in (("cpu", "cpu"), ("cuda", "cuda"), ("tensorrt", "cuda")):
        monkeypatch.setattr(runtime, "choose_provider", lambda _p, name=provider: _Choice(name))
        assert engine._ort_device(provider) == device
