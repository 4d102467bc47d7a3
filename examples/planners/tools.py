"""Tools of the planner examples: search and look-up over a small local corpus of city
facts (``corpus/*.txt``, one file per city). Referenced from the workflows as
``tools: {search: "tools:search", lookup: "tools:lookup"}``.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "corpus"
_WORD = re.compile(r"[a-z0-9]+")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_STOP = frozenset({"a", "an", "and", "as", "by", "in", "is", "of", "on", "the", "what", "how"})


@functools.cache
def _documents() -> dict[str, list[str]]:
    return {p.stem: p.read_text(encoding="utf-8").splitlines()
            for p in sorted(CORPUS.glob("*.txt"))}


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower())) - _STOP


def search(query: str) -> str:
    """Search the city corpus; returns the best-matching fact, e.g. `Paris: Population: ...`."""
    wanted = _words(query)
    best, best_score = "", 0
    for city, lines in _documents().items():
        bonus = 2 if city in wanted else 0
        topic = wanted - {city}  # the city's name is in its first line: scored by `bonus`
        for line in lines:
            score = len(topic & _words(line)) + bonus
            if score > best_score:
                best, best_score = f"{city.capitalize()}: {line}", score
    return best or f"no result for {query!r}"


def lookup(city: str, attribute: str) -> int | float:
    """A number from the city corpus: population, area (km2) or elevation (m) of a city."""
    lines = _documents().get(city.strip().lower())
    if lines is None:
        known = ", ".join(c.capitalize() for c in _documents())
        raise ValueError(f"no city {city!r} in the corpus (known: {known})")
    key = attribute.strip().lower()
    for line in lines:
        name, sep, value = line.partition(":")
        if sep and name.strip().lower() == key:
            match = _NUMBER.search(value)
            if match:
                number = float(match.group(0).replace(",", ""))
                return int(number) if number.is_integer() else number
    raise ValueError(f"no number for {attribute!r} of {city!r} (try population, area, "
                     "elevation)")
