"""One table of (option, value, accepted?) for `config globals`, run through both the
daemon's parser (test_config.py) and the init script under busybox (test_init.py)."""

NETWORK = """\
config interface 'wg0'
	option proto 'wireguard'

config interface 'lan'
	option proto 'static'
"""

GLOBAL_CASES = [
    ("check_interval", "10", True),
    ("check_interval", "2.5", True),
    ("check_interval", "0", False),
    ("check_interval", "0.0", False),
    ("probe_timeout", ".5", True),
    ("probe_timeout", "0", False),
    ("verify_timeout", "1.", True),
    ("verify_timeout", "-1", False),
    ("dead_after", "1e3", False),
    ("dead_after", "nan", False),
    ("dead_after", "inf", False),
    ("failback_hold", "\uff15", False),  # a fullwidth 5
    ("failback_hold", "5_0", False),
    ("resolve_interval", "86400", True),
    ("resolve_interval", "86401", False),
    ("backoff_max", " 5", False),
    ("enabled", "1", True),
    ("enabled", "yes", True),
    ("enabled", "disabled", True),
    ("enabled", "On", False),
    ("enabled", "maybe", False),
    ("host_routes", "off", True),
    ("host_routes", "TRUE", False),
    ("log_level", "debug", True),
    ("log_level", "DEBUG", False),
    ("family", "ipv6", True),
    ("family", "ipv5", False),
    ("interface", "wg0", True),
    ("interface", "lan", False),
    ("interface", "wg7", False),
    ("interface", "-x", False),
    ("trigger", "wan", True),
    ("trigger", "-wan", False),
    ("trigger", "a" * 16, False),
    ("metrics_file", "/var/run/wg-endpointd/wg_endpointd.prom", True),
    ("metrics_file", "none", True),
    ("metrics_file", "None", False),
    ("metrics_file", "wg_endpointd.prom", False),
    ("metrics_file", "/var/lib/prometheus/node-exporter/", False),
    ("hook_timeout", "30", True),
    ("hook_timeout", "0", False),
]


def own_file(option: str, value: str) -> str:
    kind = "list" if option in ("interface", "trigger") else "option"
    return f"config globals 'globals'\n\t{kind} {option} '{value}'\n"
