"""Schedules, corrections and the model registry from the CLI, on SQLite and PostgreSQL;
beat's database scheduler sees a new schedule without a restart."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from facelabel.artifact import load_artifact
from facelabel.cli import main
from facelabel.settings import BUNDLED_MODEL
from tests import images


def run(url, *args):
    return CliRunner().invoke(main, ["--db", url, *map(str, args)])


def ok(url, *args):
    result = run(url, *args)
    assert result.exit_code == 0, result.output + result.stderr
    return result.stdout


def test_schedules_are_validated_stored_listed_and_removed(db_url):
    first = int(ok(db_url, "retrain", "schedule", "0 3 * * 0"))
    second = int(ok(db_url, "retrain", "schedule", "--every", "3600"))
    rows = json.loads(ok(db_url, "retrain", "list", "--format", "json"))
    assert [(r["id"], r["when"]) for r in rows] == [(first, "0 3 * * 0"), (second, "every 3600 s")]
    for bad, message in [
        ("61 * * * *", "invalid cron expression '61 * * * *': Invalid end range: 61 > 59."),
        ("0 3 * *", "cron expression '0 3 * *' has 4 fields; expected 5"),
        ("0 3 31 2 *", "day_of_month '31' never occurs in month_of_year '2'"),
    ]:
        result = run(db_url, "retrain", "schedule", bad)
        assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1
        assert message in result.stderr
    assert len(json.loads(ok(db_url, "retrain", "list", "--format", "json"))) == 2  # nothing stored
    ok(db_url, "retrain", "remove", first)
    assert [r["id"] for r in json.loads(ok(db_url, "retrain", "list", "--format", "json"))] == [second]
    result = run(db_url, "retrain", "remove", first)
    assert result.exit_code == 1 and f"no schedule {first}" in result.stderr


def test_corrections_override_labels_and_say_so(db_url, tmp_path):
    images.folder_of_images(tmp_path / "photos", 3)
    ok(db_url, "label", tmp_path / "photos", "--aligned")
    before = json.loads(ok(db_url, "query", "--format", "json"))
    target = before[0]["path"]
    flipped = 1 - before[0]["hat"]
    ok(db_url, "correct", target, "--face", "0", "--set", f"hat={flipped}", "--set", "beard=1", "--by", "ana")

    result = run(db_url, "query", "--format", "json")
    after = {r["path"]: r for r in json.loads(result.stdout)}
    assert (after[target]["hat"], after[target]["beard"]) == (flipped, 1)
    assert after[target]["p_hat"] == before[0]["p_hat"]  # the model's output is kept
    assert list(after[target]) == list(before[0])  # csv/json keep the contract columns
    assert "1 faces show human corrections" in result.stderr
    table = ok(db_url, "query")
    assert "corrected" in table.splitlines()[0] and "beard,hat" in table
    hat_rows = {r["path"] for r in json.loads(ok(db_url, "query", "--has", "hat", "--format", "json"))}
    assert (target in hat_rows) == bool(flipped)
    assert json.loads(ok(db_url, "stats", "--format", "json"))[0]["beard"] >= 1

    for args, message in [
        ((target, "--face", "3", "--set", "hat=1"), "has no face 3 (faces 0 to 0)"),
        ((tmp_path / "nope.jpg", "--set", "hat=1"), "has not been labelled"),
    ]:
        result = run(db_url, "correct", *args)
        assert result.exit_code == 1 and message in result.stderr
    result = run(db_url, "correct", target, "--set", "hats=1")
    assert result.exit_code == 2 and "expected ATTR=0|1" in result.stderr


def test_promote_and_rollback(db_url, tmp_path):
    images.folder_of_images(tmp_path / "photos", 2)
    ok(db_url, "label", tmp_path / "photos", "--aligned")  # registers the bundled model
    other = tmp_path / "other-model"
    shutil.copytree(BUNDLED_MODEL, other, ignore=shutil.ignore_patterns("report"))  # no estimate of its own
    meta = json.loads((other / "model.json").read_text())
    meta["name"] = "other"
    (other / "model.json").write_text(json.dumps(meta))
    ok(db_url, "label", tmp_path / "photos", "--aligned", "--model", other)

    assert "no earlier active version" in run(db_url, "models", "rollback").stderr
    assert ok(db_url, "models", "promote", meta["name"]).strip() == "active model: other"
    bundled = load_artifact(BUNDLED_MODEL).name
    assert ok(db_url, "models", "promote", bundled).strip() == f"active model: {bundled}"
    assert ok(db_url, "models", "rollback").strip() == "active model: other"
    versions = json.loads(ok(db_url, "models", "list", "--format", "json"))
    assert [(v["name"], v["active"]) for v in versions] == [
        ("other", 1),
        (bundled, 0),
    ]
    pooled = json.loads((BUNDLED_MODEL / "report" / "crossval.json").read_text())["sets"][
        "all training folders"
    ]
    estimate = [(v["new_person_macro_f1"], v["new_person_95"]) for v in versions]
    assert estimate == [(None, None), (pooled["macro_f1"], pooled["macro_f1_95"])]
    assert versions[1]["new_person_from"] == (
        f"3-fold cross-validation by person: {pooled['faces']:,} faces of {pooled['people']:,} people"
    )
    assert "val_macro_f1" not in versions[0]  # 424 faces of 18 people is no estimate for a new person
    assert "new_person_macro_f1" in ok(db_url, "models", "list").splitlines()[0]
    assert "no model version named 'nope'" in run(db_url, "models", "promote", "nope").stderr


def test_a_second_training_request_is_refused_while_one_is_queued(db_url, redis_url, monkeypatch):
    import redis

    from db.engine import open_database
    from db.models import TrainingRun
    from db.training_runs import start_run

    monkeypatch.setenv("FACELABEL_BROKER_URL", redis_url)
    with open_database(db_url).begin() as session:
        queued = start_run(session, "cli").id
    result = run(db_url, "retrain", "now")
    assert result.exit_code == 1
    assert f"training run {queued} is already queued" in result.stderr

    with open_database(db_url).begin() as session:  # its trainer died: running, lease gone
        session.get(TrainingRun, queued).status = "running"
    started = int(ok(db_url, "retrain", "now"))
    with open_database(db_url)() as session:
        dead = session.get(TrainingRun, queued)
        assert (dead.status, dead.decision) == ("failed", "the trainer stopped during the run")
        assert session.get(TrainingRun, started).status == "queued"
    assert redis.Redis.from_url(redis_url).llen("train") == 1  # the task went to queue "train"

    redis.Redis.from_url(redis_url).delete("train")  # its message lost: it blocks until cancelled
    assert f"training run {started} is already queued" in run(db_url, "retrain", "now").stderr
    assert ok(db_url, "retrain", "cancel", started) == f"cancelled training run {started}\n"
    result = run(db_url, "retrain", "cancel", started)
    assert result.exit_code == 1
    assert f"training run {started} is cancelled; only a queued run can be cancelled" in result.stderr
    assert "no training run 999" in run(db_url, "retrain", "cancel", 999).stderr
    assert int(ok(db_url, "retrain", "now")) > started


def test_the_trainer_leaves_a_cancelled_run_alone(db_url):
    from db.engine import open_database
    from db.models import TrainingRun
    from db.training_runs import cancel_run, start_run
    from facelabel.settings import Settings
    from trainer.retrain import retrain

    sessions = open_database(db_url)
    with sessions.begin() as session:
        run_id = start_run(session, "cli").id
        cancel_run(session, run_id)

    def lock():
        raise AssertionError("a cancelled run must not take the training lock")

    assert retrain(sessions, Settings(db_url=db_url), run_id, lock=lock) == "cancelled"
    with sessions() as session:
        assert session.get(TrainingRun, run_id).decision == "cancelled by hand"


def test_a_champion_trained_from_a_weights_file_not_here_fails_the_run_saying_so(
    db_url, tmp_path, monkeypatch
):
    from db.engine import open_database
    from db.models import TrainingRun
    from db.training_runs import start_run
    from facelabel.settings import Settings
    from trainer.retrain import retrain

    monkeypatch.chdir(tmp_path)  # where the bundled model's build/model/… weights file is not
    settings = Settings(db_url=db_url, train_data=str(tmp_path / "celeba"), train_dir=tmp_path / "training")
    sessions = open_database(db_url)
    with sessions.begin() as session:
        run_id = start_run(session, "cli").id

    class Lease:
        def release(self):
            pass

    assert retrain(sessions, settings, run_id, lock=Lease) == "failed"
    weights = load_artifact(BUNDLED_MODEL).meta["training"]["recipe"]["weights"]
    with sessions() as session:
        decision = session.get(TrainingRun, run_id).decision
    assert decision == (
        f"failed: the champion {load_artifact(BUNDLED_MODEL).name} was trained from the weights file "
        f"{weights}, which is not on this machine ({Path.cwd() / weights}): `python -m trainer.torch_port "
        f"--pth FILE --out {weights}` ports it (as `make model` does), or set FACELABEL_TRAIN_RECIPE to "
        "train another recipe"
    )
    assert not (tmp_path / "training" / f"run-{run_id}").exists()  # refused before any records were built


def test_the_challenger_trains_the_champions_recipe_unless_the_settings_name_another():
    from facelabel.settings import Settings
    from trainer.recipe import Recipe
    from trainer.retrain import challenger_recipe

    meta = {"training": {"recipe": {"backbone": "mobilenetv2", "alpha": 0.35, "weights": None, "epochs": 3}}}
    champions = Recipe(backbone="mobilenetv2", alpha=0.35, weights=None, epochs=3)
    assert challenger_recipe(Settings(), "m", meta, 64) == (champions, 64)
    assert challenger_recipe(Settings(train_size=96), "m", meta, 64) == (champions, 96)
    assert challenger_recipe(Settings(train_recipe={"epochs": 1}), "m", meta, 64) == (Recipe(epochs=1), 160)


def test_the_gate_holds_out_whom_the_champion_held_out_or_says_it_cannot():
    from trainer.held_out import held_out_people

    bundled = load_artifact(BUNDLED_MODEL).meta
    assert held_out_people(bundled) == (0, 10)  # the card's person folds: seed 0, 10 % of people held out
    fold = next(iter(bundled["training"]["data"]["train"].values()))
    corrections = {"source": "human corrections", "splits": {"train": {"images": 3}}}

    def trained_on(**manifests):
        return {"training": {"data": {"train": {f"records/{k}": m for k, m in manifests.items()}}}}

    assert held_out_people(trained_on(fold0=fold, train=corrections)) == (0, 10)
    assert held_out_people(trained_on(fold0=fold, test=fold)) is None  # it trained on the held-out people
    by_name = {**fold, "split": {"ratios": [80, 10, 10], "by": "name hash"}}
    assert held_out_people(trained_on(fold0=fold, train=by_name)) is None
    other_seed = {**fold, "split": {**fold["split"], "seed": 1}}
    assert held_out_people(trained_on(fold0=fold, fold1=other_seed)) is None


def test_beat_scheduler_reads_new_schedules_without_a_restart(db_url, monkeypatch):
    from celery import Celery

    from db.engine import open_database
    from db.schedules import add_schedule, remove_schedule
    from facelabel.settings import get_settings
    from worker import scheduler

    monkeypatch.setenv("FACELABEL_DB_URL", db_url)
    get_settings.cache_clear()
    monkeypatch.setattr(scheduler, "RELOAD_SECONDS", 0.0)
    beat = scheduler.DatabaseScheduler(app=Celery(broker="memory://"))
    assert beat.schedule == {}
    with open_database(db_url).begin() as session:
        added = add_schedule(session, cron="0 3 * * 0").id
    (entry,) = beat.schedule.values()
    assert entry.task == "facelabel.retrain" and entry.options == {"queue": "train"}
    assert entry.name == f"retrain-{added}" and str(entry.schedule.hour) == "{3}"
    with open_database(db_url).begin() as session:
        remove_schedule(session, added)
    assert beat.schedule == {}
    get_settings.cache_clear()


def test_a_schedule_firing_during_a_run_is_recorded_as_skipped(db_url, redis_url, monkeypatch):
    import json

    import redis
    from celery import Celery

    from db.engine import open_database
    from db.models import TrainingRun
    from db.schedules import add_schedule
    from worker import scheduler

    monkeypatch.setenv("FACELABEL_DB_URL", db_url)
    monkeypatch.setenv("FACELABEL_BROKER_URL", redis_url)
    sessions = open_database(db_url)
    with sessions.begin() as session:
        added = add_schedule(session, every_seconds=60).id
    beat = scheduler.DatabaseScheduler(app=Celery(broker=redis_url))
    (entry,) = beat.schedule.values()

    beat.apply_entry(entry)  # nothing running: a queued run, its id sent to queue "train"
    (message,) = redis.Redis.from_url(redis_url).lrange("train", 0, -1)
    with sessions() as session:
        (queued,) = session.query(TrainingRun).all()
    assert (queued.status, queued.trigger) == ("queued", f"schedule {added}")
    assert json.loads(message)["headers"]["kwargsrepr"] == repr({"run_id": queued.id})

    beat.apply_entry(entry)  # that run is still queued: nothing sent, a skipped run recorded
    assert redis.Redis.from_url(redis_url).llen("train") == 1
    with sessions() as session:
        skipped = session.query(TrainingRun).filter(TrainingRun.id != queued.id).one()
    assert skipped.status == "skipped"
    assert skipped.decision.startswith(f"training run {queued.id} is already queued")


@pytest.fixture(autouse=True)
def _fresh_settings():
    from facelabel.settings import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
