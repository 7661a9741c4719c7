"""Files are read only inside a job's roots, whatever happens to the names meanwhile."""

from __future__ import annotations

import os
import threading
import time

import pytest

from facelabel.confined import ReadError, read_confined


def test_a_folder_swapped_for_a_symlink_never_leads_outside(tmp_path):
    """One thread keeps swapping a folder inside the root for a symlink to a folder outside
    (with a file of the same name); the reader never gets the outside file's bytes."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "photos").mkdir(parents=True)
    outside.mkdir()
    (root / "photos" / "a.jpg").write_bytes(b"inside")
    (outside / "a.jpg").write_bytes(b"SECRET")
    parked, link = root / "parked", root / "link"
    os.symlink(outside, link)
    stop = threading.Event()

    def swap():
        while not stop.is_set():
            os.rename(root / "photos", parked)
            os.rename(link, root / "photos")  # now a symlink to outside
            os.rename(root / "photos", link)
            os.rename(parked, root / "photos")

    swapper = threading.Thread(target=swap)
    swapper.start()
    reads, refusals, leaks = 0, 0, 0
    deadline = time.monotonic() + 2.0
    try:
        while time.monotonic() < deadline:
            try:
                data = read_confined(str(root / "photos" / "a.jpg"), [str(root)], max_bytes=100)
            except ReadError:
                refusals += 1
                continue
            reads += 1
            leaks += data == b"SECRET"
    finally:
        stop.set()
        swapper.join()
    assert leaks == 0
    assert reads > 0 and refusals > 0  # both states were met


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    os.mkfifo(tmp_path / "pipe.jpg")
    with pytest.raises(ReadError, match="not a regular file"):
        read_confined(str(tmp_path / "pipe.jpg"), [str(tmp_path)], max_bytes=100)


def test_a_symlink_inside_the_roots_is_followed(tmp_path):
    (tmp_path / "real.jpg").write_bytes(b"pixels")
    os.symlink(tmp_path / "real.jpg", tmp_path / "alias.jpg")
    assert read_confined(str(tmp_path / "alias.jpg"), [str(tmp_path)], max_bytes=100) == b"pixels"


def test_a_file_over_the_limit_is_refused(tmp_path):
    (tmp_path / "big.jpg").write_bytes(b"x" * 101)
    with pytest.raises(ReadError, match="file too large: 101 bytes"):
        read_confined(str(tmp_path / "big.jpg"), [str(tmp_path)], max_bytes=100)
