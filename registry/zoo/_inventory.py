"""Parameter counts of every architecture of every plugin, as ``zoo archs`` shows them.

By default the counts come from the architecture tables (:func:`zoo.architectures.param_counts`:
no framework import, no model built, milliseconds); the plugin contract tests check that every
plugin's build gives exactly those counts. ``build=True`` builds each plugin's inference graph
instead and compares it with the tables and the published reference. An architecture the tables
do not describe (one a plugin contributes beyond the nine) is always built, and compared with the
count its plugin publishes (the ``reference_params`` hook).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .architectures import ARCHITECTURES, REFERENCE_PARAMS, param_counts
from .plugins import FrameworkPlugin, contributed_architectures, inference_options
from .records import ParamCounts, Record

__all__ = ["ArchCounts", "FrameworkCounts", "count_architectures"]

TABLES = "tables"  # counted from zoo.architectures
BUILT = "built"  # counted on the plugin's built model


@dataclass(frozen=True)
class FrameworkCounts(Record):
    trainable: int
    non_trainable: int
    source: str  # TABLES or BUILT
    matches_reference: bool  # trainable equals the published count (True when none is published)
    matches_tables: bool | None = None  # a built model's counts equal the tables' (None: not compared)

    @property
    def ok(self) -> bool:
        return self.matches_reference and self.matches_tables is not False


@dataclass(frozen=True)
class ArchCounts(Record):
    arch: str
    reference: int | None  # published trainable count (zoo.architectures.REFERENCE_PARAMS, or the contributing plugin's)
    frameworks: dict[str, FrameworkCounts] = field(default_factory=dict)
    contributed_by: str | None = None  # the plugin that adds this architecture beyond zoo's nine; None for the nine

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.frameworks.values())


def _order(arch: str) -> tuple[int, str]:
    return (ARCHITECTURES.index(arch) if arch in ARCHITECTURES else len(ARCHITECTURES), arch)


def _table_counts(arch: str, num_classes: int) -> ParamCounts | None:
    try:
        return param_counts(arch, num_classes=num_classes)
    except KeyError:
        return None


def count_architectures(plugins: Sequence[FrameworkPlugin], *, build: bool = False, num_classes: int = 1000,
                        progress: Callable[[str], None] | None = None) -> list[ArchCounts]:
    """One row per architecture any of ``plugins`` builds (reference order), counts per plugin.

    ``progress`` is called before each model is built (``"<plugin>: <arch>"``); never without ``build``
    unless an architecture is missing from the tables.
    """
    archs = sorted({a for p in plugins for a in p.architectures()}, key=_order)
    contributed = contributed_architectures(plugins)
    rows = []
    for arch in archs:
        by, published = contributed.get(arch, (None, REFERENCE_PARAMS.get(arch)))
        reference = published if num_classes == 1000 else None
        tables = _table_counts(arch, num_classes)
        row = ArchCounts(arch, reference, contributed_by=by)
        for plugin in plugins:
            if arch not in plugin.architectures():
                continue
            if tables is not None and not build:
                counts, source, matches_tables = tables, TABLES, None
            else:
                if progress is not None:
                    progress(f"{plugin.name}: {arch}")
                model = plugin.build(arch, num_classes=num_classes, **inference_options(plugin, arch))
                counts, source = plugin.count_params(model), BUILT
                del model
                matches_tables = None if tables is None else counts == tables
            row.frameworks[plugin.name] = FrameworkCounts(
                counts.trainable, counts.non_trainable, source,
                matches_reference=reference is None or counts.trainable == reference, matches_tables=matches_tables,
            )
        rows.append(row)
    return rows
