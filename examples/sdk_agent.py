"""Build and run a workflow from Python: a custom tool, an LLM step, streaming events.

    python examples/sdk_agent.py            # bundled local model
    python examples/sdk_agent.py simulated  # no model at all
"""

from __future__ import annotations

import sys

import anyio

from orchestrator import Workflow, tool


@tool
def word_count(text: str) -> int:
    """Count the words of a text."""
    return len(text.split())


def build() -> Workflow:
    wf = Workflow("sdk_agent", inputs={"topic": {"type": "string", "default": "volcanoes"}})
    wf.register_tool(word_count)
    wf.llm("draft", prompt="Write one sentence about {{ inputs.topic }}.", max_tokens=40)
    wf.tool("words", "word_count", text="${steps.draft.output}")
    wf.llm("title", prompt="Give a three-word title for: {{ steps.draft.output }}", max_tokens=12)
    wf.output(sentence="${steps.draft.output}", words="${steps.words.output}",
              title="${steps.title.output}")
    return wf


async def main(backend: str | None) -> int:
    wf = build()
    async for event in wf.stream(backend=backend):
        if event.kind in ("step_started", "step_succeeded", "step_failed"):
            print(f"{event.kind:15} {event.step_id}")
        if event.kind == "run_finished":
            print(event.status, event.output)
            return 0 if event.status == "succeeded" else 1
    return 1


if __name__ == "__main__":
    sys.exit(anyio.run(main, sys.argv[1] if len(sys.argv) > 1 else None))
