"""The reference grammar: NAME, NAME@N, NAME@ALIAS, NAME@latest, NAME:FRAMEWORK[@...]."""
from __future__ import annotations

import pytest

from zoo._refs import GRAMMAR, MIN_DIGEST_HEX, Digest, Ref, parse_digest, parse_ref
from zoo.errors import InvalidReference


@pytest.mark.parametrize(
    "text, expected",
    [
        ("resnet50", Ref("resnet50", "latest", None)),
        ("resnet50@latest", Ref("resnet50", "latest", None)),
        ("resnet50@3", Ref("resnet50", 3, None)),
        ("resnet50@123456789", Ref("resnet50", 123456789, None)),
        ("resnet50@prod", Ref("resnet50", "prod", None)),
        ("resnet50@v3", Ref("resnet50", "v3", None)),
        ("resnet50@1.5", Ref("resnet50", "1.5", None)),  # an alias: only all-digit selectors are versions
        ("resnet50:torch", Ref("resnet50", "latest", "torch")),
        ("resnet50:tensorflow@2", Ref("resnet50", 2, "tensorflow")),
        ("resnet50:torch@prod", Ref("resnet50", "prod", "torch")),
        ("resnet50:pytorch", Ref("resnet50", "latest", "torch")),
        ("resnet50:tf@latest", Ref("resnet50", "latest", "tensorflow")),
        ("resnet50:keras", Ref("resnet50", "latest", "tensorflow")),
        ("my-plugin.model_1:jax", Ref("my-plugin.model_1", "latest", "jax")),
        ("0", Ref("0", "latest", None)),
    ],
)
def test_valid_references(text, expected):
    ref = parse_ref(text)
    assert ref == expected
    assert parse_ref(str(ref)) == ref  # str() renders a reference that parses back to itself


def test_ref_properties():
    assert parse_ref("m@3").version == 3 and parse_ref("m@3").alias is None
    assert parse_ref("m@prod").alias == "prod" and parse_ref("m@prod").version is None
    assert parse_ref("m").is_latest and parse_ref("m").alias is None and parse_ref("m").version is None
    assert str(parse_ref("m:pytorch@latest")) == "m:torch"


@pytest.mark.parametrize(
    "text",
    [
        "", "@3", ":torch", "m@", "m:", "m:@3", "m@0", "m@01", "m@-1", "m@1234567890",
        "m@3@4", "m:torch:tf", "m@prod@x", "M", "ResNet50", "m@Prod", "m:tor ch", " m", "m ", "m\n",
        "../x", "/abs", "a/b", "a\\b", "%2e%2e", "m@../x", "m:../x", "m\x00", "m@\x00", "rеsnet",  # Cyrillic е
        "m:ｔｏｒｃｈ", "m@ｐｒｏｄ", "a" * 65, "m@" + "a" * 65, "m:" + "t" * 33, "m" * 1000,
    ],
)
def test_invalid_references(text):
    with pytest.raises(InvalidReference) as exc:
        parse_ref(text)
    assert GRAMMAR in exc.value.hint
    assert "Received:" in exc.value.message


@pytest.mark.parametrize("value", [None, 3, b"resnet50", ["resnet50"]])
def test_non_string_references(value):
    with pytest.raises(InvalidReference):
        parse_ref(value)


def test_message_ends_with_the_value():
    with pytest.raises(InvalidReference) as exc:
        parse_ref("../x@prod")
    assert exc.value.message.endswith("Received: '../x@prod'")


def test_grammar_is_documented_in_the_module():
    import zoo._refs

    doc = zoo._refs.__doc__
    for production in ("ref ", "name ", "framework ", "selector ", "version ", "alias ", "digest "):
        assert production in doc


HEX64 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("resnet50@sha256:" + HEX64[:12], Ref("resnet50", Digest(HEX64[:12]))),
        ("resnet50@sha256:" + HEX64, Ref("resnet50", Digest(HEX64))),
        ("resnet50@sha256:" + HEX64[:20].upper(), Ref("resnet50", Digest(HEX64[:20]))),  # any case; stored lower
        ("resnet50@SHA256:" + HEX64[:12], Ref("resnet50", Digest(HEX64[:12]))),
        ("resnet50:tf@sha256:" + HEX64[:12], Ref("resnet50", Digest(HEX64[:12]), "tensorflow")),
    ],
)
def test_digest_references(text, expected):
    ref = parse_ref(text)
    assert ref == expected
    assert ref.digest == expected.selector and ref.version is None and ref.alias is None and not ref.is_latest
    assert parse_ref(str(ref)) == ref


@pytest.mark.parametrize(
    "text, needle",
    [
        ("m@sha256:" + HEX64[:MIN_DIGEST_HEX - 1], "at least 12 hex digits (got 11)"),
        ("m@sha256:", "at least 12 hex digits (got 0)"),
        ("m@sha256:" + HEX64 + "0", "12 to 64 hex digits"),
        ("m@sha256:" + HEX64[:11] + "g", "12 to 64 hex digits"),
        ("m@sha256:" + HEX64[:12] + " ", "12 to 64 hex digits"),
        ("m@sha256:-" + HEX64[:12], "12 to 64 hex digits"),
        ("m@sha256:" + "\uff10" * 12, "12 to 64 hex digits"),  # fullwidth digits are not hex
        ("m@md5:" + HEX64[:12], "ALIAS"),  # any other scheme is an (invalid) alias
    ],
)
def test_invalid_digest_references(text, needle):
    with pytest.raises(InvalidReference) as exc:
        parse_ref(text)
    assert needle in exc.value.message and "Received:" in exc.value.message


@pytest.mark.parametrize("value", [HEX64, "sha256:" + HEX64[:12], HEX64[:12].upper()])
def test_parse_digest_accepts_bare_or_prefixed_hex(value):
    assert HEX64.startswith(parse_digest(value).prefix)


@pytest.mark.parametrize("value", ["", HEX64[:11], "xyz" * 5, None, 12])
def test_parse_digest_refuses_short_or_non_hex(value):
    with pytest.raises(InvalidReference):
        parse_digest(value)
