"""The retraining cycle end to end with real processes, Redis and PostgreSQL: a schedule fires
through beat, a trainer worker trains on a tiny dataset plus a human correction, the gate
promotes (and, with a stricter tolerance, rejects) as the stored metrics say, and a label
worker that keeps running switches to the promoted version at its next chunk. With identities
the gate holds out whole people; without FACELABEL_TRAIN_RECIPE the challenger is of the
champion's kind."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from facelabel.artifact import load_artifact
from facelabel.settings import BUNDLED_MODEL
from tests import images
from tests.helpers import WorkerProcess, start_beat, wait_for

pytestmark = pytest.mark.slow
BUNDLED = load_artifact(BUNDLED_MODEL).name


def facelabel(env, *args, timeout=300):
    result = subprocess.run(
        [sys.executable, "-m", "facelabel", *map(str, args)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def rows(env, *args):
    return json.loads(facelabel(env, *args, "--format", "json"))


def run_of(env, trigger_prefix):
    return [r for r in rows(env, "retrain", "runs") if r["trigger"].startswith(trigger_prefix)]


def gate_followed_the_metrics(run, versions, tolerance):
    challenger = next(v for v in versions if v["name"] == run["challenger"])
    new, old = challenger["gate_macro_f1"], challenger["champion_macro_f1"]
    return run["status"] == ("promoted" if new >= old - tolerance else "rejected")


def people_of(records, split, identities):
    from trainer.dataset import names_of
    from trainer.records import record_files

    return {identities[name] for name in names_of(record_files(records / split))}


def test_schedule_trains_gate_decides_and_workers_switch(tmp_path, pg_url, redis_url):
    data = tmp_path / "celeba"
    images.synthetic_celeba(data, count=160)
    identities = {f"{i + 1:06d}.jpg": str(i // 4) for i in range(160)}  # 40 people, 4 faces each
    (data / "identity_CelebA.txt").write_text("".join(f"{n} {p}\n" for n, p in identities.items()))
    unnamed = tmp_path / "celeba-without-identities"
    images.synthetic_celeba(unnamed, count=96, seed=1)
    env = {
        "FACELABEL_DB_URL": pg_url,
        "FACELABEL_BROKER_URL": redis_url,
        "FACELABEL_CHUNK_SIZE": "8",
        "FACELABEL_TRAIN_DATA": str(data),
        "FACELABEL_TRAIN_DIR": str(tmp_path / "training"),
        "FACELABEL_TRAIN_SIZE": "64",
        "FACELABEL_TRAIN_FRAMING": "aligned",  # drawn pictures, not faces a detector finds
        "FACELABEL_TRAIN_RECIPE": json.dumps(
            {
                "backbone": "mobilenetv2",
                "alpha": 0.35,
                "weights": None,
                "epochs": 2,
                "lr": 1e-3,
                "batch_size": 16,
            }
        ),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    started = []

    def start(name, *args, **extra):
        process = WorkerProcess(name, {**env, **extra}, tmp_path / f"{name}.log", *args)
        started.append(process)
        return process

    try:
        labeller = start("labeller")
        trainer = start("trainer", "-Q", "train", FACELABEL_PROMOTE_TOLERANCE="1.0")
        beat = start_beat(env, tmp_path / "beat.log")

        first = tmp_path / "first"
        images.folder_of_images(first, 16)
        facelabel(env, "enqueue", first, "--aligned", "--wait")
        assert {r["model_version"] for r in rows(env, "query")} == {BUNDLED}
        corrected = rows(env, "query")[0]["path"]
        facelabel(env, "correct", corrected, "--set", "hat=1", "--by", "test")

        schedule = facelabel(env, "retrain", "schedule", "--every", "20").strip()
        wait_for(lambda: run_of(env, "schedule"), timeout=90, interval=1, what="beat to send a run")
        facelabel(env, "retrain", "remove", schedule)
        wait_for(
            lambda: run_of(env, "schedule")[-1]["status"] not in ("queued", "running"),
            timeout=600,
            interval=2,
            what="the scheduled run to finish",
        )
        # a firing while that run was queued or running is recorded as skipped, not trained
        (scheduled,) = [r for r in run_of(env, "schedule") if r["status"] != "skipped"]
        assert scheduled["status"] == "promoted", scheduled
        assert scheduled["corrections"] == 1 and scheduled["champion"] == BUNDLED
        versions = rows(env, "models", "list")
        assert gate_followed_the_metrics(scheduled, versions, 1.0)
        assert [v["name"] for v in versions if v["active"]] == [scheduled["challenger"]]
        # the bundled champion held out people by the same seeded hash: neither trained on them
        assert "people held out by person, whom neither model trained on" in scheduled["decision"]
        records = tmp_path / "training" / f"run-{scheduled['id']}" / "data0"
        held_out = people_of(records, "test", identities)
        trained = set().union(*(people_of(records, f"fold{k}", identities) for k in range(8)))
        assert held_out and trained and not held_out & trained
        challenger = next(v for v in versions if v["name"] == scheduled["challenger"])
        assert challenger["new_person_macro_f1"] == challenger["gate_macro_f1"]
        low, high = challenger["new_person_95"]
        assert low <= challenger["new_person_macro_f1"] <= high
        assert challenger["new_person_from"].endswith(f"faces of {len(held_out)} people held out by person")

        second = tmp_path / "second"
        images.folder_of_images(second, 16, start_seed=100)
        facelabel(env, "enqueue", second, "--aligned", "--wait")
        switched = rows(env, "query", "--path", f"{second}/*")
        assert {r["model_version"] for r in switched} == {scheduled["challenger"]}
        assert labeller.process.poll() is None  # the same worker process, not restarted
        assert (
            f"loading model {tmp_path / 'training' / 'models' / scheduled['challenger']}"
            in (tmp_path / "labeller.log").read_text()
        )

        trainer.stop()  # now with no recipe and data without identities, asked to beat the champion by 1.0
        defaults = {
            k: v for k, v in env.items() if k not in ("FACELABEL_TRAIN_RECIPE", "FACELABEL_TRAIN_SIZE")
        }
        started.append(
            WorkerProcess(
                "trainer2",
                {**defaults, "FACELABEL_TRAIN_DATA": str(unnamed), "FACELABEL_PROMOTE_TOLERANCE": "-1.0"},
                tmp_path / "trainer2.log",
                "-Q",
                "train",
            )
        )
        out = facelabel(env, "retrain", "now", "--wait", timeout=600)
        (manual,) = run_of(env, "cli")
        assert out == f"{manual['id']}\nrun {manual['id']}: {manual['decision']}\n"
        assert manual["status"] == "rejected" and manual["champion"] == scheduled["challenger"]
        assert f"split by image (no identity_CelebA.txt in {unnamed})" in manual["decision"]
        versions = rows(env, "models", "list")
        assert gate_followed_the_metrics(manual, versions, -1.0)
        assert [v["name"] for v in versions if v["active"]] == [scheduled["challenger"]]  # the champion stays
        rejected = next(v for v in versions if v["name"] == manual["challenger"])
        assert rejected["new_person_macro_f1"] is None and rejected["gate_macro_f1"] is not None
        # the champion's own recipe at its own input size, not Recipe()'s defaults
        kind = [
            load_artifact(tmp_path / "training" / "models" / r["challenger"]).meta
            for r in (scheduled, manual)
        ]
        assert [(m["backbone"], m["input_size"], m["training"]["recipe"]["alpha"]) for m in kind] == [
            ("mobilenetv2", 64, 0.35)
        ] * 2
        assert kind[1]["training"]["recipe"] == kind[0]["training"]["recipe"]
    finally:
        for process in started:
            process.stop()
        if "beat" in locals():
            beat.terminate()
            beat.wait(timeout=30)
