"""The research scripts that compare finished ``crossval`` runs: each scores as ``crossval``
scores, compares face by face over the same person draws, states the verdict of its rule, and
refuses runs that cannot be compared with a one-line usage error."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

RESEARCH = Path(__file__).resolve().parents[1]


def _oof(work, scored, seed=0, train=("aligned",)):
    """A crossval --work folder: its out-of-fold predictions and a first fold model's metadata."""
    from trainer.crossval import OOF

    (work / "folds" / "fold0").mkdir(parents=True)
    (work / OOF).write_text("".join(json.dumps(row) + "\n" for row in scored.rows()))
    meta = {
        "backbone": "mobilenetv2-torch",
        "alpha": None,
        "input_size": 160,
        "training": {
            "recipe": {"seed": seed},
            "data": {"train": {f"records/{folder}/fold{k}": {} for folder in train for k in (1, 2)}},
        },
    }
    (work / "folds" / "fold0" / "model.json").write_text(json.dumps(meta))
    return str(work)


def test_an_ensemble_of_crossval_runs_averages_each_face_out_of_fold(tmp_path, predictions):
    """research/ensemble_oof.py matches faces by folder and image, not by row order, scores their
    mean probabilities as crossval scores a run, compares it with its best run face by face, and
    refuses runs split into other folds."""
    from research.paired import paired_difference
    from trainer.crossval import POOLED, Scored, crossval_report

    scores, labels = predictions
    n = len(labels)
    folder = ["aligned"] * (n - 100) + ["wild"] * 100
    fold, person = [i % 3 for i in range(n)], [f"p{i // 2}" for i in range(n)]
    image = [f"{i}.jpg" for i in range(n)]
    other = np.clip(scores + np.random.default_rng(1).normal(0, 0.1, scores.shape), 0, 1)
    a = Scored(folder, fold, person, image, other, labels)
    b = Scored(folder[::-1], fold[::-1], person[::-1], image[::-1], scores[::-1], labels[::-1])  # other order
    out = tmp_path / "ensemble.json"
    command = [sys.executable, str(RESEARCH / "ensemble_oof.py"), "--work", _oof(tmp_path / "a", a)]
    command += ["--work", _oof(tmp_path / "b", b, seed=1), "--score-only", "wild", "--json", str(out)]
    run = subprocess.run(command, capture_output=True, text=True, check=True)
    trained_on = np.array(folder) == "aligned"
    ensemble = Scored(folder, fold, person, image, (scores + other) / 2, labels)
    report = json.loads(out.read_text())
    assert report["sets"] == crossval_report(ensemble, trained_on, 3)["sets"]
    assert report["best_member"] == "b" and [m["seed"] for m in report["members"]] == [0, 1]
    own = [crossval_report(run, on, 3)["sets"] for run, on in ((a, trained_on), (b, trained_on[::-1]))]
    assert [m["macro_f1"] for m in report["members"]] == [
        {name: m["macro_f1"] for name, m in sets.items()} for sets in own
    ]
    assert set(own[0]) == {POOLED, "aligned", "wild"}
    best = Scored(folder, fold, person, image, scores, labels)  # b, face by face with the ensemble
    difference = paired_difference(best, ensemble, trained_on, 3)
    assert report["minus_best_member"] == difference
    assert report["passes"] == (difference[0] >= 0.005 and difference[1] > 0)
    assert f"ensemble minus {tmp_path / 'b'}: {difference[0]:+.4f}" in run.stdout
    assert ("passes" if report["passes"] else "fails") in run.stdout.splitlines()[-1]

    moved = Scored(folder, [(f + 1) % 3 for f in fold], person, image, other, labels)
    command[command.index(str(tmp_path / "b"))] = _oof(tmp_path / "moved", moved)
    refused = subprocess.run(command, capture_output=True, text=True)
    assert (
        refused.returncode == 2 and "different folds" in refused.stderr and "Traceback" not in refused.stderr
    )


