"""Draw face boxes and the labels that are on, like the seed's result pictures."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from PIL import ImageDraw, ImageFont

from facelabel.artifact import ATTRIBUTES
from facelabel.vision.imaging import decode_image

COLOURS = ((46, 204, 113), (52, 152, 219), (231, 76, 60), (241, 196, 15), (155, 89, 182))


def annotate(source: Path, faces: Sequence, out: Path, *, max_pixels: int) -> None:
    """Save ``source`` upright with a numbered box per face and its positive labels."""
    image = decode_image(source.read_bytes(), max_pixels=max_pixels).image
    draw = ImageDraw.Draw(image)
    width = max(2, round(max(image.size) / 400))
    font = ImageFont.load_default(size=max(12, round(max(image.size) / 60)))
    for index, face in enumerate(faces):
        x, y, w, h = face.box
        colour = COLOURS[index % len(COLOURS)]
        draw.rectangle((x, y, x + w, y + h), outline=colour, width=width)
        on = [a for a, label in zip(ATTRIBUTES, face.labels) if label]
        text = f"{index}: {', '.join(on) if on else 'none'}"
        left, top, right, bottom = draw.textbbox((x, y), text, font=font)
        top_y = max(0, y - (bottom - top) - 2 * width)
        draw.rectangle((x, top_y, x + (right - left) + 2 * width, y), fill=colour)
        draw.text((x + width, top_y + width // 2), text, fill=(0, 0, 0), font=font)
    image.save(out, quality=92)
