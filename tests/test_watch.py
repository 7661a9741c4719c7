"""``facelabel watch``: real files, real inotify and polling, the real database; the watcher
runs in a thread of this process (the model loads once) or as the command in its own process."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner
from sqlalchemy import func, select

from db.models import File, Image, Job, JobItem, Result
from facelabel.cli import main
from facelabel.cli.common import sessions_for
from facelabel.settings import get_settings
from facelabel.watch.labellers import LabelHere
from facelabel.watch.mounts import polling_reason
from facelabel.watch.watcher import Watcher
from tests import images
from tests.helpers import wait_for


@contextlib.contextmanager
def watching(root: Path, url: str, *, poll: float | None = None, rescan: float = 300, heartbeat=None):
    """A watcher labelling aligned faces under ``root`` in a thread; yields it and its lines."""
    settings = get_settings().with_(db_url=url)
    lines: list[str] = []
    watcher = Watcher(
        [str(root)],
        LabelHere(sessions_for(settings), settings, aligned=True),
        poll=poll,
        rescan=rescan,
        say=lines.append,
        heartbeat=heartbeat,
    )
    stop = threading.Event()
    thread = threading.Thread(target=watcher.run, args=(stop,))
    thread.start()
    try:
        wait_for(lambda: any(line.startswith("watching") for line in lines), 30, what="the watcher")
        yield watcher, lines
    finally:
        stop.set()
        thread.join(120)
        assert not thread.is_alive()


def items(url: str) -> dict[str, list[tuple[int, str, str | None]]]:
    """Each recorded path's job items: (job, status, content digest)."""
    sessions = sessions_for(get_settings().with_(db_url=url))
    with sessions() as session:
        rows = session.execute(
            select(File.path, JobItem.job_id, JobItem.status, Image.sha256)
            .join(JobItem, JobItem.file_id == File.id)
            .outerjoin(Image, Image.id == File.image_id)
        ).all()
    found: dict[str, list] = {}
    for path, job, status, digest in rows:
        found.setdefault(path, []).append((job, status, digest))
    return found


def count(url: str, column) -> int:
    with sessions_for(get_settings().with_(db_url=url))() as session:
        return session.scalar(select(func.count(column)))


def labelled(url: str, paths) -> bool:
    done = items(url)
    return all(any(status == "done" for _, status, _ in done.get(str(p), ())) for p in paths)


def arrived_earlier(paths: list[Path]) -> list[Path]:
    """Files that were there before the watcher looked (written an hour ago, so complete)."""
    for path in paths:
        os.utime(path, (time.time() - 3600, time.time() - 3600))
    return paths