def test_wild_thresholds_are_cross_fitted_on_the_wild_photos_alone(tmp_path, predictions):
    """research/wild_thresholds.py: photos whose scores run lower than the training faces' are labelled
    better at thresholds fitted on other photos' folds than at the training folders' thresholds."""
    from trainer.crossval import Scored, cross_fitted_thresholds, metrics

    scores, labels = predictions
    n = len(labels)
    folder = ["aligned"] * (n - 150) + ["wild"] * 150
    fold, person = [i % 3 for i in range(n)], [f"p{i // 2}" for i in range(n)]
    probabilities = scores.copy()
    probabilities[n - 150 :] *= 0.6  # a detector crop scores lower
    scored = Scored(folder, fold, person, [f"{i}.jpg" for i in range(n)], probabilities, labels)
    out = tmp_path / "wild.json"
    command = [sys.executable, str(RESEARCH / "wild_thresholds.py"), "--work", _oof(tmp_path / "cv", scored)]
    run = subprocess.run(
        [*command, "--score-only", "wild", "--json", str(out)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(out.read_text())
    wild = scored.where(np.array(folder) == "wild")
    own = report["sets"]["wild's own thresholds"]
    assert own == metrics(wild, cross_fitted_thresholds(wild, np.ones(150, bool), 3))
    assert own["macro_f1"] > report["sets"]["training folders' thresholds"]["macro_f1"]
    assert report["own_minus_shipped"][0] > 0
    missing = subprocess.run([*command, "--folder", "photos"], capture_output=True, text=True)
    assert missing.returncode == 2 and "no folder named photos" in missing.stderr


def test_training_on_wild_photos_is_judged_face_by_face_at_each_runs_own_thresholds(tmp_path, predictions):
    """research/wild_training.py: a run that trained on the photos is scored at thresholds fitted on every
    folder, the run that only scored them at the other folders' thresholds, face by face, and the
    verdict follows the rule; runs of different recipes, or the wrong way round, are refused."""
    from research.paired import guess_difference
    from trainer.crossval import Scored, cross_fitted_thresholds, metrics

    scores, labels = predictions
    n = len(labels)
    folder = ["aligned"] * (n - 150) + ["wild"] * 150
    fold, person = [i % 3 for i in range(n)], [f"p{i // 2}" for i in range(n)]
    image = [f"{i}.jpg" for i in range(n)]
    lowered = scores.copy()
    lowered[n - 150 :] *= 0.6  # never trained on, the photos score low
    scored = Scored(folder, fold, person, image, lowered, labels)
    trained = Scored(folder[::-1], fold[::-1], person[::-1], image[::-1], scores[::-1], labels[::-1])
    plain = _oof(tmp_path / "plain", scored)
    wild = _oof(tmp_path / "wild", trained, train=("aligned", "wild"))
    out = tmp_path / "wild_training.json"
    command = [sys.executable, str(RESEARCH / "wild_training.py"), "--scored", plain, "--trained", wild]
    run = subprocess.run([*command, "--json", str(out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    report = json.loads(out.read_text())
    photos = np.array(folder) == "wild"
    fitted = cross_fitted_thresholds(Scored(folder, fold, person, image, scores, labels), np.ones(n, bool), 3)
    assert report["sets"]["trained"]["wild"] == metrics(
        Scored(folder, fold, person, image, scores, labels).where(photos), fitted[photos]
    )
    own = cross_fitted_thresholds(scored, ~photos, 3)
    assert report["sets"]["scored"]["every folder but wild"] == metrics(scored.where(~photos), own[~photos])
    expected = guess_difference(
        labels[photos],
        (lowered >= own)[photos].astype(int),
        (scores >= fitted)[photos].astype(int),
        np.array(person)[photos],
    )
    gain, loss = (
        report["trained_minus_scored"]["wild"],
        report["trained_minus_scored"]["every folder but wild"],
    )
    assert gain == expected and gain[0] > 0
    assert report["passes"] == (gain[0] >= 0.025 and gain[1] > 0 and loss[0] >= -0.01)
    assert ("passes" if report["passes"] else "fails") in run.stdout.splitlines()[-1]

    for refused, reason in (
        ([*command[:3], wild, "--trained", plain], "must not have trained on wild"),
        (
            [*command[:5], _oof(tmp_path / "seed1", trained, seed=1, train=("aligned", "wild"))],
            "recipes differ",
        ),
    ):
        result = subprocess.run(refused, capture_output=True, text=True)
        assert result.returncode == 2 and reason in result.stderr and "Traceback" not in result.stderr


def test_a_recipe_change_is_judged_face_by_face_against_its_base_run(tmp_path, predictions):
    """research/paired_runs.py: both runs at their own cross-fitted thresholds, the change's pooled and
    per-folder differences over the same person draws, the verdict by the rule; runs of one recipe,
    or trained on other folders, are refused."""
    from research.paired import guess_difference
    from trainer.crossval import POOLED, Scored, cross_fitted_thresholds

    scores, labels = predictions
    n = len(labels)
    folder = ["aligned"] * (n - 100) + ["wild"] * 100
    fold, person = [i % 3 for i in range(n)], [f"p{i // 2}" for i in range(n)]
    image = [f"{i}.jpg" for i in range(n)]
    noisy = np.clip(scores + np.random.default_rng(2).normal(0, 0.15, scores.shape), 0, 1)
    base, changed = (Scored(folder, fold, person, image, p, labels) for p in (noisy, scores))
    out = tmp_path / "paired.json"
    command = [sys.executable, str(RESEARCH / "paired_runs.py"), "--base", _oof(tmp_path / "base", base)]
    command += ["--changed", _oof(tmp_path / "changed", changed, seed=1), "--score-only", "wild"]
    run = subprocess.run([*command, "--json", str(out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    report = json.loads(out.read_text())
    trained_on = np.array(folder) == "aligned"
    guesses = [
        (s.probabilities >= cross_fitted_thresholds(s, trained_on, 3)).astype(int) for s in (base, changed)
    ]
    pooled = guess_difference(
        labels[trained_on], guesses[0][trained_on], guesses[1][trained_on], np.array(person)[trained_on]
    )
    wild = ~trained_on
    assert report["changed_minus_base"][POOLED] == pooled and pooled[0] > 0
    assert report["changed_minus_base"]["wild"] == guess_difference(
        labels[wild], guesses[0][wild], guesses[1][wild], np.array(person)[wild]
    )
    assert report["change"] == {"seed": [0, 1]}
    assert report["passes"] == (pooled[0] >= 0.015 and pooled[1] > 0)
    assert ("passes" if report["passes"] else "fails") in run.stdout.splitlines()[-1]

    for other, reason in (
        (_oof(tmp_path / "same", changed), "nothing changed"),
        (_oof(tmp_path / "wild", changed, seed=1, train=("aligned", "wild")), "trained on different folders"),
    ):
        command[command.index("--changed") + 1] = other
        result = subprocess.run(command, capture_output=True, text=True)
        assert result.returncode == 2 and reason in result.stderr and "Traceback" not in result.stderr
