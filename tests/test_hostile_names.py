"""Hostile names: every user-chosen identifier is refused before the store is touched.

Model names, aliases and tag keys share one pattern ([a-z0-9][a-z0-9._-]{0,63}, ASCII); tag values
are printable and bounded. The refusal is InvalidName whose message ends with the value received.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from backends import BACKENDS, Backend
from zoo._names import NAME_PATTERN, validate_alias, validate_name, validate_tag_key, validate_tag_value
from zoo._registry import Registry
from zoo.errors import InvalidName, InvalidReference

HOSTILE = [
    "../x", "..", ".", "../../etc/passwd", "/etc/passwd", "/abs", "a/b", "a/../b",
    "C:\\x", "a\\b", "..\\x", "\\\\server\\share",
    "%2e%2e", "%2e%2e%2fx", "..%2f", "%00",
    "x\x00y", "\x00", "\x00../x",
    "a" * 65, "a" * 10_000,
    "", " ", "a b", "a\n", "\n", "a\t", "\r", "a\x7f", "a\x1b[31m",
    "ｒｅｓｎｅｔ",  # fullwidth
    "rеsnet",  # Cyrillic е
    "resnet\u200b",  # zero-width space
    "\u202eresnet",  # right-to-left override
    "\u212a",  # Kelvin sign: lowercases to 'k'
    "ß", "résnet", "ⅰ",  # roman numeral one
    "ResNet50", "RESNET", "-x", "_x", ".hidden",
    "a:b", "a@b", "a;drop table versions", "a'b", 'a"b', "$(rm -rf ~)", "`id`", "~", "~root", "a*", "a?", "<x>", "a|b",
]
NOT_STRINGS = [None, 3, 3.5, b"resnet", ["resnet"], Path("x")]


@pytest.fixture(scope="module", params=BACKENDS)
def populated(request, tmp_path_factory) -> Registry:
    """One registry holding tiny@1 on each backend, shared by the tests that only try (and fail) to change it."""
    from conftest import make_tiny_onnx

    root = tmp_path_factory.mktemp("hostile")
    services = request.getfixturevalue("shared_services") if request.param == "shared" else None
    backend = Backend.create(request.param, root, services)
    registry = backend.open(cache=root / "cache")
    registry.register(make_tiny_onnx(root / "m" / "model.onnx"), name="tiny")
    return registry


def assert_ends_with_value(exc: InvalidName | InvalidReference, value: object) -> None:
    message = exc.message
    if isinstance(value, str) and len(value) > 100:
        assert message.endswith(f"({len(value)} characters)") and repr(value[:20])[:-1] in message
    else:
        assert message.endswith(f"Received: {value!r}"), message


def assert_untouched(store: Registry, backend: Backend) -> None:
    assert store.list() == []
    assert backend.objects(store) == []
    assert backend.scratch(store) == []


@pytest.mark.parametrize("name", HOSTILE + NOT_STRINGS)
def test_model_name_refused_before_the_file_is_read(store: Registry, tmp_path: Path, name, backend):
    missing = tmp_path / "does-not-exist.onnx"  # reading it would raise InvalidModelFile instead
    with pytest.raises(InvalidName) as exc:
        store.register(missing, name=name)
    assert_ends_with_value(exc.value, name)
    assert NAME_PATTERN in exc.value.message
    assert_untouched(store, backend)


def test_the_documented_example_message(store: Registry, tiny_onnx):
    with pytest.raises(InvalidName) as exc:
        store.register(tiny_onnx(0), name="../x")
    assert exc.value.message == "Expected a model name matching [a-z0-9][a-z0-9._-]{0,63}. Received: '../x'"


@pytest.mark.parametrize("alias", HOSTILE + NOT_STRINGS + ["latest", "3", "0042"])
def test_alias_refused(populated: Registry, alias):
    with pytest.raises(InvalidName) as exc:
        populated.set_alias("tiny@1", alias)
    assert_ends_with_value(exc.value, alias)
    with pytest.raises(InvalidName):
        populated.remove_alias("tiny", alias)
    assert populated.resolve("tiny@1").aliases == ()


@pytest.mark.parametrize("key", HOSTILE + [k for k in NOT_STRINGS if not isinstance(k, list)])
def test_tag_key_refused(store: Registry, populated: Registry, tmp_path: Path, key, backend):
    with pytest.raises(InvalidName) as exc:
        store.register(tmp_path / "does-not-exist.onnx", name="tiny", tags={key: "v"})
    assert_ends_with_value(exc.value, key)
    assert_untouched(store, backend)
    with pytest.raises(InvalidName):
        populated.set_tags("tiny@1", {"ok": "fine", key: "v"})
    with pytest.raises(InvalidName):
        populated.remove_tag("tiny@1", key)
    assert populated.resolve("tiny@1").tags == {}  # all-or-nothing: the valid tag was not applied either


@pytest.mark.parametrize("value", ["\x00", "a\nb", "a\rb", "tab\there", "\u202eevil", "bell\x07", "x" * 257, 5, None, b"v"])
def test_tag_value_refused(store: Registry, tmp_path: Path, value, backend):
    with pytest.raises(InvalidName) as exc:
        store.register(tmp_path / "does-not-exist.onnx", name="tiny", tags={"k": value})
    assert_ends_with_value(exc.value, value)
    assert_untouched(store, backend)


@pytest.mark.parametrize("value", ["", "plain", "../x is fine as text", "ünïcödé 🙂", "x" * 256])
def test_printable_tag_values_are_kept_verbatim(store: Registry, tiny_onnx, value):
    v = store.register(tiny_onnx(0), name="tiny", tags={"note": value}).version
    assert v.tags == {"note": value} == store.resolve("tiny@1").tags


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_in_references(populated: Registry, name):
    syntax = "@" in name or ":" in name  # "a:b" and "ok:a@b" are well-formed references, not hostile ones
    refs = [f"ok@{name}"] + ([] if syntax else [name, f"{name}@1", f"ok:{name}"])
    for ref in refs:
        with pytest.raises(InvalidReference):
            populated.resolve(ref)


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_in_every_other_entry_point(populated: Registry, name):
    with pytest.raises(InvalidName):
        populated.list(name)
    with pytest.raises(InvalidName):
        populated.attach("tiny@1", name, {})
    with pytest.raises(InvalidName):
        populated.reports("tiny@1", name)
    assert populated.reports("tiny@1") == []


@pytest.mark.parametrize("name", ["a", "0", "resnet50", "resnet-50_v1.5", "a" * 64, "9lives", "x.y-z_w"])
def test_valid_names_pass(name):
    assert validate_name(name) == name and validate_tag_key(name) == name
    if not name.isdigit():
        assert validate_alias(name) == name


def test_validators_on_their_own():
    with pytest.raises(InvalidName):
        validate_tag_value("a\x00")
    with pytest.raises(InvalidName) as exc:
        validate_name("ResNet50")
    assert "'resnet50'" in exc.value.hint  # the hint names the fix


@pytest.mark.parametrize("args", [["export", "resnet18", "--name", "../x"], ["export", "resnet18", "--tag", "../x=1"],
                                  ["register", "model.onnx", "--name", "../x"], ["alias", "tiny@1", "../x"],
                                  ["rm", "../x", "--yes"], ["show", "../x"]])
def test_the_cli_refuses_hostile_names_before_any_build_or_disk_access(tmp_path: Path, monkeypatch, args):
    """Issue 10.7: `zoo export resnet18 --name ../x` built and exported for 10 s before refusing."""
    from click.testing import CliRunner

    import zoo.plugins
    from zoo.cli import main

    def no_build(*a, **k):
        raise AssertionError("a plugin was resolved before the name was checked")

    monkeypatch.setattr(zoo.plugins, "resolve_frameworks", no_build)
    result = CliRunner().invoke(main, ["--store", str(tmp_path / "store"), *args])
    assert result.exit_code == 2, result.output
    assert "../x" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "store").exists()


# ---------------------------------------------------------------------- store addresses (issue 18)


@pytest.mark.parametrize("url", ["s3://models/zoo", "gs://b/p", "http://host/x", "file:///tmp/x"])
def test_store_url_of_another_scheme_is_refused(url: str, tmp_path: Path, monkeypatch):
    """`--store s3://...` once created a folder named `s3:`: now exit 2 naming the two forms --store takes."""
    from click.testing import CliRunner

    from zoo.cli import main

    monkeypatch.chdir(tmp_path)
    for args in (["--store", url, "list"], ["--store", url, "store", "init"], ["store", "info", url]):
        out = CliRunner().invoke(main, args)
        assert out.exit_code == 2 and "postgresql://" in out.output and "folder" in out.output, (args, out.output)
    assert list(tmp_path.iterdir()) == [], "nothing was created"


def test_empty_zoo_store_env_agrees_with_empty_store_option(tmp_path: Path, monkeypatch):
    from click.testing import CliRunner

    import zoo
    from zoo.cli import main
    from zoo.errors import InvalidInput

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ZOO_STORE", "")
    for args in (["list"], ["--store", "", "list"]):
        out = CliRunner().invoke(main, args)
        assert out.exit_code == 2 and "''" in out.output, (args, out.output)
    with pytest.raises(InvalidInput, match="ZOO_STORE"):
        zoo.open_registry()


@pytest.mark.parametrize("store", [5, 2.5, b"/tmp/x", ["a"]])
def test_load_with_a_store_that_is_not_a_path_is_invalid_input(store):
    import zoo
    from zoo.errors import InvalidInput

    with pytest.raises(InvalidInput, match="Expected store as a folder path"):
        zoo.load("m@1", store=store)
