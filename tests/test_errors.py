"""Every mistake a user can make at the command line ends in one line, ``Error: …``."""

import pytest
from click.testing import CliRunner

from facelabel.cli import main


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["job", "999"], 1, "no job 999"),
        (["models", "promote", "nope"], 1, "no model version named 'nope'"),
        (["retrain", "schedule", "* * *"], 1, "has 3 fields; expected 5"),
        (["retrain", "schedule", "99 * * * *"], 1, "invalid cron expression"),
        (["retrain", "cancel", "999"], 1, "no training run 999"),
        (["evaluate", "--model", "/no/model", "--tfrecord", "/no/records"], 1, "/no/model"),
        (
            ["train", "--model", "nope", "--train-tfrecord", "r", "--val-tfrecord", "v", "--model-dir", "m"],
            1,
            "unknown backbone 'nope'",
        ),
        (["predict", "/no/such.jpg"], 2, "does not exist"),
        (["query", "--has", "wings"], 2, "Invalid value for '--has'"),
        (["query", "--format", "xml"], 2, "Invalid value for '--format'"),
        (["correct", "/no/such.jpg", "--set", "hat=1"], 1, "/no/such.jpg"),
        (["nonsense"], 2, "No such command 'nonsense'"),
    ],
)
def test_a_mistake_is_one_line(sqlite_url, args, code, message):
    result = CliRunner().invoke(main, ["--db", sqlite_url, *args])
    assert result.exit_code == code, result.output
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1, result.output
    assert message in result.output
