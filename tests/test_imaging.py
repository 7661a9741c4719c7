"""Decoding: every valid format becomes the right upright RGB pixels; every invalid file
gets a plain reason."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

from facelabel.vision.imaging import Box, ImageError, crop_face, decode_image, is_image_name, whole_image
from tests import images

LIMIT = 100_000_000


def decode_file(path, **kwargs):
    return decode_image(path.read_bytes(), max_pixels=LIMIT, **kwargs)


def pixels(decoded):
    return np.asarray(decoded.image, dtype=np.int16)


def test_lossless_formats_decode_to_the_same_pixels(tmp_path):
    ref = images.reference()
    expected = np.asarray(ref, dtype=np.int16)
    for name, options in [("a.png", {}), ("a.bmp", {}), ("a.tiff", {}), ("a.webp", {"lossless": True})]:
        decoded = decode_file(images.save(ref, tmp_path / name, **options))
        assert (decoded.width, decoded.height) == ref.size, name
        assert np.array_equal(pixels(decoded), expected), name


def test_grayscale_and_sixteen_bit_become_gray_rgb(tmp_path):
    gray = images.reference().convert("L")
    expected = np.repeat(np.asarray(gray, dtype=np.int16)[..., None], 3, axis=2)
    assert np.array_equal(pixels(decode_file(images.save(gray, tmp_path / "g.png"))), expected)
    sixteen = images.sixteen_bit_png(gray, tmp_path / "g16.png")
    assert Image.open(sixteen).mode.startswith("I")
    assert np.array_equal(pixels(decode_file(sixteen)), expected)


def test_transparency_is_composited_on_white(tmp_path):
    rgba = images.reference().convert("RGBA")
    rgba.putalpha(0)
    decoded = decode_file(images.save(rgba, tmp_path / "clear.png"))
    assert (pixels(decoded) == 255).all()


def test_cmyk_progressive_and_palette_images_match_the_original(tmp_path):
    ref = images.reference()
    expected = np.asarray(ref, dtype=np.int16)
    cases = {
        "cmyk.jpg": (ref.convert("CMYK"), {"quality": 95}),
        "progressive.jpg": (ref, {"quality": 95, "progressive": True}),
        "palette.gif": (ref.convert("P", palette=Image.Palette.ADAPTIVE, colors=256), {}),
    }
    for name, (image, options) in cases.items():
        decoded = decode_file(images.save(image, tmp_path / name, **options))
        assert np.abs(pixels(decoded) - expected).mean() < 6, name


def test_animated_gif_uses_the_first_frame(tmp_path):
    first = images.reference().convert("P", palette=Image.Palette.ADAPTIVE)
    decoded = decode_file(images.animated_gif(first, tmp_path / "anim.gif"))
    assert pixels(decoded).mean() > 40  # the second frame is black


def test_exif_orientation_is_applied_and_size_is_upright(tmp_path):
    ref = images.reference()
    decoded = decode_file(images.exif_rotated_jpeg(ref, tmp_path / "rotated.jpg"))
    assert (decoded.width, decoded.height) == ref.size
    assert np.abs(pixels(decoded) - np.asarray(ref, dtype=np.int16)).mean() < 6


def test_draft_decoding_keeps_the_file_size_and_at_least_the_draft_size(tmp_path):
    big = images.reference(width=1600, height=1200)
    decoded = decode_file(images.save(big, tmp_path / "big.jpg", quality=90), draft_size=160)
    assert (decoded.width, decoded.height) == (1600, 1200)
    assert min(decoded.image.size) >= 160 and decoded.image.width < 1600


def test_crop_of_whole_image_and_of_a_box(tmp_path):
    decoded = decode_file(images.save(images.reference(), tmp_path / "a.png"))
    assert crop_face(decoded, whole_image(decoded), 160).shape == (160, 160, 3)
    outside = crop_face(decoded, Box(-50, -50, 60, 60), 32)
    assert outside.shape == (32, 32, 3) and (outside[:20, :20] == 0).all()


def test_tiny_image_decodes(tmp_path):
    decoded = decode_file(images.save(images.reference(width=8, height=8), tmp_path / "t.png"))
    assert (decoded.width, decoded.height) == (8, 8)


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"", "empty file"),
        (b"hello, these are my holiday notes\n", "holds text"),
        (b"<!DOCTYPE html><html><body>404</body></html>", "holds HTML"),
        (bytes(range(256)) * 8, "unrecognised file format"),
    ],
)
def test_non_images_get_a_plain_reason(content, reason):
    with pytest.raises(ImageError, match=reason):
        decode_image(content, max_pixels=LIMIT)


def test_truncated_jpeg_is_reported_corrupt():
    data = images.jpeg_bytes(images.reference(), quality=95)
    with pytest.raises(ImageError, match="corrupt or truncated"):
        decode_image(data[: len(data) // 2], max_pixels=LIMIT)


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    path = images.png_header_only(40000, 40000, tmp_path / "bomb.png")
    with pytest.raises(ImageError, match="too large: 40000×40000"):
        decode_file(path)


def test_random_bytes_are_refused():
    with pytest.raises(ImageError):
        decode_image(os.urandom(4096), max_pixels=LIMIT)


def test_image_names():
    assert is_image_name("A.JPG") and is_image_name("x.tiff") and is_image_name("ñ é.webp")
    assert not is_image_name("notes.txt") and not is_image_name(".jpg") and not is_image_name("jpg")


def test_decode_threads_share_one_pixel_budget(monkeypatch):
    """Four threads decoding images of 60 % of the pixel limit take turns: the pixels decoding
    at once never exceed the limit (each image alone is allowed; memory stays one image's)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from facelabel.vision import imaging

    budget = imaging.PixelBudget()
    monkeypatch.setattr(imaging, "DECODING", budget)
    peak, lock = [0], threading.Lock()
    real_reserve = budget.reserve

    def watched(pixels, limit):
        context = real_reserve(pixels, limit)

        class Watch:
            def __enter__(self):
                context.__enter__()
                with lock:
                    peak[0] = max(peak[0], budget._held)
                threading.Event().wait(0.05)  # hold it a while, as a real decode would

            def __exit__(self, *exc):
                return context.__exit__(*exc)

        return Watch()

    monkeypatch.setattr(budget, "reserve", watched)
    buffer = io.BytesIO()
    Image.new("RGB", (100, 60), (9, 9, 9)).save(buffer, "PNG")
    data = buffer.getvalue()
    with ThreadPoolExecutor(4) as pool:
        decoded = list(pool.map(lambda _: decode_image(data, max_pixels=10_000), range(8)))
    assert all(d.image.size == (100, 60) for d in decoded)
    assert peak[0] == 6_000  # never two at once: 12,000 would pass the 10,000 limit
    with ThreadPoolExecutor(4) as pool:  # small ones still decode side by side
        peak[0] = 0
        list(pool.map(lambda _: decode_image(data, max_pixels=100_000), range(8)))
    assert peak[0] > 6_000
