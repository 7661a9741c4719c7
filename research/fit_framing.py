"""Re-fit a detector's framing on CelebA's aligned 178×218 frames: where the frame's edges lie
around the detector's box (the margins, as fractions of the box) and where its alignment
points sit in the frame (the template). The numbers each backend in
facelabel/vision/detectors/ carries come from this, and a held-out check (fit on the even
images, score on the odd) says how far each framing lands from the true frame.

Usage: FACELABEL_CELEBA_DIR=../shared/celeba-sample python research/fit_framing.py --detector yunet
           [--limit 2000]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from facelabel.settings import read_settings  # noqa: E402
from facelabel.vision.detectors import FRAME, NAMES  # noqa: E402
from facelabel.vision.imaging import landmark_framing  # noqa: E402

WIDTH, HEIGHT = FRAME
CORNERS = np.array([[0, 0], [WIDTH, 0], [WIDTH, HEIGHT], [0, HEIGHT]], np.float64)


def detections(detector: str, paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """Each aligned image's largest face: boxes (n, 4) and points (n, k, 2), frame pixels."""
    from facelabel.vision.detector import detect_faces
    from facelabel.vision.imaging import decode_image

    settings = read_settings()
    boxes, points = [], []
    for path in paths:
        photo = decode_image(path.read_bytes(), max_pixels=settings.max_image_pixels)
        ((found, _),) = detect_faces(
            [photo], detector=detector, max_side=None, min_face=20, min_confidence=None, batch=1
        )
        if found and (photo.width, photo.height) == FRAME:
            boxes.append(found[0].extent)
            points.append(found[0].points)
    return np.array(boxes, np.float64), np.array(points, np.float64)


def fit(boxes: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median margins (left, top, right, bottom) and median point positions (the template)."""
    x, y, w, h = boxes.T
    margins = np.stack([x / w, y / h, (WIDTH - x - w) / w, (HEIGHT - y - h) / h], 1)
    return np.median(margins, 0), np.median(points, 0)


def held_out_errors(boxes: np.ndarray, points: np.ndarray) -> dict[str, float]:
    """Median over the odd images of the mean corner error (frame pixels) of each framing,
    fitted on the even ones."""
    margins, template = fit(boxes[0::2], points[0::2])
    left, top, right, bottom = margins
    box_errors, landmark_errors = [], []
    for (x, y, w, h), marks in zip(boxes[1::2], points[1::2]):
        x0, y0, x1, y1 = x - left * w, y - top * h, x + w * (1 + right), y + h * (1 + bottom)
        framed = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
        box_errors.append(np.abs(framed - CORNERS).mean())
        landmark_errors.append(np.abs(landmark_framing(marks, template, FRAME) - CORNERS).mean())
    return {"box": float(np.median(box_errors)), "landmarks": float(np.median(landmark_errors))}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--detector", choices=NAMES, required=True)
    parser.add_argument("--limit", type=int, default=2000, help="The first N aligned images.")
    args = parser.parse_args()
    folder = Path(os.environ["FACELABEL_CELEBA_DIR"]) / "aligned" / "images"
    paths = sorted(folder.glob("*.jpg"))[: args.limit]
    boxes, points = detections(args.detector, paths)
    margins, template = fit(boxes, points)
    errors = held_out_errors(boxes, points)
    print(f"{args.detector}: a face in {len(boxes)} of {len(paths)} aligned images")
    print("margins = (" + ", ".join(f"{m:.3f}" for m in margins) + ")")
    print("template = np.float32([" + ", ".join(f"[{x:.1f}, {y:.1f}]" for x, y in template) + "])")
    print(
        "held-out corner error, median (frame px): "
        f"box + margins {errors['box']:.2f}, landmark similarity {errors['landmarks']:.2f}"
    )


if __name__ == "__main__":
    main()
