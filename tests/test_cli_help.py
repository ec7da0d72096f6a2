"""``kitgc --help`` and ``--version``: generated from the variable table the code reads.

If a variable is added to kitgc.config.VARIABLES, it shows up in ``--help`` with its default
and meaning without anyone editing the help text; these tests keep it that way.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from kitgc import __version__
from kitgc.cli import build_parser, main
from kitgc.config import VARIABLES


def _help(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as stop:
        main([*argv, "--help"], {})
    assert stop.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("var", VARIABLES, ids=lambda v: v.env)
def test_help_lists_every_variable_with_its_meaning_and_default(capsys, var) -> None:
    text = _help(capsys)
    default = var.shown_default if var.shown_default is not None else var.default
    (line,) = [line for line in text.splitlines() if re.match(rf"^\s+{var.env}\s", line)]
    assert var.help in line
    assert f"[default: {default}]" in line


def test_help_names_the_explain_subcommand_and_the_exit_codes(capsys) -> None:
    text = _help(capsys)
    assert "explain" in text and "read-only" in text
    assert "exit codes: 0" in text


def test_explain_help_says_what_it_takes(capsys) -> None:
    assert "bare digest" in _help(capsys, "explain")


def test_version_prints_the_package_version(capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--version"], {})
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"kitgc {__version__}"


def test_every_variable_also_has_a_flag() -> None:
    flags = {a.dest: a.option_strings for a in build_parser()._actions}
    for var in VARIABLES:
        assert flags[var.env] == [var.flag]


@pytest.mark.parametrize("command", [["-m", "kitgc"], ["kitgc"]], ids=["python -m kitgc", "console script"])
def test_both_entry_points_answer_version(command: list[str]) -> None:
    if command == ["kitgc"]:
        script = Path(sys.executable).with_name("kitgc")
        assert script.exists(), "pip install . installs the console script kitgc"
        argv = [str(script), "--version"]
    else:
        argv = [sys.executable, *command, "--version"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == f"kitgc {__version__}"
