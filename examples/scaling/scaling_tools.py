"""Tools of the scaling examples: a calc-based scorer and the Countdown search steps.

Registered by the examples' ``tools:`` sections (``scaling_tools:NAME``); every
arithmetic check goes through Ponder's safe ``calc``.
"""

from __future__ import annotations

import re
from collections import Counter
from itertools import combinations
from typing import Any

from executors.builtin_tools import calc
from orchestrator.errors import ToolError


def score_expression(expression: str, target: float,
                     numbers: list[float] | None = None) -> float:
    """1.0 when ``expression`` evaluates to ``target``, less the further it lands; 0.0 when
    it does not evaluate, or (``numbers`` given) when it writes a number not among them or
    one more often than it is given: ``8 * 3`` reaches 24 without using 3, 5, 7 and 9."""
    if numbers is not None:
        pool = Counter(float(n) for n in numbers)
        pool.subtract(float(n) for n in _NUMBER_RE.findall(expression))
        if any(left < 0 for left in pool.values()):
            return 0.0
    try:
        value = calc(expression)
    except ToolError:
        return 0.0
    return 1.0 / (1.0 + abs(float(value) - float(target)))


#: a number written in an expression
_NUMBER_RE = re.compile(r"\d+(?:\.\d+)?")

#: one step of a path: ``a OP b=result`` (as :func:`_moves` writes it)
_STEP_RE = re.compile(r"^\s*(\d+)\s*([-+*/])\s*(\d+)\s*=\s*(-?\d+)\s*$")


def _moves(a: int, b: int) -> list[tuple[str, int]]:
    hi, lo = max(a, b), min(a, b)
    out = [(f"{a}+{b}", a + b), (f"{hi}-{lo}", hi - lo), (f"{a}*{b}", a * b)]
    if lo and hi % lo == 0:
        out.append((f"{hi}/{lo}", hi // lo))
    return out


def _children(state: dict[str, Any]) -> list[dict[str, Any]]:
    numbers: list[int] = list(state["numbers"])
    out = []
    for i, j in combinations(range(len(numbers)), 2):
        rest = [n for k, n in enumerate(numbers) if k not in (i, j)]
        for text, value in _moves(numbers[i], numbers[j]):
            if value < 0:
                continue
            out.append({"numbers": sorted([*rest, value]),
                        "path": [*state["path"], f"{text}={value}"]})
    return out


def countdown_expand(state: dict[str, Any], target: int, top_k: int = 3) -> list[dict[str, Any]]:
    """The ``top_k`` most promising states one move after ``state`` (none once two numbers
    are left: that state is finished by :func:`countdown_finish`).

    Promising: a number close to the target, then a small spread of the numbers.
    """
    if len(state["numbers"]) <= 2:
        return []
    seen: set[tuple[int, ...]] = set()
    ranked = []
    for child in _children(state):
        key = tuple(child["numbers"])
        if key in seen:
            continue
        seen.add(key)
        nums = child["numbers"]
        ranked.append((min(abs(n - target) for n in nums), max(nums) - min(nums), child))
    ranked.sort(key=lambda r: (r[0], r[1]))
    return [child for _, _, child in ranked[:top_k]]


def countdown_finish(state: dict[str, Any], target: int,
                     found: list[Any] | None = None) -> list[list[str]]:
    """The successful paths from ``state``: with two numbers left, every last move that
    reaches ``target`` (each step re-checked with ``calc``); else the paths the children
    found that continue this state's path with its numbers. A child returns only these,
    never its failed search."""
    paths: list[list[str]] = []
    if len(state["numbers"]) == 2:
        a, b = state["numbers"]
        for text, value in _moves(a, b):
            if value == target and calc(text) == target:
                paths.append([*state["path"], f"{text}={value}"])
    done = list(state["path"])
    for item in found or []:
        if isinstance(item, dict) and isinstance(item.get("paths"), list):
            paths.extend(p for p in item["paths"] if isinstance(p, list)
                         and p[:len(done)] == done
                         and verify_path(p[len(done):], target, state["numbers"]))
    return paths


def verify_path(path: list[str], target: int, numbers: list[int]) -> bool:
    """Whether a path is a valid Countdown solution from ``numbers``: each step combines
    two numbers still available (a given number, or an earlier step's result, each used
    at most once) and is right by ``calc``, and the last step's result is ``target``."""
    if not path:
        return False
    pool = Counter(int(n) for n in numbers)
    result = None
    try:
        for step in path:
            m = _STEP_RE.match(step) if isinstance(step, str) else None
            if m is None:
                return False
            a, op, b, result = int(m[1]), m[2], int(m[3]), int(m[4])
            pool[a] -= 1
            pool[b] -= 1
            if pool[a] < 0 or pool[b] < 0:
                return False  # a number not given, or used twice
            if calc(f"{a}{op}{b}") != result:
                return False
            pool[result] += 1
    except ToolError:
        return False
    return result == target


def countdown_collect(found: list[Any], target: int, numbers: list[int]) -> list[list[str]]:
    """Every path the children returned that solves the puzzle from ``numbers`` (see
    :func:`verify_path`), without duplicates, in the order found."""
    out: list[list[str]] = []
    for item in found:
        for path in (item.get("paths") or []) if isinstance(item, dict) else []:
            if verify_path(path, target, numbers) and path not in out:
                out.append(path)
    return out
