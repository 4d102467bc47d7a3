"""What `ponder run` prints on stdout, as the README's quickstart section says: a
workflow without `outputs:` prints its final step's output, or with several final steps
an object of their outputs by step id; one declared output prints its value alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app

ROOT = Path(__file__).resolve().parents[2]

CHAIN = """name: chain
steps:
  - {id: a, kind: tool, tool: calc, args: {expression: "1 + 1"}}
  - {id: b, kind: tool, tool: calc, args: {expression: "${steps.a.output} * 3"}}
"""
TWO_ENDS = """name: two_ends
steps:
  - {id: a, kind: tool, tool: calc, args: {expression: "1 + 1"}}
  - {id: b, kind: tool, tool: calc, args: {expression: "2 + 2"}}
"""
ONE_OUTPUT = """name: one_output
outputs:
  text: ${steps.say.output}
steps:
  - {id: say, kind: tool, tool: extract, args: {text: "the answer is 42", pattern: "answer is \\\\d+"}}
"""

# the join starts with its map (it watches the items finish), yet reads it: the map was
# taken for a second final step
MAP_JOINED = """name: map_joined
steps:
  - {{id: m, kind: map, over: [3, 3, 3],
     step: {{kind: tool, tool: calc, args: {{expression: "${{item}} - 1"}}}}}}
  - {{id: j, kind: join, of: m, reducer: {reducer}}}
"""


def test_the_readme_says_what_run_prints() -> None:
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    assert ("without `outputs:` it is the output of the final step, the one no other step "
            "reads, or with several final steps an object of their outputs by step id") in readme


@pytest.mark.parametrize(("text", "printed"), [
    (CHAIN, "6"),
    (TWO_ENDS, json.dumps({"a": 2, "b": 4}, indent=2)),
    (ONE_OUTPUT, "answer is 42"),
    (MAP_JOINED.format(reducer="first_finish"), "2"),
    (MAP_JOINED.format(reducer="adaptive_vote"), "2"),
    (MAP_JOINED.format(reducer="vote"), "2"),
], ids=["one final step", "two final steps", "one declared output", "map, first_finish",
        "map, adaptive_vote", "map, vote"])
def test_run_prints_the_final_output(tmp_path: Path, text: str, printed: str) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(app, ["run", str(path), "--db", "memory://"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == printed


def test_show_json_gives_each_step_its_prompt_or_arguments_and_its_output(tmp_path: Path) -> None:
    """As the README's command table says of `ponder show --json`."""
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    assert ("`--json` adds each step's `input`, the rendered prompt or the tool's arguments, "
            "and its `output` and `raw` text") in readme
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    ran = CliRunner().invoke(app, ["run", str(ROOT / "examples" / "quickstart.yaml"),
                                   "--backend", "simulated", "--json", "--db", db])
    assert ran.exit_code == 0, ran.stderr
    shown = CliRunner().invoke(app, ["show", json.loads(ran.stdout)["run_id"], "--json",
                                     "--db", db])
    assert shown.exit_code == 0, shown.stderr
    steps = {s["id"]: s for s in json.loads(shown.stdout)["steps"]}
    assert "3 spiders and 2 ants" in steps["answer"]["input"]["prompt"]
    assert steps["answer"]["output"] and "raw" in steps["answer"]
    assert steps["total_legs"]["input"]["args"] == {"expression": "3 * 8 + 2 * 6"}
    assert steps["total_legs"]["output"] == 36
