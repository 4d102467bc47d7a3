"""Every relative link of the README, docs/ and examples/ names a file that exists, and
every `#anchor` a heading of the page it points at (as GitHub forms heading ids)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
         *sorted((ROOT / "examples").rglob("*.md"))]
FENCE = re.compile(r"^```.*?^```", flags=re.S | re.M)


def heading_ids(page: Path) -> set[str]:
    ids: set[str] = set()
    seen: dict[str, int] = {}
    for title in re.findall(r"^#+ (.*)$", FENCE.sub("", page.read_text(encoding="utf-8")),
                            flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        ids.add(slug if n == 0 else f"{slug}-{n}")
    return ids


def test_the_anchor_rule_matches_github() -> None:
    assert "yaml-reference" in heading_ids(ROOT / "README.md")
    assert "step-kind-plan" in heading_ids(ROOT / "README.md")  # `plan` loses its marks


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_resolve(page: Path) -> None:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: not checked here
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(target)
        elif anchor and dest.suffix == ".md" and anchor not in heading_ids(dest):
            broken.append(target)
    assert broken == []
