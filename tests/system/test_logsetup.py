"""Issue 20: log lines under journald carry their priority (`<N>`, sd-daemon.h)."""

import io
import logging
import os
import subprocess
import sys

import pytest

from wg_endpointd.system.logsetup import journal_stream, priority, setup_logging, stderr_line

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def stream_id(fd):
    st = os.fstat(fd)
    return f"{st.st_dev}:{st.st_ino}"


@pytest.fixture
def pipe_stderr(monkeypatch):
    """Makes stderr the write end of a real pipe (called in the test: pytest sets its own
    capture between set-up and call); returns (its journal id, a reader of all of it)."""
    opened = []

    def attach():
        r, w = os.pipe()
        out = os.fdopen(w, "w", buffering=1)
        opened.append((r, out))
        monkeypatch.setattr(sys, "stderr", out)
        monkeypatch.setattr(sys, "stdout", io.StringIO())

        def read():
            out.close()
            with os.fdopen(r) as f:
                return f.read()

        return stream_id(w), read

    yield attach
    logging.getLogger("wg_endpointd").handlers[:] = []
    for r, out in opened:
        if not out.closed:
            out.close()
            os.close(r)


def test_every_line_gets_its_priority_under_journald(pipe_stderr, monkeypatch):
    ident, read = pipe_stderr()
    monkeypatch.setenv("JOURNAL_STREAM", ident)
    setup_logging("debug", daemon=True)  # the daemon: no stdout/stderr split either
    log = logging.getLogger("wg_endpointd.test")
    log.debug("probe detail")
    log.info("round done")
    log.warning("no route")
    log.error("wg failed")
    try:
        raise RuntimeError("surprise")
    except RuntimeError:
        log.exception("unexpected error; continuing")
    stderr_line("wg-endpointd: error: bad settings")
    text = read()
    assert sys.stdout.getvalue() == ""
    lines = text.splitlines()
    assert lines[:4] == ["<7>probe detail", "<6>round done", "<4>no route", "<3>wg failed"]
    assert lines[4] == "<3>unexpected error; continuing"
    assert lines[-1] == "<3>wg-endpointd: error: bad settings"
    assert all(line.startswith("<3>") for line in lines[5:])  # the traceback too
    assert any("RuntimeError: surprise" in line for line in lines)


def test_another_stream_named_means_no_prefixes(pipe_stderr, monkeypatch, tmp_path):
    ident, read = pipe_stderr()
    other = tmp_path / "f"
    other.write_text("")
    with open(other) as f:
        monkeypatch.setenv("JOURNAL_STREAM", stream_id(f.fileno()))  # stdout's, say
    setup_logging("info", daemon=True)
    logging.getLogger("wg_endpointd.test").info("round done")
    logging.getLogger("wg_endpointd.test").warning("no route")
    stderr_line("wg-endpointd: error: x")
    assert read() == "WARNING: no route\nwg-endpointd: error: x\n"
    assert sys.stdout.getvalue() == "INFO: round done\n"  # procd's split, unchanged


@pytest.mark.parametrize("value", ["", "garbage", "1:", ":2", "1:2:3"])
def test_malformed_journal_stream_is_ignored(pipe_stderr, value):
    pipe_stderr()
    assert not journal_stream(environ={"JOURNAL_STREAM": value})


def test_a_file_in_journal_stream_matches(tmp_path):
    with open(tmp_path / "f", "w") as f:
        assert journal_stream(f, {"JOURNAL_STREAM": stream_id(f.fileno())})
        assert not journal_stream(f, {"JOURNAL_STREAM": "1:1"})


def test_priorities():
    assert [priority(n) for n in (5, 10, 20, 25, 30, 40, 50)] == [7, 7, 6, 6, 4, 3, 2]


def test_every_command_prefixes_its_errors(tmp_path):
    """A command's own error line (not through logging) under journald, in a real process."""
    r, w = os.pipe()
    env = dict(os.environ, JOURNAL_STREAM=stream_id(w),
               PYTHONPATH=os.path.join(REPO, "src"))
    proc = subprocess.run([sys.executable, "-m", "wg_endpointd", "once", "--peer", "x"],
                          stderr=w, stdout=subprocess.DEVNULL, env=env, timeout=60, check=False)
    os.close(w)
    with os.fdopen(r) as f:
        text = f.read()
    assert proc.returncode == 2
    assert text.startswith("<3>wg-endpointd: error: ") and text.count("\n") == 1
