"""The Python SDK: building, sub-workflows, workflows as tools, custom executors/backends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator import LLMRequest, LLMResponse, Result, Task, Workflow, tool
from orchestrator.errors import ConfigError, SpecError, StepDefinitionError, ValidationFailed

pytestmark = pytest.mark.anyio


@tool
def shout(text: str, times: int = 1) -> str:
    """Upper-case a text."""
    return text.upper() * times


async def test_tools_validate_arguments_from_the_signature() -> None:
    wf = Workflow("t")
    wf.register_tool(shout)
    wf.tool("a", "shout", text="hi", times=2)
    wf.tool("b", "shout", text="hi", times="${steps.a.output}")  # "HIHI": known at run time
    result = await wf.run()
    by_id = {s.id: s for s in result.steps}
    assert by_id["a"].output == "HIHI"
    assert by_id["b"].status == "failed"
    assert "times" in (by_id["b"].error or "") and "valid integer" in (by_id["b"].error or "")


async def test_literal_tool_arguments_are_checked_before_the_run() -> None:
    wf = Workflow("t")
    wf.register_tool(shout)
    wf.tool("a", "shout", text="hi", times="many", loud=True)
    wf.tool("b", "shout", times=2)
    with pytest.raises(ValidationFailed) as info:
        await wf.run()
    messages = sorted(p.message for p in info.value.problems)
    assert messages == [  # each led by its step and field: there is no line to give
        "tool step 'a': args.loud: tool 'shout' has no argument 'loud'",
        "tool step 'a': args.times: tool 'shout' argument times: Input should be a valid "
        "integer, unable to parse string as an integer (got 'many')",
        "tool step 'b': args: tool 'shout' needs argument 'text'",
    ]


async def test_unknown_tool_is_a_validation_error_with_the_known_ones() -> None:
    wf = Workflow("t")
    wf.tool("a", "nope")
    with pytest.raises(ValidationFailed, match="unknown tool 'nope'") as info:
        await wf.run()
    assert "calc" in info.value.problems[0].hint


async def test_a_workflow_step_runs_a_child_workflow(tmp_path: Path) -> None:
    (tmp_path / "child.yaml").write_text(
        "name: child\ninputs: {n: {type: integer}}\nsteps:\n"
        "  - {id: sq, kind: tool, tool: calc, args: {expression: '${inputs.n} ** 2'}}\n"
        "outputs: {square: '${steps.sq.output}'}\n")
    (tmp_path / "parent.yaml").write_text(
        "name: parent\nsteps:\n"
        "  - {id: call, kind: workflow, workflow: child.yaml, inputs: {n: 7}}\n"
        "  - {id: plus, kind: tool, tool: calc, args: {expression: '${steps.call.output.square} + 1'}}\n")
    events: list[Any] = []

    async def rec(batch: Any) -> None:
        events.extend(batch)

    result = await Workflow.from_yaml(tmp_path / "parent.yaml").run(hooks=[rec])
    assert result.ok, result.error
    assert result.output == 50
    child_start = next(e for e in events if e.kind == "run_started" and e.workflow == "child")
    assert child_start.parent_run_id == result.run_id and child_start.parent_step_id == "call"


async def test_a_workflow_as_a_tool_of_another() -> None:
    inner = Workflow("double", inputs={"x": "integer"})
    inner.tool("d", "calc", expression="${inputs.x} * 2")
    outer = Workflow("outer")
    outer.register_tool(inner.as_tool())
    outer.tool("use", "double", x=21)
    result = await outer.run()
    assert result.ok and result.output == 42
    spec = inner.as_tool()
    assert spec.json_schema()["properties"]["x"]["type"] == "integer"


async def test_sdk_sub_workflow_object() -> None:
    inner = Workflow("inner", inputs={"x": "integer"})
    inner.tool("d", "calc", expression="${inputs.x} + 1")
    outer = Workflow("outer")
    outer.call("c", inner, x=1)
    assert (await outer.run()).output == 2


async def test_custom_executor_and_backend() -> None:
    class Upper:
        async def execute(self, task: Task, ctx: Any) -> Result:
            return Result(output=str(task.inputs["args"]["text"]).upper())

        def estimate_s(self, step: Any, model: Any) -> float:
            return 0.0

    class Echo:
        default_concurrency = 2

        def __init__(self, config: Any) -> None:
            self.config = config

        async def complete(self, request: LLMRequest) -> LLMResponse:
            return LLMResponse(text="echo: " + request.messages[-1]["content"], prompt_tokens=1,
                               completion_tokens=2)

        async def stream(self, request: LLMRequest) -> Any:
            raise NotImplementedError

        async def aclose(self) -> None:
            pass

    wf = Workflow("c", models={"default": {"backend": "echo"}})
    wf.register_executor("tool", Upper())
    wf.register_backend("echo", Echo)
    wf.tool("up", "calc", text="abc")
    wf.llm("talk", prompt="hello {{ steps.up.output }}")
    result = await wf.run()
    assert result.output == "echo: hello ABC"
    assert result.usage.completion_tokens == 2


async def test_inputs_are_checked_and_defaults_applied() -> None:
    wf = Workflow("i", inputs={"n": {"type": "integer", "default": 4}, "s": "string"})
    wf.tool("a", "calc", expression="${inputs.n} + 1")
    with pytest.raises(SpecError, match="missing input 's'"):
        await wf.run({})
    with pytest.raises(SpecError, match="unknown input 'zz'"):
        await wf.run({"s": "x", "zz": 1})
    assert (await wf.run({"s": "x"})).output == 5


def test_run_sync() -> None:
    wf = Workflow("s")
    wf.tool("a", "calc", expression="1 + 1")
    assert wf.run_sync().output == 2


async def test_run_sync_where_a_loop_runs_already() -> None:
    """A Jupyter cell runs inside an event loop: run_sync works there too (anyio.run
    said 'Already running asyncio in this thread')."""
    wf = Workflow("s")
    wf.tool("a", "calc", expression="2 * 3")
    assert wf.run_sync().output == 6


async def test_the_compiled_graph_is_reused_until_something_it_was_built_from_changes() -> None:
    wf = Workflow("cache")
    wf.register_tool(shout)
    wf.tool("a", "shout", text="hi")
    graph = wf.compile()
    assert wf.compile() is graph
    assert (await wf.run()).output == "HI"
    assert wf.compile() is graph  # running does not change what it was built from

    wf.spec.steps[0].args["times"] = 3  # edited in place
    assert (await wf.run()).output == "HIHIHI"
    edited = wf.compile()
    assert edited is not graph

    wf.tool("b", "shout", text="${steps.a.output}")  # a step added
    assert (await wf.run()).output == "HIHIHI"
    added = wf.compile()
    assert added is not edited and set(added.nodes) == {"a", "b"}

    wf.register_tool(lambda text: text.lower(), "whisper")  # a name the spec may now use
    wf.spec.steps[1].tool = "whisper"
    assert (await wf.run()).output == "hihihi"
    assert wf.compile() is not added


async def test_a_step_made_invalid_after_a_compile_is_reported_again() -> None:
    wf = Workflow("cache")
    wf.register_tool(shout)
    wf.tool("a", "shout", text="hi")
    wf.compile()
    wf.spec.steps[0].tool = "nope"
    with pytest.raises(ValidationFailed, match="nope"):
        wf.compile()


async def test_a_tool_removed_after_a_compile_is_reported_again() -> None:
    wf = Workflow("cache")
    wf.register_tool(shout)
    wf.tool("a", "shout", text="hi")
    wf.compile()
    del wf.registry.tools["shout"]
    with pytest.raises(ValidationFailed, match="shout"):
        wf.compile()


FANOUT_YAML = """\
name: fanout
inputs:
  question: {type: string, default: "How many legs do 2 spiders have?"}
