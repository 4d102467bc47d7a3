"""The ids of the children a fan-out adds: ``OWNER[K]`` in its first attempt and
``OWNER@N[K]`` in attempt N, so that a retried (or resumed) fan-out never reuses an id.
The fan-out operators name their children this way, and resume reads the names back."""

from __future__ import annotations


def child_prefix(owner: str, attempt: int) -> str:
    """The prefix of the children ``owner`` adds in ``attempt``: ``s``, ``s@2``."""
    return owner if attempt == 1 else f"{owner}@{attempt}"


def split_child_id(child_id: str) -> tuple[str, int, str] | None:
    """``s@2[0:4]`` -> ``("s", 2, "[0:4]")``, ``s[3]`` -> ``("s", 1, "[3]")``; ``None``
    for an id that is no child's."""
    if not child_id.endswith("]") or "[" not in child_id:
        return None
    cut = child_id.rindex("[")
    prefix, suffix = child_id[:cut], child_id[cut:]
    head, at, attempt = prefix.rpartition("@")
    if at and attempt.isdigit():
        return head, int(attempt), suffix
    return prefix, 1, suffix
