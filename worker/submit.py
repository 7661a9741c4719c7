"""Turn folders into a job: commit the job, then scan as a stream and hand on each chunk.

The same code feeds Redis (``enqueue``) and the in-process loop (``label``). Workers record
each file's outcome; the job completes when the outcomes reach the scanned count.
"""

from __future__ import annotations

import dataclasses
import os
from itertools import islice
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from sqlalchemy.orm import Session, sessionmaker

from db.chunks import add_chunks
from db.jobs import create_job, mark_interrupted, mark_scanned
from db.registry import resolve_model
from facelabel.confined import job_roots
from facelabel.settings import BUNDLED_MODEL, Settings
from facelabel.storage import is_url, normalised, objects
from facelabel.vision.imaging import is_image_name

LEDGER_BATCH = 16  # chunks recorded per transaction, then sent


@dataclasses.dataclass
class ScanCounts:
    images: int = 0
    skipped: int = 0
    unreadable: int = 0  # folders that could not be listed
    unreadable_examples: list[str] = dataclasses.field(default_factory=list)  # the first few


def scan(roots: Sequence[str], counts: ScanCounts) -> Iterator[str]:
    """Absolute paths of image files under ``roots``, yielded as they are found.

    A root that is a file (or an object) is taken whatever its extension. Under a directory
    or a URL prefix (``s3://bucket/prefix/``, listed page by page), files without
    an image extension are counted in ``counts.skipped`` and folders that cannot be listed
    in ``counts.unreadable``; directory symlinks are not followed (no loops); file symlinks
    are yielded and checked by the reader. A folder's listing streams: only its subfolders'
    names are kept until they are visited.
    """
    for root in roots:
        if is_url(root):
            yield from _counted(_images(objects(root), root, counts), counts)
            continue
        if not os.path.isdir(root):
            counts.images += 1
            yield root
            continue
        stack = [root]
        while stack:
            directory = stack.pop()
            subdirectories = []
            try:
                with os.scandir(directory) as entries:
                    for entry in entries:
                        if entry.is_dir(follow_symlinks=False):
                            subdirectories.append(entry.path)
                        elif is_image_name(entry.name):
                            counts.images += 1
                            yield entry.path
                        else:
                            counts.skipped += 1
            except OSError:
                counts.unreadable += 1
                if len(counts.unreadable_examples) < 5:
                    counts.unreadable_examples.append(directory)
            stack.extend(sorted(subdirectories, reverse=True))


def _images(urls: Iterator[str], root: str, counts: ScanCounts) -> Iterator[str]:
    """The image objects among ``urls`` (``root`` itself counts whatever its name)."""
    for url in urls:
        if url == root or is_image_name(url.rsplit("/", 1)[-1]):
            yield url
        else:
            counts.skipped += 1


def absolute(path: str | Path) -> str:
    """A path as a job names it: absolute, ``~`` expanded; a URL normalised."""
    return normalised(path) if is_url(path) else os.path.abspath(os.path.expanduser(path))


def outermost(paths: Sequence[str]) -> list[str]:
    """``paths`` without duplicates or paths inside another one (each file scanned once)."""
    kept: list[str] = []
    for path in sorted(set(paths)):
        if not any(path.startswith(root.rstrip(os.sep) + os.sep) for root in kept):
            kept.append(path)
    return kept


def submit_job(
    sessions: sessionmaker[Session],
    paths: Sequence[str | Path],
    *,
    settings: Settings,
    aligned: bool,
    batch_size: int | None,
    model: str | None,
    send: Callable[[int, list[str], int], None],
    on_job: Callable[[int], None] = lambda job_id: None,
    drain: Callable[[], None] = lambda: None,
    files: Iterable[str] | None = None,
) -> tuple[int, ScanCounts]:
    """Create a job over ``paths`` and hand each chunk of found images to
    ``send(job_id, chunk, chunk_id)`` as the scan goes, each recorded in the ledger first;
    ``on_job(job_id)`` runs before the scan, ``drain()`` after the last chunk is sent (a
    ``send`` that hands chunks to threads waits for them there). With ``files`` (paths under
    ``paths``, as a watcher finds them) the job labels those instead of scanning."""
    named = outermost([absolute(p) for p in paths])
    roots = job_roots(named, settings.data_roots)
    with sessions.begin() as session:
        version = resolve_model(session, model or settings.model, fallback=BUNDLED_MODEL)
        job = create_job(
            session,
            roots=roots,
            # a job without --model (or FACELABEL_MODEL) follows the active version as it changes
            options={
                "aligned": aligned,
                "detector": None if aligned else settings.detector,
                "face_framing": None if aligned else settings.face_framing,
                "batch_size": batch_size,
                "paths": named,
                "pinned": bool(model or settings.model),
            },
            model_version_id=version.id,
        )
        job_id = job.id
    counts = ScanCounts()
    try:
        on_job(job_id)
        found = scan(named, counts) if files is None else _counted(files, counts)
        _send_chunks(sessions, job_id, found, settings.chunk_size, send)
        drain()
    except BaseException:  # a broker gone, Ctrl-C, a bug: the job will not complete by itself
        with sessions.begin() as session:
            mark_interrupted(session, job_id)
        raise
    with sessions.begin() as session:
        mark_scanned(session, job_id, images=counts.images, skipped=counts.skipped)
    return job_id, counts


def _counted(files: Iterable[str], counts: ScanCounts) -> Iterator[str]:
    for path in files:
        counts.images += 1
        yield path


def _send_chunks(sessions, job_id: int, found: Iterator[str], size: int, send) -> None:
    """Chunks of ``size`` paths, recorded in the ledger (a batch per transaction), then sent."""
    chunks = iter(lambda: list(islice(found, size)), [])
    number = 0
    while group := list(islice(chunks, LEDGER_BATCH)):
        with sessions.begin() as session:
            ids = add_chunks(session, job_id, number, group)
        number += len(group)
        for chunk_id, paths in zip(ids, group):
            send(job_id, paths, chunk_id)
