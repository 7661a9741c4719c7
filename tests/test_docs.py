"""The docs say what the code does: the CLI reference is every command's current ``--help``,
the README's quality line is the bundled model's reports, the output columns are the code's,
and every relative link leads to a file. A failure here is fixed by ``make docs`` (or by
mending the link)."""

import re

import pytest
from click.testing import CliRunner

from docs.generate import CLI_REFERENCE, HELP_WIDTH, README, ROOT, USAGE, command_helps, generated
from facelabel.cli import main


@pytest.mark.parametrize("page", [CLI_REFERENCE, README, USAGE], ids=lambda p: p.name)
def test_generated_parts_are_current(page):
    assert page.read_text() == generated()[page], "make docs"


HELPS = list(command_helps(main))


@pytest.mark.parametrize("path, text", HELPS, ids=[path for path, _ in HELPS])
def test_cli_reference_is_what_help_prints(path, text):
    """As ``facelabel … --help`` prints it in a terminal of 80 columns or more."""
    args = path.split()[1:] + ["--help"]
    result = CliRunner().invoke(
        main, args, prog_name="facelabel", terminal_width=HELP_WIDTH, catch_exceptions=False
    )
    assert (result.exit_code, result.output) == (0, text + "\n")


@pytest.mark.parametrize("page", [README, *sorted((ROOT / "docs").glob("*.md"))], ids=lambda p: p.name)
def test_relative_links_lead_to_files(page):
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text())
    missing = [t for t in targets if "://" not in t and not (page.parent / t).exists()]
    assert missing == []