def write_slowly(path: Path, data: bytes, seconds: float, pieces: int = 5) -> None:
    with open(path, "wb") as handle:
        for index in range(pieces):
            handle.write(data[index * len(data) // pieces : (index + 1) * len(data) // pieces])
            handle.flush()
            os.fsync(handle.fileno())
            time.sleep(seconds / pieces)


@pytest.mark.parametrize("poll", [None, 0.5], ids=["inotify", "polling"])
def test_a_file_written_slowly_is_labelled_once_complete(tmp_path, sqlite_url, poll):
    root = tmp_path / "photos"
    root.mkdir()
    (source,) = images.folder_of_images(tmp_path / "made", 1)
    data = source.read_bytes()
    with watching(root, sqlite_url, poll=poll):
        target = root / "slow.png"
        write_slowly(target, data, seconds=5)
        wait_for(lambda: labelled(sqlite_url, [target]), 60, what="the slow file's result")
        time.sleep(1)  # any second job would be on its way by now
    ((job, status, digest),) = items(sqlite_url)[str(target)]
    assert (status, digest) == ("done", hashlib.sha256(data).hexdigest())


def test_a_partial_download_waits_for_its_rename(tmp_path, sqlite_url):
    root = tmp_path / "photos"
    root.mkdir()
    (source,) = images.folder_of_images(tmp_path / "made", 1)
    with watching(root, sqlite_url):
        partial = root / "face.png.part"
        write_slowly(partial, source.read_bytes(), seconds=1)
        hidden = root / ".face2.png"
        shutil.copy(source, hidden)
        time.sleep(1.5)
        assert items(sqlite_url) == {}
        partial.rename(root / "face.png")
        wait_for(lambda: labelled(sqlite_url, [root / "face.png"]), 60, what="the renamed download")
    assert set(items(sqlite_url)) == {str(root / "face.png")}


def test_a_burst_becomes_a_few_jobs_and_every_file_one_result(tmp_path, sqlite_url):
    burst(tmp_path, sqlite_url, files=200)


@pytest.mark.soak
def test_a_burst_of_5000_files_becomes_a_few_jobs(tmp_path, pg_url):
    burst(tmp_path, pg_url, files=5000)


def burst(tmp_path: Path, url: str, files: int) -> None:
    root = tmp_path / "photos"
    root.mkdir()
    with watching(root, url):
        paths = images.folder_of_images(root / "burst", files)
        wait_for(lambda: labelled(url, paths), 60 + files / 10, interval=0.5, what="the burst's results")
    recorded = items(url)
    assert all(len(recorded[str(p)]) == 1 for p in paths)  # one job item each: labelled once
    jobs = {job for entries in recorded.values() for job, _, _ in entries}
    assert len(jobs) <= 2 + files // 2000, jobs
    assert count(url, Result.id) == files


def test_a_folder_renamed_inside_the_root_keeps_its_results(tmp_path, sqlite_url):
    root = tmp_path / "photos"
    paths = arrived_earlier(images.folder_of_images(root / "2024", 5))
    with watching(root, sqlite_url):
        wait_for(lambda: labelled(sqlite_url, paths), 60, what="the first results")
        before = {path: entries for path, entries in items(sqlite_url).items()}
        results, jobs = count(sqlite_url, Result.id), count(sqlite_url, Job.id)
        (root / "2024").rename(root / "holidays")
        moved = [root / "holidays" / p.name for p in paths]
        wait_for(lambda: set(items(sqlite_url)) == {str(p) for p in moved}, 30, what="the paths to follow")
        time.sleep(1)
    after = items(sqlite_url)
    assert [after[str(p)] for p in moved] == [before[str(p)] for p in paths]  # same jobs, same content
    assert (count(sqlite_url, Result.id), count(sqlite_url, Job.id)) == (results, jobs)  # no inference


def test_the_root_removed_and_restored_keeps_its_results_and_labelling_resumes(tmp_path, sqlite_url):
    root = tmp_path / "photos"
    first = arrived_earlier(images.folder_of_images(root, 4))
    with watching(root, sqlite_url) as (_, lines):
        wait_for(lambda: labelled(sqlite_url, first), 60, what="the first results")
        root.rename(tmp_path / "unmounted")
        wait_for(lambda: any("gone" in line for line in lines), 10, what="the report of the root gone")
        assert labelled(sqlite_url, first)
        (tmp_path / "unmounted").rename(root)
        wait_for(lambda: any("is back" in line for line in lines), 10, what="the report of its return")
        later = images.folder_of_images(tmp_path / "new", 3, start_seed=5)
        later = [p.rename(root / f"later_{p.name}") for p in later]
        wait_for(lambda: labelled(sqlite_url, later), 60, what="labelling to resume")
    recorded = items(sqlite_url)
    assert all(len(recorded[str(p)]) == 1 for p in first + later)
    assert count(sqlite_url, Result.id) == 7


def test_polling_finds_files_without_events(tmp_path, sqlite_url):
    root = tmp_path / "photos"
    root.mkdir()
    heartbeat = tmp_path / "heartbeat"
    with watching(root, sqlite_url, poll=0.5, heartbeat=heartbeat) as (watcher, _):
        assert watcher.polled == {str(root)}
        paths = images.folder_of_images(root / "new", 3)
        wait_for(lambda: labelled(sqlite_url, paths), 60, what="the polled files' results")
        assert time.time() - heartbeat.stat().st_mtime < 15  # the container's healthcheck reads it
    assert not heartbeat.exists()


MOUNTINFO = """\
22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
40 22 0:45 / /mnt/nas rw,relatime shared:20 - nfs4 nas:/photos rw,vers=4.2
41 22 0:46 / /mnt/nas/local\\040copy rw shared:21 - ext4 /dev/vdb1 rw
42 22 0:47 / /home/me/remote rw,nosuid - fuse.sshfs me@host:/ rw
43 22 0:48 / /srv rw - overlay overlay rw,lowerdir=/l,upperdir=/u
"""


@pytest.mark.parametrize(
    "path, polled",
    [
        ("/home/me/Pictures", False),
        ("/mnt/nas/2024", True),
        ("/mnt/nas/local copy/2024", False),
        ("/home/me/remote/photos", True),
        ("/srv/photos", True),
    ],
)
def test_network_fuse_and_overlay_filesystems_are_polled(tmp_path, path, polled):
    (tmp_path / "mountinfo").write_text(MOUNTINFO)
    assert (polling_reason(path, str(tmp_path / "mountinfo")) is not None) == polled


def watch_process(url: str, root: Path, log: Path, *extra: str, env: dict, prefix=()) -> subprocess.Popen:
    """``facelabel watch ROOT --aligned EXTRA`` in its own process, its output going to ``log``."""
    with open(log, "w") as output:
        return subprocess.Popen(
            [
                *prefix,
                sys.executable,
                "-m",
                "facelabel",
                "--db",
                url,
                "watch",
                str(root),
                "--aligned",
                *extra,
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
        )


def wait_for_line(log: Path, text: str, timeout: float = 60) -> None:
    wait_for(lambda: text in log.read_text(), timeout, interval=0.2, what=f"{text!r} in {log.read_text()!r}")


def test_files_added_while_the_watcher_is_stopped_are_labelled_after_it_restarts(tmp_path, sqlite_url):
    root = tmp_path / "photos"
    first = arrived_earlier(images.folder_of_images(root, 3))
    with watching(root, sqlite_url):
        wait_for(lambda: labelled(sqlite_url, first), 60, what="the first results")
    later = [p.rename(root / f"later_{p.name}") for p in images.folder_of_images(tmp_path / "x", 4, 9)]
    arrived_earlier(later)
    with watching(root, sqlite_url) as (_, lines):
        wait_for(lambda: labelled(sqlite_url, later), 60, what="the catch-up's results")
    recorded = items(sqlite_url)
    assert all(len(recorded[str(p)]) == 1 for p in first + later)
    assert [line for line in lines if line.startswith("job")] == [lines[-1]]  # one job: the new files


@pytest.mark.parametrize("before, after", [(12, 0), (2, 6)], ids=["at-start", "later"])
def test_past_the_inotify_watch_limit_the_watcher_says_so_and_polls(
    tmp_path, pg_url, redis_url, before, after
):
    """In a user namespace of its own the watcher may use 5 inotify watches: the tree passes
    that before it starts, or with folders made while it runs."""
    limit = 'echo 5 > /proc/sys/user/max_inotify_watches && exec "$0" "$@"'
    if subprocess.run(["unshare", "-U", "-r", "sh", "-c", limit, "true"], capture_output=True).returncode:
        pytest.skip("no user namespaces here to lower the inotify watch limit in")
    root = tmp_path / "photos"
    for index in range(before):
        (root / f"d{index}").mkdir(parents=True)
    log = tmp_path / "watch.log"
    process = watch_process(
        pg_url,
        root,
        log,
        "--enqueue",
        env={"FACELABEL_BROKER_URL": redis_url},
        prefix=("unshare", "-U", "-r", "sh", "-c", limit),
    )
    try:
        wait_for_line(log, "watching")
        for index in range(after):
            (root / f"new{index}").mkdir()
        wait_for_line(log, "sysctl fs.inotify.max_user_watches")
        images.folder_of_images(root / f"d{before - 1}", 1)
        wait_for_line(log, "job 1: 1 images queued", timeout=30)
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(60)
    assert code == 0, log.read_text()
    with sessions_for(get_settings().with_(db_url=pg_url))() as session:
        assert session.scalar(select(Job.options)).get("paths") == [str(root)]
    assert log.read_text().count("sysctl") == 1  # one line, not one per folder


def test_bad_roots_are_one_line_errors(tmp_path, sqlite_url, monkeypatch):
    (tmp_path / "a.jpg").write_bytes(b"x")
    result = CliRunner().invoke(main, ["--db", sqlite_url, "watch", str(tmp_path / "a.jpg")])
    assert result.exit_code == 2 and "is a file" in result.output and "Traceback" not in result.output
    monkeypatch.setenv("FACELABEL_DATA_ROOTS", str(tmp_path / "allowed"))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(main, ["--db", sqlite_url, "watch", str(tmp_path)])
    finally:
        get_settings.cache_clear()
    assert (
        result.exit_code == 1 and result.output.count("\n") == 1 and "FACELABEL_DATA_ROOTS" in result.output
    )


def test_memory_stays_flat_while_rescanning_a_labelled_tree(tmp_path, sqlite_url):
    flat_memory(tmp_path, sqlite_url, files=300, folders=10)


@pytest.mark.soak
def test_memory_stays_flat_over_a_100000_file_tree(tmp_path, pg_url):
    flat_memory(tmp_path, pg_url, files=100_000, folders=1000)


def flat_memory(tmp_path: Path, url: str, files: int, folders: int) -> None:
    """Rescans of a labelled tree, back to back: what Python holds does not grow with them."""
    root = tmp_path / "photos"
    paths = arrived_earlier(images.folder_of_images(tmp_path / "made", files))
    for index, path in enumerate(paths):
        (root / f"d{index % folders}").mkdir(parents=True, exist_ok=True)
        path.rename(root / f"d{index % folders}" / path.name)
    with watching(root, url, rescan=0.1) as (watcher, _):
        wait_for(
            lambda: count(url, Result.id) == files, 60 + files / 20, interval=1, what="the tree's results"
        )
        jobs = count(url, Job.id)
        tracemalloc.start()
        try:
            rescans = watcher.rescans
            wait_for(lambda: watcher.rescans >= rescans + 3, 60 + files / 500, what="three rescans")
            early = tracemalloc.get_traced_memory()[0]
            wait_for(lambda: watcher.rescans >= rescans + 20, 60 + files / 50, what="twenty rescans")
            late = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
    assert count(url, Job.id) == jobs  # rescans of a labelled tree send nothing
    assert late - early < 500_000, (early, late)


NO_MODEL_PROBE = """
import sys
from click.testing import CliRunner
from facelabel.cli import main
from facelabel.cli.common import sessions_for
from facelabel.settings import get_settings
from facelabel.watch.labellers import SendToWorkers
from facelabel.watch.watcher import Watcher
db, folder, image = sys.argv[1:4]
assert CliRunner().invoke(main, ["watch", "--help"]).exit_code == 0
settings = get_settings().with_(db_url=db)
print(SendToWorkers(sessions_for(settings), settings, aligned=True).label([folder], [image]))
print("HEAVY:" + ",".join(sorted(m for m in ("tensorflow", "keras", "mtcnn") if m in sys.modules)))
"""


def test_watching_with_enqueue_loads_no_model(tmp_path, sqlite_url, redis_url):
    (image,) = images.folder_of_images(tmp_path / "photos", 1)
    result = subprocess.run(
        [sys.executable, "-c", NO_MODEL_PROBE, sqlite_url, str(tmp_path / "photos"), str(image)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "FACELABEL_BROKER_URL": redis_url},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["job 1: 1 images queued", "HEAVY:"]
    assert redis.Redis.from_url(redis_url).llen("label") == 1  # the chunk waits for a worker
