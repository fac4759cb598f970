"""The metrics file is replaced at once (temporary file and rename in its directory), and
processes started are counted by program."""

import logging
import os
import stat
import sys

import pytest

from wg_endpointd.system import proc
from wg_endpointd.system.metricsfile import MetricsFile, write_atomic

DIR = "/var/lib/prometheus/node-exporter"
PATH = f"{DIR}/wg_endpointd.prom"


def test_written_through_a_temporary_file_and_renamed(fs, monkeypatch):
    fs.create_file(PATH, contents="old\n")
    fs.create_file(f"{DIR}/other.prom", contents="x 1\n")
    os.umask(0o077)
    seen = []
    real = os.replace

    def replace(src, dst):  # what is there when the rename happens
        seen.append((os.path.dirname(src), os.path.basename(src), open(src).read(),
                     open(dst).read()))
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    write_atomic(PATH, "wg_endpointd_up 1\n")
    [(where, name, new, old)] = seen
    assert where == DIR and name.startswith(".wg_endpointd.prom.") and name.endswith(".tmp")
    assert (new, old) == ("wg_endpointd_up 1\n", "old\n")  # readers saw the old file until then
    assert open(PATH).read() == "wg_endpointd_up 1\n"
    assert stat.S_IMODE(os.stat(PATH).st_mode) == 0o644  # node_exporter is another user
    assert sorted(os.listdir(DIR)) == ["other.prom", "wg_endpointd.prom"]


def test_a_failed_write_leaves_no_temporary_file(fs, monkeypatch):
    fs.create_file(PATH, contents="old\n")

    def full(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(OSError, match="No space"):
        write_atomic(PATH, "x 1\n")
    assert os.listdir(DIR) == ["wg_endpointd.prom"] and open(PATH).read() == "old\n"


def test_failures_are_logged_once_and_the_recovery_once(fs, caplog):
    out = MetricsFile()
    caplog.set_level(logging.INFO)
    assert out.write("/missing/dir/m.prom", "x 1\n") is False
    assert out.write("/missing/dir/m.prom", "x 1\n") is False
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "/missing/dir/m.prom" in errors[0].getMessage()
    fs.create_dir("/missing/dir")
    assert out.write("/missing/dir/m.prom", "x 1\n") is True
    assert out.write("/missing/dir/m.prom", "x 2\n") is True
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.INFO] == [
        "metrics file /missing/dir/m.prom written again"]


def test_processes_are_counted_by_program():
    before = proc.started()
    proc.run([sys.executable, "-c", "pass"], timeout=30)
    after = proc.started()
    name = os.path.basename(sys.executable)
    assert after[name] == before.get(name, 0) + 1
    with pytest.raises(FileNotFoundError):
        proc.run(["/nonexistent/wg"], timeout=5)
    assert proc.started().get("wg", 0) == before.get("wg", 0)  # it never started


@pytest.mark.parametrize("kind", ["link", "device", "directory"])
def test_what_is_not_a_regular_file_is_refused_and_left_alone(fs, kind):
    fs.create_dir(DIR)
    if kind == "link":
        fs.create_file("/etc/shadow", contents="secret\n")
        fs.create_symlink(PATH, "/etc/shadow")
    elif kind == "device":
        fs.create_file(PATH, st_mode=stat.S_IFCHR | 0o666)
    else:
        fs.create_dir(PATH)
    before = os.lstat(PATH)
    with pytest.raises(OSError, match="not a regular file"):
        write_atomic(PATH, "x 1\n")
    assert os.lstat(PATH) == before and os.listdir(DIR) == ["wg_endpointd.prom"]
    if kind == "link":
        assert open("/etc/shadow").read() == "secret\n"
