"""The field programs as configuration: one TOML file per program in blueprints/programs/, read with the standard
library's tomllib. A file holds the program's settings and its tiers, rules, rewards, courses, challenges, returns,
collection points, draws and key accounts (blueprints.building turns them into rows) and, under [scenario], a short
story the tests play through the real services to prove the program works (tests/blueprints)."""

import tomllib
from functools import cache
from pathlib import Path

from loyalty.common.errors import ApplicationError

PROGRAMS = Path(__file__).resolve().parent / "programs"


def blueprint_names() -> list[str]:
    return sorted(path.stem for path in PROGRAMS.glob("*.toml"))


@cache
def _read(name: str) -> dict:
    with (PROGRAMS / f"{name}.toml").open("rb") as file:
        return tomllib.load(file)


def blueprint_load(name: str) -> dict:
    """The blueprint called `name` (a file's stem, e.g. "cruise_line_agents"); refused with the names there are."""
    if name not in blueprint_names():
        raise ApplicationError(f"No field program called “{name}”. There are: {', '.join(blueprint_names())}.")
    return _read(name)


def blueprint_choices() -> list[tuple[str, str]]:
    """(name, the program's title) of every blueprint, for a form's choices."""
    return [(name, _read(name)["title"]) for name in blueprint_names()]
