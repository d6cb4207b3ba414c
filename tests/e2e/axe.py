"""Run axe-core (tests/e2e/vendor/axe.min.js, from npm; no network) on a page and fail on serious problems."""

from pathlib import Path

import pytest
from playwright.sync_api import Page

AXE_SOURCE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text(encoding="utf-8")
BLOCKING_IMPACTS = ("serious", "critical")
NODES_SHOWN = 3

RUN_AXE = """async () => {
    const results = await axe.run(document, {resultTypes: ["violations"]});
    return results.violations.map((v) => ({
        id: v.id,
        impact: v.impact,
        help: v.help,
        helpUrl: v.helpUrl,
        nodes: v.nodes.map((n) => ({target: n.target.join(" "), summary: n.failureSummary || ""})),
    }));
}"""


def axe_violations(page: Page) -> list[dict]:
    """Every axe-core violation on the page as it is now, whatever its impact."""
    page.wait_for_load_state("load")
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE_SOURCE)
    return page.evaluate(RUN_AXE)


def describe_violations(url: str, violations: list[dict]) -> str:
    lines = [f"axe-core: {len(violations)} serious or critical accessibility violation(s) on {url}"]
    for violation in violations:
        lines.append(f"- [{violation['impact']}] {violation['id']}: {violation['help']} ({violation['helpUrl']})")
        for node in violation["nodes"][:NODES_SHOWN]:
            heading, *reasons = [line.strip() for line in node["summary"].splitlines() if line.strip()] or [""]
            summary = f"{heading} {'; '.join(reasons)}".strip()
            lines.append(f"    at {node['target']}: {summary}")
        if len(violation["nodes"]) > NODES_SHOWN:
            lines.append(f"    … and {len(violation['nodes']) - NODES_SHOWN} more element(s)")
    return "\n".join(lines)


def axe_check(page: Page) -> None:
    """Fail the test if axe-core finds any serious or critical violation on the page."""
    blocking = [v for v in axe_violations(page) if v["impact"] in BLOCKING_IMPACTS]
    if blocking:
        pytest.fail(describe_violations(page.url, blocking), pytrace=False)
