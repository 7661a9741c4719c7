"""Commands that do not run the model never import TensorFlow (it costs seconds and
half a gigabyte), and the output formats keep the contract."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner

from facelabel.cli import main
from facelabel.cli.labeling import default_processes
from facelabel.settings import Settings
from tests import images

PROBE = textwrap.dedent(
    """
    import sys
    from click.testing import CliRunner
    from facelabel.cli import main
    db, broker, folder = sys.argv[1:4]
    runner = CliRunner()
    for args in (["query"], ["query", "--format", "csv"], ["stats"], ["jobs"], ["failures"],
                 ["enqueue", folder, "--aligned"], ["job", "1"], ["--help"], ["models", "list"],
                 ["retrain", "schedule", "0 3 * * 0"], ["retrain", "list"], ["retrain", "runs"],
                 ["retrain", "now"], ["retrain", "cancel", "1"], ["retrain", "remove", "1"]):
        result = runner.invoke(main, ["--db", db, *args], catch_exceptions=False)
        assert result.exit_code == 0, (args, result.output)
    heavy = sorted(m for m in ("tensorflow", "keras", "mtcnn") if m in sys.modules)
    print("HEAVY:" + ",".join(heavy))
    """
)


def test_commands_that_need_no_model_do_not_import_tensorflow(tmp_path, sqlite_url, redis_url, monkeypatch):
    images.folder_of_images(tmp_path / "photos", 3)
    env_broker = {"FACELABEL_BROKER_URL": redis_url}
    monkeypatch.setenv("FACELABEL_BROKER_URL", redis_url)
    result = subprocess.run(
        [sys.executable, "-c", PROBE, sqlite_url, redis_url, str(tmp_path / "photos")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, **env_broker},
    )
    assert result.returncode == 0, result.stderr
    assert "HEAVY:\n" in result.stdout, result.stdout


def test_query_csv_and_jsonl_have_the_contract_columns(tmp_path, sqlite_url):
    images.folder_of_images(tmp_path / "photos", 2)
    runner = CliRunner()
    assert (
        runner.invoke(main, ["--db", sqlite_url, "label", str(tmp_path / "photos"), "--aligned"]).exit_code
        == 0
    )
    out = runner.invoke(main, ["--db", sqlite_url, "query", "--format", "csv"], catch_exceptions=False).output
    header, *rows = list(csv.reader(io.StringIO(out)))
    assert header == [
        "path",
        "face",
        "box_x",
        "box_y",
        "box_w",
        "box_h",
        "eyeglasses",
        "beard",
        "mustache",
        "hat",
        "p_eyeglasses",
        "p_beard",
        "p_mustache",
        "p_hat",
        "model_version",
    ]
    assert len(rows) == 2 and all(r[6] in ("0", "1") for r in rows)
    lines = runner.invoke(
        main, ["--db", sqlite_url, "query", "--format", "jsonl", "--limit", "1"]
    ).output.splitlines()
    assert len(lines) == 1 and list(json.loads(lines[0])) == header
    assert (
        runner.invoke(
            main, ["--db", sqlite_url, "query", "--has", "hat", "--format", "json", "--path", "/none/*"]
        ).output
        == "[]\n"
    )


def test_bad_settings_and_urls_are_one_line_errors(tmp_path, monkeypatch):
    runner = CliRunner()
    monkeypatch.setenv("FACELABEL_BATCH_SIZE", "lots")
    from facelabel.settings import get_settings

    get_settings.cache_clear()
    try:
        result = runner.invoke(main, ["stats"])
        assert result.exit_code == 1 and result.output == (
            "Error: FACELABEL_BATCH_SIZE: input should be a valid integer, unable to parse string as an "
            "integer, got 'lots'\n"
        )
    finally:
        get_settings.cache_clear()
    monkeypatch.delenv("FACELABEL_BATCH_SIZE")
    monkeypatch.setenv("FACELABEL_TRAIN_FRAMING", "whole")
    try:
        result = runner.invoke(main, ["stats"])
        assert result.exit_code == 1
        expected = "FACELABEL_TRAIN_FRAMING: input should be 'aligned' or 'detected', got 'whole'"
        assert expected in result.output
    finally:
        get_settings.cache_clear()
    monkeypatch.delenv("FACELABEL_TRAIN_FRAMING")
    result = runner.invoke(main, ["--db", "nonsense://", "stats"])
    assert result.exit_code == 1 and result.output.startswith("Error: ") and "Traceback" not in result.output


def test_predict_out_in_a_missing_folder_is_one_line_naming_it(tmp_path):
    photo = images.save(images.reference(), tmp_path / "photo.jpg")
    out = tmp_path / "no" / "such" / "a.jpg"
    result = CliRunner().invoke(main, ["predict", str(photo), "--aligned", "--out", str(out)])
    assert (result.exit_code, result.output) == (
        2,
        f"Error: Invalid value for --out: no folder {tmp_path / 'no' / 'such'}\n",
    )


def test_enqueue_without_a_broker_is_a_one_line_error(tmp_path, sqlite_url, monkeypatch):
    images.folder_of_images(tmp_path / "photos", 1)
    script = textwrap.dedent(
        """
        import sys
        from click.testing import CliRunner
        from facelabel.cli import main
        r = CliRunner().invoke(main, ["--db", sys.argv[1], "enqueue", sys.argv[2], "--aligned"])
        print(r.exit_code); print(r.output)
        """
    )
    env = {**__import__("os").environ, "FACELABEL_BROKER_URL": "redis://:secret@127.0.0.1:1/0"}
    out = subprocess.run(
        [sys.executable, "-c", script, sqlite_url, str(tmp_path / "photos")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    ).stdout
    code, message = out.split("\n", 1)
    assert code == "1" and "cannot reach the broker" in message and "secret" not in message


def test_enqueue_wait_gives_up_after_its_timeout(tmp_path, sqlite_url, redis_url):
    """No worker runs: --wait --timeout returns (status 3) instead of waiting for ever."""
    images.folder_of_images(tmp_path / "photos", 2)
    env = {**__import__("os").environ, "FACELABEL_BROKER_URL": redis_url}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "facelabel",
            "--db",
            sqlite_url,
            "enqueue",
            str(tmp_path / "photos"),
            "--aligned",
            "--wait",
            "--timeout",
            "1.5",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 3, done.stderr
    assert done.stdout.strip() == "1"  # the job id, then the note on stderr
    assert "job 1: 0 of 2 images after 1.5 s; it goes on" in done.stderr


@pytest.mark.parametrize(
    "runtime, queues, layout",
    [
        ("litert", "label", (4, 1)),  # CPU workers: one one-thread LiteRT process per CPU
        ("litert", "label,train", (4, 1)),
        ("keras", "label", (1, 4)),  # one TensorFlow process: it spreads each batch itself
        ("litert", "train", (1, 4)),  # a trainer: one run at a time
    ],
)
def test_a_worker_without_concurrency_runs_one_process_per_cpu_on_litert(runtime, queues, layout):
    assert default_processes(Settings(runtime=runtime), queues, cpus=4) == layout


def test_a_big_cpu_machine_gets_a_few_processes_with_threads_each():
    """Not 64 processes, each with its own database connections."""
    assert default_processes(Settings(runtime="litert"), "label", cpus=64) == (8, 8)


@pytest.mark.parametrize("command", ["train", "crossval"])
def test_recipe_options_left_out_train_the_default_recipe(command):
    """``train`` and ``crossval`` without recipe options train ``Recipe()``, the recipe
    retraining falls back on: the options' defaults are the recipe's own."""
    from facelabel.cli import training
    from trainer.recipe import Recipe

    click_command = getattr(training, command)
    recipe_fields = {option.name for option in click_command.params} & set(training.RECIPE_DEFAULTS)
    context = click_command.make_context(command, [], resilient_parsing=True)
    given = {name: context.params[name] for name in recipe_fields}
    assert training._recipe(**given) == Recipe()
