"""``facelabel predict``: one photo in, JSON per face out, and an annotated picture."""

from __future__ import annotations

import json
from pathlib import Path

import click

from facelabel.cli.common import out_path


@click.command()
@click.argument("image", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--model", metavar="M", help="Model directory (default: FACELABEL_MODEL, else the bundled model)."
)
@click.option("--aligned", is_flag=True, help="The image is one aligned face: skip detection.")
@click.option(
    "--out", type=click.Path(dir_okay=False, writable=True), help="Write the photo with boxes and labels."
)
@click.pass_obj
def predict(settings, image, model, aligned, out):
    """Print one JSON object per face (largest first) with box, detection confidence,
    probabilities and labels.

    \b
    facelabel predict photo.jpg --out annotated.jpg
    """
    destination = out_path(out) if out else None  # checked before the model loads

    import numpy as np

    from facelabel.artifact import ATTRIBUTES, load_artifact
    from facelabel.confined import read_file
    from facelabel.settings import BUNDLED_MODEL
    from facelabel.vision.classifier import get_classifier
    from facelabel.vision.faces import NoFace, find_faces
    from worker.labeling import to_faces

    artifact = load_artifact(model or settings.model or BUNDLED_MODEL)
    try:
        found = find_faces(
            read_file(image, max_bytes=settings.max_file_bytes, data_roots=settings.data_roots),
            size=artifact.input_size,
            aligned=aligned,
            settings=settings,
        )
    except NoFace:
        found = None
    faces = ()
    if found is not None:
        probabilities = get_classifier(str(artifact.directory), settings).predict(np.stack(found.crops))
        thresholds = [artifact.thresholds[a] for a in ATTRIBUTES]
        faces = to_faces(found.boxes, probabilities, thresholds, found.confidences)
    rows = [
        {
            "face": index,
            "box": dict(zip(("x", "y", "w", "h"), face.box)),
            "confidence": face.confidence,
            "probabilities": dict(zip(ATTRIBUTES, face.probabilities)),
            "labels": [a for a, on in zip(ATTRIBUTES, face.labels) if on],
        }
        for index, face in enumerate(faces)
    ]
    click.echo(json.dumps(rows, indent=2))
    if destination:
        from facelabel.vision.annotate import annotate

        annotate(Path(image), faces, destination, max_pixels=settings.max_image_pixels)


COMMANDS = (predict,)
