"""Synthetic test images in every format facelabel must read (no CelebA, no downloads)."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

WIDTH, HEIGHT = 178, 218  # CelebA's aligned frame
FACE = Path(__file__).resolve().parent.parent / "examples" / "astronaut.jpg"  # public domain
GROUP_PLACES = ((30, 40, 1.8), (420, 120, 1.0), (680, 200, 0.6))  # x, y, scale of each face


def reference(seed: int = 0, width: int = WIDTH, height: int = HEIGHT) -> Image.Image:
    """A smooth, colourful RGB picture (blobs on gradients) that survives JPEG well."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    pixels = np.zeros((height, width, 3), np.float32)
    for channel in range(3):
        pixels[..., channel] = 60 + 60 * np.sin(x / (17 + 9 * channel) + seed) + 40 * np.cos(y / 23)
    for _ in range(6):
        cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(15, 50)
        blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r))
        pixels += blob[..., None] * rng.uniform(-90, 120, size=3)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def group_photo(path: Path, size=(900, 500), places=GROUP_PLACES) -> Path:
    """A synthetic group photo: the example face pasted at several sizes."""
    face = Image.open(FACE)
    canvas = Image.new("RGB", size, (200, 210, 220))
    for x, y, scale in places:
        canvas.paste(face.resize((int(WIDTH * scale), int(HEIGHT * scale))), (x, y))
    canvas.save(path, quality=92)
    return path


def save(image: Image.Image, path: Path, **options) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **options)
    return path


def exif_rotated_jpeg(upright: Image.Image, path: Path) -> Path:
    """Stored turned a quarter; EXIF orientation 6 says 'rotate 90° clockwise to view'."""
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    return save(stored, path, quality=95, exif=exif.tobytes())


def sixteen_bit_png(gray: Image.Image, path: Path) -> Path:
    values = (np.asarray(gray, dtype=np.uint16) * 257).astype("<u2")
    return save(Image.frombytes("I;16", gray.size, values.tobytes()), path)


def animated_gif(first: Image.Image, path: Path) -> Path:
    second = Image.new("RGB", first.size, (0, 0, 0))
    return save(first, path, save_all=True, append_images=[second], duration=100, loop=0)


def png_header_only(width: int, height: int, path: Path) -> Path:
    """A tiny file claiming width×height pixels: a decompression bomb's calling card."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    body = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 1024))
        + chunk(b"IEND", b"")
    )
    path.write_bytes(body)
    return path


def jpeg_bytes(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", **options)
    return buffer.getvalue()


def folder_of_images(root: Path, count: int, start_seed: int = 0) -> list[Path]:
    """``count`` small PNGs of distinct content (so none dedupe)."""
    root.mkdir(parents=True, exist_ok=True)
    base = np.asarray(reference(start_seed, 64, 80))
    paths = []
    for index in range(count):
        pixels = base.copy()
        pixels[index % 80, : (index // 80) + 1] = (index * 37) % 256  # unique marker
        pixels[0, 0] = [index % 256, (index // 256) % 256, 7]
        path = root / f"img_{index:05d}.png"
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


def symlink(target: Path, link: Path) -> Path:
    os.symlink(target, link)
    return link


def synthetic_celeba(root, count=96, seed=0):
    """Faces-ish pictures where each attribute is drawn (glasses band, beard, moustache bar,
    hat block), with CelebA-format annotation and partition files."""
    rng = np.random.default_rng(seed)
    folder = root / "img_align_celeba"
    folder.mkdir(parents=True)
    rows, partition = [], []
    for index in range(count):
        name = f"{index + 1:06d}.jpg"
        picture = reference(index)
        draw = ImageDraw.Draw(picture)
        glasses, beard, mustache, hat = (rng.random(4) < 0.3).astype(int)
        if glasses:
            draw.rectangle((30, 95, 150, 112), fill=(10, 10, 10))
        if beard:
            draw.rectangle((40, 160, 140, 218), fill=(90, 60, 30))
        if mustache:
            draw.rectangle((65, 140, 115, 148), fill=(40, 25, 10))
        if hat:
            draw.rectangle((20, 0, 160, 45), fill=(150, 20, 20))
        picture.save(folder / name, quality=92)
        values = [1 if glasses else -1, 1 if mustache else -1, -1 if beard else 1, 1 if hat else -1]
        rows.append(f"{name} {' '.join(map(str, values))}")
        partition.append(f"{name} {0 if index < count * 3 // 4 else 1}")
    (root / "list_attr_celeba.txt").write_text(
        f"{count}\r\nEyeglasses Mustache No_Beard Wearing_Hat\r\n" + "\r\n".join(rows) + "\r\n"
    )
    (root / "list_eval_partition.txt").write_text("\n".join(partition) + "\n")
    return folder
