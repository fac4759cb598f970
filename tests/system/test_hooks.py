"""User hooks with real processes: order, time limits, process groups, failures, the
environment, which files run; OpenWrt's way under busybox sh with a hotplug-call stub
after upstream's (tests/shell/hotplug-call), and the ubus event."""

from __future__ import annotations

import json
import logging
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.luci_harness import tool
from wg_endpointd.core.hookenv import LINUX_PATH
from wg_endpointd.system.hooks import HookRunner

ROOT = Path(__file__).resolve().parents[2]
HOTPLUG_STUB = ROOT / "tests/shell/hotplug-call"
EXAMPLE = ROOT / "docs/examples/hooks/50-webhook"
LOGGER = "wg_endpointd.system.hooks"
PUB = "Va59Y/gEvqIMstruG2luVqRezlCdO81HXOF46SS9oFI="
EVENT = {"ACTION": "switch", "INTERFACE": "wg0", "PUBLIC_KEY": PUB, "DESCRIPTION": "office",
         "FROM": "[2001:db8::1]:51820", "TO": "192.0.2.1:51820", "REASON": "dead"}


def hook(folder: Path, name: str, body: str, mode: int = 0o755) -> Path:
    path = folder / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(mode)
    return path


def wait_idle(runner: HookRunner, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while runner.pending():
        assert time.monotonic() < deadline, "hooks still running"
        time.sleep(0.01)


def gone(pid: int, timeout: float = 3.0) -> bool:
    """True once `pid` no longer exists (not even as a zombie)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state == "Z":  # reaped by init soon; it runs no more
            return True
        time.sleep(0.02)
    return False


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == LOGGER and r.levelno >= logging.WARNING]


@pytest.fixture
def runners() -> Iterator[list[HookRunner]]:
    made: list[HookRunner] = []
    yield made
    for runner in made:
        runner.stop(1.0)


@pytest.fixture
def linux(tmp_path: Path, runners: list[HookRunner]):
    def make(timeout: float = 5.0, grace: float = 2.0) -> HookRunner:
        folder = tmp_path / "hooks.d"
        folder.mkdir(exist_ok=True)
        runner = HookRunner("linux", str(folder), timeout, grace=grace)
        runners.append(runner)
        return runner
    return make


# -- linux: the hooks directory ------------------------------------------------------


def test_environment_is_exactly_path_and_the_event(tmp_path: Path, linux) -> None:
    runner = linux()
    out = tmp_path / "environ"
    # /proc/$$/environ is what execve handed the hook, before the shell adds PWD and such
    hook(Path(runner.hooks_dir), "10-env", f"tr '\\0' '\\n' < /proc/$$/environ > {out}\n")
    runner.submit({**EVENT, "PRESHARED_KEY": PUB, "PRIVATE_KEY": PUB, "HOME": "/root",
                   "GROUP": f"g {PUB}"})
    wait_idle(runner)
    got = dict(line.split("=", 1) for line in out.read_text().splitlines())
    assert got == {"PATH": LINUX_PATH, **EVENT}
    assert sum(PUB in v for v in got.values()) == 1  # PUBLIC_KEY only


def test_burst_runs_in_order_one_at_a_time(tmp_path: Path, linux) -> None:
    runner = linux()
    log, lock, errors = tmp_path / "log", tmp_path / "lock", tmp_path / "overlap"
    body = (f'mkdir {lock} 2>/dev/null || echo "$REASON $0" >> {errors}\n'
            f'echo "$REASON ${{0##*/}}" >> {log}\n'
            "sleep 0.005\n"
            f"rmdir {lock}\n")
    hook(Path(runner.hooks_dir), "20-b", body)
    hook(Path(runner.hooks_dir), "10-a", body)
    start = time.monotonic()
    for i in range(50):
        runner.submit({**EVENT, "REASON": str(i)})
    submitted = time.monotonic() - start
    wait_idle(runner, 60)
    assert submitted < 0.5  # the caller never waits for a hook
    assert not errors.exists(), errors.read_text()
    want = [f"{i} {name}" for i in range(50) for name in ("10-a", "20-b")]
    assert log.read_text().splitlines() == want


def test_a_failing_hook_is_one_line_and_the_rest_still_run(tmp_path: Path, linux,
                                                          caplog: pytest.LogCaptureFixture
                                                          ) -> None:
    caplog.set_level(logging.DEBUG, LOGGER)
    runner = linux()
    marks = tmp_path / "marks"
    hook(Path(runner.hooks_dir), "10-fail", "echo failing on purpose >&2\nexit 3\n")
    hook(Path(runner.hooks_dir), "20-signal", "kill -USR1 $$\n")
    hook(Path(runner.hooks_dir), "30-ok", f'echo "$ACTION" >> {marks}\n')
    runner.submit(EVENT)
    runner.submit({**EVENT, "ACTION": "down"})
    wait_idle(runner)
    assert marks.read_text().split() == ["switch", "down"]
    folder = Path(runner.hooks_dir)
    assert warnings(caplog) == [
        f"hook {folder}/10-fail (switch) failed: exit status 3",
        f"hook {folder}/20-signal (switch) failed: killed by SIGUSR1",
        f"hook {folder}/10-fail (down) failed: exit status 3",
        f"hook {folder}/20-signal (down) failed: killed by SIGUSR1",
    ]
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert f"hook {folder}/10-fail: | failing on purpose" in debug


def test_a_hanging_hook_and_its_children_are_killed(tmp_path: Path, linux,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    runner = linux(timeout=0.5)
    child, after = tmp_path / "child", tmp_path / "after"
    hook(Path(runner.hooks_dir), "10-hang", f"sleep 300 &\necho $! > {child}\nsleep 300\n")
    hook(Path(runner.hooks_dir), "20-next", f"touch {after}\n")
    start = time.monotonic()
    runner.submit(EVENT)
    wait_idle(runner)
    took = time.monotonic() - start
    assert 0.5 <= took < 3.0
    assert after.exists()
    assert gone(int(child.read_text()))  # the background sleep went with the group
    assert warnings(caplog) == [
        f"hook {Path(runner.hooks_dir)}/10-hang (switch) took over 0.5s: stopped, killed by SIGTERM"]


def test_sigterm_ignored_means_sigkill_after_the_grace(tmp_path: Path, linux,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    runner = linux(timeout=0.3, grace=0.4)
    child = tmp_path / "child"
    hook(Path(runner.hooks_dir), "10-stubborn",
         f"trap '' TERM\nsleep 300 &\necho $! > {child}\nwhile :; do sleep 0.05; done\n")
    start = time.monotonic()
    runner.submit(EVENT)
    wait_idle(runner)
    assert 0.7 <= time.monotonic() - start < 3.0
    assert gone(int(child.read_text()))
    assert warnings(caplog) == [f"hook {Path(runner.hooks_dir)}/10-stubborn (switch) took over "
                                "0.3s: stopped, killed by SIGKILL"]


def test_only_executable_regular_files_with_plain_names_run(tmp_path: Path, linux,
                                                           caplog: pytest.LogCaptureFixture
                                                           ) -> None:
    runner = linux()
    ran = tmp_path / "ran"
    body = f'echo "${{0##*/}}" >> {ran}\n'
    for name in ("10-a", "30-c", "20-b.sh", "a.dpkg-old.sh"):
        hook(Path(runner.hooks_dir), name, body)
    for name in (".hidden", "40-d~", "50-e.dpkg-old", "60-f.rpmnew", "70-g.swp"):
        hook(Path(runner.hooks_dir), name, body)
    hook(Path(runner.hooks_dir), "README", body, mode=0o644)
    hook(Path(runner.hooks_dir), "80-world-writable", body, mode=0o757)
    (Path(runner.hooks_dir) / "90-dir").mkdir()
    (Path(runner.hooks_dir) / "95-link").symlink_to(Path(runner.hooks_dir) / "10-a")
    runner.submit(EVENT)
    wait_idle(runner)
    assert ran.read_text().split() == ["10-a", "20-b.sh", "30-c", "95-link", "a.dpkg-old.sh"]
    assert warnings(caplog) == [f"hook {Path(runner.hooks_dir)}/80-world-writable skipped: "
                                "writable by group or others, or not ours"]


def test_a_hook_that_cannot_start_is_one_line(tmp_path: Path, linux,
                                              caplog: pytest.LogCaptureFixture) -> None:
    runner = linux()
    bad = Path(runner.hooks_dir) / "10-bad"
    bad.write_text("#!/nonexistent/interpreter\n")
    bad.chmod(0o755)
    hook(Path(runner.hooks_dir), "20-ok", f"touch {tmp_path / 'ok'}\n")
    runner.submit(EVENT)
    wait_idle(runner)
    assert (tmp_path / "ok").exists()
    assert warnings(caplog) == [
        f"hook {bad} (switch) could not start: No such file or directory"]


def test_no_hooks_directory_is_quiet(tmp_path: Path, runners: list[HookRunner],
                                     caplog: pytest.LogCaptureFixture) -> None:
    runner = HookRunner("linux", str(tmp_path / "absent"), 1.0)
    runners.append(runner)
    runner.submit(EVENT)
    wait_idle(runner)
    assert warnings(caplog) == []


def test_stop_drops_the_queue_and_kills_the_running_hook(tmp_path: Path, linux,
                                                         caplog: pytest.LogCaptureFixture
                                                         ) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    runner = linux(timeout=60, grace=0.3)
    started, child = tmp_path / "started", tmp_path / "child"
    hook(Path(runner.hooks_dir), "10-slow",
         f"sleep 300 &\necho $! > {child}\necho $$ >> {started}\nwait\n")
    for i in range(4):
        runner.submit({**EVENT, "REASON": str(i)})
    deadline = time.monotonic() + 10
    while not (started.exists() and child.exists() and child.read_text()):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    start = time.monotonic()
    runner.stop(0.2)
    assert time.monotonic() - start < 2.0
    assert runner.pending() == 0
    assert len(started.read_text().split()) == 1  # the queued three never ran
    assert gone(int(child.read_text()))
    messages = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert "hooks: 3 queued event(s) dropped at exit" in messages
    runner.submit(EVENT)  # after stop: not run
    time.sleep(0.2)
    assert len(started.read_text().split()) == 1


def test_stop_lets_a_quick_hook_finish(tmp_path: Path, linux) -> None:
    runner = linux()
    done = tmp_path / "done"
    hook(Path(runner.hooks_dir), "10-quick", f"sleep 0.2\ntouch {done}\n")
    runner.submit(EVENT)
    time.sleep(0.05)
    runner.stop(5.0)
    assert done.exists()


def test_bad_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="openwrt or linux"):
        HookRunner("procd")


# -- openwrt: hotplug-call under busybox, and ubus ------------------------------------


@pytest.fixture
def busybox() -> str:
    return tool("busybox")


def openwrt_root(tmp_path: Path, busybox: str) -> tuple[Path, Path]:
    """A root with /etc/hotplug.d/wg-endpointd/, and a hotplug-call that runs the stub
    under busybox sh with HOTPLUG_ROOT pointing there (the runner passes no such variable)."""
    root = tmp_path / "root"
    (root / "etc/hotplug.d/wg-endpointd").mkdir(parents=True)
    call = tmp_path / "hotplug-call"
    call.write_text(f"#!/bin/sh\nHOTPLUG_ROOT='{root}' exec '{busybox}' sh '{HOTPLUG_STUB}' "
                    '"$@"\n')
    call.chmod(0o755)
    return root, call


def test_openwrt_hotplug_scripts_are_sourced_by_busybox_in_order(
        tmp_path: Path, busybox: str, runners: list[HookRunner],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, LOGGER)
    root, call = openwrt_root(tmp_path, busybox)
    scripts = root / "etc/hotplug.d/wg-endpointd"
    out = tmp_path / "out"
    # 0644 and no first line, like the hotplug scripts packages install; sourced anyway
    (scripts / "10-record").write_text(
        f'echo "shell=$(readlink /proc/$$/exe) type=$HOTPLUG_TYPE user=$USER" >> {out}\n'
        f'echo "$ACTION $INTERFACE $PUBLIC_KEY $FROM $TO $REASON" >> {out}\n')
    (scripts / "20-exit").write_text("exit 3\n")  # ends its own subshell only
    (scripts / "30-after").write_text(f'echo "after $ACTION" >> {out}\n')
    (scripts / "40-dir").mkdir()  # not a file: hotplug-call ends with status 1, no failure
    runner = HookRunner("openwrt", timeout=5.0, hotplug_call=str(call),
                        ubus=str(tmp_path / "no-ubus"))
    runners.append(runner)
    runner.submit(EVENT)
    runner.submit({**EVENT, "ACTION": "up"})
    wait_idle(runner)
    assert out.read_text().splitlines() == [
        f"shell={busybox} type=wg-endpointd user=root",
        f"switch wg0 {PUB} [2001:db8::1]:51820 192.0.2.1:51820 dead",
        "after switch",
        f"shell={busybox} type=wg-endpointd user=root",
        f"up wg0 {PUB} [2001:db8::1]:51820 192.0.2.1:51820 dead",
        "after up",
    ]
    assert warnings(caplog) == []  # no ubus is a debug line
    assert any(r.getMessage().startswith("ubus send wg-endpointd") for r in caplog.records
               if r.levelno == logging.DEBUG)


def test_openwrt_hotplug_call_has_the_time_limit(tmp_path: Path, busybox: str,
                                                 runners: list[HookRunner],
                                                 caplog: pytest.LogCaptureFixture) -> None:
    root, call = openwrt_root(tmp_path, busybox)
    child = tmp_path / "child"
    (root / "etc/hotplug.d/wg-endpointd/10-hang").write_text(
        f"sleep 300 &\necho $! > {child}\nsleep 300\n")
    runner = HookRunner("openwrt", timeout=0.5, hotplug_call=str(call),
                        ubus=str(tmp_path / "no-ubus"))
    runners.append(runner)
    runner.submit(EVENT)
    wait_idle(runner)
    assert gone(int(child.read_text()))
    assert warnings(caplog) == [
        f"hook {call} wg-endpointd (switch) took over 0.5s: stopped, killed by SIGTERM"]


def test_openwrt_publishes_the_event_on_ubus_first(tmp_path: Path, runners: list[HookRunner]
                                                   ) -> None:
    calls = tmp_path / "calls"
    ubus = tmp_path / "ubus"
    ubus.write_text(f'#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done >> {calls}\n')
    ubus.chmod(0o755)
    call = tmp_path / "hotplug-call"
    call.write_text(f"#!/bin/sh\necho hotplug-call \"$1\" >> {calls}\n")
    call.chmod(0o755)
    runner = HookRunner("openwrt", timeout=5.0, hotplug_call=str(call), ubus=str(ubus))
    runners.append(runner)
    runner.submit({**EVENT, "ACTION": "failover", "GROUP": "hq", "FROM": PUB,
                   "PRESHARED_KEY": PUB})
    wait_idle(runner)
    lines = calls.read_text().splitlines()
    assert lines[:2] == ["send", "wg-endpointd"] and lines[3] == "hotplug-call wg-endpointd"
    assert json.loads(lines[2]) == {
        "action": "failover", "interface": "wg0", "public_key": PUB, "description": "office",
        "from": PUB, "to": "192.0.2.1:51820", "reason": "dead", "group": "hq"}


def test_openwrt_without_hotplug_call_says_so_once(tmp_path: Path, runners: list[HookRunner],
                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    runner = HookRunner("openwrt", hotplug_call=str(tmp_path / "absent"),
                        ubus=str(tmp_path / "no-ubus"))
    runners.append(runner)
    for _ in range(3):
        runner.submit(EVENT)
    wait_idle(runner)
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert infos == [f"hooks: {tmp_path / 'absent'} not found; hotplug hooks are not run"]


# -- the example hook for users --------------------------------------------------------


@pytest.mark.parametrize("client", ["curl", "uclient-fetch"])
def test_example_webhook_posts_json_under_busybox(tmp_path: Path, busybox: str,
                                                  client: str) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "args"
    fake = bin_dir / client
    fake.write_text(f'#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done > {record}\n')
    fake.chmod(0o755)
    for applet in ("sed", "cat", "printf"):  # what the hook uses besides the HTTP client
        (bin_dir / applet).symlink_to(busybox)
    env = {"PATH": str(bin_dir), **EVENT, "DESCRIPTION": 'Office "HQ" \\ main\tdesk'}
    result = subprocess.run([busybox, "sh", str(EXAMPLE)], env=env, capture_output=True,
                            text=True, timeout=10, check=False)
    assert result.returncode == 0, result.stderr
    args = record.read_text().splitlines()
    assert args[-1] == "https://hooks.example.com/wg-endpointd"
    body = next(a for a in args if a.startswith("{") or a.startswith("--post-data={"))
    data = json.loads(body.removeprefix("--post-data="))
    assert data["description"] == 'Office "HQ" \\ main\tdesk'
    assert {k: data[k] for k in ("action", "interface", "public_key", "from", "to", "reason")} \
        == {"action": "switch", "interface": "wg0", "public_key": PUB,
            "from": EVENT["FROM"], "to": EVENT["TO"], "reason": "dead"}
    assert data["text"].endswith("peer Office \"HQ\" \\ main\tdesk moved from "
                                 "[2001:db8::1]:51820 to 192.0.2.1:51820 (dead)")


def test_stub_and_example_pass_shellcheck() -> None:
    shellcheck = tool("shellcheck")
    result = subprocess.run([shellcheck, "-s", "sh", str(HOTPLUG_STUB), str(EXAMPLE)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout
    for script in (HOTPLUG_STUB, EXAMPLE):
        for line in script.read_text().splitlines():
            if "shellcheck disable=" in line:
                assert line.split("disable=", 1)[1].split(" ", 1)[1].startswith("# "), line
