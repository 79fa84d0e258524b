"""Atomic writes: the file appears whole with normal permissions, and a failed write leaves nothing behind."""

import os
import stat

import pytest

from toyrlhf.files import atomic_write


def test_atomic_write_creates_the_file_with_umask_permissions(tmp_path):
    path = tmp_path / "sub" / "out.txt"
    atomic_write(path, lambda tmp: open(tmp, "w").write("hello"))
    assert path.read_text() == "hello"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.txt"]


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")

    def fail(tmp):
        open(tmp, "w").write("half")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        atomic_write(path, fail)
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
