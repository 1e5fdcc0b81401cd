"""The README's command synopsis lists exactly the commands and options the CLI has."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer

from monitor.cli import app
from monitor.config import TailTopic

README = Path(__file__).resolve().parent.parent / "README.md"


def synopsis() -> dict[str, str]:
    """Command path ("reference build") -> its synopsis text, from the README's first block."""
    text = README.read_text()
    section = text[text.index("## Command line") :]
    block = section[section.index("```\n") + 4 : section.index("\n```", section.index("```\n") + 4)]
    entries: dict[str, str] = {}
    current = ""
    for line in block.splitlines():
        if line.startswith("driftstream "):
            words = line.split()[1:]
            path = [w for w in words[:2] if re.fullmatch(r"[a-z][a-z-]*", w)]
            if path and path[0] not in GROUPS:
                path = path[:1]
            current = " ".join(path)
            assert current not in entries, f"{current} listed twice"
            entries[current] = line
        else:
            assert line.startswith(" "), f"a synopsis line outside a command: {line!r}"
            entries[current] += " " + line.strip()
    return entries


# Typer carries its own copy of click, so commands and parameters are
# recognised by what they have, not by click's classes.
def commands(group: Any, prefix: str = "") -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        if hasattr(command, "commands"):
            found |= commands(command, path + " ")
        else:
            found[path] = command
    return found


CLI = commands(typer.main.get_group(app))
GROUPS = {path.split()[0] for path in CLI if " " in path}


def option_names(command: Any) -> list[set[str]]:
    """The names of each option (a flag pair such as --live/--no-live has two)."""
    return [
        {*parameter.opts, *parameter.secondary_opts}
        for parameter in command.params
        if parameter.param_type_name == "option" and "--help" not in parameter.opts
    ]


def test_every_command_is_in_the_synopsis_and_nothing_else() -> None:
    assert set(synopsis()) == set(CLI)


def test_every_option_of_every_command_is_in_its_synopsis_and_no_other() -> None:
    """Each option by one of its names (one side of a flag pair is enough)."""
    documented = synopsis()
    for path, command in CLI.items():
        listed = set(re.findall(r"(?<![\w-])--?[a-z][a-z-]*", documented[path]))
        options = option_names(command)
        assert [names for names in options if not names & listed] == [], path
        assert listed - set().union(*options) == set(), path


def test_topic_choices_of_tail_are_all_listed() -> None:
    listed = re.search(r"tail (\S+)", synopsis()["tail"])
    assert listed is not None
    assert set(listed.group(1).split("|")) == {topic.value for topic in TailTopic}
