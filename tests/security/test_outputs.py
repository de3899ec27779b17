"""Outputs: a port's files appear together or not at all; racing writers; killed writers; unwritable folders."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import converter
from converter.errors import OutputRefused
from converter.outputs import TEMP_MARK, Transaction, atomic_path, transaction
from hostile import onnx_dense
from test_bad_input import assert_clean_failure, wconv


def test_port_files_appear_together_or_not_at_all(tmp_path):
    """The second file failing to land removes the first: no out.pt without out.py."""
    (tmp_path / "out.py").mkdir()  # a folder where the module should go: its move must fail
    with pytest.raises(Exception):
        with transaction(force=False):
            for name in ("out.pt", "out.py"):
                with atomic_path(tmp_path / name) as temp:
                    open(temp, "w").write("x")
    assert not (tmp_path / "out.pt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["out.py"]


def test_second_writer_without_force_is_refused(tmp_path):
    """Two writers both pass the early "exists" check; the exclusive create at the end lets one win."""
    from converter.outputs import check_outputs

    target = tmp_path / "out.onnx"
    first, second = Transaction(force=False), Transaction(force=False)
    for writer, text in ((first, "first"), (second, "second")):
        check_outputs([], [target], force=False)
        open(writer.temp_for(target), "w").write(text)
    first.commit()
    with pytest.raises(OutputRefused, match="exists"):
        second.commit()
    assert target.read_text() == "first"
    assert not [p for p in tmp_path.iterdir() if TEMP_MARK in p.name]


def test_stale_temps_of_dead_writers_are_swept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    stale = tmp_path / f".out.pt{TEMP_MARK}{dead}-0123abcd.pt"
    live = tmp_path / f".out.pt{TEMP_MARK}{os.getpid()}-0123abcd.pt"
    stranger = tmp_path / ".out.pt.something-else"
    for path in (stale, live, stranger):
        path.write_text("partial")
    converter.convert(onnx_dense(tmp_path / "m.onnx"), tmp_path / "out.pt")
    assert not stale.exists() and live.exists() and stranger.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_is_an_output_error(tmp_path):  # pragma: no cover - CI runs as root
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    result = wconv("onnx-to-torch", onnx_dense(tmp_path / "m.onnx"), folder / "out.pt")
    assert_clean_failure(result, 4, folder / "out.pt", "cannot write")


def test_unwritable_output_is_exit_4_not_70(tmp_path):
    """A folder in the way of the generated module (as a full disk or a read-only folder would fail)."""
    (tmp_path / "out.py").mkdir()
    result = wconv("onnx-to-torch", onnx_dense(tmp_path / "m.onnx"), tmp_path / "out.pt", "--force")
    assert result.returncode == 4, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out.pt").exists()


def test_a_failed_keras_load_leaves_no_temp_folder(tmp_path, keras):
    """validate's Keras runner: Keras unpacks a .keras file's assets into a temp folder and leaves it
    when unpacking fails (here: a corrupt asset, which wconv's own reading never touches)."""
    import subprocess
    import sys
    import zipfile

    from conftest import ROOT
    from models import keras_mlp

    keras_mlp(keras, (7, 5, 3)).save(tmp_path / "good.keras")
    with zipfile.ZipFile(tmp_path / "good.keras") as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    marker = b"asset-bytes-" * 8
    with zipfile.ZipFile(tmp_path / "broken.keras", "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        archive.writestr("assets/vocabulary.txt", marker)
    data = (tmp_path / "broken.keras").read_bytes()
    (tmp_path / "broken.keras").write_bytes(data.replace(marker, marker[::-1]))  # the CRC no longer fits
    temp = tmp_path / "temp"
    temp.mkdir()
    result = subprocess.run([sys.executable, "-m", "converter", "validate", str(tmp_path / "good.keras"),
                             str(tmp_path / "broken.keras"), "--input-shape", "7"], capture_output=True, text=True,
                            cwd=ROOT, env={**os.environ, "TMPDIR": str(temp)})
    assert result.returncode == 2, result.stderr
    assert list(temp.iterdir()) == []
