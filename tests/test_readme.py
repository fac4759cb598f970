"""What the README shows must hold: its alerting rules are docs/alerts.yml's and promtool
accepts them, and its Linux settings tables name every option of the options table."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.luci_harness import ROOT, tool
from wg_endpointd.core import options

README = (ROOT / "README.md").read_text(encoding="utf-8")
RULES = ROOT / "docs" / "alerts.yml"


def _section(title: str) -> str:
    """The text of the README's `## title` section."""
    return README.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def _readme_rules() -> str:
    """The one YAML block of "Watching a fleet" that holds rules."""
    blocks = [b.split("```", 1)[0] for b in _section("Watching a fleet").split("```yaml\n")[1:]]
    [rules] = [b for b in blocks if b.startswith("groups:")]
    return rules


def _alerts(text: str) -> dict[str, list[str]]:
    """Each rule's lines by alert name, without comments and blank lines."""
    found: dict[str, list[str]] = {}
    lines: list[str] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line.lstrip().startswith("- alert:"):
            lines = found.setdefault(line.split(":", 1)[1].strip(), [])
        if found:
            lines.append(line)
    return found


def test_the_readme_rules_are_those_of_alerts_yml() -> None:
    shown, shipped = _alerts(_readme_rules()), _alerts(RULES.read_text(encoding="utf-8"))
    assert set(shown) == {"WireGuardPeerDown", "WireGuardPeerFlapping"}
    for name, lines in shown.items():
        assert lines == shipped[name], name


def test_promtool_accepts_the_readme_rules(tmp_path: Path) -> None:
    path = tmp_path / "readme-alerts.yml"
    path.write_text(_readme_rules(), encoding="utf-8")
    res = subprocess.run([tool("promtool"), "check", "rules", str(path)], capture_output=True,
                         text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS: 2 rules found" in res.stdout


@pytest.mark.parametrize("kind,heading", [
    ("globals", "#### `[globals]`"), ("peer", "#### `[[peer]]`"), ("group", "#### `[[group]]`"),
])
def test_the_linux_settings_tables_name_every_option(kind: str, heading: str) -> None:
    after = _section("Linux hosts").split(f"\n{heading}", 1)[1].split("\n\n")
    table = next(p for p in after if p.startswith("| option"))
    names = {row.split("`")[1] for row in table.splitlines()[2:]}
    assert names == {o.name for o in options.SECTIONS[kind]}
