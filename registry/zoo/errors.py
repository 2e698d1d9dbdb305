"""One exception hierarchy for zoo.

Every error a user can cause derives from :class:`ZooError`. The CLI maps each class to an exit
code and prints ``message`` (which names the bad value) and ``hint`` (which names the fix); no
traceback unless ``--debug``. Library users catch ``ZooError`` or a subclass.
"""
from __future__ import annotations


class ZooError(Exception):
    """Base class. ``exit_code`` is what the CLI exits with."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class InvalidInput(ZooError):
    """A value given by the user is malformed (name, reference, option, file, array)."""

    exit_code = 2


class InvalidName(InvalidInput):
    """A model name, alias or tag does not match the documented pattern."""


class InvalidReference(InvalidInput):
    """A model reference (``name[:framework][@version|alias]``) cannot be parsed."""


class InvalidModelFile(InvalidInput):
    """A file given to ``zoo register`` is not a safe, valid ONNX model."""


class InvalidWeights(InvalidInput):
    """A weight file is unsafe, unreadable, or does not fit the architecture."""


class NotFound(ZooError):
    """A model, version, alias, architecture or plugin does not exist."""

    exit_code = 3


class PluginError(ZooError):
    """A plugin failed to load, is unavailable, or two plugins share a name."""

    exit_code = 4


class PluginUnavailable(PluginError):
    """The plugin's framework is not installed or failed to import."""


class DuplicatePlugin(PluginError):
    """Two installed plugins claim the same name."""


class IntegrityError(ZooError):
    """Stored bytes do not match their recorded sha256 (corruption or tampering)."""

    exit_code = 5


class ImmutableError(ZooError):
    """An attempt to change something a registry promises never changes (a version's bytes or
    recorded facts, a report, the store's identity), e.g. an ``UPDATE`` refused by the database."""

    exit_code = 6


class StoreError(ZooError):
    """The store cannot be opened or written: read-only, disk full, lock timeout, a missing or foreign
    database next to existing artifacts, a corrupt record."""

    exit_code = 7


class StoreUnavailable(StoreError):
    """A service of the shared store (PostgreSQL or S3) cannot be reached or timed out: an outage, not a
    fault in the store. ``service`` is ``"postgresql"`` or ``"s3"``; reads the local cache can answer still work
    (see the README's "When a service is down")."""

    def __init__(self, message: str, *, hint: str | None = None, service: str = ""):
        super().__init__(message, hint=hint)
        self.service = service


class StaleResolution(UserWarning):
    """An alias or other moving reference was answered from the local cache's last resolution (the caller
    allowed stale answers and the registry database was unreachable); the message says how old it is."""


class DownloadError(ZooError):
    """A file could not be downloaded whole: no network, an HTTP error, or a transfer cut short."""

    exit_code = 7


class ExportError(ZooError):
    """A framework could not export a model to ONNX, or the export failed verification."""

    exit_code = 8


class ProviderUnavailable(ZooError):
    """A forced ONNX Runtime execution provider cannot run on this machine."""

    exit_code = 9


class ParityFailure(ZooError):
    """At least one framework pair is outside its parity tolerance."""

    exit_code = 10


class Conflict(ZooError):
    """The request contradicts the registry's current state: removing a version aliases point at,
    deleting an alias from a version it does not point at."""

    exit_code = 11


class Unavailable(ZooError):
    """A server cannot take the request now: its queue is full, it is draining, the request timed
    out, or its port is taken. Retrying later (or elsewhere) can succeed."""

    exit_code = 12


class RequestTimeout(Unavailable):
    """A served request did not finish within the server's per-request timeout."""


class GateRefused(ZooError):
    """A gated alias was not moved: the candidate does not meet the alias's policy (each unmet
    requirement and its figures are named; ``--force --reason TEXT`` overrides, recorded)."""

    exit_code = 13


INTERNAL_ERROR_EXIT = 70  # a bug or an unexpected environment fault (not a ZooError)
INTERRUPTED_EXIT = 130
