"""``zoo promote``: produce the reports an alias's policy reads that a candidate lacks (a parity check of
the registered version, an eval against the current version, an interleaved bench of both), then move
the alias through its gate (:meth:`zoo._registry.Registry.set_alias`, which decides)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._names import validate_alias
from ._promotion import gate
from .errors import InvalidInput
from .gates import Policy

if TYPE_CHECKING:
    from ._registry import Registry
    from .records import ModelVersion

__all__ = ["promote"]


def promote(registry: "Registry", ref: str, alias: str, *, data: str | None = None, reason: str | None = None,
            min_time: float = 2.0, progress: Any = None) -> tuple["ModelVersion", list[str]]:
    """Produce the reports ``alias``'s policy reads that ``ref`` lacks (parity of it and its siblings, eval on
    ``data`` against the current version, an interleaved bench of both), then move the alias through its gate.
    Returns the version and what was run; GateRefused when the candidate still falls short."""
    validate_alias(alias)
    candidate = registry.resolve(ref)
    with registry._read() as txn:
        require = txn.policy(candidate.name, alias)
        target = txn.alias_target(candidate.name, alias)
        current = txn.get(candidate.name, target) if target is not None else None
        result = gate(txn, candidate, alias)
    ran: list[str] = []
    missing = {c["requirement"] for c in result.unmet} if result is not None else set()
    policy = Policy.parse(candidate.name, alias, require or [])
    kinds = {r.kind for r in policy.requirements if r.text in missing}
    same = current is not None and current.version == candidate.version
    if "parity" in kinds:  # the candidate's own check; one no plugin built (an ONNX file) stays unmet
        from .parity import parity_versions
        from .parity.versions import _checkable

        if _checkable(candidate) is None:  # with its siblings: the model's versions built from the same weights
            weights = candidate.provenance.get("weights_sha256")
            group = [v for v in registry.list(candidate.name) if _checkable(v) is None and weights is not None
                     and v.provenance.get("weights_sha256") == weights] or [candidate]
            parity_versions(registry, group, progress=progress)
            ran.append("parity")
    if "eval" in kinds:
        if data is None:
            raise InvalidInput(f"Expected a labelled data set (data): the policy on {candidate.name}@{alias} reads eval figures and "
                               f"{candidate.ref} has none to compare. Received: no data set",
                               hint=f"zoo promote {ref} {alias} --data val/ (a folder of class folders, or a CSV)")
        from .evaluation import evaluate

        evaluate(candidate.ref, data, against=None if current is None or same else current.ref, registry=registry)
        ran.append("eval")
    if "bench" in kinds:
        from .bench import bench_artifacts

        subjects = [candidate] + ([current] if current is not None and not same else [])
        payloads = bench_artifacts([(registry.path(v), v) for v in subjects], batches=[1], min_time=min_time,
                                   progress=progress)
        for version, payload in zip(subjects, payloads, strict=True):
            registry.attach(version, "bench", payload)
        ran.append("bench")
    return registry.set_alias(candidate.ref, alias, reason=reason), ran
