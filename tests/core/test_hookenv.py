"""What a hook sees: its environment (an allow-list, no key), the ubus payload, which
files are hooks, how an end reads."""

from __future__ import annotations

import json
import signal

import pytest

from wg_endpointd.core.hookenv import (
    EVENT_VARS,
    LINUX_PATH,
    describe_end,
    hook_environment,
    is_hook_name,
    ubus_payload,
)

PUB = "Va59Y/gEvqIMstruG2luVqRezlCdO81HXOF46SS9oFI="
MEMBER = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
PRIV_HEX = "a8" * 32  # the form wg's UAPI speaks


def event(**extra: str) -> dict[str, str]:
    base = {"ACTION": "switch", "INTERFACE": "wg0", "PUBLIC_KEY": PUB, "DESCRIPTION": "office",
            "FROM": "[2001:db8::1]:51820", "TO": "192.0.2.1:51820", "REASON": "dead"}
    return {**base, **extra}


def test_the_event_passes_with_path_only() -> None:
    env, dropped = hook_environment(event(), LINUX_PATH)
    assert env == {"PATH": LINUX_PATH, **event()}
    assert dropped == []


@pytest.mark.parametrize("name", ["PRIVATE_KEY", "PRESHARED_KEY", "HOME", "LD_PRELOAD",
                                  "private_key", "action"])
def test_names_outside_the_list_are_dropped(name: str) -> None:
    env, dropped = hook_environment(event(**{name: "x"}), LINUX_PATH)
    assert name not in env and dropped == [name]


@pytest.mark.parametrize("value", [PUB, f"key {PUB} here", PRIV_HEX, f"x{PRIV_HEX.upper()}"])
@pytest.mark.parametrize("name", ["DESCRIPTION", "REASON", "INTERFACE", "GROUP", "FROM", "TO"])
def test_a_key_anywhere_else_drops_the_variable(name: str, value: str) -> None:
    env, dropped = hook_environment(event(**{name: value}), LINUX_PATH)
    assert name not in env and dropped == [name]
    assert all(PUB not in v and PRIV_HEX not in v.lower() for v in env.values()
               if v != env.get("PUBLIC_KEY"))


@pytest.mark.parametrize("action", ["failover", "failback"])
def test_group_events_carry_member_keys_in_from_and_to(action: str) -> None:
    facts = event(ACTION=action, GROUP="hq", FROM=PUB, TO=MEMBER)
    env, dropped = hook_environment(facts, LINUX_PATH)
    assert env["FROM"] == PUB and env["TO"] == MEMBER and dropped == []
    # ...exactly a key, nothing around it
    env, dropped = hook_environment({**facts, "TO": f"{MEMBER} "}, LINUX_PATH)
    assert "TO" not in env and dropped == ["TO"]


def test_public_key_must_be_just_a_key() -> None:
    env, dropped = hook_environment(event(PUBLIC_KEY=f"{PUB}{PUB}"), LINUX_PATH)
    assert "PUBLIC_KEY" not in env and dropped == ["PUBLIC_KEY"]


def test_a_nul_byte_drops_the_variable() -> None:
    env, dropped = hook_environment(event(DESCRIPTION="a\0b"), LINUX_PATH)
    assert "DESCRIPTION" not in env and dropped == ["DESCRIPTION"]


def test_ubus_payload_lowercase_action_first() -> None:
    env, _ = hook_environment(event(GROUP=""), LINUX_PATH)
    text = ubus_payload(env)
    assert text.startswith('{"action":"switch",')
    assert json.loads(text) == {k.lower(): v for k, v in event(GROUP="").items()}
    assert "path" not in json.loads(text)
    assert list(json.loads(text)) == [n.lower() for n in EVENT_VARS]


@pytest.mark.parametrize("name,ok", [
    ("50-webhook", True), ("hook.sh", True), ("a.dpkg-old.sh", True),
    (".hidden", False), ("50-webhook~", False), ("x.dpkg-old", False), ("x.dpkg-dist", False),
    ("x.rpmnew", False), ("x.rpmsave", False), ("x.rpmorig", False), (".x.swp", False),
    ("x.swp", False), ("", False),
])
def test_hook_names_as_networkmanagers_dispatcher(name: str, ok: bool) -> None:
    assert is_hook_name(name) is ok


def test_describe_end() -> None:
    assert describe_end(0) == "exit status 0"
    assert describe_end(3) == "exit status 3"
    assert describe_end(-signal.SIGKILL) == "killed by SIGKILL"
    assert describe_end(-200) == "killed by signal 200"
