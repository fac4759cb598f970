"""The run directory is trusted only when it deserves it (issue 18).

Real files in tmp_path: symbolic links, FIFOs and owners need a real
filesystem. A FIFO opened for reading blocks until a writer comes, so every
test that meets one runs under a deadline (SIGALRM) instead of hanging.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from wg_endpointd import cli
from wg_endpointd.runtime.service import lock_run_dir
from wg_endpointd.system import rundir
from wg_endpointd.system.rundir import HOTPLUG_LIST, LOCK_FILE, PID_FILE, STATE_FILE, RunDir, Unsafe
from wg_endpointd.system.statefile import StateFile

K1 = "Va59Y/gEvqIMstruG2luVqRezlCdO81HXOF46SS9oFI="
PRECIOUS = "precious\n"


class Blocked(BaseException):
    """Not an OSError, so that no `except OSError` in the code under test swallows it."""


@contextmanager
def deadline(seconds: float = 3.0) -> Iterator[None]:
    """Fail instead of hanging when the code under test blocks (on a FIFO)."""
    def expire(_signum: int, _frame: object) -> None:
        raise Blocked(f"blocked for more than {seconds} s")

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture
def run(tmp_path: Path) -> Path:
    path = tmp_path / "run"
    path.mkdir(mode=0o755)
    path.chmod(0o755)
    return path


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A file elsewhere that a planted link points at: it must stay as it is."""
    path = tmp_path / "victim"
    path.write_text(PRECIOUS)
    return path


def one_line(text: str) -> bool:
    return text.strip() != "" and "\n" not in text.strip() and "Traceback" not in text


# --- files in the directory ----------------------------------------------------


def test_symlinked_lock_file_is_refused_and_its_target_untouched(run: Path, victim: Path) -> None:
    (run / LOCK_FILE).symlink_to(victim)
    reason = lock_run_dir(RunDir(str(run)), "run")
    assert isinstance(reason, str) and one_line(reason)
    assert str(run) in reason and LOCK_FILE in reason and "symbolic link" in reason
    assert victim.read_text() == PRECIOUS
    assert (run / LOCK_FILE).is_symlink()


def test_dangling_lock_link_creates_nothing(run: Path, tmp_path: Path) -> None:
    (run / LOCK_FILE).symlink_to(tmp_path / "made-by-us")
    with pytest.raises(Unsafe):
        RunDir(str(run)).acquire("run")
    assert not (tmp_path / "made-by-us").exists()


def test_symlinked_state_file_is_refused_with_one_error(
    run: Path, victim: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (run / STATE_FILE).symlink_to(victim)
    rd = RunDir(str(run))
    with pytest.raises(Unsafe, match="state.json is a symbolic link"):
        rd.write_state({"peers": []})
    with pytest.raises(Unsafe), deadline():
        rd.read_state()
    sf = StateFile(rd, wall=lambda: 1.0)
    for n in range(3):
        sf.write({"peers": [], "n": n})
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "symbolic link" in errors[0].getMessage()
    assert str(run) in errors[0].getMessage()
    assert victim.read_text() == PRECIOUS and (run / STATE_FILE).is_symlink()
    assert [p.name for p in run.iterdir()] == [STATE_FILE]  # no temporary file left


def test_temporary_file_is_new_and_never_a_planted_link(
    run: Path, victim: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The old name, .state.json.PID.tmp, could be guessed: a link there is ignored now.
    (run / f".{STATE_FILE}.{os.getpid()}.tmp").symlink_to(victim)
    RunDir(str(run)).write_state({"peers": []})
    assert victim.read_text() == PRECIOUS
    assert (run / STATE_FILE).read_text().startswith("{")
    # Even a link at the exact random name is not opened (O_EXCL | O_NOFOLLOW).
    monkeypatch.setattr(rundir, "_token", lambda: "guessed")
    tmp = run / f".{STATE_FILE}.{os.getpid()}.guessed.tmp"
    tmp.symlink_to(victim)
    with pytest.raises(OSError) as err:
        RunDir(str(run)).write_state({"peers": [1]})
    assert str(err.value.strerror).count("\n") == 0
    assert victim.read_text() == PRECIOUS and tmp.is_symlink()


def test_a_lasting_write_fault_is_one_line_though_temp_names_differ(
    run: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def full(src: str, dst: str) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), src)  # names the temp file

    monkeypatch.setattr(os, "replace", full)
    sf = StateFile(RunDir(str(run)), wall=lambda: 1.0)
    for n in range(3):
        sf.write({"peers": [], "n": n})
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "No space left" in errors[0] and ".tmp" not in errors[0]
    assert list(run.iterdir()) == []


@pytest.mark.parametrize("name", [LOCK_FILE, STATE_FILE, HOTPLUG_LIST, PID_FILE])
def test_fifo_in_place_of_a_file_is_refused_without_blocking(run: Path, name: str) -> None:
    os.mkfifo(run / name)
    rd = RunDir(str(run))
    with deadline():
        reason = lock_run_dir(rd, "run")
        assert isinstance(reason, str) and one_line(reason)
        assert name in reason and "FIFO" in reason
        assert rd.holder() is None and rd.read_pid() is None and rd.daemon_running() is None
        with pytest.raises(OSError):
            rd.read_state() if name == STATE_FILE else rd.write(name, "x\n")
    assert stat.S_ISFIFO(os.lstat(run / name).st_mode)


def test_status_with_a_fifo_state_file_answers(
    run: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    os.mkfifo(run / STATE_FILE)
    os.mkfifo(run / LOCK_FILE)
    monkeypatch.setenv("WG_ENDPOINTD_RUN_DIR", str(run))
    with deadline():
        assert cli.main(["status"]) == 3
    err = capsys.readouterr().err
    assert "FIFO" in err and one_line(err)


def test_directory_in_place_of_the_pid_file_is_refused(run: Path) -> None:
    (run / PID_FILE).mkdir()
    reason = lock_run_dir(RunDir(str(run)), "run")
    assert isinstance(reason, str) and f"{PID_FILE} is a directory" in reason


def test_regular_files_still_work(run: Path) -> None:
    rd = RunDir(str(run))
    fd = rd.acquire("run")
    try:
        rd.write_pid(os.getpid())
        rd.write_hotplug_list(["wan", "*"])
        rd.write_state({"peers": []})
        assert rd.daemon_running() == os.getpid()
        assert rd.read_state() == {"peers": []}
        assert (run / HOTPLUG_LIST).read_text() == "wan\n*\n"
        assert all(stat.S_IMODE(os.stat(run / n).st_mode) == 0o644
                   for n in (PID_FILE, HOTPLUG_LIST, STATE_FILE, LOCK_FILE))
    finally:
        os.close(fd)


# --- the directory itself ------------------------------------------------------


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o757, 0o1777])
def test_run_dir_writable_by_others_is_refused(run: Path, mode: int) -> None:
    run.chmod(mode)
    reason = lock_run_dir(RunDir(str(run)), "run")
    assert isinstance(reason, str) and one_line(reason)
    assert str(run) in reason and "writable by group or others" in reason
    assert f"{mode & 0o777:o}" in reason
    assert list(run.iterdir()) == []  # not even the lock file


