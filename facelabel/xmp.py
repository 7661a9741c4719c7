"""XMP sidecars for photo managers: per photo, an MWG face region per face and keywords for the
attributes shown.

A region carries no ``mwg-rs:Name``: digiKam, Lightroom and Picasa read it as the person's
name. The attributes go in the region's ``mwg-rs:Description`` and in the photo's keywords
(``dc:subject``, and ``lr:hierarchicalSubject`` as ``facelabel|<attribute>``)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Callable, Iterator
from xml.sax.saxutils import escape, quoteattr

from facelabel import storage
from facelabel.artifact import ATTRIBUTES
from facelabel.confined import ReadError
from facelabel.destination import OutputError, unwritable

XMP = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="facelabel">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:mwg-rs="http://www.metadataworkinggroup.com/schemas/regions/"
    xmlns:stDim="http://ns.adobe.com/xap/1.0/sType/Dimensions#"
    xmlns:stArea="http://ns.adobe.com/xmp/sType/Area#"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:lr="http://ns.adobe.com/lightroom/1.0/">
   <mwg-rs:Regions rdf:parseType="Resource">
    <mwg-rs:AppliedToDimensions stDim:w="{width}" stDim:h="{height}" stDim:unit="pixel"/>
    <mwg-rs:RegionList>
     <rdf:Bag>
{regions}
     </rdf:Bag>
    </mwg-rs:RegionList>
   </mwg-rs:Regions>
{keywords}  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>
"""
KEYWORDS = """   <dc:subject>
    <rdf:Bag>
{subjects}
    </rdf:Bag>
   </dc:subject>
   <lr:hierarchicalSubject>
    <rdf:Bag>
{hierarchical}
    </rdf:Bag>
   </lr:hierarchicalSubject>
"""
REGION = """      <rdf:li>
       <rdf:Description mwg-rs:Type="Face" mwg-rs:Description={description}>
        <mwg-rs:Area stArea:x="{x:.6f}" stArea:y="{y:.6f}" stArea:w="{w:.6f}" stArea:h="{h:.6f}"
         stArea:unit="normalized"/>
       </rdf:Description>
      </rdf:li>"""


@dataclasses.dataclass
class Beside:
    """What ``write_beside`` did: the faces read, and the photos that got a sidecar, already
    had one, or could not get one."""

    faces: int = 0
    written: int = 0
    skipped: int = 0  # a sidecar was there already
    failed: int = 0


def render(faces: list[dict]) -> str:
    """One photo's sidecar from its face rows: each region's box centre and size as fractions
    of the upright image, its description ``facelabel: <attributes shown>``."""
    width, height = faces[0]["image_width"], faces[0]["image_height"]
    regions, shown = [], []
    for face in faces:
        on = [a for a in ATTRIBUTES if face[a]]
        shown += [a for a in on if a not in shown]
        x, y, w, h = face["box_x"], face["box_y"], face["box_w"], face["box_h"]
        regions.append(
            REGION.format(
                description=quoteattr(f"facelabel: {', '.join(on) or 'none'}"),
                x=(x + w / 2) / width,
                y=(y + h / 2) / height,
                w=w / width,
                h=h / height,
            )
        )
    keywords = KEYWORDS.format(
        subjects="\n".join(f"     <rdf:li>{escape(a)}</rdf:li>" for a in shown),
        hierarchical="\n".join(f"     <rdf:li>facelabel|{escape(a)}</rdf:li>" for a in shown),
    )
    return XMP.format(
        width=width, height=height, regions="\n".join(regions), keywords=keywords if shown else ""
    )


def write_mirrored(rows: Iterator[dict], out: Path) -> int:
    """``out/<the photo's absolute path>.xmp`` per photo (``out/s3/bucket/key.xmp`` for
    ``s3://bucket/key``), replaced if there; returns the faces written. ``out`` is an existing
    folder; the photos are never opened."""
    out = out.resolve()
    count = 0
    for faces in photos(rows):
        target = (out / (_mirrored(faces[0]["path"]) + ".xmp")).resolve()
        if not target.is_relative_to(out):
            raise OutputError(f"refused to write a sidecar outside {out}: {faces[0]['path']}")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(render(faces), encoding="utf-8")
        except OSError as exc:
            raise unwritable(target.parent, exc) from None
        count += len(faces)
    return count


def _mirrored(path: str) -> str:
    """The photo's place under ``--out``: its absolute path, or scheme, bucket and key."""
    try:
        return storage.parse(path).mirrored if storage.is_url(path) else path.lstrip("/")
    except ReadError as exc:
        raise OutputError(f"refused to write a sidecar for {path}: {exc}") from None


def write_beside(rows: Iterator[dict], fail: Callable[[str, str], None]) -> Beside:
    """``PHOTO.xmp`` (the photo's whole name, then ``.xmp``) beside each photo that has no
    sidecar yet, neither ``IMG_1.jpg.xmp`` nor ``IMG_1.xmp``: an existing file is never
    replaced. ``fail(path, reason)`` hears each photo that could not get one."""
    done = Beside()
    for faces in photos(rows):
        done.faces += len(faces)
        path = faces[0]["path"]
        try:
            written = _create_beside(path, render(faces))
        except _Refused as exc:
            done.failed += 1
            fail(path, str(exc))
            continue
        done.written += written
        done.skipped += not written
    return done


class _Refused(Exception):
    """A photo that gets no sidecar; ``str()`` is the reason."""


def _create_beside(path: str, text: str) -> bool:
    """Create the sidecar in the folder that holds the photo now; False where one exists.

    The folder is opened once and everything happens relative to that descriptor: the photo
    must be in it, and the sidecar is created exclusively (O_EXCL, no link followed), so
    neither a folder swapped for a link nor a sidecar appearing meanwhile is written through.
    """
    if storage.is_url(path):
        raise _Refused("in object storage: its sidecar goes under --out")
    if not os.path.isabs(path):
        raise _Refused("not a local photo")
    folder, name = os.path.split(path)
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise _Refused(f"cannot open its folder ({exc.strerror})") from None
    try:
        if not _exists(name, fd, follow=True):
            raise _Refused("the photo is no longer in its folder")
        if any(_exists(n, fd) for n in (f"{name}.xmp", f"{os.path.splitext(name)[0]}.xmp")):
            return False
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        sidecar = os.open(f"{name}.xmp", flags, 0o644, dir_fd=fd)
        try:
            with os.fdopen(sidecar, "w", encoding="utf-8") as handle:
                handle.write(text)
        except OSError:
            os.unlink(f"{name}.xmp", dir_fd=fd)  # no half sidecar, skipped as existing next time
            raise
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        raise _Refused(f"cannot write in its folder ({exc.strerror})") from None
    finally:
        os.close(fd)


def _exists(name: str, folder_fd: int, *, follow: bool = False) -> bool:
    try:
        os.stat(name, dir_fd=folder_fd, follow_symlinks=follow)
    except FileNotFoundError:
        return False
    return True


def photos(rows: Iterator[dict]) -> Iterator[list[dict]]:
    """Rows (ordered by path) grouped into one list of face rows per photo."""
    faces: list[dict] = []
    for row in rows:
        if faces and row["path"] != faces[0]["path"]:
            yield faces
            faces = []
        faces.append(row)
    if faces:
        yield faces
