"""Face thumbnails and photos for the review app: read through the confined reader from the
roots of the jobs that read each path, made once and kept on disk (keyed by content and box)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from facelabel.confined import inside
from facelabel.report import Limits, face_jpeg, photo_jpeg
from facelabel.settings import Settings
from facelabel.vision.imaging import Box


class ImageStore:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.cache = Path(settings.cache_dir) / "thumbnails"

    def thumbnail(self, face: dict, roots: dict[str, list[str]]) -> bytes | None:
        box = Box(face["box_x"], face["box_y"], face["box_w"], face["box_h"])
        key = f"{face['sha256']}-{box.x}-{box.y}-{box.w}-{box.h}.jpg"
        cached = self.cache / key[:2] / key
        if cached.is_file():
            return cached.read_bytes()
        jpeg = self._first(face, roots, lambda path, limits: face_jpeg(path, box, limits, size=160))
        if jpeg is not None:
            _write_atomically(cached, jpeg)
        return jpeg

    def photo(self, face: dict, roots: dict[str, list[str]]) -> bytes | None:
        return self._first(face, roots, photo_jpeg)

    def _first(self, face: dict, roots: dict[str, list[str]], make) -> bytes | None:
        """From the first of the face's paths that can be read inside its jobs' roots."""
        for path in face["paths"]:
            limits = Limits(
                roots=_allowed(roots.get(path, []), self.settings.data_roots),
                max_bytes=self.settings.max_file_bytes,
                max_pixels=self.settings.max_image_pixels,
            )
            if limits.roots and (jpeg := make(path, limits)) is not None:
                return jpeg
        return None


def _allowed(roots: list[str], data_roots) -> list[str]:
    """The job roots, narrowed to FACELABEL_DATA_ROOTS when set."""
    if not data_roots:
        return roots
    return [r for r in roots if inside(r, [str(d) for d in data_roots])]


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".part")
    with os.fdopen(handle, "wb") as out:
        out.write(data)
    os.replace(temporary, path)
