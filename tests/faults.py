"""Fault injection for the tests, as store wrappers (production code reads no test switch).

:func:`crash_at` makes a registry SIGKILL its own process at a named step of a registration, by
wrapping its two stores: after the blob store staged the bytes (``after_tmp_write``), after it
published them under their digest (``after_rename``), after the version row was inserted but before
the commit (``before_commit``), and right after the commit (``after_commit``).
:class:`FailingCommit` makes the next write transaction fail at COMMIT as a full disk does.
"""
from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

CRASH_POINTS = ("after_tmp_write", "after_rename", "before_commit", "after_commit")


def _die() -> None:
    os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))


class _Wrapper:
    def __init__(self, inner: Any, point: str):
        self._inner = inner
        self._point = point

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class CrashingBlobs(_Wrapper):
    def stage(self, *args: Any, **kwargs: Any) -> Any:
        staged = self._inner.stage(*args, **kwargs)
        if self._point == "after_tmp_write":
            _die()
        return staged

    def publish(self, staged: Any) -> None:
        self._inner.publish(staged)
        if self._point == "after_rename":
            _die()


class _CrashingTxn(_Wrapper):
    added = False

    def add_version(self, record: Any) -> Any:
        version = self._inner.add_version(record)
        self.added = True
        if self._point == "before_commit":
            _die()
        return version


class CrashingMetadata(_Wrapper):
    @contextmanager
    def write(self) -> Iterator[Any]:
        with self._inner.write() as txn:
            wrapped = _CrashingTxn(txn, self._point)
            yield wrapped
        if wrapped.added and self._point == "after_commit":
            _die()


def crash_at(registry: Any, point: str) -> Any:
    """``registry``, made to SIGKILL its process at ``point`` (one of :data:`CRASH_POINTS`) of its next registration."""
    assert point in CRASH_POINTS, point
    registry._meta = CrashingMetadata(registry._meta, point)
    registry._blobs = CrashingBlobs(registry._blobs, point)
    return registry


class FailingCommit:
    """A metadata store whose next ``failures`` write transactions fail as SQLite does on a full disk at COMMIT."""

    def __init__(self, inner: Any, failures: int = 1):
        self._inner = inner
        self.failures = failures

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    @contextmanager
    def write(self) -> Iterator[Any]:
        from zoo.errors import StoreError

        with self._inner.write() as txn:
            yield txn
            if self.failures:
                self.failures -= 1
                raise StoreError("Cannot use the registry database: no space left on device")
