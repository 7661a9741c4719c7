"""Image decoding and face cropping: the one place where trainer and worker turn bytes into
model pixels, so training and inference see the same crops."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import threading

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from facelabel.errors import FacelabelError

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".gif", ".webp", ".tif", ".tiff", ".bmp"}
)
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N"})

# decode_image checks the pixel count itself, right after reading the header, with a limit
# from the settings and a message that names the size; Pillow's own check would only say
# "decompression bomb" and cannot be configured per call.
Image.MAX_IMAGE_PIXELS = None


class PixelBudget:
    """Pixels being decoded at once in this process, across decode threads: a decode waits
    while others hold more than ``limit - its own``, so however many threads run, they hold
    about one largest-allowed image at a time, while small images still decode side by side."""

    def __init__(self):
        self._held = 0
        self._changed = threading.Condition()

    @contextlib.contextmanager
    def reserve(self, pixels: int, limit: int):
        pixels = min(pixels, limit)  # one image alone always fits
        with self._changed:
            self._changed.wait_for(lambda: self._held + pixels <= limit)
            self._held += pixels
        try:
            yield
        finally:
            with self._changed:
                self._held -= pixels
                self._changed.notify_all()


DECODING = PixelBudget()


class ImageError(FacelabelError):
    """A file that cannot be used as an image; ``str()`` is the reason shown to users."""


@dataclasses.dataclass(frozen=True)
class Box:
    """A face box in pixels of the upright (EXIF-rotated) image."""

    x: int
    y: int
    w: int
    h: int

    @property
    def area(self) -> int:
        return self.w * self.h


@dataclasses.dataclass(frozen=True)
class Decoded:
    """An upright RGB image (perhaps decoded at reduced scale) and the file's upright size."""

    image: Image.Image
    width: int
    height: int


def decode_image(data: bytes, *, max_pixels: int, draft_size: int | None = None) -> Decoded:
    """Decode ``data`` into an upright 8-bit RGB image.

    Applies EXIF orientation, takes the first frame of animations, composites transparency on
    white and maps every mode (grayscale, palette, CMYK, 16-bit, float) to RGB. ``draft_size``
    lets JPEG decoding scale down by DCT while keeping both sides at least that large.
    Raises ImageError with a plain reason for anything that is not a usable image.
    """
    if not data:
        raise ImageError("empty file (0 bytes)")
    try:
        image = Image.open(io.BytesIO(data))
        width, height = image.size
        if width * height > max_pixels:
            raise ImageError(_too_large(width, height, max_pixels))
        if draft_size and image.format == "JPEG":
            image.draft("RGB", _draft_target(width, height, draft_size))
        with DECODING.reserve(image.size[0] * image.size[1], max_pixels):
            image.load()
            decoded_size = image.size
            ImageOps.exif_transpose(image, in_place=True)  # no copy of an upright photo
            image = _to_rgb(image)
    except UnidentifiedImageError:
        raise ImageError(_unrecognised(data)) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"corrupt or truncated image data ({exc})") from None
    if min(image.size) < 1:
        raise ImageError("image has no pixels")
    if image.size != decoded_size:  # rotated a quarter turn by its EXIF orientation
        width, height = height, width
    return Decoded(image, width, height)


def crop_face(decoded: Decoded, box: Box, size: int) -> np.ndarray:
    """The model's view of one face: ``box`` (in file pixels) resized to size×size.

    Parts of the box outside the image are filled with black. Returns uint8 HWC RGB.
    """
    image = decoded.image
    if (box.x, box.y, box.w, box.h) != (0, 0, decoded.width, decoded.height):
        sx, sy = image.width / decoded.width, image.height / decoded.height
        image = image.crop(
            (round(box.x * sx), round(box.y * sy), round((box.x + box.w) * sx), round((box.y + box.h) * sy))
        )
    resized = image.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.uint8)


def aligned_framing(extent: tuple[float, float, float, float], margins: tuple[float, ...]) -> Box:
    """CelebA's aligned frame around a detector's box ``extent`` (x, y, w, h): ``margins`` say
    how far it reaches left, up, right and down, in fractions of the box (each detector's
    own, re-fit by research/fit_framing.py)."""
    x, y, w, h = extent
    left, top, right, bottom = margins
    x0, y0 = x - left * w, y - top * h
    x1, y1 = x + w * (1 + right), y + h * (1 + bottom)
    return Box(round(x0), round(y0), round(x1 - x0), round(y1 - y0))


