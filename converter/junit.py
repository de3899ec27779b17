"""``wconv validate --junit FILE``: one JUnit test case per compared layer and output, for CI systems."""

from __future__ import annotations

from xml.etree import ElementTree

from .outputs import atomic_path
from .validation import Report


def write_junit(report: Report, path) -> None:
    cases = [("layer", diff) for diff in report.layers] + [("output", diff) for diff in report.outputs]
    suite = ElementTree.Element("testsuite", name=f"wconv validate {report.source} vs {report.target}",
                                tests=str(len(cases)), failures=str(sum(not d.ok for _, d in cases)))
    for kind, diff in cases:
        case = ElementTree.SubElement(suite, "testcase", classname=f"wconv.{kind}", name=diff.name)
        if not diff.ok:
            failure = ElementTree.SubElement(case, "failure", message=f"max abs diff {diff.max_abs:.3g}")
            failure.text = (f"shape {diff.shape}: max abs diff {diff.max_abs:.3g} ({diff.max_rel:.3g} of the largest "
                            f"value), cosine {diff.cosine:.6f}; tolerance {report.atol:g} + {report.rtol:g} x largest")
    with atomic_path(path) as temp:
        ElementTree.ElementTree(suite).write(temp, encoding="utf-8", xml_declaration=True)
