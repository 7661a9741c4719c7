"""research/screen_backbones.py, which chooses the backbones that earn a full training, runs on
records built by ``facelabel data tfrecords`` and scores every fold face by the person folds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests import images
from tests.helpers import invoke_ok as invoke

RESEARCH = Path(__file__).resolve().parents[1]


def records(tmp_path: Path, name: str, seed: int) -> Path:
    folder = images.synthetic_celeba(tmp_path / name, count=60, seed=seed)
    invoke(
        "data",
        "convert",
        "--annotation",
        folder.parent / "list_attr_celeba.txt",
        "--json",
        tmp_path / f"{name}.json",
    )
    out = tmp_path / "records" / name
    invoke(
        "data", "tfrecords", "--json", tmp_path / f"{name}.json", "--images", folder, "--out", out,
        "--identities", tmp_path / "identity_CelebA.txt", "--folds", 3, "--test-percent", 20, "--size", 32,
    )  # fmt: skip
    return out


def test_a_ported_backbone_is_screened_on_every_fold_face_and_no_test_face(tmp_path):
    from trainer.torch_port import build_mobilenet_v2

    people = [f"{index + 1:06d}.jpg p{index // 2}" for index in range(60)]
    (tmp_path / "identity_CelebA.txt").write_text("\n".join(people) + "\n")
    trained, scored = records(tmp_path, "aligned", 0), records(tmp_path, "wild", 1)
    build_mobilenet_v2((32, 32, 3)).save_weights(tmp_path / "m.weights.h5")
    out = tmp_path / "screen.json"
    run = subprocess.run(
        [
            sys.executable,
            str(RESEARCH / "screen_backbones.py"),
            "--records",
            str(trained),
            "--score-only",
            str(scored),
            "--identities",
            str(tmp_path / "identity_CelebA.txt"),
            "--backbone",
            f"mobilenetv2-torch={tmp_path / 'm.weights.h5'}",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(out.read_text())["mobilenetv2-torch"]
    splits = json.loads((trained / "manifest.json").read_text())["splits"]
    in_folds = sum(splits[f"fold{k}"]["images"] for k in range(3))
    assert 0 < in_folds < 60 and splits["test"]["images"] == 60 - in_folds
    assert report["sets"]["all training folders"]["faces"] == in_folds
    assert report["sets"]["wild"]["faces"] == in_folds  # same people, so the same folds
    assert 0 <= report["sets"]["all training folders"]["macro_f1"] <= 1
    assert "mobilenetv2-torch, wild: macro-F1" in run.stdout