def test_run_dir_owned_by_another_user_is_refused(run: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give the directory away")
    os.chown(run, 65534, -1)
    reason = lock_run_dir(RunDir(str(run)), "run")
    assert isinstance(reason, str) and one_line(reason)
    assert str(run) in reason and "owned by uid 65534" in reason
    assert list(run.iterdir()) == []


def test_symlinked_run_dir_is_refused(tmp_path: Path, run: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(run)
    for path in (str(link), f"{link}/"):
        reason = lock_run_dir(RunDir(path), "run")
        assert isinstance(reason, str) and one_line(reason)
        assert str(link) in reason and "symbolic link" in reason
    assert list(run.iterdir()) == []


def test_run_dir_is_created_0755_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "a" / "run"
    old = os.umask(0o077)
    try:
        fd = RunDir(str(path)).acquire("run")
    finally:
        os.umask(old)
    os.close(fd)
    st = os.lstat(path)
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o755
    assert st.st_uid == os.geteuid()


def test_a_0700_run_dir_is_fine(run: Path) -> None:
    run.chmod(0o700)
    assert isinstance(lock_run_dir(RunDir(str(run)), "run"), int)


def test_run_with_a_world_writable_run_dir_exits_2_with_one_line(run: Path, tmp_path: Path) -> None:
    (tmp_path / "network").write_text("config interface 'wg0'\n\toption proto 'wireguard'\n")
    run.chmod(0o777)
    env = dict(os.environ, WG_ENDPOINTD_RUN_DIR=str(run), PYTHONPATH="src")
    res = subprocess.run([sys.executable, "-m", "wg_endpointd", "run", "--config-dir",
                          str(tmp_path)], capture_output=True, text=True, timeout=30, env=env)
    assert res.returncode == 2 and one_line(res.stderr)
    assert "writable by group or others" in res.stderr


# --- `once` speaks of `once` ---------------------------------------------------


def once(run: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
         ) -> tuple[int, str]:
    monkeypatch.setenv("WG_ENDPOINTD_RUN_DIR", str(run))
    code = cli.main(["once", "--interface", "wg0", "--peer", K1, "--host", "192.0.2.1"])
    return code, capsys.readouterr().err


def test_once_with_a_bad_run_dir_speaks_of_once(
    run: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run.chmod(0o777)
    code, err = once(run, monkeypatch, capsys)
    assert code == 2 and one_line(err)
    assert "`once`" in err and str(run) in err and "writable by group or others" in err
    assert "daemon" not in err and "SIGUSR1" not in err


def test_once_beside_a_running_daemon_names_it(
    run: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fd = RunDir(str(run)).acquire("run")
    try:
        code, err = once(run, monkeypatch, capsys)
    finally:
        os.close(fd)
    assert code == 2 and one_line(err)
    assert "the daemon is already running" in err and "`once` does not race it" in err


def test_once_beside_another_once_does_not_speak_of_a_daemon(
    run: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fd = RunDir(str(run)).acquire("once")
    try:
        code, err = once(run, monkeypatch, capsys)
    finally:
        os.close(fd)
    assert code == 2 and one_line(err)
    assert "`wg-endpointd once` is already running" in err
    assert "daemon" not in err and "SIGUSR1" not in err
