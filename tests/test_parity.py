"""Parity: every framework and every export of every architecture computes the same logits.

Two halves. The engine's own logic (metrics, pair classes, diagnosis, registration, JUnit, CLI)
runs against a numpy "framework" defined here, so it is checked in milliseconds and with
deliberate faults of each kind. Then the real plugins: every pair of every architecture at a
small configuration (10 classes, 64 px; the deep variants under ``-m slow``, see
arch_params.py), ResNet-18 at full size through the CLI, and ResNet-50 at full size under
``-m slow``. The deliberately broken conversions live in test_parity_gate.py.
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from zoo.architectures import ARCHITECTURES
from zoo.errors import InvalidWeights, ParityFailure
from zoo.parity import (
    DEFAULT_RTOL,
    ParityReport,
    Tolerances,
    compare,
    compare_all,
    parity_archs,
    raise_for_failures,
    run_parity,
    to_junit,
)
from zoo.plugins import get_plugin
from zoo.records import ExportInfo, ParamCounts
from zoo.weights import random_canonical_weights, shapes_of, state_sha256

# --------------------------------------------------------------------------- a numpy framework


class FakePlugin:
    """Global average pool -> hidden linear (kept transposed, Keras-style) -> ReLU -> classifier.

    ``broken_load`` forgets the hidden kernel's transpose when loading canonical weights (square,
    so it loads silently); ``broken_export`` writes a classifier bias that is off by 50%.
    """

    display_name = "Fake (numpy)"
    version = "0.1.0"
    install_hint = "-"
    requires = ("numpy",)

    def __init__(self, name: str, *, broken_load: bool = False, broken_export: bool = False, hidden: int = 6):
        self.name = name
        self.broken_load = broken_load
        self.broken_export = broken_export
        self.hidden = hidden

    def framework_version(self) -> str:
        return np.__version__

    def architectures(self) -> tuple[str, ...]:
        return ("tiny",)

    def build(self, arch: str, *, num_classes: int = 1000, seed: int | None = None, **options: Any) -> dict:
        assert arch == "tiny"
        rng = np.random.default_rng(seed)
        h = self.hidden
        return {"kernel": rng.standard_normal((h, h)).astype(np.float32), "hbias": np.zeros(h, np.float32),
                "stem": rng.standard_normal((h, 3)).astype(np.float32),
                "fc.weight": rng.standard_normal((num_classes, h)).astype(np.float32),
                "fc.bias": np.zeros(num_classes, np.float32)}

    def count_params(self, model: dict) -> ParamCounts:
        return ParamCounts(trainable=sum(v.size for v in model.values()), non_trainable=0)

    def state_dict(self, model: dict) -> dict[str, np.ndarray]:
        return {"stem.weight": model["stem"].copy(), "hidden.weight": model["kernel"].T.copy(),
                "hidden.bias": model["hbias"].copy(), "fc.weight": model["fc.weight"].copy(), "fc.bias": model["fc.bias"].copy()}

    def load_state_dict(self, model: dict, state: Mapping[str, np.ndarray]) -> None:
        expected = {k: v.shape for k, v in self.state_dict(model).items()}
        bad = sorted(set(expected) ^ set(state)) + sorted(k for k in expected if k in state and state[k].shape != expected[k])
        if bad:
            raise InvalidWeights(f"fake: mismatched tensors {bad}")
        kernel = np.asarray(state["hidden.weight"], np.float32)
        model.update({"stem": np.asarray(state["stem.weight"], np.float32), "kernel": kernel if self.broken_load else kernel.T,
                      "hbias": np.asarray(state["hidden.bias"], np.float32),
                      "fc.weight": np.asarray(state["fc.weight"], np.float32), "fc.bias": np.asarray(state["fc.bias"], np.float32)})

    def _forward(self, model: dict, images: np.ndarray) -> dict[str, np.ndarray]:
        pooled = images.astype(np.float32).mean(axis=(2, 3))
        stem = pooled @ model["stem"].T
        hidden = np.maximum(stem @ model["kernel"] + model["hbias"], 0)
        return {"stem": stem, "hidden": hidden, "logits": hidden @ model["fc.weight"].T + model["fc.bias"]}

    def predict(self, model: dict, images: np.ndarray) -> np.ndarray:
        return self._forward(model, images)["logits"].astype(np.float32)

    def intermediates(self, model: dict, images: np.ndarray) -> dict[str, np.ndarray]:
        return {k: v[:, :, None, None] for k, v in self._forward(model, images).items()}

    def export_onnx(self, model: dict, path: Path, *, opset: int = 18, input_size: int = 224) -> ExportInfo:
        import onnx
        from onnx import TensorProto, helper, numpy_helper

        bias = model["fc.bias"] * (1.5 if self.broken_export else 1.0) + (0.1 if self.broken_export else 0.0)
        inits = {"axes": np.array([2, 3], np.int64), "stem": model["stem"], "kernel": model["kernel"], "hbias": model["hbias"],
                 "fcw": model["fc.weight"], "fcb": bias.astype(np.float32)}
        graph = helper.make_graph(
            [helper.make_node("ReduceMean", ["images", "axes"], ["pooled"], keepdims=0),
             helper.make_node("Gemm", ["pooled", "stem"], ["s"], transB=1),
             helper.make_node("Gemm", ["s", "kernel", "hbias"], ["h"]),
             helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Gemm", ["r", "fcw", "fcb"], ["logits"], transB=1)],
            "tiny",
            [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, input_size, input_size])],
            [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", model["fc.bias"].size])],
            [numpy_helper.from_array(v, k) for k, v in inits.items()],
        )
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), str(path))
        return ExportInfo(exporter="onnx.helper", exporter_version=onnx.__version__, opset=opset)


SMALL_FAKE = {"num_classes": 10, "input_size": 32, "batch": 6}


def _fakes(**broken: bool) -> list[FakePlugin]:
    return [FakePlugin("fa"), FakePlugin("fb", **broken)]


# --------------------------------------------------------------------------- metrics


def test_compare_measures_error_relative_to_the_output_scale():
    b = np.array([[4.0, -2.0, 1.0], [0.5, 3.0, -1.0]], np.float32)
    a = b.copy()
    a[1, 2] += 0.02
    r = compare(a, b, a_label="x", b_label="y", kind="native-native", tolerances=Tolerances(rtol=1e-2))
    assert r.max_abs_error == pytest.approx(0.02, rel=1e-4)
    assert r.max_rel_error == pytest.approx(0.02 / 4.0, rel=1e-4)
    assert r.top1_agreement == 1.0 and r.top5_agreement == 1.0 and r.passed
    assert 0.999 < r.cosine_min < 1.0
    strict = compare(a, b, a_label="x", b_label="y", kind="native-native", tolerances=Tolerances())
    assert not strict.passed and "max relative error" in strict.reason


def test_compare_excuses_true_ties_but_not_real_top1_flips():
    b = np.array([[1.0, 1.0 - 1e-7, -3.0]], np.float32)
    a = np.array([[1.0 - 1e-7, 1.0, -3.0]], np.float32)
    tie = compare(a, b, a_label="x", b_label="y", kind="export", tolerances=Tolerances())
    assert tie.top1_agreement == 0.0 and tie.top1_ties == 1 and tie.passed
    flip = compare(np.array([[0.0, 1.0, 0.0]], np.float32), np.array([[1.0, 0.0, 0.0]], np.float32),
                   a_label="x", b_label="y", kind="export", tolerances=Tolerances(rtol=10.0))
    assert not flip.passed and "top-1 agreement" in flip.reason


def test_compare_fails_on_shape_mismatch():
    r = compare(np.zeros((2, 3), np.float32), np.zeros((2, 4), np.float32), a_label="x", b_label="y", kind="cross",
                tolerances=Tolerances())
    assert not r.passed and "shapes differ" in r.reason


@pytest.mark.parametrize("n,expected", [
    (2, {"native-native": 1, "export": 2, "onnx-onnx": 1, "cross": 2}),
    (3, {"native-native": 3, "export": 3, "onnx-onnx": 3, "cross": 6}),
])
def test_every_pair_is_compared_and_classified(n, expected):
    rng = np.random.default_rng(0)
    out = {f"f{i}": rng.standard_normal((4, 5)).astype(np.float32) for i in range(n)}
    pairs = compare_all(out, out, tolerances=Tolerances())
    assert Counter(p.kind for p in pairs) == expected
    assert len({p.label for p in pairs}) == len(pairs)
    assert all(p.b == "f0" for p in pairs if p.kind == "native-native" and "f0" in (p.a, p.b)), "earlier framework is the reference"


def test_tolerances_are_validated():
    from zoo.errors import InvalidInput

    with pytest.raises(InvalidInput):
        Tolerances(rtol=0)
    with pytest.raises(InvalidInput):
        Tolerances(top1=1.5)


# --------------------------------------------------------------------------- the engine, on the numpy framework


def test_agreeing_frameworks_pass_every_pair():
    report = run_parity("tiny", _fakes(), seed=3, **SMALL_FAKE)
    assert report.passed and not report.diagnosis and not report.roundtrip_mismatches
    assert len(report.pairs) == 6 and all(p.max_rel_error < 1e-6 for p in report.pairs)
    assert report.provider == "cpu"
    recipe = {"kind": "zoo-random-canonical", "arch": "tiny", "num_classes": 10, "seed": 3}
    shapes = {k: v.shape for k, v in FakePlugin("x").state_dict(FakePlugin("x").build("tiny", num_classes=10)).items()}
    assert report.weights_sha256 == state_sha256(random_canonical_weights(shapes, seed=3), metadata=recipe)
    json.dumps(report.payload())  # attachable as JSON


def test_broken_weight_conversion_blames_the_frameworks_not_the_exporter():
    report = run_parity("tiny", _fakes(broken_load=True), **SMALL_FAKE)
    assert not report.passed
    failed = {p.kind for p in report.failures}
    assert "native-native" in failed and "export" not in failed
    assert all(p.passed for p in report.pairs if p.kind == "export"), "each export is faithful to its own framework"
    text = "\n".join(report.diagnosis)
    assert "native models disagree" in text and "exporters are not at fault" in text
    assert report.roundtrip_mismatches == {"fb": ["hidden.weight"]}
    assert report.divergence is not None and report.divergence["group"] == "hidden", "stem agrees, hidden diverges"
    with pytest.raises(ParityFailure) as err:
        raise_for_failures([report])
    assert "fb vs fa [native-native]" in err.value.message


def test_broken_exporter_is_blamed_on_the_exporter():
    report = run_parity("tiny", _fakes(broken_export=True), **SMALL_FAKE)
    failed = {(p.kind, p.label) for p in report.failures}
    assert ("export", "fb-onnx vs fb") in failed
    assert all(p.passed for p in report.pairs if p.kind == "native-native")
    assert any("exporter at fault for fb" in d for d in report.diagnosis)
    assert report.divergence is None


def test_a_framework_that_cannot_load_the_layout_is_an_error():
    class OtherLayout(FakePlugin):
        def state_dict(self, model):
            return {("head." + k if k.startswith("fc") else k): v for k, v in super().state_dict(model).items()}

    report = run_parity("tiny", [FakePlugin("fa"), OtherLayout("fb")], **SMALL_FAKE)
    assert not report.passed and "fb" in report.errors and "fc.weight" in report.errors["fb"]


def test_registration_is_idempotent_and_carries_the_report(tmp_path):
    from zoo import open_registry

    registry = open_registry(tmp_path / "store")
    first = run_parity("tiny", _fakes(), registry=registry, name="tiny-parity", **SMALL_FAKE)
    again = run_parity("tiny", _fakes(), registry=registry, name="tiny-parity", **SMALL_FAKE)
    assert set(first.versions) == {"fa", "fb"} and first.versions == again.versions, "same bytes: same versions"
    for fw, ref in first.versions.items():
        v = registry.resolve(ref)
        assert v.framework == fw and v.tags.get("parity") == "pass"
        assert v.provenance["weights_sha256"] == first.weights_sha256
        assert v.provenance["weights_init"]["kind"] == "zoo-random-canonical"
        reports = registry.reports(ref, "parity")
        assert len(reports) == 2 and all(r.payload["passed"] for r in reports)
        assert reports[0].payload["weights_sha256"] == first.weights_sha256
    broken = run_parity("tiny", _fakes(broken_load=True), registry=registry, name="tiny-broken", **SMALL_FAKE)
    assert not broken.passed and broken.versions == {}
    assert [v.name for v in registry.list()] == ["tiny-parity", "tiny-parity"], "a failing run registers nothing"


def test_junit_has_one_testcase_per_pair_and_a_failure_per_failing_pair():
    good = run_parity("tiny", _fakes(), **SMALL_FAKE)
    bad = run_parity("tiny", _fakes(broken_load=True), **SMALL_FAKE)
    bad = ParityReport(**{**bad.__dict__, "arch": "tiny-broken"})
    root = ET.fromstring(to_junit([good, bad]))
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["parity.tiny", "parity.tiny-broken"]
    for suite, report in zip(suites, (good, bad), strict=True):
        cases = suite.findall("testcase")
        assert len(cases) == len(report.pairs) == int(suite.get("tests"))
        failures = [c for c in cases if c.find("failure") is not None]
        assert len(failures) == len(report.failures) == int(suite.get("failures"))
        assert {c.find("failure").get("type") for c in failures} == {p.kind for p in report.failures}


def test_parity_archs_are_those_two_plugins_build():
    class Solo(FakePlugin):
        def architectures(self):
            return ("solo", "tiny")

    assert parity_archs([FakePlugin("fa"), Solo("fb")]) == ["tiny"]


# --------------------------------------------------------------------------- the CLI, on the numpy framework


@pytest.fixture
def fake_frameworks(monkeypatch):
    """``zoo parity`` resolves the fake plugins; ``plugins[name]`` swaps one in."""
    import zoo.plugins as plugins_module

    plugins = {"fa": FakePlugin("fa"), "fb": FakePlugin("fb")}

    def resolve(spec, *, arch=None):
        names = list(plugins) if spec in (None, "all") else spec.split(",")
        return [plugins[n] for n in names if arch is None or arch in plugins[n].architectures()]

    monkeypatch.setattr(plugins_module, "resolve_frameworks", resolve)
    monkeypatch.setattr(plugins_module, "get_plugin", lambda name: plugins[name])
    return plugins


def _zoo(store: Path, *args: str):
    from zoo.cli import main

    return CliRunner().invoke(main, ["--store", str(store), "parity", *args])


def test_cli_reports_json_and_junit_and_registers(tmp_path, fake_frameworks):
    junit = tmp_path / "parity.xml"
    out = _zoo(tmp_path / "store", "tiny", "--num-classes", "10", "--input-size", "32", "--json", "--junit", str(junit),
               "--name", "tiny-cli")
    assert out.exit_code == 0, out.output
    (payload,) = json.loads(out.stdout)
    assert payload["passed"] and len(payload["pairs"]) == 6 and set(payload["versions"]) == {"fa", "fb"}
    assert len(ET.parse(junit).getroot().findall("testsuite/testcase")) == 6


def test_cli_exits_10_naming_the_failing_pair(tmp_path, fake_frameworks):
    fake_frameworks["fb"] = FakePlugin("fb", broken_load=True)
    junit = tmp_path / "parity.xml"
    out = _zoo(tmp_path / "store", "--all", "--num-classes", "10", "--input-size", "32", "--junit", str(junit))
    assert out.exit_code == ParityFailure.exit_code == 10, out.output
    assert "fb vs fa [native-native]" in out.output and "nothing registered" in out.output
    assert "\\n" not in out.output, "the failure message is lines, not an escaped newline"
    assert junit.exists(), "the JUnit file is written before the failure exit"
    assert not (tmp_path / "store").exists()  # nothing registered: the store was not even created


def _checkpoint(path: Path, *, num_classes: int = 7, seed: int = 5) -> Path:
    from zoo.weights import save_weights

    plugin = FakePlugin("fa")
    save_weights(plugin.state_dict(plugin.build("tiny", num_classes=num_classes, seed=seed)), path)
    return path


def test_cli_checks_a_given_checkpoint_and_registers_it_with_its_sha256(tmp_path, fake_frameworks):
    from zoo import open_registry
    from zoo.weights import file_sha256

    ckpt = _checkpoint(tmp_path / "mine.safetensors")
    out = _zoo(tmp_path / "store", "tiny", "--weights", str(ckpt), "--input-size", "32", "--json")
    assert out.exit_code == 0, out.output
    (payload,) = json.loads(out.stdout)
    seeded = json.loads(_zoo(tmp_path / "s2", "tiny", "--num-classes", "7", "--input-size", "32", "--no-register",
                             "--json").stdout)[0]
    assert payload["passed"] and payload["num_classes"] == 7, "the class count is read from the classifier"
    assert payload["weights_source"] == "mine.safetensors" and payload["weights_sha256"] == file_sha256(ckpt)
    assert seeded["weights_source"] == "zoo-random-canonical" and seeded["weights_sha256"] != payload["weights_sha256"]
    version = open_registry(tmp_path / "store").resolve(payload["versions"]["fb"])
    assert version.provenance["weights_sha256"] == file_sha256(ckpt)
    assert "weights_init" not in version.provenance, "recorded as `zoo export --weights FILE` records it"


@pytest.mark.parametrize("args,code,needle", [
    (["--all"], 2, "--weights applies to a single ARCH"),
    (["tiny", "--num-classes", "10"], InvalidWeights.exit_code, "fc.weight"),
])
def test_cli_refuses_weights_that_cannot_be_checked(tmp_path, fake_frameworks, args, code, needle):
    out = _zoo(tmp_path / "store", *args, "--weights", str(_checkpoint(tmp_path / "seven.safetensors")), "--input-size", "32")
    assert out.exit_code == code and needle in out.output, out.output
    assert not (tmp_path / "store").exists(), "nothing built, nothing registered"


def test_cli_looser_tolerance_is_honoured(tmp_path, fake_frameworks):
    fake_frameworks["fb"] = FakePlugin("fb", broken_export=True)
    strict = _zoo(tmp_path / "s1", "tiny", "--num-classes", "10", "--input-size", "32", "--no-register")
    loose = _zoo(tmp_path / "s2", "tiny", "--num-classes", "10", "--input-size", "32", "--no-register",
                 "--rtol", "10", "--top1", "0")
    assert strict.exit_code == 10 and loose.exit_code == 0, loose.output


@pytest.mark.parametrize("args", [[], ["tiny", "--all"], ["--all", "--name", "x"], ["tiny", "--rtol", "0"]])
def test_cli_refuses_bad_invocations(tmp_path, fake_frameworks, args):
    out = _zoo(tmp_path / "store", *args)
    assert out.exit_code == 2, out.output


# --------------------------------------------------------------------------- one pipeline; registered versions


def test_parity_registers_the_bytes_zoo_export_registers_with_transform_and_labels(tmp_path):
    """Same weights through the one pipeline: parity's registration is export's version (dedupe), with its
    transform and labels."""
    from zoo import open_registry
    from zoo._exporting import export_and_register

    registry = open_registry(tmp_path / "store")
    exported = {p.name: export_and_register(registry, p, "tiny", name="t", num_classes=1000, input_size=32).version
                for p in _fakes()}
    report = run_parity("tiny", _fakes(), registry=registry, name="t", num_classes=1000, input_size=32, batch=4)
    assert report.passed and report.versions == {fw: v.ref for fw, v in exported.items()}, "one version per framework"
    assert len(registry.list("t")) == 2
    for v in registry.list("t"):
        assert v.transform is not None and v.transform.crop == (32, 32)
        assert v.labels is not None and v.labels.name == "imagenet-1k" and len(v.labels) == 1000


def _scratch(tmp_path: Path, fake_frameworks, name: str, *, seed: int = 0) -> list[str]:
    from zoo import open_registry
    from zoo._exporting import export_and_register

    with open_registry(tmp_path / "scratch") as registry:
        return [export_and_register(registry, p, "tiny", name=name, num_classes=10, input_size=32, seed=seed).version.ref
                for p in fake_frameworks.values()]


def test_ci_recipe_gates_exactly_the_versions_it_publishes(tmp_path, fake_frameworks, tiny_onnx):
    """export --framework all; parity MODEL; copy --gated: the target gets exactly the versions parity passed."""
    from conftest import cli_on
    from zoo import open_registry

    zoo = cli_on(tmp_path / "scratch")
    exported = _scratch(tmp_path, fake_frameworks, "t")  # t@1 (fa), t@2 (fb): the same seeded weights
    zoo("register", str(tiny_onnx()), "--name", "t")  # t@3: an external file, not parity-checkable
    out = zoo("parity", "t", "--batch", "4", "--json")
    (payload,) = json.loads(out.stdout)
    assert payload["passed"] and payload["versions"] == {"fa": exported[0], "fb": exported[1]}
    assert "not checked: t@3" in out.stderr
    late = _scratch(tmp_path, fake_frameworks, "t", seed=1)  # t@4, t@5: exported after the gate ran
    zoo("copy", "--model", "t", "--gated", "--to", str(tmp_path / "prod"))
    with open_registry(tmp_path / "scratch") as scratch, open_registry(tmp_path / "prod") as prod:
        gated = {scratch.resolve(ref).sha256 for ref in exported}
        assert {v.sha256 for v in prod.list()} == gated and not gated & {scratch.resolve(r).sha256 for r in late}
        for ref in exported:
            assert scratch.resolve(ref).tags["parity"] == "pass"
            (report,) = scratch.reports(ref, "parity")
            assert report.payload["passed"] and report.payload["versions"]["fa"] == exported[0]

    fake_frameworks["fb"] = FakePlugin("fb", broken_load=True)  # the gate fails: nothing is published
    failing = _scratch(tmp_path, {"fa": FakePlugin("fa"), "fb": FakePlugin("fb")}, "u")
    out = zoo("parity", "u", "--batch", "4", code=ParityFailure.exit_code)
    assert "fb vs fa [native-native]" in out.stderr and "tagged parity=fail" in out.stderr
    zoo("copy", *failing, "--gated", "--to", str(tmp_path / "prod"))
    with open_registry(tmp_path / "prod") as prod:
        assert prod.models() == ["t"]


def test_parity_of_versions_refuses_what_it_cannot_check(tmp_path, fake_frameworks, tiny_onnx):
    from conftest import cli_on

    zoo = cli_on(tmp_path / "scratch")
    zoo("register", str(tiny_onnx()), "--name", "ext")
    assert "no framework built it" in zoo("parity", "ext@1", code=2).stderr
    _scratch(tmp_path, fake_frameworks, "t")
    assert "--opset" in zoo("parity", "t", "--opset", "17", code=2).stderr, "a fresh-build option is refused"
    assert "t@1 at 32" in zoo("parity", "t", "--input-size", "64", code=2).stderr, "sizes given must be the versions'"
    assert "No model named 'nope'" in zoo("parity", "nope", "t", code=3).stderr


# --------------------------------------------------------------------------- the real plugins

REAL = ["torch", "tensorflow"]  # the dev install has both: an unavailable one fails these tests
needs_both = pytest.mark.tensorflow
REAL_ARCHS = [a for a in ARCHITECTURES if all(a in get_plugin(fw).architectures() for fw in REAL)]
SMALL = {"num_classes": 10, "input_size": 64, "batch": 4, "seed": 0}


def _real_plugins():
    from zoo.plugins import get_plugin

    return [get_plugin("torch"), get_plugin("tensorflow")]


def _assert_tight(report: ParityReport) -> None:
    assert report.passed, report.summary() + "\n" + "\n".join(report.diagnosis)
    for p in report.pairs:
        assert p.max_rel_error <= DEFAULT_RTOL and p.top1_agreement == 1.0 and p.cosine_min > 0.99999, p
    assert not report.roundtrip_mismatches, "canonical weights survive load -> state_dict exactly"
    assert 0.1 < report.logit_std < 20, "the random canonical weights keep the logits O(1)"


@needs_both
@pytest.mark.torch
@pytest.mark.tensorflow
def test_strict_fp32_turns_tf32_off_in_every_framework_and_restores_it():
    import tensorflow as tf
    import torch

    from zoo.parity import strict_fp32

    def tf32() -> tuple[bool, bool, bool]:
        return (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
                tf.config.experimental.tensor_float_32_execution_enabled())

    before = tf32()
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        with strict_fp32(_real_plugins()) as notes:
            assert tf32() == (False, False, False)
            assert [n.split(" (")[0] for n in notes] == ["TF32 off in torch", "TF32 off in tensorflow", "TF32 off in ONNX Runtime CUDA"]
        assert tf32() == (True, *before[1:]), "the previous settings come back"
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before[0]


def _parity_cli(tmp_path: Path, arch: str) -> tuple[dict[str, Any], ET.Element]:
    """The CI gate as a user runs it: `zoo parity ARCH` at 64 px / 10 classes, JSON and JUnit out.

    64 px: AlexNet needs >= 63 px (its last pool needs a 3x3 map); it also leaves GoogLeNet's
    ceil-mode pools and VGG's 2x2 -> 7x7 adaptive pool non-trivial. (`--all` runs the same
    per-architecture check for each; it is tested on the fake frameworks above.)
    """
    from zoo.cli import main

    junit = tmp_path / "parity.xml"
    args = ["--store", str(tmp_path / "store"), "parity", arch, "--input-size", str(SMALL["input_size"]),
            "--num-classes", str(SMALL["num_classes"]), "--batch", str(SMALL["batch"]), "--seed", str(SMALL["seed"]),
            "--no-register", "--json", "--junit", str(junit)]
    out = CliRunner().invoke(main, args)
    assert out.exit_code == 0, out.output
    (report,) = json.loads(out.stdout)
    return report, ET.parse(junit).getroot()


# Every pair this checks per architecture is covered at a cheaper level in the default run: each plugin's small
# export agrees with its native model (test_plugin_torch / test_plugin_tensorflow, every builder) and the TensorFlow
# build agrees with torch's on the same canonical weights (test_same_canonical_weights_give_torchs_logits); the
# gate end to end runs on ResNet-18 at full size (test_cli_parity_resnet18_full_size). So these runs (about 3 min
# for the five builders) are under -m slow with the deep variants.
@needs_both
@pytest.mark.torch
@pytest.mark.tensorflow
@pytest.mark.slow
@pytest.mark.parametrize("arch", REAL_ARCHS)
def test_parity_passes_every_pair_of_every_arch(arch, tmp_path):
    report, junit = _parity_cli(tmp_path, arch)
    assert report["passed"] and not report["errors"], report["diagnosis"]
    for p in report["pairs"]:
        assert p["max_rel_error"] <= DEFAULT_RTOL and p["top1_agreement"] == 1.0 and p["cosine_min"] > 0.99999, p
    assert Counter(p["kind"] for p in report["pairs"]) == {"native-native": 1, "export": 2, "onnx-onnx": 1, "cross": 2}
    assert not report["roundtrip_mismatches"], "canonical weights survive load -> state_dict exactly"
    assert 0.1 < report["logit_std"] < 20, "the random canonical weights keep the logits O(1)"
    (suite,) = [ts for ts in junit.iter("testsuite") if ts.get("name") == f"parity.{arch}"]
    cases = suite.findall("testcase")
    assert len(cases) == 6 and not [c for c in cases if c.find("failure") is not None]


@needs_both
@pytest.mark.torch
@pytest.mark.tensorflow
@pytest.mark.parametrize("arch,unmatched", [
    ("alexnet", {"classifier.1", "classifier.4"}),  # Linear before its ReLU: Keras fuses them (classifier.2 / .5)
    ("googlenet", set()),
    ("resnet18", {"relu"}),  # the stem's ReLU: Keras names it conv1.relu, and conv1 is the conv itself
])
def test_both_plugins_name_the_same_layer_groups_and_agree_on_them(arch, unmatched):
    """The intermediates hooks speak torchvision's module names: every torch group has its TensorFlow
    twin (but the fused ones), and with the same weights they agree."""
    from zoo.metrics import relative_error

    torch_plugin, tf_plugin = _real_plugins()
    models = []
    for plugin in (torch_plugin, tf_plugin):
        model = plugin.build(arch, num_classes=10, aux_logits=False) if arch == "googlenet" else plugin.build(arch, num_classes=10)
        models.append(model)
    state = random_canonical_weights(shapes_of(torch_plugin.state_dict(models[0])), seed=0)
    images = np.random.default_rng(1).standard_normal((2, 3, 64, 64)).astype(np.float32)
    groups = []
    for plugin, model in zip((torch_plugin, tf_plugin), models, strict=True):
        plugin.load_state_dict(model, state)
        groups.append(plugin.intermediates(model, images))
    ours, theirs = groups
    assert set(ours) - set(theirs) == unmatched
    for name in set(ours) & set(theirs):
        assert relative_error(theirs[name].reshape(ours[name].shape), ours[name]) <= DEFAULT_RTOL, name


@needs_both
@pytest.mark.torch
@pytest.mark.tensorflow
def test_cli_parity_resnet18_full_size(tmp_path):
    """The acceptance run: `zoo parity resnet18` at 224 px / 1000 classes passes every pair tightly, writes one
    JUnit case per pair, and registers both exports."""
    from zoo import open_registry
    from zoo.cli import main
    from zoo.weights import file_sha256

    store, junit = tmp_path / "store", tmp_path / "parity.xml"
    runner = CliRunner()
    out = runner.invoke(main, ["--store", str(store), "parity", "resnet18", "--batch", "4", "--json", "--junit", str(junit)])
    assert out.exit_code == 0, out.output
    (payload,) = json.loads(out.stdout)
    assert payload["passed"] and (payload["input_size"], payload["num_classes"]) == (224, 1000)
    assert payload["frameworks"][0] == "torch", "torch (torchvision's definition) is the reference"
    for p in payload["pairs"]:
        assert p["max_rel_error"] <= DEFAULT_RTOL and p["top1_agreement"] == 1.0 and p["cosine_min"] > 0.99999, p
    assert Counter(p["kind"] for p in payload["pairs"]) == {"native-native": 1, "export": 2, "onnx-onnx": 1, "cross": 2}
    assert not payload["roundtrip_mismatches"], "canonical weights survive load -> state_dict exactly"
    assert 0.1 < payload["logit_std"] < 20, "the random canonical weights keep the logits O(1)"
    cases = ET.parse(junit).getroot().findall("testsuite/testcase")
    assert len(cases) == 6 and not [c for c in cases if c.find("failure") is not None]
    registry = open_registry(store)
    refs = payload["versions"]
    assert set(refs) == {"torch", "tensorflow"}
    for fw, ref in refs.items():
        v = registry.resolve(ref)
        assert (v.arch, v.framework, v.num_classes) == ("resnet18", fw, 1000)
        assert v.provenance["weights_sha256"] == payload["weights_sha256"]
        assert registry.reports(ref, "parity")[0].payload["passed"] is True
    # The recorded recipe regenerates exactly the weights parity used.
    weights = tmp_path / "w.safetensors"
    out = runner.invoke(main, ["--store", str(store), "weights", "export", refs["torch"], "-o", str(weights)])
    assert out.exit_code == 0, out.output
    assert file_sha256(weights) == payload["weights_sha256"]


@needs_both
@pytest.mark.slow
@pytest.mark.torch
@pytest.mark.tensorflow
def test_parity_resnet50_full_size():
    report = run_parity("resnet50", _real_plugins(), num_classes=1000, input_size=224, batch=4)
    _assert_tight(report)


def test_promote_runs_the_parity_check_the_gate_requires(tmp_path, fake_frameworks):
    """`zoo promote REF prod` on a policy requiring parity: the registered version is checked, then promoted;
    with a framework that disagrees, the check fails and prod stays where it was (exit 13)."""
    from conftest import cli_on
    from zoo import open_registry
    from zoo.errors import GateRefused

    zoo = cli_on(tmp_path / "scratch")
    first, _ = _scratch(tmp_path, fake_frameworks, "p")
    zoo("policy", "p", "prod", "--require", "parity")
    out = json.loads(zoo("promote", first, "prod", "--json").stdout)
    assert out["ran"] == ["parity"] and out["version"]["version"] == 1 and out["event"]["policy"]["passed"]
    fake_frameworks["fb"] = FakePlugin("fb", broken_load=True)
    bad, _ = _scratch(tmp_path, {"fa": FakePlugin("fa"), "fb": FakePlugin("fb")}, "p", seed=1)
    assert "the newest parity report failed" in zoo("promote", bad, "prod", code=GateRefused.exit_code).stderr
    with open_registry(tmp_path / "scratch") as registry:
        assert registry.resolve("p@prod").version == 1
