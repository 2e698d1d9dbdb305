"""Hostile names: every user-chosen identifier is refused before the store is touched.

Model names, aliases and tag keys share one pattern ([a-z0-9][a-z0-9._-]{0,63}, ASCII); tag values
are printable and bounded. The refusal is InvalidName whose message ends with the value received.

How the facts are split (cheapest level that proves each one):

- every hostile value against the pure validators (``zoo._names``, ``zoo._refs.parse_ref``): the
  message, the pattern and the hint, one test case per value;
- every hostile value through every registry entry point, on one store per backend, looped inside
  one test (the validation happens before any I/O, so a loop costs milliseconds where a fresh
  PostgreSQL schema per case cost a second); then one look at the store proves nothing was touched;
- the CLI refuses before any build or disk access (in-process, one case per command).
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from backends import BACKENDS, Backend
from zoo._names import (
    NAME_PATTERN,
    validate_alias,
    validate_kind,
    validate_name,
    validate_tag_key,
    validate_tag_value,
    validate_tags,
)
from zoo._refs import parse_ref
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
NOT_ALIASES = ["latest", "3", "0042"]  # valid names, but a version number or the implicit alias
HOSTILE_TAG_VALUES = ["\x00", "a\nb", "a\rb", "tab\there", "\u202eevil", "bell\x07", "x" * 257, 5, None, b"v"]
PRINTABLE_TAG_VALUES = ["", "plain", "../x is fine as text", "ünïcödé 🙂", "x" * 256]
# A tag key must be hashable to reach the validator inside a dict.
HOSTILE_KEYS = HOSTILE + [k for k in NOT_STRINGS if not isinstance(k, list)]


def ends_with_value(message: str, value: object) -> bool:
    if isinstance(value, str) and len(value) > 100:
        return message.endswith(f"({len(value)} characters)") and repr(value[:20])[:-1] in message
    return message.endswith(f"Received: {value!r}")


def assert_ends_with_value(exc: InvalidName | InvalidReference, value: object) -> None:
    assert ends_with_value(exc.message, value), exc.message


def hostile_refs(name: str) -> list[str]:
    """The references a hostile name can hide in ("a:b" and "ok:a@b" are well-formed, so only NAME@it)."""
    syntax = "@" in name or ":" in name
    return [f"ok@{name}"] + ([] if syntax else [name, f"{name}@1", f"ok:{name}"])


# --- the pure validators: every value, one case each ------------------------------------------------

@pytest.mark.parametrize("name", HOSTILE + NOT_STRINGS)
def test_name_validators_refuse_with_the_pattern_and_the_value(name):
    for validate in (validate_name, validate_tag_key, validate_kind, validate_alias):
        with pytest.raises(InvalidName) as exc:
            validate(name)
        assert_ends_with_value(exc.value, name)
        assert NAME_PATTERN in exc.value.message
        assert exc.value.hint  # every refusal says what to do


@pytest.mark.parametrize("alias", NOT_ALIASES)
def test_version_like_aliases_are_refused(alias):
    assert validate_name(alias) == alias
    with pytest.raises(InvalidName) as exc:
        validate_alias(alias)
    assert_ends_with_value(exc.value, alias)


@pytest.mark.parametrize("value", HOSTILE_TAG_VALUES)
def test_tag_value_validator_refuses(value):
    with pytest.raises(InvalidName) as exc:
        validate_tag_value(value)
    assert_ends_with_value(exc.value, value)
    with pytest.raises(InvalidName):
        validate_tags({"k": value})


@pytest.mark.parametrize("key", HOSTILE_KEYS)
def test_tags_validator_refuses_hostile_keys_even_beside_valid_ones(key):
    with pytest.raises(InvalidName) as exc:
        validate_tags({"ok": "fine", key: "v"})
    assert_ends_with_value(exc.value, key)


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_in_references_are_refused_by_the_parser(name):
    for ref in hostile_refs(name):
        with pytest.raises(InvalidReference):
            parse_ref(ref)


@pytest.mark.parametrize("name", ["a", "0", "resnet50", "resnet-50_v1.5", "a" * 64, "9lives", "x.y-z_w"])
def test_valid_names_pass(name):
    assert validate_name(name) == name and validate_tag_key(name) == name and validate_kind(name) == name
    if not name.isdigit():
        assert validate_alias(name) == name


def test_validators_on_their_own():
    with pytest.raises(InvalidName):
        validate_tag_value("a\x00")
    with pytest.raises(InvalidName) as exc:
        validate_name("ResNet50")
    assert "'resnet50'" in exc.value.hint  # the hint names the fix


# --- every entry point of the registry, on each backend ------------------------------------------------

def entry_point_calls(store: Registry, missing: Path) -> list[tuple[str, Callable[[object], object], list, type]]:
    """(what, call(value), values, expected error): every place a user-chosen identifier enters the registry."""
    return [
        ("register name", lambda v: store.register(missing, name=v), HOSTILE + NOT_STRINGS, InvalidName),
        ("register tag key", lambda v: store.register(missing, name="tiny", tags={v: "v"}), HOSTILE_KEYS, InvalidName),
        ("register tag value", lambda v: store.register(missing, name="tiny", tags={"k": v}), HOSTILE_TAG_VALUES,
         InvalidName),
        ("set_alias", lambda v: store.set_alias("tiny@1", v), HOSTILE + NOT_STRINGS + NOT_ALIASES, InvalidName),
        ("remove_alias", lambda v: store.remove_alias("tiny", v), HOSTILE + NOT_STRINGS + NOT_ALIASES, InvalidName),
        ("set_tags", lambda v: store.set_tags("tiny@1", {"ok": "fine", v: "v"}), HOSTILE_KEYS, InvalidName),
        ("remove_tag", lambda v: store.remove_tag("tiny@1", v), HOSTILE_KEYS, InvalidName),
        ("list", lambda v: store.list(v), HOSTILE, InvalidName),
        ("attach kind", lambda v: store.attach("tiny@1", v, {}), HOSTILE, InvalidName),
        ("reports kind", lambda v: store.reports("tiny@1", v), HOSTILE, InvalidName),
        ("resolve", store.resolve, [ref for name in HOSTILE for ref in hostile_refs(name)], InvalidReference),
    ]


@pytest.fixture(scope="module", params=BACKENDS)
def populated(request, tmp_path_factory) -> tuple[Registry, Backend, Path]:
    """One registry holding tiny@1 on each backend (one schema per backend for the whole module)."""
    from conftest import make_tiny_onnx

    root = tmp_path_factory.mktemp("hostile")
    services = request.getfixturevalue("shared_services") if request.param == "shared" else None
    backend = Backend.create(request.param, root, services)
    registry = backend.open(cache=root / "cache") if request.param == "shared" else backend.open()
    registry.register(make_tiny_onnx(root / "m" / "model.onnx"), name="tiny")
    yield registry, backend, root
    registry.close()
    backend.drop()


def test_every_entry_point_refuses_every_hostile_value_and_touches_nothing(populated):
    store, backend, root = populated
    before = (store.list(), backend.objects(store), store.reports("tiny@1"))
    missing = root / "does-not-exist.onnx"  # reading it would raise InvalidModelFile instead
    wrong: list[str] = []
    calls = 0
    for what, call, values, error in entry_point_calls(store, missing):
        for value in values:
            calls += 1
            try:
                call(value)
            except error as exc:
                if not ends_with_value(exc.message, value):
                    wrong.append(f"{what} {value!r}: {exc.message}")
            except Exception as exc:  # collect every miss, then fail once with all of them
                wrong.append(f"{what} {value!r}: {type(exc).__name__}: {exc}")
            else:
                wrong.append(f"{what} {value!r}: accepted")
    assert not wrong, "\n".join(wrong[:20])
    assert calls > 500
    assert (store.list(), backend.objects(store), store.reports("tiny@1")) == before
    assert backend.scratch(store) == []
    tiny = store.resolve("tiny@1")
    assert tiny.aliases == () and tiny.tags == {}  # all-or-nothing: no valid tag beside a hostile one was applied


def test_the_documented_example_message_and_printable_tag_values_round_trip(store: Registry, tiny_onnx):
    """The one store round trip per backend that is not a refusal: printable values are kept verbatim."""
    with pytest.raises(InvalidName) as exc:
        store.register(tiny_onnx(0), name="../x")
    assert exc.value.message == "Expected a model name matching [a-z0-9][a-z0-9._-]{0,63}. Received: '../x'"
    assert store.list() == []
    tags = {f"note{i}": value for i, value in enumerate(PRINTABLE_TAG_VALUES)}
    v = store.register(tiny_onnx(0), name="tiny", tags=tags).version
    assert v.tags == tags == store.resolve("tiny@1").tags


# --- the CLI ---------------------------------------------------------------------------------------------

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
