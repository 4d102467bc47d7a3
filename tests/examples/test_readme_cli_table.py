"""The README's "Command line" table names each `ponder` command with the options it
takes: every option a row shows is one the command accepts, and every option the
command accepts is in its row (short forms too), except `--db` and `--debug`, which the
paragraph under the table gives to every command that has them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer

from orchestrator.cli import app

ROOT = Path(__file__).resolve().parents[2]
OPTION = re.compile(r"(?<![\w-])(--?[a-z][a-z-]*)")
COMMON = {"--db", "--debug", "--help"}


def table_usages() -> list[str]:
    """Each `ponder ...` usage written in the first column of the table."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Command line"):readme.index("\n## ", readme.index(
        "## Command line") + 1)]
    first_cells = re.findall(r"^\| (`ponder .*?`) \| ", section, flags=re.M)
    return [u for cell in first_cells for u in re.findall(r"`(ponder [^`]*)`", cell)]


def command_of(usage: str) -> tuple[str, Any]:
    """The click command a usage names (`ponder db upgrade` → `upgrade` of `db`)."""
    cmd: Any = typer.main.get_command(app)
    path = []
    for word in usage.split()[1:]:
        if word not in getattr(cmd, "commands", {}):
            break
        cmd = cmd.commands[word]
        path.append(word)
    return " ".join(path), cmd


def test_every_command_has_a_row() -> None:
    shown = {command_of(u)[0] for u in table_usages()}
    root: Any = typer.main.get_command(app)
    commands = set()
    for name, cmd in root.commands.items():
        subs = getattr(cmd, "commands", None)
        commands |= {f"{name} {s}" for s in subs} if subs else {name}
    assert commands <= shown, commands - shown


def test_each_row_shows_the_options_its_command_takes() -> None:
    wrong = []
    for usage in table_usages():
        name, cmd = command_of(usage)
        takes = {o for p in cmd.params for o in p.opts if o.startswith("-")}
        shown = set(OPTION.findall(usage))
        if shown - takes:
            wrong.append(f"ponder {name}: the README shows {sorted(shown - takes)}, "
                         "which the command does not take")
        if takes - shown - COMMON:
            wrong.append(f"ponder {name}: takes {sorted(takes - shown - COMMON)}, "
                         "which its row does not show")
    assert wrong == []


def test_the_paragraph_under_the_table_gives_db_to_the_commands_that_take_it() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    paragraph = re.search(r"Every command that reads or writes runs \((.*?)\)\s+takes `--db",
                          readme, flags=re.S)
    assert paragraph, "the README says which commands take --db"
    listed = {c.strip() for c in paragraph.group(1).replace("\n", " ").split(",")}
    takes_db = {name for name, cmd in (command_of(u) for u in table_usages())
                if any("--db" in p.opts for p in cmd.params)}
    assert takes_db == listed
