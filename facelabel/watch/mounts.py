"""Which filesystem a path lives on, from /proc/self/mountinfo: network shares, FUSE and
overlays deliver no inotify events for changes made elsewhere, so those are polled."""

from __future__ import annotations

import os
import re

MOUNTINFO = "/proc/self/mountinfo"
# inotify sees only this machine's own writes on these (another host's or a lower layer's
# changes arrive without events)
EVENTLESS = ("nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "afs", "ceph", "glusterfs", "overlay", "fuse")


def filesystem_type(path: str, mountinfo: str = MOUNTINFO) -> str | None:
    """The type of the filesystem ``path`` is on (``ext4``, ``nfs4``, ``fuse.sshfs``, …);
    None where mountinfo cannot be read."""
    try:
        with open(mountinfo, encoding="utf-8", errors="surrogateescape") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    real = os.path.realpath(path)
    best, found = -1, None
    for line in lines:
        fields, _, tail = line.partition(" - ")
        parts, kinds = fields.split(), tail.split()
        if len(parts) < 5 or not kinds:
            continue
        point = _unescape(parts[4])
        # the deepest mount point holds the path; of two on one point, the later is on top
        if _under(real, point) and len(point) >= best:
            best, found = len(point), kinds[0]
    return found


def polling_reason(path: str, mountinfo: str = MOUNTINFO) -> str | None:
    """Why ``path`` must be polled (its filesystem type), or None where events arrive."""
    kind = filesystem_type(path, mountinfo)
    if kind is not None and kind.split(".")[0] in EVENTLESS:
        return f"{kind} delivers no events for others' changes"
    return None


def _under(path: str, point: str) -> bool:
    return point == "/" or path == point or path.startswith(point.rstrip("/") + "/")


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes (``\\040``)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)
