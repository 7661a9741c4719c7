"""The docs say what the code does: the CLI reference is every command's current ``--help``, the
README's quality line is the bundled model's reports, and every relative link leads to a file.
A failure here is fixed by ``make docs`` (or by mending the link)."""

import re

import pytest
from click.testing import CliRunner

from docs.generate import CLI_REFERENCE, HELP_WIDTH, README, ROOT, cli_reference, command_helps, quality_line
from facelabel.cli import main


def test_cli_reference_is_current():
    assert CLI_REFERENCE.read_text() == cli_reference(), "make docs"


HELPS = list(command_helps(main))


@pytest.mark.parametrize("path, text", HELPS, ids=[path for path, _ in HELPS])
def test_cli_reference_is_what_help_prints(path, text):
    """As ``facelabel … --help`` prints it in a terminal of 80 columns or more."""
    args = path.split()[1:] + ["--help"]
    result = CliRunner().invoke(
        main, args, prog_name="facelabel", terminal_width=HELP_WIDTH, catch_exceptions=False
    )
    assert (result.exit_code, result.output) == (0, text + "\n")


def test_readme_states_the_bundled_models_estimate():
    assert quality_line() in README.read_text().splitlines(), "make docs"


@pytest.mark.parametrize("page", [README, *sorted((ROOT / "docs").glob("*.md"))], ids=lambda p: p.name)
def test_relative_links_lead_to_files(page):
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text())
    missing = [t for t in targets if "://" not in t and not (page.parent / t).exists()]
    assert missing == []
