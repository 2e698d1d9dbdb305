"""The test suite's own rules (conftest): when the shared-store tests are deselected, and which they are."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

import conftest
from backends import PG_ENV, S3_ENV


@pytest.fixture
def no_services(monkeypatch):
    """A machine with neither PostgreSQL's server binaries nor moto_server, and no external services."""
    monkeypatch.delenv(PG_ENV, raising=False)
    monkeypatch.delenv(S3_ENV, raising=False)
    monkeypatch.setattr(conftest.shutil, "which", lambda name: None)
    monkeypatch.setattr(conftest.glob, "glob", lambda pattern: [])


def test_missing_services_are_named(no_services):
    assert conftest.missing_shared_services() == "PostgreSQL and moto_server not installed"


def test_external_services_need_nothing_installed(no_services, monkeypatch):
    monkeypatch.setenv(PG_ENV, "postgresql://db/zoo")
    monkeypatch.setenv(S3_ENV, "s3://bucket")
    assert conftest.missing_shared_services() is None


def test_installed_services_are_found(monkeypatch):
    monkeypatch.delenv(PG_ENV, raising=False)
    monkeypatch.delenv(S3_ENV, raising=False)
    monkeypatch.setattr(conftest.shutil, "which", lambda name: f"/usr/bin/{name}")
    assert conftest.missing_shared_services() is None


@pytest.mark.parametrize("item, shared", [
    (SimpleNamespace(fixturenames=["shared_services", "tmp_path"]), True),
    (SimpleNamespace(fixturenames=["store", "backend"], callspec=SimpleNamespace(params={"backend": "shared"})), True),
    (SimpleNamespace(fixturenames=["populated"], callspec=SimpleNamespace(params={"populated": "shared"})), True),
    (SimpleNamespace(fixturenames=["store", "backend"], callspec=SimpleNamespace(params={"backend": "embedded"})), False),
    (SimpleNamespace(fixturenames=["tmp_path"]), False),
])
def test_which_tests_use_the_shared_store(item, shared):
    assert conftest.uses_shared_store(item) is shared


@pytest.mark.parametrize("ci, deselected", [(None, True), ("false", True), ("true", False), ("1", False)])
def test_shared_store_tests_are_deselected_only_outside_ci(no_services, monkeypatch, ci, deselected):
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    shared = SimpleNamespace(fixturenames=["shared_services"])
    local = SimpleNamespace(fixturenames=["tmp_path"])
    items = [shared, local]
    gone: list = []
    config = SimpleNamespace(hook=SimpleNamespace(pytest_deselected=lambda items: gone.extend(items)), stash={})
    conftest.pytest_collection_modifyitems(config, items)
    assert items == ([local] if deselected else [shared, local])
    assert gone == ([shared] if deselected else [])
    line = config.stash.get(conftest._SHARED_SKIPPED)
    assert (line is not None) == deselected
    if line:
        assert line.startswith("1 shared-store tests not run (PostgreSQL and moto_server not installed)")
        assert "apt-get install -y postgresql" in line and "CI=true" in line
