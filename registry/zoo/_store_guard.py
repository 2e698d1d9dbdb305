"""A store knows it is a store: the identity checks every :class:`~zoo._registry.Registry` makes.

The blob store's marker and the metadata's record of the store id are compared on open and before
every write. Metadata that is missing, empty or another store's next to existing artifacts is a
:class:`~zoo.errors.StoreError` naming the recovery, never "a new, empty registry"; reads create
nothing; the first write creates a store that does not exist yet.
"""
from __future__ import annotations

import uuid
from pathlib import Path

from .errors import NotFound, StoreError
from .store import LEGACY_STORE_ID, BlobStore, MetadataStore, StoreIdentity

__all__ = ["RECOVER_HINT", "StoreGuard"]

RECOVER_HINT = ("restore registry.db from a backup of this store; zoo refuses to start a new database over existing "
                "artifacts, and `zoo verify` / `zoo gc` delete nothing while this is unresolved")


class StoreGuard:
    """The identity half of :class:`~zoo._registry.Registry` (a mixin over its two stores)."""

    root: Path
    location: str
    _meta: MetadataStore
    _blobs: BlobStore
    _identity: StoreIdentity | None

    def _check_identity(self) -> StoreIdentity | None:
        """The store's identity; None when no store exists here yet. Raises StoreError when the two
        halves disagree, or metadata is missing or empty next to artifacts (never "a new registry")."""
        return self._inspect()[0]

    def _inspect(self) -> tuple[StoreIdentity | None, bool]:
        """(identity, complete): ``complete`` is False while the marker or the metadata's record of the
        id is missing (a store to create, a legacy store to stamp, a lost marker to rewrite)."""
        marker = self._blobs.identity()
        recorded = self._meta.identity()
        if recorded is None:
            if self._has_objects():
                raise StoreError(
                    f"The store {self.location!r} holds artifacts, but its database {self._meta.location!r} is "
                    f"missing or empty" + (f" (store id {marker.store_id})" if marker else ""), hint=RECOVER_HINT)
            return None, False  # nothing to lose: a store being created, or no store at all
        if recorded.store_id == LEGACY_STORE_ID:
            if self._has_objects():
                with self._meta.read() as txn:
                    empty = not txn.models()
                if empty:
                    raise StoreError(
                        f"The store {self.location!r} holds artifacts, but its database {self._meta.location!r} "
                        "has no version at all (was it recreated?)", hint=RECOVER_HINT)
            return marker or recorded, False
        if marker is None:
            return recorded, False  # the marker was lost: the database vouches; the next write rewrites it
        if recorded.store_id != marker.store_id:
            raise StoreError(
                f"The database {self._meta.location!r} belongs to store {recorded.store_id}, but the artifacts at "
                f"{self._blobs.location!r} to store {marker.store_id}", hint=RECOVER_HINT)
        return marker, True

    def _has_objects(self) -> bool:
        return next(iter(self._blobs.digests()), None) is not None

    def _unborn(self) -> bool:
        """True for an existing folder where no store has been created yet (the clone's empty
        ``artifacts/``): listings show it as empty. A path that does not exist stays NotFound, so a
        typo in ``--store`` / ``ZOO_STORE`` is never mistaken for an empty registry."""
        return self._identity is None and self.root.is_dir() and self._check_identity() is None

    def _need_store(self, looking_for: str | None = None) -> None:
        """Before a read: a store must exist (a write by another process may have created it since open)."""
        if self._identity is None:
            self._identity = self._check_identity()
            if self._identity is None:
                wanted = f" (looking for {looking_for!r})" if looking_for else ""
                raise NotFound(f"No zoo store at {self.location!r}{wanted}",
                               hint="check --store / ZOO_STORE (default ./artifacts); `zoo export` or `zoo register` "
                                    "creates a store")

    def _prepare_write(self) -> None:
        """Before a write: the store is writable, is what it says it is, and exists (created if not)."""
        self.ensure_writable()
        identity, complete = self._inspect()
        if not complete:
            wanted = identity if identity is not None and identity.store_id != LEGACY_STORE_ID else StoreIdentity(uuid.uuid4().hex)
            self._meta.create(self._blobs.create(wanted))
            identity, complete = self._inspect()
            assert complete, "a store just created must be complete"
        self._identity = identity

    @property
    def read_only(self) -> bool:
        """True for a store opened read-only (reads work; writes raise StoreError)."""
        return self._meta.read_only or self._blobs.read_only

    def ensure_writable(self) -> None:
        """Raise :class:`~zoo.errors.StoreError` now if a write would be refused (a read-only store, a
        missing or foreign database): lets long work (an export) fail before it starts. Writes nothing."""
        if self.read_only:
            why = getattr(self._meta, "read_only_reason", None)  # a store that can say what is missing says it
            raise StoreError(why or f"The store {self.location!r} is read-only: it serves reads, not writes",
                             hint="run this command where the store is writable, or on a writable copy of it")
        self._check_identity()
