"""The retraining cycle end to end with real processes, Redis and PostgreSQL: a schedule fires
through beat, a trainer worker trains on a tiny dataset plus a human correction, the gate
promotes (and, with a stricter tolerance, rejects) as the stored metrics say, and a label
worker that keeps running switches to the promoted version at its next chunk."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from facelabel.artifact import load_artifact
from facelabel.settings import BUNDLED_MODEL
from tests import images
from tests.helpers import WorkerProcess, wait_for

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


def test_schedule_trains_gate_decides_and_workers_switch(tmp_path, pg_url, redis_url):
    data = tmp_path / "celeba"
    images.synthetic_celeba(data, count=160)
    env = {
        "FACELABEL_DB_URL": pg_url,
        "FACELABEL_BROKER_URL": redis_url,
        "FACELABEL_CHUNK_SIZE": "8",
        "FACELABEL_TRAIN_DATA": str(data),
        "FACELABEL_TRAIN_DIR": str(tmp_path / "training"),
        "FACELABEL_TRAIN_SIZE": "64",
        "FACELABEL_TRAIN_FRAMING": "aligned",  # drawn pictures, not faces a detector finds
        "FACELABEL_TRAIN_RECIPE": json.dumps({"weights": None, "epochs": 2, "lr": 1e-3, "batch_size": 16}),
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
        beat = subprocess.Popen(
            [sys.executable, "-m", "facelabel", "beat"],
            env={**os.environ, **env},
            stdout=open(tmp_path / "beat.log", "wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

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

        trainer.stop()  # the same trainer command, now asking a challenger to beat the champion by 1.0
        start("trainer2", "-Q", "train", FACELABEL_PROMOTE_TOLERANCE="-1.0")
        out = facelabel(env, "retrain", "now", "--wait", timeout=600)
        assert "rejected" in out, out
        (manual,) = run_of(env, "cli")
        assert manual["status"] == "rejected" and manual["champion"] == scheduled["challenger"]
        assert gate_followed_the_metrics(manual, rows(env, "models", "list"), -1.0)
        active = [v["name"] for v in rows(env, "models", "list") if v["active"]]
        assert active == [scheduled["challenger"]]  # the champion stays
    finally:
        for process in started:
            process.stop()
        if "beat" in locals():
            beat.terminate()
            beat.wait(timeout=30)
