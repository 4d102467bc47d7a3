"""A map `as: index` names its item `index`, and its body sees the item there.

The body's locals set the map's own `index` (the item's position) after the item, so
`as: index` silently gave the body 0, 1, ... and hid the item. The item is set last now,
as a map's `as:` wins over the judge's names in its body (`as: candidate`, `as:
answer`); with another `as:`, `index` is still the position."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator import Workflow

pytestmark = pytest.mark.anyio

FLOW = """\
name: m
models:
  default: {backend: simulated, options: {time_scale: 0}}
steps:
  - id: m
    kind: map
    over: [{k: a}, {k: b}]
    as: %s
    step: {kind: tool, tool: echo, args: {x: %s}}
"""


def echo(x: Any = None) -> Any:
    return x


async def _outputs(tmp_path: Path, text: str) -> list[tuple[str, Any, str | None]]:
    path = tmp_path / "flow.yaml"
    path.write_text(text)
    wf = Workflow.from_yaml(path)
    wf.register_tool(echo)
    wf.compile()
    return [(s.id, s.output, s.error) for s in (await wf.run({})).steps]


async def test_as_index_is_the_item(tmp_path: Path) -> None:
    assert await _outputs(tmp_path, FLOW % ("index", '["${index}", "${index.k}"]')) == [
        ("m", [[{"k": "a"}, "a"], [{"k": "b"}, "b"]], None),
        ("m[0]", [{"k": "a"}, "a"], None), ("m[1]", [{"k": "b"}, "b"], None)]


async def test_an_llm_body_reads_the_item_as_index(tmp_path: Path) -> None:
    text = (FLOW % ("index", '""')).replace(
        '{kind: tool, tool: echo, args: {x: ""}}', '{kind: llm, prompt: "{{ index.k }}"}')
    assert [error for _, _, error in await _outputs(tmp_path, text)] == [None, None, None]


async def test_another_name_is_the_item_and_index_the_position(tmp_path: Path) -> None:
    assert await _outputs(tmp_path, FLOW % ("idx", '["${idx.k}", "${index}"]')) == [
        ("m", [["a", 0], ["b", 1]], None), ("m[0]", ["a", 0], None), ("m[1]", ["b", 1], None)]
