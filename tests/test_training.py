"""The trainer end to end on a small synthetic CelebA look-alike: convert → tfrecords →
train → evaluate → label with the new model."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from facelabel.artifact import ATTRIBUTES, load_artifact
from facelabel.cli import main
from tests import images
from tests.helpers import invoke_ok as invoke
from trainer.model_card import render

pytestmark = pytest.mark.slow


def optimizer_values(keras_file) -> int:
    with zipfile.ZipFile(keras_file) as archive, archive.open("model.weights.h5") as handle:
        weights = h5py.File(io.BytesIO(handle.read()))
        if "optimizer" not in weights:
            return 0
        sizes = []
        weights["optimizer"].visititems(lambda _, item: sizes.append(getattr(item, "size", 0)))
        return sum(sizes)


def test_convert_records_train_evaluate_and_label(tmp_path, sqlite_url):
    folder = images.synthetic_celeba(tmp_path)
    invoke(
        "data",
        "convert",
        "--annotation",
        tmp_path / "list_attr_celeba.txt",
        "--json",
        tmp_path / "sel.json",
        "--mixed-num",
        1000,
        "--partition",
        tmp_path / "list_eval_partition.txt",
    )
    (folder / "000003.jpg").unlink()  # a missing image is reported and skipped
    out = invoke(
        "data",
        "tfrecords",
        "--json",
        tmp_path / "sel.json",
        "--images",
        folder,
        "--out",
        tmp_path / "rec",
        "--official-partition",
        "--size",
        64,
    )
    manifest = json.loads((tmp_path / "rec" / "manifest.json").read_text())
    assert manifest["splits"]["train"]["images"] + manifest["splits"]["val"]["images"] == 95
    assert manifest["splits"]["train"]["skipped"] + manifest["splits"]["val"]["skipped"] == 1
    assert "skipped" in out

    out = invoke(
        "--db",
        sqlite_url,
        "train",
        "--model",
        "mobilenet",
        "--weights",
        "none",
        "--train-tfrecord",
        tmp_path / "rec" / "train",
        "--val-tfrecord",
        tmp_path / "rec" / "val",
        "--model-dir",
        tmp_path / "models",
        "--epochs",
        1,
        "--fine-tune",
        "--fine-tune-epochs",
        1,
        "--batch-size",
        16,
        "--name",
        "synthetic-v1",
    )
    assert "registered" in out and "| eyeglasses |" in out
    artifact = load_artifact(tmp_path / "models" / "synthetic-v1")
    assert artifact.input_size == 64 and artifact.meta["training"]["phases"]["fine_tune"]["epochs"] == 1
    assert all(0 < t < 1 for t in artifact.thresholds.values())
    assert artifact.meta["metrics"]["val"]["faces"] == manifest["splits"]["val"]["images"]
    assert optimizer_values(artifact.weights_path) == 0  # the artifact carries weights only
    card = render(artifact.directory, "make model")
    assert "| eyeglasses |" in card and "non-commercial" in card and "| fine_tune | 1 |" in card

    out = invoke(
        "evaluate",
        "--model",
        artifact.directory,
        "--tfrecord",
        tmp_path / "rec" / "val",
        "--report",
        tmp_path / "report",
    )
    report = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert report["macro_f1"] == artifact.meta["metrics"]["val"]["macro_f1"]
    for name in ("summary.md", "pr_curves.png", "training.png"):
        assert (tmp_path / "report" / name).stat().st_size > 0
    Image.open(tmp_path / "report" / "pr_curves.png").verify()

    invoke("--db", sqlite_url, "label", folder, "--aligned", "--model", artifact.directory)
    rows = json.loads(invoke("--db", sqlite_url, "query", "--format", "json"))
    assert len(rows) == 95 and {r["model_version"] for r in rows} == {"synthetic-v1"}


def _detected_records(tmp_path) -> tuple[Path, str]:
    """Two group photos and one without a face, as ``--framing detected`` records at 96 px (all
    in 'train'): the photos' folder and the command's output."""
    folder = tmp_path / "photos"
    folder.mkdir()
    images.group_photo(folder / "000001.jpg")
    images.group_photo(folder / "000002.jpg", size=(500, 700), places=((100, 150, 1.5),))
    images.save(images.reference(), folder / "000003.jpg")
    (tmp_path / "attr.txt").write_text(
        "3\nEyeglasses Mustache No_Beard Wearing_Hat\n"
        "000001.jpg 1 -1 1 -1\n000002.jpg -1 1 -1 -1\n000003.jpg -1 -1 1 1\n"
    )
    invoke("data", "convert", "--annotation", tmp_path / "attr.txt", "--json", tmp_path / "sel.json")
    out = invoke(
        "data", "tfrecords", "--json", tmp_path / "sel.json", "--images", folder,
        "--out", tmp_path / "rec", "--split", "1,0,0", "--size", 96, "--framing", "detected",
    )  # fmt: skip
    return folder, out


def test_detected_framing_records_hold_the_workers_face_crop(tmp_path):
    """``--framing detected``: each record is the crop a worker makes of the photo's largest
    face; a photo without a face is skipped and named."""
    import tensorflow as tf

    from facelabel.settings import Settings
    from facelabel.vision.faces import find_faces

    folder, out = _detected_records(tmp_path)
    manifest = json.loads((tmp_path / "rec" / "manifest.json").read_text())
    assert manifest["framing"] == "detected"
    assert manifest["splits"]["train"]["skipped_examples"] == ["000003.jpg: no face found"], out
    stored = {}
    for record in tf.data.TFRecordDataset(str(tmp_path / "rec" / "train-00000-of-00001.tfrecord")):
        example = tf.train.Example.FromString(record.numpy()).features.feature
        png = example["image"].bytes_list.value[0]
        stored[example["name"].bytes_list.value[0].decode()] = np.asarray(Image.open(io.BytesIO(png)))
    assert sorted(stored) == ["000001.jpg", "000002.jpg"]
    for name, crop in stored.items():
        face = find_faces((folder / name).read_bytes(), size=96, aligned=False, settings=Settings()).crops[0]
        assert np.array_equal(crop, face)


def test_a_model_trains_on_aligned_images_and_detector_crops_together(tmp_path, sqlite_url):
    """Records of both framings train one model when their crops are the same size: the model
    keeps its val set's framing and its card names the set framed otherwise; another size is a
    one-line error."""
    _detected_records(tmp_path)
    images.synthetic_celeba(tmp_path / "aligned", count=24)
    invoke(
        "data", "convert", "--annotation", tmp_path / "aligned" / "list_attr_celeba.txt",
        "--json", tmp_path / "aligned.json",
    )  # fmt: skip
    for size in (96, 64):
        invoke(
            "data", "tfrecords", "--json", tmp_path / "aligned.json", "--images",
            tmp_path / "aligned" / "img_align_celeba", "--out", tmp_path / f"aligned{size}",
            "--split", "70,30,0", "--size", size,
        )  # fmt: skip
    arguments = [
        "--db", sqlite_url, "train", "--model", "mobilenet", "--weights", "none", "--epochs", 1,
        "--batch-size", 8, "--val-tfrecord", tmp_path / "aligned96" / "val",
        "--model-dir", tmp_path / "models", "--train-tfrecord", tmp_path / "rec" / "train",
    ]  # fmt: skip
    invoke(*arguments, "--train-tfrecord", tmp_path / "aligned96" / "train", "--name", "mixed")
    artifact = load_artifact(tmp_path / "models" / "mixed")
    aligned = json.loads((tmp_path / "aligned96" / "manifest.json").read_text())["splits"]["train"]["images"]
    assert artifact.meta["framing"] == "aligned"
    assert artifact.meta["training"]["data"]["train_images"] == aligned + 2
    card = render(artifact.directory, "make model")
    assert "Also trained on `detected` crops" in card and ": `rec`." in card
    assert "Also trained on `aligned`" not in card

    result = CliRunner().invoke(
        main, [str(a) for a in (*arguments, "--train-tfrecord", tmp_path / "aligned64" / "train")]
    )
    assert result.exit_code == 1 and "holds 64px crops; val holds 96px" in result.output
    assert "Traceback" not in result.output


def test_split_option_is_checked(tmp_path):
    result = CliRunner().invoke(
        main,
        [
            "data",
            "tfrecords",
            "--json",
            str(tmp_path),
            "--images",
            str(tmp_path),
            "--out",
            str(tmp_path / "r"),
            "--split",
            "80,20",
        ],
    )
    assert result.exit_code == 2


def test_records_split_by_person_keep_each_person_in_one_split(tmp_path):
    folder = images.synthetic_celeba(tmp_path, count=40)
    people = [f"{index + 1:06d}.jpg {index // 3}" for index in range(40)]  # 3 images a person
    (tmp_path / "identity_CelebA.txt").write_text("\n".join(people) + "\n")
    selection = tmp_path / "sel.json"
    invoke("data", "convert", "--annotation", tmp_path / "list_attr_celeba.txt", "--json", selection)
    invoke(
        "data", "tfrecords", "--json", selection, "--images", folder, "--out", tmp_path / "rec",
        "--split", "60,20,20", "--identities", tmp_path / "identity_CelebA.txt", "--size", 32,
    )  # fmt: skip
    manifest = json.loads((tmp_path / "rec" / "manifest.json").read_text())
    assert manifest["split"] == {"ratios": [60, 20, 20], "seed": 0, "by": "person"}
    import tensorflow as tf

    feature = {"name": tf.io.FixedLenFeature([], tf.string)}
    persons = {}
    for name in ("train", "val", "test"):
        files = sorted(str(p) for p in (tmp_path / "rec").glob(f"{name}-*.tfrecord"))
        records = tf.data.TFRecordDataset(files)
        names = [tf.io.parse_single_example(r, feature)["name"].numpy() for r in records]
        persons[name] = {(int(n[:6]) - 1) // 3 for n in names}  # the person of each image
    assert not (persons["train"] & persons["val"] or persons["train"] & persons["test"])
    assert not persons["val"] & persons["test"] and all(persons.values())


def test_crossval_predicts_each_person_by_a_model_that_never_saw_them(tmp_path, sqlite_url):
    """3 folds by person + a test split: out-of-fold predictions for every fold image, thresholds
    from them on the final model, the test people scored by the final model only."""
    folder = images.synthetic_celeba(tmp_path, count=60)
    people = [f"{index + 1:06d}.jpg p{index // 2}" for index in range(60)]  # 2 images a person
    (tmp_path / "identity_CelebA.txt").write_text("\n".join(people) + "\n")
    selection = tmp_path / "sel.json"
    invoke("data", "convert", "--annotation", tmp_path / "list_attr_celeba.txt", "--json", selection)
    invoke(
        "data", "tfrecords", "--json", selection, "--images", folder, "--out", tmp_path / "rec",
        "--identities", tmp_path / "identity_CelebA.txt", "--folds", 3, "--test-percent", 20, "--size", 32,
    )  # fmt: skip
    manifest = json.loads((tmp_path / "rec" / "manifest.json").read_text())
    assert set(manifest["splits"]) == {"fold0", "fold1", "fold2", "test"}
    other = images.synthetic_celeba(tmp_path / "other", count=60, seed=1)  # other photos, same people
    invoke(
        "data",
        "convert",
        "--annotation",
        tmp_path / "other" / "list_attr_celeba.txt",
        "--json",
        tmp_path / "o.json",
    )
    invoke(
        "data", "tfrecords", "--json", tmp_path / "o.json", "--images", other, "--out", tmp_path / "scored",
        "--identities", tmp_path / "identity_CelebA.txt", "--folds", 3, "--test-percent", 20, "--size", 32,
    )  # fmt: skip
    arguments = (
        "--db", sqlite_url, "crossval", "--records", tmp_path / "rec", "--score-only", tmp_path / "scored",
        "--identities", tmp_path / "identity_CelebA.txt", "--work", tmp_path / "cv", "--name", "cv-final",
        "--model", "mobilenet", "--weights", "none", "--epochs", 1, "--batch-size", 16,
    )  # fmt: skip
    estimate = invoke(*arguments, "--no-final-model")  # the folds and the estimate only
    assert "registered" not in estimate and "macro-F1" in estimate
    assert not (tmp_path / "cv" / "test.json").exists() and not (tmp_path / "cv" / "models").exists()
    before = (tmp_path / "cv" / "folds" / "fold0" / "model.json").stat().st_mtime_ns
    out = invoke(*arguments)  # resumes: the finished folds are reused, the final model trained
    assert "registered" in out
    assert (tmp_path / "cv" / "folds" / "fold0" / "model.json").stat().st_mtime_ns == before

    oof = [json.loads(line) for line in (tmp_path / "cv" / "oof.jsonl").read_text().splitlines()]
    scored = [r for r in oof if r["folder"] == "scored"]
    oof = [r for r in oof if r["folder"] == "rec"]
    in_folds = sum(manifest["splits"][f"fold{k}"]["images"] for k in range(3))
    assert len(oof) == in_folds == len({r["image"] for r in oof}) == len(scored)
    for fold in range(3):
        trained = load_artifact(tmp_path / "cv" / "folds" / f"fold{fold}").meta["training"]["data"]["train"]
        assert all(not spec.endswith(f"fold{fold}") for spec in trained) and len(trained) == 2
    person_fold = {}
    for row in oof:
        assert person_fold.setdefault(row["person"], row["fold"]) == row["fold"]

    report = json.loads((tmp_path / "cv" / "crossval.json").read_text())
    pooled = report["sets"]["all training folders"]
    assert pooled["faces"] == in_folds and report["folds"] == 3
    low, high = pooled["macro_f1_95"]
    assert low <= high
    final = load_artifact(tmp_path / "cv" / "models" / "cv-final")
    assert final.thresholds == report["thresholds"]
    assert "cross-validation" in final.meta["thresholds_from"]
    fold_images = [
        load_artifact(tmp_path / "cv" / "folds" / f"fold{k}").meta["training"]["data"]["train_images"]
        for k in range(3)
    ]  # the final model trains as many batches an epoch as a fold model, on every fold
    assert final.meta["training"]["recipe"]["steps_per_epoch"] == round(
        np.mean(np.ceil(np.array(fold_images) / 16))
    )
    assert final.meta["training"]["data"]["train_images"] == sum(fold_images) // 2
    # the score-only photos: the share each labels positive, fold models against the shipped one
    check = report["shipped_model"]
    assert check["faces"] == len(scored)
    shipped = _shipped_probabilities(final, tmp_path / "scored")
    for column, attribute in enumerate(ATTRIBUTES):
        threshold, shares = final.thresholds[attribute], check["attributes"][attribute]["labelled_positive"]
        folds = np.mean([r["probabilities"][column] >= threshold for r in scored])
        assert shares == {
            "fold_models": round(float(folds), 4),
            "shipped_model": round(float(np.mean(shipped[:, column] >= threshold)), 4),
        }
    test = json.loads((tmp_path / "cv" / "test.json").read_text())
    assert test["sets"]["rec"]["faces"] == manifest["splits"]["test"]["images"]
    assert test["sets"]["all training folders"]["faces"] == manifest["splits"]["test"]["images"]
    assert not set(person_fold) & {f"p{(int(n[:6]) - 1) // 2}" for n in _names(tmp_path / "rec", "test")}
    (final.directory / "report").mkdir()
    for name in ("crossval.json", "test.json"):
        (final.directory / "report" / name).write_text((tmp_path / "cv" / name).read_text())
    card = render(final.directory, "make model")
    assert "## Quality on people the model has never seen" in card and "| rec |" in card
    hat = check["attributes"]["hat"]
    assert f"| hat | {hat['support']} | {hat['labelled_positive']['fold_models']:.1%} |" in card


def _shipped_probabilities(artifact, records) -> np.ndarray:
    from trainer.crossval import _model
    from trainer.records import record_files
    from trainer.train import predict

    files = [f for k in range(3) for f in record_files(records / f"fold{k}")]
    return predict(_model(artifact.directory), files, artifact.input_size)[0]


def _names(records, split) -> list[str]:
    from trainer.dataset import names_of
    from trainer.records import record_files

    return names_of(record_files(records / split))


def test_ema_phase_ends_on_the_averaged_weights(tmp_path):
    """With ``--ema`` a phase keeps Adam's moving average of the weights: at a momentum near 1
    they stay where its first step left them (Keras starts the average there), where 24 plain
    steps of 0.1 move them far."""
    import keras
    import tensorflow as tf

    from trainer.train import _fit

    x = np.random.default_rng(0).normal(size=(256, 8)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices((x, (x[:, :4] > 0).astype("float32"))).batch(32)

    def moved(ema: float | None, name: str) -> float:
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, activation="sigmoid")])
        start = model.get_weights()
        (tmp_path / name).mkdir()
        _fit(
            model, data, data, epochs=3, steps=None, lr=0.1, loss="binary_crossentropy",
            patience=None, directory=tmp_path / name, phase="head", ema=ema,
        )  # fmt: skip
        return max(float(np.abs(a - b).max()) for a, b in zip(model.get_weights(), start))

    assert moved(None, "plain") > 0.5
    assert moved(0.99999, "averaged") < 0.2


def test_low_res_augmentation_shrinks_the_face_then_scales_it_back():
    """``--low-res 1`` takes the detail a low-resolution photo lacks out of every training face:
    one-pixel stripes, which survive the other augmentations, are averaged away (a face at half
    the resolution cannot hold them)."""
    import tensorflow as tf

    from trainer.dataset import augment

    stripes = np.tile([0.0, 255.0], 80)[None, :, None] * np.ones((160, 1, 3))
    image, labels = tf.constant(stripes, tf.float32), tf.ones([4])

    def detail(low_res: float | None) -> float:
        tf.random.set_seed(0)
        views = [augment(image, labels, low_res)[0].numpy() for _ in range(8)]
        return float(np.mean([np.abs(np.diff(v[:, :, 0], axis=1)).mean() for v in views]))

    assert detail(None) > 40
    assert detail(1.0) < detail(None) / 4


def test_label_smoothing_pulls_the_best_guess_toward_one_half():
    """``--label-smoothing 0.2`` makes a positive's best guess 0.9, not 1 (a noisy label costs
    less), and the positive weight still applies; a smoothing of 1 or more is refused."""
    from keras import ops

    from trainer.recipe import Recipe, RecipeError
    from trainer.train import weighted_bce

    def loss(smoothing: float, guess: float, weight: float = 1.0) -> float:
        bce = weighted_bce(np.full(4, weight, "float32"), smoothing)
        return float(
            ops.convert_to_numpy(bce(np.ones((1, 4), "float32"), np.full((1, 4), guess, "float32")))[0]
        )

    assert loss(0.0, 0.99) < loss(0.0, 0.9)
    assert loss(0.2, 0.9) < min(loss(0.2, 0.99), loss(0.2, 0.8), loss(0.2, 0.92), loss(0.2, 0.88))
    expected = -(2 * 0.9 * np.log(0.9) + 0.1 * np.log(0.1))
    assert loss(0.2, 0.9, weight=2.0) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(RecipeError, match="--label-smoothing must be at least 0 and below 1"):
        Recipe(label_smoothing=1.0)


def test_focal_loss_weighs_faces_the_model_already_gets_right_less():
    """``--focal-gamma 2``: a positive guessed at 0.9 costs (1 - 0.9)**2 of its cross-entropy, one
    guessed at 0.1 costs 0.9**2 of it, so the hard faces carry the gradient; negatives alike, the
    positive weight still applies, and a gamma outside 0–5 is refused."""
    from keras import ops

    from trainer.recipe import Recipe, RecipeError
    from trainer.train import weighted_bce

    def loss(gamma: float, label: float, guess: float, weight: float = 1.0) -> float:
        focal = weighted_bce(np.full(4, weight, "float32"), gamma=gamma)
        labels, guesses = np.full((1, 4), label, "float32"), np.full((1, 4), guess, "float32")
        return float(ops.convert_to_numpy(focal(labels, guesses))[0])

    assert loss(2.0, 1, 0.9) == pytest.approx(0.1**2 * -np.log(0.9), rel=1e-4)
    assert loss(2.0, 1, 0.1, weight=3.0) == pytest.approx(3 * 0.9**2 * -np.log(0.1), rel=1e-4)
    assert loss(2.0, 0, 0.2) == pytest.approx(0.2**2 * -np.log(0.8), rel=1e-4)
    assert loss(0.0, 1, 0.9) == pytest.approx(-np.log(0.9), rel=1e-5)
    with pytest.raises(RecipeError, match="--focal-gamma must be between 0 and 5"):
        Recipe(focal_gamma=-1.0)
