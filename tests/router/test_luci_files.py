"""luci-app-wg-endpointd: menu, ACL, views and Makefile name only what exists."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.luci_harness import APP, ROOT, Plugin, tool

PLUGIN_PATH = APP / "root" / "usr" / "libexec" / "rpcd" / "wg-endpointd"
MENU = APP / "root" / "usr" / "share" / "luci" / "menu.d" / "luci-app-wg-endpointd.json"
ACL = APP / "root" / "usr" / "share" / "rpcd" / "acl.d" / "luci-app-wg-endpointd.json"
VIEWS = APP / "htdocs" / "luci-static" / "resources" / "view"



def _declared_calls() -> set[tuple[str, str]]:
    calls = set()
    for view in VIEWS.rglob("*.js"):
        text = view.read_text()
        for block in re.findall(r"rpc\.declare\(\{(.*?)\}\)", text, re.S):
            obj = re.search(r"object:\s*'([^']+)'", block)
            method = re.search(r"method:\s*'([^']+)'", block)
            assert obj and method, view
            calls.add((obj.group(1), method.group(1)))
    return calls


def test_acl_grants_exactly_what_the_issue_allows() -> None:
    acl = json.loads(ACL.read_text())
    assert list(acl) == ["luci-app-wg-endpointd"]
    grant = acl["luci-app-wg-endpointd"]
    assert grant["read"] == {"ubus": {"wg-endpointd": ["status"]}, "uci": ["wg-endpointd", "network"]}
    assert grant["write"] == {"ubus": {"wg-endpointd": ["check"]}, "uci": ["wg-endpointd"]}


def test_acl_methods_exist_and_views_call_only_granted_methods(tmp_path: Path) -> None:
    plugin = Plugin(tmp_path, tool("busybox"), PLUGIN_PATH)
    acl = json.loads(ACL.read_text())["luci-app-wg-endpointd"]
    granted = {(obj, m) for part in ("read", "write")
               for obj, ms in acl[part].get("ubus", {}).items() for m in ms}
    listed = plugin.run("list", stdin=None)
    assert {m for obj, m in granted if obj == "wg-endpointd"} == set(listed)
    calls = _declared_calls()
    assert calls == {("wg-endpointd", "status"), ("wg-endpointd", "check")}
    assert calls <= granted


def test_menu_names_existing_views_and_acl() -> None:
    menu = json.loads(MENU.read_text())
    acl = json.loads(ACL.read_text())
    top = menu["admin/services/wg-endpointd"]
    assert top["title"] == "WireGuard Endpoints" and top["action"] == {"type": "firstchild"}
    assert set(top["depends"]["acl"]) <= set(acl)
    assert (ROOT / "files" / "etc" / "config" / "wg-endpointd").exists()
    tabs = sorted((v["order"], k) for k, v in menu.items() if k != "admin/services/wg-endpointd")
    assert [k for _, k in tabs] == ["admin/services/wg-endpointd/status",
                                    "admin/services/wg-endpointd/settings"]
    for _, key in tabs:
        action = menu[key]["action"]
        assert action["type"] == "view"
        assert (VIEWS / f"{action['path']}.js").is_file()


def test_views_use_only_what_the_modules_export() -> None:
    exported = {}
    for mod in ("shape", "options"):
        src = (APP / "htdocs" / "luci-static" / "resources" / "wg-endpointd" / f"{mod}.js").read_text()
        block = src[src.rindex("baseclass.extend({"):]
        exported[mod] = set(re.findall(r"^\s*(\w+):", block, re.M))
    for view in VIEWS.rglob("*.js"):
        text = view.read_text()
        for mod, names in exported.items():
            used = set(re.findall(rf"\b{mod}\.(\w+)", text))
            assert used <= names, (view.name, used - names)
        for dep in re.findall(r"'require (wg-endpointd\.\w+)", text):
            assert (APP / "htdocs" / "luci-static" / "resources" /
                    (dep.replace(".", "/") + ".js")).is_file()


def test_views_load_only_resources_that_exist() -> None:
    """luci.js L.resource(path) is the URL of luci-static/resources/<path>; luci.mk ships htdocs/."""
    named = [(view.name, path) for view in VIEWS.rglob("*.js")
             for path in re.findall(r"L\.resource\('([^']+)'\)", view.read_text())]
    assert ("status.js", "wg-endpointd/status.css") in named
    for view, path in named:
        assert (APP / "htdocs" / "luci-static" / "resources" / path).is_file(), (view, path)


def test_makefile_is_luci_mk_style() -> None:
    text = (APP / "Makefile").read_text()
    assert re.search(r"^LUCI_TITLE:=\S", text, re.M)
    assert re.search(r"^LUCI_DEPENDS:=\+luci-base \+wg-endpointd$", text, re.M)
    assert re.search(r"^LUCI_PKGARCH:=all$", text, re.M)
    assert re.search(r"^include \S*luci\.mk$", text, re.M)
    assert text.index("include $(TOPDIR)/rules.mk") < text.index("LUCI_TITLE")
    for sub in ("htdocs/luci-static/resources", "root/usr/share/luci/menu.d",
                "root/usr/share/rpcd/acl.d", "root/usr/libexec/rpcd"):
        assert (APP / sub).is_dir()
