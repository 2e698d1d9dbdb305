"""Gate policies (zoo.gates): the requirement syntax, and each requirement checked against attached reports."""
from __future__ import annotations

import pytest

import zoo
from zoo.errors import InvalidInput
from zoo.gates import Policy, check, parse_requirement


@pytest.mark.parametrize("text, mode, value", [
    ("parity", "pass", 0.0),
    ("eval.top1 >= 0.75", "absolute", 0.75),
    ("eval.top1 >= 75%", "absolute", 0.75),
    ("eval.top1>=prod-0.5%", "offset", -0.005),
    ("eval.top5 > prod + 1", "offset", 1.0),
    ("eval.top1 >= current", "offset", 0.0),
    ("bench.p50 <= 1.1 * prod", "factor", 1.1),
])
def test_requirement_syntax(text, mode, value):
    req = parse_requirement(text, "prod")
    assert req.mode == mode and req.value == pytest.approx(value)


@pytest.mark.parametrize("text, needle", [
    ("", "at most 200 characters"),
    ("x" * 201, "at most 200 characters"),
    ("eval.top1 => 0.7", "Expected a requirement like"),
    ("eval.accuracy >= 0.7", "'eval.accuracy'"),
    ("eval.top1 >= staging - 1%", "'staging'"),
    ("bench.p50 <= prod * 1.1", "right-hand side"),
    ("parity; drop table", "Expected a requirement like"),
])
def test_malformed_requirements_name_the_bad_part(text, needle):
    with pytest.raises(InvalidInput) as caught:
        parse_requirement(text, "prod")
    assert needle in str(caught.value)


@pytest.fixture
def two_versions(tmp_path, tiny_onnx):
    reg = zoo.open_registry(tmp_path / "store")
    old = reg.register(tiny_onnx(0), name="m").version
    new = reg.register(tiny_onnx(1), name="m").version
    return reg, old, new


def _eval(reg, ref, top1, digest="d" * 64):
    reg.attach(ref, "eval", {"data": {"digest": digest}, "top1": top1, "top5": 1.0})


def _bench(reg, ref, p50, batch=1):
    reg.attach(ref, "bench", {"results": [{"batch": batch, "onnxruntime": {"p50_ms": p50, "p99_ms": p50 * 2, "throughput": 1e3 / p50}}]})


def test_a_worse_candidate_is_refused_with_the_figures_and_a_better_one_passes(two_versions):
    reg, old, new = two_versions
    policy = Policy.parse("m", "prod", ["parity", "eval.top1 >= prod - 0.5%", "bench.p50 <= 1.1 * prod"])
    _eval(reg, old.ref, 0.80)
    _bench(reg, old.ref, 10.0)
    _eval(reg, new.ref, 0.79)
    _bench(reg, new.ref, 12.0)
    reg.attach(new.ref, "parity", {"passed": False})
    result = check(policy, reg.resolve(new.ref), reg.resolve(old.ref), reg.reports)
    assert not result.passed and [c["requirement"] for c in result.unmet] == [r.text for r in policy.requirements]
    by_req = {c["requirement"]: c for c in result.checks}
    assert by_req["eval.top1 >= prod - 0.5%"]["value"] == 0.79 and by_req["eval.top1 >= prod - 0.5%"]["bound"] == pytest.approx(0.795)
    assert by_req["bench.p50 <= 1.1 * prod"]["bound"] == pytest.approx(11.0)
    _eval(reg, new.ref, 0.81)
    _bench(reg, new.ref, 10.5)
    reg.attach(new.ref, "parity", {"passed": True})
    assert check(policy, reg.resolve(new.ref), reg.resolve(old.ref), reg.reports).passed


def test_relative_eval_compares_the_same_data_set_only(two_versions):
    reg, old, new = two_versions
    policy = Policy.parse("m", "prod", ["eval.top1 >= prod"])
    _eval(reg, old.ref, 0.5, digest="a" * 64)
    _eval(reg, new.ref, 0.9, digest="b" * 64)
    (unmet,) = check(policy, reg.resolve(new.ref), reg.resolve(old.ref), reg.reports).unmet
    assert "no eval of both versions on one data set" in unmet["why"]


def test_no_current_version_meets_relative_requirements_but_not_absolute_ones(two_versions):
    reg, _, new = two_versions
    policy = Policy.parse("m", "prod", ["eval.top1 >= prod", "eval.top1 >= 0.9"])
    _eval(reg, new.ref, 0.8)
    result = check(policy, reg.resolve(new.ref), None, reg.reports)
    assert [c["met"] for c in result.checks] == [True, False]
