"""What an ``llm`` step with an ``output_schema`` takes from a model's answer: a JSON value
a program can read back, and nothing less, each refusal said in a repair's words."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from executors.llm import LLMExecutor, SimulatedBackend, extract_json
from orchestrator.errors import OutputSchemaError
from orchestrator.runtime.contracts import LLMRequest, LLMResponse, Task
from orchestrator.spec.models import LLMStep, ModelConfig

pytestmark = pytest.mark.anyio

SCORE_SCHEMA = {
    "type": "object",
    "properties": {"score": {"type": "number", "minimum": 0, "maximum": 1}},
    "required": ["score"],
}


class Recording(SimulatedBackend):
    """The simulated engine, keeping every request it was given."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.requests: list[LLMRequest] = []

    async def complete(self, request: LLMRequest) -> LLMResponse:
        self.requests.append(request)
        return await super().complete(request)


def scripted(*answers: str) -> tuple[ModelConfig, Recording]:
    config = ModelConfig(backend="simulated", model="sim-1", options={
        "time_scale": 0, "responses": [{"match": ".", "sequence": list(answers)}]})
    return config, Recording(config)


async def run(step: LLMStep, config: ModelConfig, backend: Any, make_context: Any) -> Any:
    ctx = make_context({"default": backend}, {"default": config})
    task = Task(run_id="r", step_id=step.id, kind="llm", step=step, inputs={"prompt": "p"})
    return await LLMExecutor().execute(task, ctx)


@pytest.mark.parametrize(("text", "name"), [
    ("NaN", "NaN"),
    ('{"score": NaN}', "NaN"),
    ('{"score": Infinity}', "Infinity"),
    ('Here: {"score": -Infinity} done', "-Infinity"),
    ("```json\n[1, NaN]\n```", "NaN"),
    ('{"score": 1e999}', "the number 1e999"),
])
def test_a_number_json_has_not_is_no_json_value(text: str, name: str) -> None:
    with pytest.raises(ValueError, match=f"the answer's JSON holds {name}"):
        extract_json(text)


async def test_an_answer_holding_nan_is_repaired_not_taken(make_context: Any) -> None:
    """NaN passes a schema's bounds (every comparison with it is false), and the trace
    records it as null: the step gave one value and its record another."""
    config, backend = scripted('{"score": NaN}', '{"score": 0.5}')
    step = LLMStep(id="s", prompt="p", output_schema=SCORE_SCHEMA, schema_repairs=1)
    result = await run(step, config, backend, make_context)
    assert result.output == {"score": 0.5}
    assert result.meta["schema_repairs_used"] == 1
    assert backend.requests[1].messages[-1]["content"].startswith(
        "Your previous answer is not valid: the answer's JSON holds NaN, which JSON has no "
        "number for")


async def test_an_answer_holding_infinity_fails_naming_it(make_context: Any) -> None:
    config, backend = scripted('{"score": Infinity}')
    step = LLMStep(id="s", prompt="p", output_schema=SCORE_SCHEMA, schema_repairs=0)
    with pytest.raises(OutputSchemaError) as info:
        await run(step, config, backend, make_context)
    assert str(info.value).endswith("the answer's JSON holds Infinity, which JSON has no "
                                    "number for")
    assert info.value.raw_output == '{"score": Infinity}'



class StopsAtTheLimit(Recording):
    """Its answers stopped at max_tokens, as a real server's cut JSON does."""

    def _plan(self, request: Any) -> Any:
        return dataclasses.replace(super()._plan(request), finish_reason="length")


@pytest.mark.parametrize("text", [
    '{"summary": {"title": "x"}, "items": [1, 2',
    'Sure: {"a": {"b": 1}, "c": "a long te',
    '```json\n{"a": [{"b": 1}, {"b": 2}',
    '{"a": "a } and a \\" {", "b": [{"c": 1}',
])
def test_a_value_cut_off_is_no_json_value_whatever_it_holds(text: str) -> None:
    with pytest.raises(ValueError, match="holds no JSON value"):
        extract_json(text)


@pytest.mark.parametrize(("text", "value"), [
    ('Use [brackets] or {"ok": true}', {"ok": True}),
    ('{"a": 1 oops} then {"b": 2}', {"b": 2}),
    ('The result is {"a": {"b": "}"}} as asked.', {"a": {"b": "}"}}),
])
def test_a_value_after_closed_text_that_is_not_json_is_found(text: str, value: Any) -> None:
    assert extract_json(text) == value


async def test_an_answer_cut_at_the_token_limit_is_not_taken_for_a_member_of_it(
        make_context: Any) -> None:
    """The answer ran out of tokens inside its object; a member object of it decoded, and
    the step succeeded with that (the schema asked for any object)."""
    config, _ = scripted('{"summary": {"title": "x"}, "items": [1, 2')
    step = LLMStep(id="s", prompt="p", output_schema={"type": "object"}, max_tokens=12,
                   schema_repairs=0)
    with pytest.raises(OutputSchemaError) as info:
        await run(step, config, StopsAtTheLimit(config), make_context)
    assert str(info.value).endswith(
        "the answer holds no JSON value (it stopped at the token limit, max_tokens=12: it "
        "may have been cut off)")


@pytest.mark.parametrize(("text", "value"), [
    ('```python\nx = [1, 2]\nprint(x)\n```\nThe answer:\n```json\n{"a": 1}\n```', {"a": 1}),
    ("```\nsee below\n```\n```json\n[3]\n```", [3]),
    ('```json\n{"a": 1}\n```\n```json\n{"a": 2}\n```', {"a": 1}),
])
def test_the_fence_that_holds_json_is_the_answer(text: str, value: Any) -> None:
    """Only the first fence was read whole: code shown before the JSON gave a list of it
    ([1, 2]), which a schema may well take."""
    assert extract_json(text) == value
