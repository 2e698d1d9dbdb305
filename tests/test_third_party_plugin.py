"""A plugin installed with pip appears in zoo with no change to zoo; broken ones break nothing.

The toy plugin (tests/fixtures/toy_plugin) is a real distribution, installed with pip into a
temporary folder; the duplicate, broken and missing-framework plugins are distributions written
by hand (a dist-info folder is all an installed entry point is).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

FIXTURE = Path(__file__).parent / "fixtures" / "toy_plugin"


def _dist_info(site: Path, dist: str, entry_points: dict[str, str]) -> None:
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[zoo.plugins]\n{lines}\n")


@pytest.fixture(scope="module")
def toy_site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(site), str(FIXTURE)],
        check=True, cwd=build, env={**os.environ, "PIP_NO_INDEX": "1"},
    )
    assert (site / "zoo_toy" / "__init__.py").is_file()
    return site


def zoo(*args: str, sites: list[Path], store: Path) -> subprocess.CompletedProcess:
    path = [*map(str, sites), *filter(None, [os.environ.get("PYTHONPATH")])]  # the zoo under test stays importable
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path), "ZOO_STORE": str(store)}
    return subprocess.run([sys.executable, "-m", "zoo.cli", *args], capture_output=True, text=True, env=env)


def test_pip_installed_plugin_is_listed(toy_site, tmp_path):
    result = zoo("plugins", "--json", sites=[toy_site], store=tmp_path)
    assert result.returncode == 0, result.stderr
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    assert plugins["toy"]["available"] is True
    assert plugins["toy"]["distribution"] == "zoo-toy-plugin"
    assert plugins["toy"]["architectures"] == ["toy-linear"]
    assert {"torch", "tensorflow"} <= set(plugins)


def test_third_party_plugin_exports_registers_and_runs(toy_site, tmp_path):
    store = tmp_path / "store"
    result = zoo("export", "toy-linear", "--framework", "toy", "--num-classes", "7", "--input-size", "32", "--json",
                 sites=[toy_site], store=store)
    assert result.returncode == 0, result.stderr
    (exported,) = json.loads(result.stdout)
    version = exported["version"]
    assert (version["framework"], version["arch"], version["num_classes"]) == ("toy", "toy-linear", 7)
    assert version["params"]["trainable"] == 7 * 3 + 7
    # the toy names its graph pixels -> scores with batch 'n': the core's contract pass renamed them
    assert [(t["name"], t["shape"]) for t in version["signature"]["inputs"]] == [("images", ["batch", 3, 32, 32])]
    assert [(t["name"], t["shape"]) for t in version["signature"]["outputs"]] == [("logits", ["batch", 7])]
    assert "renamed graph value 'pixels' to 'images'" in version["provenance"]["export_notes"]

    batch = np.random.default_rng(1).standard_normal((2, 3, 32, 32), dtype=np.float32)
    np.save(tmp_path / "x.npy", batch)
    run = zoo("run", "toy-linear:toy", "--input", str(tmp_path / "x.npy"), "--json", sites=[toy_site], store=store)
    assert run.returncode == 0, run.stderr
    rows = json.loads(run.stdout)
    assert len(rows) == 2 and len(rows[0]["top"]) == 5


def test_duplicate_plugin_names_are_an_error(toy_site, tmp_path):
    dup = tmp_path / "dup"
    _dist_info(dup, "zoo-toy-clone", {"toy": "zoo_toy:ToyPlugin"})
    result = zoo("plugins", sites=[toy_site, dup], store=tmp_path / "s")
    assert result.returncode != 0
    assert "Two plugins are named 'toy'" in result.stderr
    assert "zoo-toy-clone" in result.stderr and "zoo-toy-plugin" in result.stderr
    assert "Traceback" not in result.stderr


def test_broken_and_missing_framework_plugins_break_nothing(toy_site, tmp_path):
    extra = tmp_path / "extra"
    _dist_info(extra, "zoo-broken", {"broken": "zoo_no_such_module:Plugin"})
    _dist_info(extra, "zoo-ghost", {"ghost": "zoo_toy:GhostPlugin"})
    result = zoo("plugins", "--json", sites=[toy_site, extra], store=tmp_path / "s")
    assert result.returncode == 0, result.stderr
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    assert plugins["broken"]["available"] is False
    assert "zoo_no_such_module" in plugins["broken"]["reason"]
    assert plugins["ghost"]["available"] is False
    assert "zoo_no_such_framework" in plugins["ghost"]["reason"]
    assert plugins["ghost"]["hint"] == "pip install 'zoo-ghost[framework]'"
    table = zoo("plugins", sites=[toy_site, extra], store=tmp_path / "s")
    assert "zoo-ghost[framework]" in table.stdout, "brackets in a hint are text, not rich markup"
    assert plugins["toy"]["available"] is True

    (tmp_path / "s").mkdir()  # an empty folder (like a clone's artifacts/) lists as an empty registry
    listing = zoo("list", "--json", sites=[toy_site, extra], store=tmp_path / "s")
    assert listing.returncode == 0 and json.loads(listing.stdout) == []

    using = zoo("export", "toy-linear", "--framework", "ghost", sites=[toy_site, extra], store=tmp_path / "s")
    assert using.returncode == 4
    assert "zoo_no_such_framework" in using.stderr and "pip install 'zoo-ghost[framework]'" in using.stderr


# --------------------------------------------------------------------------- hooks declared and checked

BAD_HOOKS = '''
from zoo_toy import ToyPlugin

class Misspelled(ToyPlugin):
    name = "misspelled"
    def inference_option(self, arch, *, state=None):  # one letter short of the hook: would never run
        return {}

class WrongSignature(ToyPlugin):
    name = "wrongsig"
    def native_runner(self, model, device):  # the core passes device= and precision= by keyword
        return None

class ClaimsNine(ToyPlugin):
    name = "claimsnine"
    def reference_params(self):
        return {"resnet50": 1}

class Incomplete:
    name, display_name, version, install_hint, requires = "incomplete", "Incomplete", "1", "pip install x", ()
    def architectures(self):
        return ()
'''


@pytest.fixture(scope="module")
def bad_site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("bad")
    (site / "zoo_badhooks.py").write_text(BAD_HOOKS)
    _dist_info(site, "zoo-badhooks", {"misspelled": "zoo_badhooks:Misspelled", "wrongsig": "zoo_badhooks:WrongSignature",
                                      "claimsnine": "zoo_badhooks:ClaimsNine", "incomplete": "zoo_badhooks:Incomplete"})
    return site


def test_bad_hooks_are_refused_at_load_and_break_nothing_else(toy_site, bad_site, tmp_path):
    listed = zoo("plugins", "--json", sites=[toy_site, bad_site], store=tmp_path / "s")
    assert listed.returncode == 0, listed.stderr
    plugins = {p["name"]: p for p in json.loads(listed.stdout)}
    assert plugins["toy"]["available"] is True
    misspelled, wrongsig, nine = plugins["misspelled"], plugins["wrongsig"], plugins["claimsnine"]
    assert not (misspelled["available"] or wrongsig["available"] or nine["available"])
    assert "'inference_option', which is not a zoo hook: a misspelled 'inference_options'" in misspelled["reason"]
    assert "Expected: inference_options(arch: str, *, state: Mapping[str, np.ndarray] | None = None)" in misspelled["reason"]
    assert "'_inference_option'" in misspelled["hint"]
    assert "'native_runner' wrongly: it does not accept the keyword argument 'precision'" in wrongsig["reason"]
    assert "Received: native_runner(model, device)" in wrongsig["reason"]
    assert "'resnet50': it is one of zoo's nine" in nine["reason"]
    assert "Received: no framework_version, build, count_params, export_onnx, predict" in plugins["incomplete"]["reason"]

    used = zoo("export", "toy-linear", "--framework", "wrongsig", sites=[toy_site, bad_site], store=tmp_path / "s")
    assert used.returncode == 4 and "Traceback" not in used.stderr
    assert "'wrongsig' (zoo_badhooks:WrongSignature)" in used.stderr and "zoo.plugins.OptionalHooks.native_runner" in used.stderr


def test_a_plugin_contributes_an_architecture_with_its_own_reference(toy_site, tmp_path):
    result = zoo("archs", "--framework", "toy", "--json", sites=[toy_site], store=tmp_path)
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert (row["arch"], row["contributed_by"], row["reference"]) == ("toy-linear", "toy", 4000)
    assert row["frameworks"]["toy"]["trainable"] == 4000 and row["frameworks"]["toy"]["matches_reference"] is True
    table = zoo("archs", sites=[toy_site], store=tmp_path)
    assert table.returncode == 0, table.stderr
    rows = {cells[1]: cells[2:] for cells in ([c.strip() for c in line.split("│")] for line in table.stdout.splitlines())
            if len(cells) > 3}
    assert rows["toy-linear"][:2] == ["plugin toy", "4,000"]
    assert rows["resnet50"][0] == "zoo", "the nine are zoo's own"


def test_plugin_version_comes_from_its_distribution(toy_site, tmp_path):
    result = zoo("plugins", "--json", sites=[toy_site], store=tmp_path)
    versions = {p["name"]: p["version"] for p in json.loads(result.stdout)}
    from importlib import metadata

    import tomllib

    declared = tomllib.loads((FIXTURE / "pyproject.toml").read_text())["project"]["version"]
    assert versions["toy"] == declared  # read through importlib.metadata from the installed distribution
    assert versions["torch"] == versions["tensorflow"] == metadata.version("zoo-registry")


class _Minimal:
    """The required members only, the way the core calls them; each case below adds one member."""

    name, display_name, version, install_hint, requires = "m", "M", "1", "pip install m", ()

    def framework_version(self): return None
    def architectures(self): return ()
    def build(self, arch, *, num_classes=1000, **options): return None
    def count_params(self, model): return None
    def export_onnx(self, model, path, *, opset=18, input_size=224): return None
    def predict(self, model, images): return images
    def state_dict(self, model): return {}
    def load_state_dict(self, model, state): return None


@pytest.mark.parametrize("member,value,fragment", [
    ("describe", lambda self: "a helper", None),  # a public helper that looks like no hook is fine
    ("_inference_option", lambda self, arch: {}, None),  # private: never a hook
    ("devices", lambda self, *args, **kwargs: ("cpu",), None),  # *args/**kwargs accept anything
    ("build", lambda self, arch, num_classes=1000: None, None),  # a keyword-only may be positional-or-keyword
    ("devicess", lambda self: ("cpu",), "a misspelled 'devices'"),
    ("weights_formats", {".x": "y"}, "a misspelled 'weight_formats'"),
    ("predict", lambda self, model: None, "takes 1 positional argument(s); the core passes 2"),
    ("export_onnx", lambda self, model, path, *, opset=18: None, "does not accept the keyword argument 'input_size'"),
    ("owns", lambda self, model, strict: True, "requires 'strict', which the core never passes"),
    ("strict_fp32", None, "it is not callable"),
    ("priority", "0", "it is a str"),
    ("priority", True, "it is a bool"),
    ("weight_formats", {"pth": "torch.load"}, "'pth' is not a '.suffix' -> description pair"),
])
def test_hook_check_accepts_what_the_core_can_call_and_refuses_the_rest(member, value, fragment):
    from zoo._plugin_check import check_plugin
    from zoo.errors import PluginError
    from zoo.plugins import HOOKS, _check_weight_formats

    plugin = type("P", (_Minimal,), {member: value})()
    check = lambda: check_plugin(plugin, HOOKS, label="'m'", extra={"weight_formats": _check_weight_formats})  # noqa: E731
    if fragment is None:
        assert check() is None  # accepted: no PluginError
        return
    with pytest.raises(PluginError, match="Expected: ") as info:
        check()
    assert fragment in info.value.message and info.value.exit_code == 4 and info.value.hint