models:
  default:
    backend: simulated
    options:
      time_scale: 0
      output_tokens: text
      responses:
        - match: Solve
          sequence: ["The answer is 16.", "The answer is 16.", "The answer is 12."]
        - match: Rate
          sequence: ["8/10", "3", "9 out of 10"]
        - {match: Think, output: "a thought"}
steps:
  - id: solve
    kind: sample
    prompt: "Solve: {{ inputs.question }}"
    n: 3
    max_tokens: 32
  - id: answer
    kind: join
    of: solve
    reducer: vote
    extract: 'answer is (\\d+)'
    normalize: [strip, number]
  - id: threads
    kind: spawn
    messages: [legs, spiders]
    prompt: "Think about {{ message }}"
    max_depth: 1
  - id: thoughts
    kind: join
    of: threads
  - id: best
    kind: join
    of: solve
    reducer: best_of_n
    scorer: {llm: default, prompt: "Rate {{ candidate }}"}
outputs:
  answer: ${steps.answer.output}
  thoughts: ${steps.thoughts.output}
"""


def _fanout_sdk() -> Workflow:
    wf = Workflow("fanout", inputs={"question": {
        "type": "string", "default": "How many legs do 2 spiders have?"}}, models={
        "default": {"backend": "simulated", "options": {
            "time_scale": 0, "output_tokens": "text", "responses": [
                {"match": "Solve", "sequence": ["The answer is 16.", "The answer is 16.",
                                                "The answer is 12."]},
                {"match": "Rate", "sequence": ["8/10", "3", "9 out of 10"]},
                {"match": "Think", "output": "a thought"}]}}})
    wf.sample("solve", prompt="Solve: {{ inputs.question }}", n=3, max_tokens=32)
    wf.join("answer", of="solve", reducer="vote", extract=r"answer is (\d+)",
            normalize=["strip", "number"])
    wf.spawn("threads", ["legs", "spiders"], prompt="Think about {{ message }}", max_depth=1)
    wf.join("thoughts", of="threads")
    wf.join("best", of="solve", reducer="best_of_n",
            scorer={"llm": "default", "prompt": "Rate {{ candidate }}"})
    return wf.output(answer="${steps.answer.output}", thoughts="${steps.thoughts.output}")


async def test_sdk_fanout_builders_equal_the_yaml_workflow_and_run() -> None:
    from orchestrator.spec.loader import spec_to_data

    sdk, from_yaml = _fanout_sdk(), Workflow.from_yaml_text(FANOUT_YAML)
    assert spec_to_data(sdk.spec) == spec_to_data(from_yaml.spec)
    assert sdk.spec == from_yaml.spec
    a, b = sdk.compile(), from_yaml.compile()
    assert [(n.id, n.kind, n.deps, n.pool) for n in a.nodes.values()] == \
        [(n.id, n.kind, n.deps, n.pool) for n in b.nodes.values()]
    assert sorted(a.dag.edges) == sorted(b.dag.edges)
    result, expected = await sdk.run(), await from_yaml.run()
    assert result.ok, result.error
    assert result.output == expected.output == {"answer": 16,
                                                "thoughts": ["a thought", "a thought"]}
    assert {s.id for s in result.steps} >= {"solve", "threads[0]", "threads[1]", "best"}


def test_sdk_fanout_builders_check_their_fields() -> None:
    from orchestrator import JoinStep, Scorer, SpawnStep

    wf = Workflow("w").spawn("sp", messages_prompt="List three ideas.", max_children=2)
    assert isinstance(wf.spec.steps[0], SpawnStep) and wf.spec.steps[0].messages is None
    wf.join("j", of="sp", reducer="first_finish", check=Scorer(tool="calc"))
    assert isinstance(wf.spec.steps[1], JoinStep) and wf.spec.steps[1].check is not None
    with pytest.raises(ValueError, match="reducer best_of_n needs a `scorer`"):
        wf.join("k", of="sp", reducer="best_of_n")
    with pytest.raises(ValueError, match="exactly one of `messages` and `messages_prompt`"):
        wf.spawn("none")


WAITING = """\
name: waiting
defaults: {tool_concurrency: 1}
steps:
  - {id: a, kind: tool, tool: calc, args: {expression: "1"}}
  - {id: b, kind: tool, tool: calc, args: {expression: "2"}}
  - {id: c, kind: tool, tool: calc, args: {expression: "${steps.a.output} + 1"}, after: [b]}
