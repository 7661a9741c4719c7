"""Face detectors behind one interface; ``FACELABEL_DETECTOR`` picks one per job.

A backend takes RGB uint8 arrays (already scaled down to its working size) and returns each
image's faces in those pixels. With each backend come the numbers that frame its faces like
CelebA's aligned crops, re-fit on CelebA's aligned images by ``research/fit_framing.py``: where
the aligned frame lies around its box, and where its alignment points (eyes, mouth) sit in
the frame. Model files ship beside this module (README.md: provenance, licences) and are
checked against their sha256 before loading.

``DEFAULTS`` is the registry the settings read their choices and defaults from; importing
this package loads no backend.
"""

from __future__ import annotations

import hashlib
import importlib
import threading
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Protocol, Sequence

from facelabel.artifact import ArtifactError

if TYPE_CHECKING:
    import numpy as np


class Defaults(NamedTuple):
    confidence: float  # the cut applied when FACELABEL_MIN_FACE_CONFIDENCE is unset
    max_side: int  # longer side of the copy it detects on when FACELABEL_DETECT_MAX_SIDE is unset


# Each backend (a module of this package) and its defaults.
DEFAULTS = {
    "yunet": Defaults(0.6, 640),  # a face found in 99.7 % of the wild photos (0.8: 99.2 %)
    "blazeface": Defaults(0.5, 640),  # a face found in 99.9 % of the wild photos (0.6: 98.9 %)
    "mtcnn": Defaults(0.8, 1024),  # MTCNN's own last-stage cut
}
NAMES = tuple(DEFAULTS)
DEFAULT = "yunet"  # FACELABEL_DETECTOR unset
FRAME = (178, 218)  # CelebA's aligned frame, width × height: what the templates refer to

_lock = threading.Lock()
_loaded: dict[str, "Backend"] = {}


class RawFace(NamedTuple):
    box: tuple[float, float, float, float]  # x, y, w, h in the pixels of the image given
    confidence: float
    points: np.ndarray  # (k, 2) alignment points, in the order of the backend's template


class Backend(Protocol):
    name: str
    margins: tuple[float, float, float, float]  # aligned frame around its box: l, t, r, b (box fractions)
    template: np.ndarray  # (k, 2) its points' places in the 178×218 aligned frame

    def detect(self, images: Sequence[np.ndarray], *, min_size: int, batch: int) -> list[list[RawFace]]: ...


def backend_class(name: str) -> type[Backend]:
    """The class of detector ``name``: its framing numbers, without loading its model."""
    if name not in NAMES:
        raise ArtifactError(f"unknown face detector {name!r}; choose from {', '.join(NAMES)}")
    return importlib.import_module(f"{__name__}.{name}").BACKEND


def get_backend(name: str) -> Backend:
    """The detector ``name``, built once per process."""
    backend = backend_class(name)
    with _lock:
        if name not in _loaded:
            _loaded[name] = backend()
        return _loaded[name]


def model_file(name: str, sha256: str) -> Path:
    """A model file shipped beside this module, after checking its digest."""
    path = Path(__file__).resolve().parent / name
    if hashlib.sha256(path.read_bytes()).hexdigest() != sha256:
        raise ArtifactError(f"{path} does not match its recorded sha256: reinstall facelabel")
    return path
