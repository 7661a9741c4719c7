"""A job as one self-contained HTML page: face thumbnails grouped by attribute with their
probabilities, the failures, the counts. Thumbnails are cut from the files on disk."""

from __future__ import annotations

import base64
import dataclasses
import html
import io
from typing import Any, Iterable

from PIL import Image

from facelabel.artifact import ATTRIBUTES
from facelabel.confined import ReadError, read_confined
from facelabel.storage import StorageUnavailable
from facelabel.vision.imaging import Box, Decoded, ImageError, crop_face, decode_image

THUMB = 112
PER_GROUP = 200

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 1.6em; }
.counts td, .failures td { padding: 2px 10px 2px 0; }
.faces { display: flex; flex-wrap: wrap; gap: 8px; }
figure { margin: 0; width: 112px; font-size: 11px; text-align: center; }
figure img { width: 112px; height: 112px; object-fit: cover; border-radius: 4px; display: block; }
figcaption { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.muted { color: #777; }
"""


@dataclasses.dataclass(frozen=True)
class Limits:
    """What the report may read: the job's roots, and the worker's size limits."""

    roots: list[str]
    max_bytes: int
    max_pixels: int


def face_jpeg(path: str, box: Box, limits: Limits, size: int = THUMB) -> bytes | None:
    """The face crop (with a margin) as JPEG, or None when the file is gone, unreadable,
    outside the job's roots, too large, or not a regular file (a FIFO must not hang a page)."""
    decoded = _decoded(path, limits)
    if decoded is None:
        return None
    margin_w, margin_h = box.w // 5, box.h // 5
    padded = Box(box.x - margin_w, box.y - margin_h, box.w + 2 * margin_w, box.h + 2 * margin_h)
    buffer = io.BytesIO()
    Image.fromarray(crop_face(decoded, padded, size)).save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


def photo_jpeg(path: str, limits: Limits, longest: int = 1024) -> bytes | None:
    """The whole photo, upright and at most ``longest`` pixels on its long side, as JPEG."""
    decoded = _decoded(path, limits)
    if decoded is None:
        return None
    picture = decoded.image.copy()
    picture.thumbnail((longest, longest))
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def _decoded(path: str, limits: Limits) -> Decoded | None:
    try:
        data = read_confined(path, limits.roots, max_bytes=limits.max_bytes)
        return decode_image(data, max_pixels=limits.max_pixels, draft_size=1024)
    except (ReadError, ImageError, StorageUnavailable):
        return None


def thumbnail(path: str, box: Box, limits: Limits) -> str | None:
    """A data: URL of the face crop (``face_jpeg``), or None."""
    jpeg = face_jpeg(path, box, limits)
    return None if jpeg is None else "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()


def render(
    *,
    title: str,
    stats: dict[str, Any],
    faces: Iterable[dict[str, Any]],
    failures: Iterable[dict[str, Any]],
    limits: Limits,
) -> str:
    """The page. ``faces`` are ``query`` rows; each attribute shows its most confident faces."""
    groups: dict[str, list[dict]] = {a: [] for a in (*ATTRIBUTES, "none")}
    for face in faces:
        on = [a for a in ATTRIBUTES if face[a]]
        for attribute in on or ["none"]:
            groups[attribute].append(face)
    parts = [
        f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title><style>{STYLE}</style>"
    ]
    parts.append(f"<h1>{html.escape(title)}</h1><table class='counts'>")
    parts += [f"<tr><td>{html.escape(k)}</td><td>{v}</td></tr>" for k, v in stats.items()]
    parts.append("</table>")
    cache: dict[tuple[str, tuple[int, int, int, int]], str | None] = {}
    for attribute, members in groups.items():
        key = attribute if attribute == "none" else f"p_{attribute}"
        if attribute != "none":
            members.sort(key=lambda f: f[key], reverse=True)
        shown = members[:PER_GROUP]
        heading = "no attribute" if attribute == "none" else attribute
        more = (
            f" <span class='muted'>(the {PER_GROUP} most confident shown)</span>"
            if len(members) > PER_GROUP
            else ""
        )
        parts.append(f"<h2>{heading}: {len(members)} faces{more}</h2><div class='faces'>")
        for face in shown:
            box = (face["box_x"], face["box_y"], face["box_w"], face["box_h"])
            if (face["path"], box) not in cache:
                cache[(face["path"], box)] = thumbnail(face["path"], Box(*box), limits)
            src = cache[(face["path"], box)]
            name = html.escape(face["path"].rsplit("/", 1)[-1])
            probability = "" if attribute == "none" else f"{face[key]:.2f} · "
            image = f"<img src='{src}' alt=''>" if src else "<div class='muted'>(file unavailable)</div>"
            parts.append(
                f"<figure title='{html.escape(face['path'])} face {face['face']}'>{image}"
                f"<figcaption>{probability}{name} #{face['face']}</figcaption></figure>"
            )
        parts.append("</div>")
    failure_rows = [
        f"<tr><td>{html.escape(f['path'])}</td><td>{html.escape(f['reason'])}</td></tr>" for f in failures
    ]
    parts.append(
        f"<h2>failures: {len(failure_rows)}</h2><table class='failures'>{''.join(failure_rows)}</table>"
    )
    return "\n".join(parts) + "\n"
