"""Parity reports as JUnit XML: one testsuite per architecture, one testcase per pair (CI dashboards read it)."""
from __future__ import annotations

from collections.abc import Sequence

from .report import ParityReport

__all__ = ["to_junit"]


def to_junit(reports: Sequence[ParityReport], *, suite: str = "zoo-parity") -> str:
    """JUnit XML: one testsuite per architecture, one testcase per pair; setup errors are failing testcases."""
    import xml.etree.ElementTree as ET

    root = ET.Element("testsuites", name=suite)
    for r in reports:
        total = sum(r.timings_s.values())
        failures = len(r.failures) + len(r.errors)
        ts = ET.SubElement(root, "testsuite", name=f"parity.{r.arch}", tests=str(len(r.pairs) + len(r.errors)),
                           failures=str(failures), errors="0", time=f"{total:.3f}")
        props = ET.SubElement(ts, "properties")
        for key, value in (("weights_sha256", r.weights_sha256), ("input_size", r.input_size), ("num_classes", r.num_classes),
                           ("batch", r.batch), ("seed", r.seed), ("rtol", r.tolerances.rtol), ("top1", r.tolerances.top1),
                           ("provider", r.provider)):
            ET.SubElement(props, "property", name=key, value=str(value))
        for p in r.pairs:
            tc = ET.SubElement(ts, "testcase", classname=f"parity.{r.arch}.{p.kind}", name=p.label, time="0")
            detail = (f"max_abs={p.max_abs_error:.3g} max_rel={p.max_rel_error:.3g} cos_min={p.cosine_min:.6f} "
                      f"top1={p.top1_agreement:.3f} top5={p.top5_agreement:.3f}")
            if p.passed:
                ET.SubElement(tc, "system-out").text = detail
            else:
                failure = ET.SubElement(tc, "failure", message=p.reason or "failed", type=p.kind)
                failure.text = detail + "\n" + "\n".join(r.diagnosis)
        for label, message in r.errors.items():
            tc = ET.SubElement(ts, "testcase", classname=f"parity.{r.arch}.setup", name=label, time="0")
            ET.SubElement(tc, "failure", message=message, type="error")
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)