def landmark_framing(points: np.ndarray, template: np.ndarray, frame: tuple[int, int]) -> np.ndarray:
    """CelebA's aligned frame (``frame`` = width, height) as it lies in the photo: the least-squares
    similarity (rotation, scale, shift) taking ``template`` (the points' places in the frame)
    onto ``points`` (file pixels), applied to the frame's corners. Returns them as (4, 2):
    top-left, top-right, bottom-right, bottom-left, in file pixels."""
    src, dst = np.asarray(template, np.float64), np.asarray(points, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    sc, dc = src - mu_s, dst - mu_d
    u, s, vt = np.linalg.svd(dc.T @ sc / len(src))  # Umeyama's method
    d = np.diag([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt))])
    rotation = u @ d @ vt
    scale = np.trace(np.diag(s) @ d) / (sc**2).sum(1).mean()
    width, height = frame
    corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float64)
    return (scale * corners @ rotation.T) + (mu_d - scale * rotation @ mu_s)


def crop_quad(decoded: Decoded, corners: np.ndarray, size: int) -> np.ndarray:
    """The model's view of a face frame that may be rotated: the quadrilateral ``corners``
    (top-left, top-right, bottom-right, bottom-left; file pixels) mapped onto size×size.
    Parts outside the image are black; large frames are reduced first so the result is not
    aliased. Returns uint8 HWC RGB."""
    image = decoded.image
    quad = np.asarray(corners, np.float64) * [image.width / decoded.width, image.height / decoded.height]
    x0, y0 = np.floor(quad.min(0)).astype(int)
    x1, y1 = np.ceil(quad.max(0)).astype(int)
    patch = image.crop((int(x0), int(y0), int(x1), int(y1)))  # zero-filled past the edges
    quad -= [x0, y0]
    factor = max(1, int(np.linalg.norm(quad[1] - quad[0]) // (2 * size)))
    if factor > 1:
        patch, quad = patch.reduce(factor), quad / factor
    top_left, top_right, bottom_right, bottom_left = quad
    data = (*top_left, *bottom_left, *bottom_right, *top_right)
    warped = patch.transform((size, size), Image.Transform.QUAD, data, Image.Resampling.BILINEAR)
    return np.asarray(warped, dtype=np.uint8)


def whole_image(decoded: Decoded) -> Box:
    """The box of an aligned face: the whole image."""
    return Box(0, 0, decoded.width, decoded.height)


def is_image_name(name: str) -> bool:
    """Whether a file name carries one of the image extensions facelabel reads."""
    dot = name.rfind(".")
    return dot > 0 and name[dot:].lower() in IMAGE_EXTENSIONS


def _to_rgb(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode in _SIXTEEN_BIT_MODES or mode in ("I", "F"):
        image, mode = Image.fromarray(_eight_bit(image), "L"), "L"
    if mode == "P":
        mode = "RGBA" if "transparency" in image.info else "RGB"
        image = image.convert(mode)
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image if mode == "RGB" else image.convert("RGB")


def _eight_bit(image: Image.Image) -> np.ndarray:
    """A 16-bit, 32-bit integer or float single-channel image as uint8, in integer steps (a
    float64 copy of a 25-megapixel image would cost 200 MB per decoding thread)."""
    if image.mode == "F":
        return np.clip(np.asarray(image), 0, 255).astype(np.uint8)
    pixels = np.asarray(image)  # uint16 for the I;16 modes, int32 for I
    if image.mode in _SIXTEEN_BIT_MODES or pixels.max(initial=0) > 255:
        pixels = pixels >> 8  # 16-bit range: the high byte (v*257 maps back to v exactly)
    return np.clip(pixels, 0, 255).astype(np.uint8)


def _draft_target(width: int, height: int, size: int) -> tuple[int, int]:
    scale = size / min(width, height)
    return max(size, int(width * scale)), max(size, int(height * scale))


def _too_large(width: int, height: int, limit: int) -> str:
    return f"image too large: {width}×{height} pixels (limit {limit / 1e6:g} megapixels)"


def _unrecognised(data: bytes) -> str:
    head = data[:512]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return "not an image: unrecognised file format"
    if text.lstrip().lower().startswith(("<!doctype html", "<html")):
        return "not an image: the file holds HTML"
    if all(c.isprintable() or c.isspace() for c in text):
        return "not an image: the file holds text"
    return "not an image: unrecognised file format"
