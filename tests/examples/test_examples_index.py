"""examples/README.md lists every example, and the branch example routes as it says."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def linked() -> set[str]:
    text = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    return set(re.findall(r"\]\(([^)#\s]+)\)", text))


def test_the_index_links_every_example_and_only_files_that_exist() -> None:
    links = linked()
    for target in links:
        assert (EXAMPLES / target).exists(), target
    examples = {str(p.relative_to(EXAMPLES)) for p in EXAMPLES.rglob("*")
                if p.suffix in (".yaml", ".py") and not p.name.endswith(".sim.yaml")}
    assert examples - links == set()


def test_the_readme_links_the_index() -> None:
    assert "(examples/README.md)" in (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(("question", "computed", "explained"), [
    (None, 395, None),
    ("Why is the sky blue?", None, str),
])
def test_the_branch_example_takes_one_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           question: str | None, computed: object,
                                           explained: object) -> None:
    (tmp_path / "examples").symlink_to(EXAMPLES)
    monkeypatch.chdir(tmp_path)
    args = ["run", "examples/branch.yaml", "--model", "default=examples/branch.sim.yaml",
            "--json", "--db", "memory://"]
    if question:
        args += ["-i", f"question={question}"]
    result = CliRunner().invoke(app, args)
    doc = json.loads(result.stdout)
    assert result.exit_code == 0 and doc["status"] == "succeeded", (doc, result.stderr)
    status = {s["id"]: s["status"] for s in doc["steps"]}
    assert doc["output"]["computed"] == computed
    if explained is None:
        assert doc["output"]["explained"] is None and status["explain"] == "skipped"
    else:
        assert isinstance(doc["output"]["explained"], str) and status["compute"] == "skipped"
