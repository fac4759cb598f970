"""The metrics file's text: Prometheus's exposition format, rendered from values. Pure,
plus `promtool check metrics` on the result (Debian's `prometheus` package)."""

import re
import subprocess

from tests.luci_harness import tool
from wg_endpointd.core import metrics as mx
from wg_endpointd.core.model import Endpoint

K1 = "Va59Y/gEvqIMstruG2luVqRezlCdO81HXOF46SS9oFI="
K2 = "TqFAWIFQdzzjqs54au739ASc4QD6ZJyU+73blg8dqUI="
PSK = "FpCyhws9cxwWoV4xELtfJvjJN+zQVRPISllRWgeopVE="

# exposition_formats.md: a sample line; a label value is "..." with \\ \" \n escapes
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(rf"({NAME})(?:\{{({LABEL}(?:,{LABEL})*)?\}})? (\S+)")


def parse(text: str) -> dict[str, tuple[str, str, list[tuple[dict[str, str], str]]]]:
    """family -> (type, help, samples); asserts the format as it goes."""
    assert text.endswith("\n")
    out: dict = {}
    current = None
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            assert name not in out, f"{name} twice"
            out[name] = ["", help_text, []]
            current = name
        elif line.startswith("# TYPE "):
            name, kind = line[7:].split(" ")
            assert name == current and kind in ("gauge", "counter")
            out[name][0] = kind
        else:
            m = SAMPLE.fullmatch(line)
            assert m, line
            assert m.group(1) == current, f"{m.group(1)} outside its family"
            labels = dict(re.findall(r'([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
            float(m.group(3).replace("Inf", "inf"))
            out[current][2].append((labels, m.group(3)))
    return {k: tuple(v) for k, v in out.items()}


def facts():
    peers = [
        mx.PeerFacts("wg0", K1, 'office "A"\\B\nsecond line', "fallback",
                     Endpoint("192.0.2.2", 51820), 12.5, {"failover": 2, "failback": 0},
                     1795302880.125, 0.52),
        mx.PeerFacts("wg0", K2, "", "unknown"),
    ]
    groups = [mx.GroupFacts("vpn", "wg1", (K1, K2), K2, failovers=1)]
    daemon = mx.DaemonFacts("0.1.0", 1795300000.0, 3, 1795302990.0, 0.8, {"wg": 12, "ip": 2}, 4)
    return peers, groups, daemon


def test_label_values_and_help_are_escaped():
    assert mx.escape_label('a\\b"c\nd') == 'a\\\\b\\"c\\nd'
    assert mx.escape_help('a\\b"c\nd') == 'a\\\\b"c\\nd'


def test_values():
    assert [mx.value_text(v) for v in (1, 0.0, 1795302880.0, 0.52, 1 / 3)] == [
        "1", "0", "1795302880", "0.52", "0.333333"]
    assert [mx.value_text(v) for v in (float("nan"), float("inf"), float("-inf"))] == [
        "NaN", "+Inf", "-Inf"]


def test_render_groups_each_family_after_its_help_and_type_and_skips_empty_ones():
    text = mx.render([mx.Family("a_total", "counter", "As.", (((("x", "1"),), 2.0),)),
                      mx.Family("empty", "gauge", "Nothing."),
                      mx.Family("b", "gauge", "Bs.", (((), 1.0),))])
    assert text == ("# HELP wg_endpointd_a_total As.\n# TYPE wg_endpointd_a_total counter\n"
                    'wg_endpointd_a_total{x="1"} 2\n'
                    "# HELP wg_endpointd_b Bs.\n# TYPE wg_endpointd_b gauge\nwg_endpointd_b 1\n")


def test_every_metric_with_its_labels():
    fams = parse(mx.render(mx.families(*facts())))
    p = "wg_endpointd_"
    states = {s["state"]: v for s, v in fams[p + "peer_state"][2] if s["peer"] == K1}
    assert states == {"healthy": "0", "fallback": "1", "down": "0", "unknown": "0"}
    assert {s["state"] for s, v in fams[p + "peer_state"][2] if s["peer"] == K2 and v == "1"} \
        == {"unknown"}
    assert fams[p + "peer_endpoint_info"][2] == [(
        {"interface": "wg0", "peer": K1, "endpoint": "192.0.2.2:51820", "family": "ipv4"}, "1")]
    [(info, _)] = [s for s in fams[p + "peer_info"][2] if s[0]["peer"] == K1]
    assert info["description"] == 'office \\"A\\"\\\\B\\nsecond line'
    assert fams[p + "peer_switches_total"][0] == "counter"
    assert {(s["reason"], v) for s, v in fams[p + "peer_switches_total"][2]} == {
        ("failover", "2"), ("failback", "0")}
    assert fams[p + "peer_verified_age_seconds"][2] == [(
        {"interface": "wg0", "peer": K1}, "12.5")]
    assert fams[p + "peer_last_switch_timestamp_seconds"][2][0][1] == "1795302880.125"
    assert fams[p + "peer_verification_duration_seconds"][2][0][1] == "0.52"
    assert fams[p + "group_active"][2] == [
        ({"interface": "wg1", "group": "vpn", "peer": K1}, "0"),
        ({"interface": "wg1", "group": "vpn", "peer": K2}, "1")]
    assert fams[p + "group_failovers_total"][2] == [({"interface": "wg1", "group": "vpn"}, "1")]
    assert fams[p + "group_failbacks_total"][2][0][1] == "0"
    daemon = {name[len(p):]: samples for name, (_, _, samples) in fams.items()}
    assert daemon["up"] == [({}, "1")]
    assert daemon["start_time_seconds"] == [({}, "1795300000")]
    assert daemon["rounds_total"] == [({}, "3")]
    assert daemon["last_round_timestamp_seconds"] == [({}, "1795302990")]
    assert daemon["last_round_duration_seconds"] == [({}, "0.8")]
    assert daemon["processes_started_total"] == [({"program": "ip"}, "2"),
                                                 ({"program": "wg"}, "12")]
    assert daemon["faults_total"] == [({}, "4")]
    assert daemon["build_info"] == [({"version": "0.1.0"}, "1")]
    for name, (kind, help_text, _) in fams.items():
        assert help_text and name.startswith(p)
        assert (kind == "counter") == name.endswith("_total"), name


def test_never_a_private_or_preshared_key():
    text = mx.render(mx.families(*facts()))
    assert PSK not in text and "private" not in text and "preshared" not in text
    keys = set(re.findall(r"[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=", text))
    assert keys == {K1, K2}


def test_a_stopping_daemon_says_so():
    peers, groups, daemon = facts()
    stopped = mx.DaemonFacts(daemon.version, daemon.start, up=False)
    assert "wg_endpointd_up 0\n" in mx.render(mx.families(peers, groups, stopped))


def test_default_path_by_platform():
    assert mx.default_path(True, False, "/var/run/wg-endpointd") == \
        "/var/run/wg-endpointd/wg_endpointd.prom"
    assert mx.default_path(True, True, "/tmp/run") == "/tmp/run/wg_endpointd.prom"
    assert mx.default_path(False, True, "/run/wg-endpointd") == \
        "/var/lib/prometheus/node-exporter/wg_endpointd.prom"
    assert mx.default_path(False, False, "/run/wg-endpointd") == ""


def test_promtool_accepts_the_file(tmp_path):
    path = tmp_path / "wg_endpointd.prom"
    path.write_text(mx.render(mx.families(*facts())))
    with path.open() as f:
        res = subprocess.run([tool("promtool"), "check", "metrics"], stdin=f,
                             capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stdout == "" and res.stderr == "", res.stdout + res.stderr
