"""Building models: ``data convert``, ``data tfrecords``, ``train``, ``evaluate``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import click

from facelabel.artifact import FRAMINGS
from facelabel.cli.common import sessions_for
from facelabel.quiet import load_tensorflow
from trainer.recipe import Recipe


@click.group()
def data():
    """Prepare CelebA annotations and images for training."""


@data.command()
@click.option(
    "--annotation", type=click.Path(exists=True, dir_okay=False), required=True, help="list_attr_celeba.txt"
)
@click.option(
    "--json", "out", type=click.Path(dir_okay=False, writable=True), required=True, help="Selection to write."
)
@click.option(
    "--mixed-num",
    type=click.IntRange(min=0),
    default=10000,
    show_default=True,
    help="All-negative images to add, drawn at random.",
)
@click.option("--partition", type=click.Path(exists=True, dir_okay=False), help="list_eval_partition.txt")
@click.option("--seed", type=int, default=0, show_default=True)
def convert(annotation, out, mixed_num, partition, seed):
    """Select the images to train on: every image with an attribute, plus random negatives.

    \b
    facelabel data convert --annotation list_attr_celeba.txt --json selected.json \\
        --mixed-num 10000 --partition list_eval_partition.txt
    """
    from trainer.annotations import convert as run

    summary = run(annotation, out, mixed_num=mixed_num, seed=seed, partition=partition)
    click.echo(json.dumps(summary, indent=2))


def _ratios(value: str | None):
    if value is None:
        return None
    try:
        parts = tuple(int(p) for p in value.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3 or min(parts) < 0 or parts[0] == 0:
        raise click.BadParameter("expected three non-negative integers like 80,10,10")
    return parts


@data.command()
@click.option("--json", "selection", type=click.Path(exists=True, dir_okay=False), required=True)
@click.option(
    "--images", type=click.Path(exists=True, file_okay=False), required=True, help="Folder of the images."
)
@click.option(
    "--out", type=click.Path(file_okay=False), required=True, help="Folder for shards and manifest."
)
@click.option(
    "--split", metavar="T,V,T", help="Random split, e.g. 80,10,10 (default); by image unless --identities."
)
@click.option(
    "--identities",
    type=click.Path(exists=True, dir_okay=False),
    help="CelebA's identity_CelebA.txt: split by person, each person's images in one split.",
)
@click.option(
    "--folds",
    type=click.IntRange(2, 20),
    help="With --identities: cross-validation folds fold0… by person, plus a person-disjoint test split.",
)
@click.option(
    "--test-percent",
    type=click.IntRange(0, 50),
    default=10,
    show_default=True,
    help="With --folds: the share of people held out in 'test'.",
)
@click.option("--official-partition", is_flag=True, help="CelebA's identity-disjoint train/val/test.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--size", type=click.IntRange(16, 1024), default=160, show_default=True, help="Crop size in pixels."
)
@click.option(
    "--framing",
    type=click.Choice(FRAMINGS),
    default="aligned",
    show_default=True,
    help="aligned: the whole (already aligned) image; detected: the detector's largest face "
    "(FACELABEL_DETECTOR), cropped as a worker crops faces in photos (images with no face are "
    "skipped and counted).",
)
def tfrecords(
    selection, images, out, split, identities, folds, test_percent, official_partition, seed, size, framing
):
    """Write sharded TFRecords of face crops (the worker's own crop) with labels.

    \b
    facelabel data tfrecords --json selected.json --images img_align_celeba/ \\
        --out records/ --official-partition
    """
    from trainer.records import build_records, read_identities

    if official_partition and (split or identities):
        raise click.UsageError("--official-partition excludes --split and --identities")
    if folds and (split or not identities):
        raise click.UsageError("--folds needs --identities and excludes --split")
    ratios = None if official_partition else _ratios(split or "80,10,10")
    people = read_identities(identities) if identities else None
    load_tensorflow()
    manifest = build_records(
        selection,
        images,
        out,
        ratios=ratios,
        seed=seed,
        size=size,
        framing=framing,
        identities=people,
        folds={"folds": folds, "test_percent": test_percent} if folds else None,
    )
    for name, info in manifest["splits"].items():
        click.echo(
            f"{name}: {info['images']} images, {info['skipped']} skipped, positives {info['positives']}"
        )


RECIPE_DEFAULTS = {field.name: field.default for field in dataclasses.fields(Recipe)}


def recipe_option(field: str, *flags: str, **attrs):
    """A Click option for the ``Recipe`` field ``field`` (``--field-name`` unless ``flags`` say
    otherwise), defaulting to the field's own default: a flag for a boolean field."""
    default = RECIPE_DEFAULTS[field]
    if isinstance(default, bool):
        attrs["is_flag"] = True
    elif default is not None:
        attrs.update(default=default, show_default=True)
    return click.option(*(flags or ["--" + field.replace("_", "-")]), field, **attrs)


RECIPE_OPTIONS = (
    recipe_option("backbone", "--model", help="Backbone name."),
    recipe_option("epochs", type=click.IntRange(min=1), help="Head epochs (frozen)."),
    recipe_option("lr", type=float),
    recipe_option("weights", help="imagenet, none, or a weights file."),
    recipe_option("fine_tune", help="Then unfreeze the backbone (BatchNorm stays frozen)."),
    recipe_option("fine_tune_epochs", type=click.IntRange(min=1)),
    recipe_option("fine_tune_lr", type=float),
    recipe_option(
        "unfreeze_fraction",
        "--unfreeze",
        type=click.FloatRange(0, 1, min_open=True),
        help="Top fraction of backbone layers to fine-tune.",
    ),
    recipe_option("alpha", type=float, help="Width of MobileNet backbones."),
    recipe_option("batch_size", type=click.IntRange(min=1)),
    recipe_option(
        "positive_weight_cap",
        type=click.FloatRange(min=1.0),
        help="Cap on the per-attribute positive weight sqrt(neg/pos); 1 turns weighting off.",
    ),
    recipe_option("seed", type=int),
    recipe_option(
        "ema_momentum",
        "--ema",
        type=float,
        metavar="MOMENTUM",
        help="End each phase on the exponential moving average of the weights (e.g. 0.995).",
    ),
    recipe_option(
        "low_res",
        type=float,
        metavar="P",
        help="Shrink each training face with probability P and scale it back up, as faces from "
        "low-resolution photos arrive (e.g. 0.5).",
    ),
    recipe_option(
        "label_smoothing",
        type=click.FloatRange(0, 1, max_open=True),
        help="Pull every training target this far toward 0.5 (for noisy labels, e.g. 0.1).",
    ),
    recipe_option(
        "focal_gamma",
        type=float,
        metavar="GAMMA",
        help="Focal loss: scale each face's loss by (1 - p)**GAMMA, p its probability of the right "
        "answer, so rare, hard faces weigh more (e.g. 2; 0 is plain cross-entropy).",
    ),
    recipe_option(
        "frozen_below",
        metavar="LAYER",
        help="FaceNet: keep the layers up to LAYER (e.g. Mixed_7a) frozen and train the rest on "
        "their outputs, computed once per image and cached beside the records.",
    ),
    recipe_option("float16", help="Store the weights at half precision."),
)


def recipe_options(command):
    """The options that make a ``Recipe`` (``train`` and ``crossval``)."""
    for option in reversed(RECIPE_OPTIONS):
        command = option(command)
    return command


def _recipe(backbone, weights, **options) -> Recipe:
    return Recipe(backbone=backbone, weights=None if weights == "none" else weights, **options)


@click.command()
@click.option(
    "--train-tfrecord",
    "train_tfrecords",
    required=True,
    multiple=True,
    metavar="F",
    help="Shards: file, glob, or prefix like records/train (repeat to train on several sets).",
)
@click.option("--val-tfrecord", required=True, metavar="F")
@click.option("--model-dir", type=click.Path(file_okay=False), required=True)
@recipe_options
@recipe_option(
    "fixed_epochs",
    help="Run every epoch and keep the last weights: val picks no checkpoint, stops nothing, lowers no rate.",
)
@click.option("--name", help="Version name (default: backbone-size-timestamp).")
@click.pass_obj
def train(settings, train_tfrecords, val_tfrecord, model_dir, name, **options):
    """Train a model, calibrate its thresholds on val, save and register it.

    \b
    facelabel train --model mobilenet --train-tfrecord records/train \\
        --val-tfrecord records/val --model-dir models/ --weights imagenet --fine-tune
    """
    from db.registry import register_model

    recipe = _recipe(**options)
    load_tensorflow()  # only once the recipe is sound
    from trainer.train import train as run

    directory = run(
        recipe, train_specs=list(train_tfrecords), val_spec=val_tfrecord, model_dir=model_dir, name=name
    )
    with sessions_for(settings).begin() as session:
        version = register_model(session, directory)
        click.echo(f"model {version.name} saved to {directory} and registered (id {version.id})")
    click.echo(_summary(directory))


@click.command()
@click.option(
    "--records",
    "folders",
    required=True,
    multiple=True,
    type=click.Path(exists=True, file_okay=False),
    help="Records built with --identities --folds K: trained on and scored (repeat; one crop size, "
    "either framing).",
)
@click.option(
    "--score-only",
    multiple=True,
    type=click.Path(exists=True, file_okay=False),
    help="Records split the same way, only scored (e.g. photos cropped by the detector).",
)
@click.option(
    "--identities",
    required=True,
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="identity_CelebA.txt of each folder: intervals resample people.",
)
@click.option("--work", type=click.Path(file_okay=False), required=True, help="Folds, predictions, reports.")
@recipe_options
@click.option("--name", required=True, help="The final model's version name.")
@click.option(
    "--final-model/--no-final-model",
    default=True,
    show_default=True,
    help="Train and test the final model; or stop at the estimate, the test people unread (a repeat, "
    "a candidate).",
)
@click.pass_obj
def crossval(settings, folders, score_only, identities, work, name, final_model, **options):
    """Cross-validate a recipe by person, then train the final model on every fold.

    Each fold is predicted by a model that never saw its people, at thresholds chosen on the
    other folds; the final model ships the thresholds of all out-of-fold predictions and is
    scored once on the held-out 'test' people. Writes WORK/crossval.json and WORK/test.json.
    A run stopped or ended with --no-final-model resumes from its finished folds.

    \b
    facelabel crossval --records records/aligned --score-only records/wild \\
        --identities aligned/identity_CelebA.txt --identities wild/identity_CelebA.txt \\
        --work cv/ --name v2 --model mobilenetv2-torch --weights port.h5 --fine-tune
    """
    from db.registry import register_model
    from trainer.records import read_identities

    recipe = _recipe(**options)
    people = {image: person for path in identities for image, person in read_identities(path).items()}
    load_tensorflow()
    from trainer.crossval import run

    directory = run(
        recipe,
        folders=list(folders),
        score_only=list(score_only),
        people=people,
        work=work,
        name=name,
        final_model=final_model,
    )
    reports = [("cross-validated", "crossval.json")]
    if directory is not None:
        with sessions_for(settings).begin() as session:
            version = register_model(session, directory)
            click.echo(f"model {version.name} saved to {directory} and registered (id {version.id})")
        reports.append(("held-out test people", "test.json"))
    for title, name in reports:
        for faces_of, m in json.loads(Path(work, name).read_text())["sets"].items():
            low, high = m["macro_f1_95"]
            per = ", ".join(f"{a} {v['f1']}" for a, v in m["attributes"].items())
            click.echo(f"{title}, {faces_of}: {m['faces']} faces, macro-F1 {m['macro_f1']} ({low}-{high})")
            click.echo(f"  F1 {per}")


def _summary(directory) -> str:
    from facelabel.artifact import load_artifact
    from trainer.evaluate import summary_markdown

    return summary_markdown(load_artifact(directory).meta["metrics"]["val"])


@click.command()
@click.option("--model", "model_path", required=True, metavar="M", help="Model directory.")
@click.option("--tfrecord", required=True, metavar="F", help="Shards to evaluate on.")
@click.option(
    "--report", type=click.Path(file_okay=False), help="Write metrics.json, summary.md and plots here."
)
def evaluate(model_path, tfrecord, report):
    """Per-attribute precision, recall, F1, AUC, balanced accuracy, at the model's
    thresholds and at 0.5, with bootstrap intervals.

    \b
    facelabel evaluate --model models/v1 --tfrecord records/val --report reports/v1
    """
    load_tensorflow()
    from facelabel.artifact import load_artifact
    from facelabel.vision.keras_classifier import Classifier
    from trainer.evaluate import evaluate_predictions, summary_markdown, write_report
    from trainer.records import read_manifest, record_files
    from trainer.train import load_history, predict

    artifact = load_artifact(model_path)
    files = record_files(tfrecord)
    size = read_manifest(files)["size"]
    if size != artifact.input_size:
        raise click.ClickException(f"records hold {size}px crops; the model takes {artifact.input_size}px")
    probabilities, labels = predict(Classifier(artifact).model, files, size)
    thresholds = [artifact.thresholds[a] for a in artifact.attributes]
    metrics = evaluate_predictions(probabilities, labels, thresholds)
    if report:
        write_report(metrics, probabilities, labels, report, load_history(artifact.directory))
    click.echo(summary_markdown(metrics))


COMMANDS = (data, train, crossval, evaluate)
