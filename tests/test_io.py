"""Atomic outputs: whole or absent, and readable like any file the user's umask allows."""
import os
import stat

import pytest

from ard.io import atomic_dir, atomic_file


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_outputs_get_the_umask_modes_not_the_temporaries(tmp_path, umask_022):
    with atomic_dir(tmp_path / "model") as tmp:
        (tmp / "weights").write_text("w")
    with atomic_file(tmp_path / "info.json") as handle:
        handle.write("{}")
    assert mode(tmp_path / "model") == 0o755
    assert mode(tmp_path / "info.json") == 0o644
    assert (tmp_path / "model" / "weights").read_text() == "w"


def test_a_failed_block_leaves_nothing_and_keeps_the_old_output(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "old").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_dir(tmp_path / "model") as tmp:
            (tmp / "new").write_text("new")
            raise RuntimeError("stage failed")
    with pytest.raises(RuntimeError):
        with atomic_file(tmp_path / "info.json") as handle:
            handle.write("partial")
            raise RuntimeError("stage failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    assert [p.name for p in (tmp_path / "model").iterdir()] == ["old"]