"""


async def test_result_steps_carry_declared_deps_and_the_waits_a_stored_run_has() -> None:
    wf = Workflow.from_yaml_text(WAITING)
    events: list[Any] = []

    async def rec(batch: Any) -> None:
        events.extend(batch)

    bare, hooked = await wf.run(), await wf.run(hooks=[rec])

    def shown(steps: list[Any]) -> dict[str, tuple[list[str], str | None, bool]]:
        return {s.id: (s.deps, s.pool, s.scheduled_at is not None) for s in steps}

    # one tool slot: b waits for a to free it, a and c start at once (no pool, no
    # scheduled_at), with or without a hook: the scheduler says so only for a step that waits
    assert shown(bare.steps) == shown(hooked.steps) == {
        "a": ([], None, False), "b": ([], "tool", True), "c": (["a", "b"], None, False)}
    assert [e.step_id for e in events if e.kind == "step_scheduled"] == ["b"]


def test_breaking_out_of_stream_cancels_the_run_cleanly() -> None:
    # The loop closes an abandoned `async for` generator later, in a task of its own: the
    # run must not live in a task group held across the generator's `yield`.
    import asyncio
    import gc
    import warnings

    wf = Workflow("s", models={"default": {"backend": "simulated",
                                           "options": {"time_scale": 0.05}}})
    wf.sample("s", prompt="Q", n=4, max_tokens=30, requests="separate")
    wf.join("j", of="s", reducer="vote")
    problems: list[Any] = []

    async def main() -> tuple[int, list[asyncio.Task[Any]]]:
        asyncio.get_running_loop().set_exception_handler(lambda _, c: problems.append(c))
        seen = 0
        async for _ in wf.stream():
            seen += 1
            if seen == 3:
                break
        await asyncio.sleep(0.05)
        return seen, [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        seen, pending = asyncio.run(main())
        gc.collect()
    assert seen == 3
    assert pending == []
    assert problems == []


async def test_stream_raises_what_stops_the_run() -> None:
    wf = Workflow("s")
    wf.llm("a", prompt="x")
    wf.output(x="${steps.zz.output}")
    with pytest.raises(ValidationFailed, match="unknown step 'zz'"):
        async for _ in wf.stream():
            pass


def test_branch_cases_that_are_not_pairs_are_named() -> None:
    with pytest.raises(StepDefinitionError, match="branch step 'b': a case must be a "
                                                  "\\(when, then\\) pair, "
                                        "got 'x'"):
        Workflow("b").branch("b", cases=["x"])  # type: ignore[list-item]
    with pytest.raises(StepDefinitionError, match="`cases` must be a list of \\(when, then\\) "
                                                  "pairs, "
                                        "got str 'xy'"):
        Workflow("b").branch("b", cases="xy")  # type: ignore[arg-type]


@pytest.mark.parametrize(("build", "message"), [
    (lambda wf: wf.llm("a", prompt="p", max_tokens="lots", colour=1),
     "llm step 'a': max_tokens: Input should be a valid integer, unable to parse string as "
     "an integer (got 'lots'); unknown field `colour`"),
    (lambda wf: wf.sample("s", prompt="p", n=-1),
     "sample step 's': n: Input should be greater than or equal to 1 (got -1)"),
    (lambda wf: wf.join("j", of="s", reducer="best_of_n", scorer={"tool": 3}),
     "join step 'j': scorer.tool: Input should be a valid string (got 3)"),
    (lambda wf: wf.map("m", over=[1], step={"kind": "llm"}),
     "map step 'm': step: a map body of kind 'llm' needs `prompt` "
     "(got {'kind': 'llm'})"),
    (lambda wf: wf.tool("t", "calc", **{"x" * 100: 1}) and wf.llm("b" * 100, prompt=3),
     "llm step 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb'... "
     "(100 characters): prompt: Input should be a valid string (got 3)"),
])
def test_builders_name_the_step_and_field_they_refuse(build: Any, message: str) -> None:
    wf = Workflow("b")
    with pytest.raises(StepDefinitionError) as info:
        build(wf)
    assert str(info.value) == message
    assert isinstance(info.value, ValueError)  # as pydantic's error was


def test_a_map_builder_keeps_its_item_name() -> None:
    wf = Workflow("b").map("m", over=["x"], step={"kind": "llm", "prompt": "{{ it }}"},
                           item_var="it")
    assert wf.spec.steps[0].item_var == "it"


_OUTPUT_TYPES = ("must be a reference or template such as '${steps.ID.output}', a list of "
                 "them, or a dict of output fields (from, type, description, schema), not ")


@pytest.mark.parametrize(("build", "message"), [
    (lambda wf: wf.output(x=5), f"output 'x': {_OUTPUT_TYPES}int 5"),
    (lambda wf: wf.output(x=None), f"output 'x': {_OUTPUT_TYPES}NoneType None"),
    # the builders return the workflow: passing one is a slip, not an output
    (lambda wf: wf.output(x=wf.llm("a", prompt="p")),
     "output 'x': got the Workflow itself (its step methods return it, for chaining); "
     "name a step's output instead, such as '${steps.ID.output}'"),
    (lambda wf: wf.output(x={"from": "${steps.a.output}", "type": "text"}),
     "output 'x': type: Input should be 'string', 'integer', 'number', 'boolean', 'array', "
     "'object' or 'any' (got 'text')"),
    (lambda wf: wf.add(5), "add: a step must be a step model (LLMStep, ToolStep, ...) or a "
                           "dict of its fields, not int 5"),
    (lambda wf: wf.add({"id": "a", "kind": "llm"}), "llm step 'a': prompt: Field required"),
    (lambda wf: wf.add({"id": "a", "kind": "lm"}),
     "add: step 'a': `kind` must be one of llm, tool, map, branch, workflow, plan, spawn, "
     "sample, join, not 'lm'"),
    (lambda wf: Workflow(5), "workflow 5: name: Input should be a valid string (got 5)"),
    (lambda wf: Workflow("w", inputs={"x": 5}),
     "input 'x': give a type name ('string', 'integer', ...), a dict of input fields or an "
     "InputSpec, not int 5"),
    (lambda wf: Workflow("w", inputs={"x": "text"}),
     "input 'x': type: Input should be 'string', 'integer', 'number', 'boolean', 'array', "
     "'object' or 'any' (got 'text')"),
    (lambda wf: Workflow("w", models={"m": {"backend": 5}}),
     "workflow 'w': models.m.backend: Input should be a valid string (got 5)"),
])
def test_builders_refuse_values_of_the_wrong_type(build: Any, message: str) -> None:
    wf = Workflow("b")
    with pytest.raises(StepDefinitionError) as info:
        build(wf)
    assert str(info.value).startswith(message), str(info.value)
    assert wf.spec.outputs == {} and len(wf.spec.steps) <= 1


def test_outputs_may_be_references_lists_of_them_or_output_fields() -> None:
    wf = Workflow("b").add({"id": "a", "kind": "tool", "tool": "calc",
                            "args": {"expression": "2*3"}})
    wf.output(one="${steps.a.output}", both=["${steps.a.output}", "${steps.a.output}"],
              typed={"from": "${steps.a.output}", "type": "integer"})
    assert wf.run_sync().output == {"one": 6, "both": [6, 6], "typed": 6}


class _NotAnInstance:
    async def execute(self, task: Any, ctx: Any) -> Any:
        raise AssertionError("never called")


@pytest.mark.parametrize(("build", "message"), [
    (lambda wf: wf.register_executor("tool", 5),
     "register_executor 'tool': the executor must be an object with an async "
     "execute(task, ctx) method, not int 5"),
    (lambda wf: wf.register_executor("tool", _NotAnInstance),
     "register_executor 'tool': the executor must be an object with an async "
     "execute(task, ctx) method, not type "),
    (lambda wf: wf.register_executor(None, _NotAnInstance()),
     "register_executor: the kind must be a non-empty string, not NoneType None"),
    (lambda wf: wf.register_backend("fake", 5),
     "register_backend 'fake': the factory must be callable (a backend class, or a function "
     "of a ModelConfig), not int 5"),
    (lambda wf: wf.as_tool(name=5), "as_tool: the name must be a non-empty string, not int 5"),
    (lambda wf: wf.register_tool(5), "a tool must be a callable or a ToolSpec, not int 5"),
])
def test_registrations_refuse_values_of_the_wrong_type(build: Any, message: str) -> None:
    wf = Workflow("b")
    with pytest.raises(ConfigError) as info:
        build(wf)
    assert str(info.value).startswith(message), str(info.value)
