"""The alerting rules of docs/alerts.yml: `promtool check rules` accepts them, and
`promtool test rules` shows each alert firing when it should and not before."""

from __future__ import annotations

import subprocess

from tests.luci_harness import ROOT, tool

RULES = ROOT / "docs" / "alerts.yml"
UNIT = ROOT / "tests" / "data" / "alerts_test.yml"


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("promtool"), *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


def test_promtool_accepts_the_rules() -> None:
    res = _promtool("check", "rules", str(RULES))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS: 3 rules found" in res.stdout


def test_each_alert_fires_when_it_should() -> None:
    res = _promtool("test", "rules", str(UNIT))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS" in res.stdout
