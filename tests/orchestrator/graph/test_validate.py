"""`validate` reports every problem at once, each located, with a hint."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator import Workflow
from orchestrator.errors import ValidationFailed
from orchestrator.graph.validate import validate_file, validate_text
from orchestrator.spec.loader import load_yaml

BAD = """\
name: bad
inputs:
  q: {type: string}
steps:
  - id: a
    kind: llm
    prompt: "Q: {{ inputs.qq }}"
    output_schema:
      type: object
      properties: {answer: {type: string}}
  - id: b
    kind: tool
    tool: nope
    args: {x: "${steps.a.output.missing}"}
    colour: red
  - id: a
    kind: llm
    prompt: "x"
  - id: c
    kind: llm
    prompt: "${steps.d.output}"
  - id: d
    kind: llm
    prompt: "${steps.c.output}"
  - id: e
    kind: frobnicate
  - id: f
    kind: llm
    prompt: |
      fine line
      {% if inputs.q %}unclosed
  - id: g
    kind: llm
    prompt: "${steps.ghost.output} ${steps.g.output}"
  - id: h
    kind: llm
    model: gpt9
    prompt: x
  - id: w
    kind: workflow
    workflow: missing.yaml
"""


def test_every_problem_is_reported_with_its_line() -> None:
    problems = validate_text(BAD, "bad.yaml")
    messages = "\n".join(f"{p.line}: {p.message}" for p in problems)
    expect = [
        (7, "unknown input 'qq'"),
        (13, "unknown tool 'nope'"),
        (14, "no field 'missing'"),
        (15, "unknown field `colour`"),
        (16, "duplicate step id 'a'"),
        (19, "cycle: c -> d -> c"),
        (21, "forward reference"),
        (25, "unknown step kind 'frobnicate'"),
        (31, "template syntax error"),
        (34, "unknown step 'ghost'"),
        (34, "refers to itself"),
        # no `models:` section: only `default` is known (gpt9 ran on the bundled model)
        (37, "unknown model 'gpt9'"),
        (41, "sub-workflow 'missing.yaml' not found"),
    ]
    for line, needle in expect:
        assert any(p.line == line and needle in p.message for p in problems), (
            f"missing line {line}: {needle}\n{messages}")
    assert all(p.hint for p in problems), messages
    assert [p.line for p in problems] == sorted(p.line for p in problems)


def test_a_model_config_file_is_named_as_such_not_listed_field_by_field() -> None:
    problems = validate_text("# scripted outputs\nbackend: simulated\noptions: {}\n", "m.yaml")
    assert [(p.line, "model config" in p.message, "--model" in p.hint)
            for p in problems] == [(2, True, True)]


def test_unknown_model_only_when_models_are_declared() -> None:
    text = "name: m\nmodels: {fast: {backend: simulated}}\nsteps:\n  - id: a\n    kind: llm\n" \
           "    model: slow\n    prompt: x\n"
    problems = validate_text(text, "m.yaml")
    assert [(p.line, "unknown model 'slow'" in p.message) for p in problems] == [(6, True)]


def test_tools_section_must_import(tmp_path: Path) -> None:
    (tmp_path / "mytools.py").write_text("def shout(text: str) -> str:\n    return text.upper()\n")
    wf = tmp_path / "w.yaml"
    wf.write_text("name: t\ntools: {shout: 'mytools:shout', gone: 'nomod:fn'}\nsteps:\n"
                  "  - id: a\n    kind: tool\n    tool: shout\n    args: {text: hi}\n")
    problems = validate_file(wf)
    assert len(problems) == 1 and "nomod" in problems[0].message and problems[0].line == 2


@pytest.mark.parametrize("name", sorted(str(p.relative_to("examples"))
                                        for p in Path("examples").rglob("*.yaml")))
def test_examples_validate(name: str) -> None:
    """Every workflow of examples/ validates; a model config there (``*.sim.yaml``, a
    ``--model`` file of examples/models/) is named as one, at its ``backend:``."""
    path = Path("examples") / name
    problems = validate_file(path)
    if "steps:" in path.read_text(encoding="utf-8"):
        assert problems == []
    else:
        (problem,) = problems
        assert problem.message.startswith("this file is a model config")
        assert path.read_text(encoding="utf-8").splitlines()[problem.line - 1].startswith(
            "backend:")


FANOUT_BAD = """\
name: fanout
models:
  fast: {backend: simulated}
steps:
  - id: s
    kind: sample
    prompt: p
    n: 3
  - id: best
    kind: join
    of: s
    reducer: best_of_n
    scorer:
      tool: no_such_scorer
  - id: judged
    kind: join
    of: s
    reducer: best_of_n
    scorer:
      llm: gpt9
  - id: checked
    kind: join
    of: s
    reducer: first_finish
    first: 4
    check:
      tool: no_such_check
  - id: sp
    kind: spawn
    messages: [a, b]
    workflow: missing_child.yaml
  - id: ad
    kind: join
    of: sp
    reducer: adaptive_vote
    min_n: 9
    max_n: 4
  - id: m
    kind: map
    over: [1, 2]
    step: {kind: llm, prompt: "{{ item }}", model: fast}
  - id: mf
    kind: join
    of: m
    reducer: first_finish
    first: 2
"""


def test_fanout_and_join_problems_are_located_with_the_offending_value() -> None:
    problems = validate_text(FANOUT_BAD, "fanout.yaml")
    messages = "\n".join(f"{p.line}: {p.message}" for p in problems)
    expect = [
        (14, "unknown tool 'no_such_scorer'"),
        (20, "unknown model 'gpt9'"),
        # a best_of_n join beside a first_finish one would score what the other left
        (24, "joins 'best' and 'checked' both join fan-out 's', and 'checked' (first_finish)"),
        (25, "first 4 is more than the 3 children 's' starts"),
        (27, "unknown tool 'no_such_check'"),
        (31, "sub-workflow 'missing_child.yaml' not found"),
        (36, "min_n 9 is greater than max_n 4"),
    ]
    for line, needle in expect:
        assert any(p.line == line and needle in p.message for p in problems), (
            f"missing line {line}: {needle}\n{messages}")
    assert len(problems) == len(expect), messages  # `first: 2` over 2 map items is fine
    assert all(p.hint for p in problems), messages


def test_first_finish_over_no_children_does_not_suggest_first_0() -> None:
    text = ("name: f\nsteps:\n  - {id: m, kind: map, over: [], step: {kind: llm, prompt: x}}\n"
            "  - {id: j, kind: join, of: m, reducer: first_finish}\n")
    [problem] = validate_text(text, "f.yaml")
    assert problem.message == "join 'j': first 1 is more than the 0 children 'm' starts"
    assert problem.hint == "give 'm' something to fan out over"


def test_first_over_the_children_of_a_spawn_counts_its_messages() -> None:
    text = ("name: f\nsteps:\n  - {id: sp, kind: spawn, messages: [a, b, c], max_children: 2}\n"
            "  - {id: j, kind: join, of: sp, reducer: first_finish, first: 3}\n"
            "  - {id: dyn, kind: spawn, messages: '${steps.sp.output}'}\n"
            "  - {id: k, kind: join, of: dyn, reducer: first_finish, first: 50}\n")
    problems = validate_text(text, "f.yaml")
    assert [(p.line, p.message) for p in problems] == [
        (4, "join 'j': first 3 is more than the 2 children 'sp' starts")]


def test_an_invalid_fanout_does_not_also_make_its_join_an_error() -> None:
    text = ("name: f\nsteps:\n  - id: s\n    kind: sample\n    prompt: p\n    n: 0\n"
            "  - id: j\n    kind: join\n    of: s\n"
            "  - id: l\n    kind: llm\n    prompt: p\n"
            "  - id: k\n    kind: join\n    of: l\n")
    problems = validate_text(text, "f.yaml")
    messages = [(p.line, p.message) for p in problems]
    assert messages[0][0] == 6 and "n" in messages[0][1]  # the fan-out's own error
    assert not any("'s'" in m and "not a fan-out" in m for _, m in messages), messages
    # a join naming a step that is valid but no fan-out is still an error
    assert (15, "join 'k' names 'l', an llm step, not a fan-out") in messages
    assert len(messages) == 2, messages


@pytest.mark.parametrize("steps", [
    "steps:\n  a: {kind: llm, prompt: x}\n",  # a mapping of id -> step, as some tools write
    "steps: llm\n",
    "steps:\n",  # null
])
def test_steps_that_are_not_a_list_fail_validate_as_they_fail_run(steps: str) -> None:
    text = "name: s\n" + steps + "outputs: {answer: '${steps.a.output}'}\n"
    problems = validate_text(text, "s.yaml")
    # no noise about `a` being unknown; a value that is not a mapping is echoed
    assert [(p.line, p.message.split(" (got ")[0]) for p in problems] == [
        (2, "steps: Input should be a valid list")]
    assert "- id: NAME" in problems[0].hint
    with pytest.raises(ValidationFailed) as run_error:  # what `ponder run` loads it with
        load_yaml("s.yaml", text=text)
    assert [(p.line, p.message, p.hint) for p in run_error.value.problems] == [
        (p.line, p.message, p.hint) for p in problems]


@pytest.mark.parametrize("text", ["name: e\n", "name: e\nsteps: []\n"])
def test_a_workflow_without_steps_is_a_problem(text: str) -> None:
    problems = validate_text(text, "e.yaml")
    assert [p.message for p in problems] == ["the workflow has no steps"]
    assert "`steps:`" in problems[0].hint


NAMES = """\
name: names
inputs: {q: {default: hi}}
steps:
  - id: a
    kind: llm
    prompt: "{{ question }}"
  - id: m
    kind: map
    over: [1, 2]
    step:
      kind: llm
      prompt: "{{ item }} {{ index }} {{ itm }}"
  - id: b
    kind: branch
    cases:
      - {when: "inputs.q == 'hi' and ready", then: [c]}
  - id: c
    kind: llm
    prompt: >-
      {{ inputs.q }} {{ steps.m.output }} {% set n = 2 %}{{ n }}
      {% for x in range(n) %}{{ x }}{{ loop.index }}{% endfor %}{{ namespace(v=1).v }}
"""


def test_a_name_a_template_is_not_given_is_a_problem_as_it_fails_the_run() -> None:
    # validate said ok; the run failed each step with "template: 'question' is undefined"
    problems = validate_text(NAMES, "names.yaml")
    assert [(p.line, p.message) for p in problems] == [
        (6, "unknown name 'question' in `question`"),
        (12, "unknown name 'itm' in `itm`"),
        (16, "unknown name 'ready' in `ready`")]
    with pytest.raises(ValidationFailed):
        Workflow.from_yaml_text(NAMES).compile()


def test_retry_delays_are_bounded() -> None:
    """A delay of 1e300 s would park the run for good, and multiplier**attempt overflows."""
    text = ("name: r\nsteps:\n  - id: a\n    kind: tool\n    tool: calc\n"
            "    args: {expression: '1'}\n"
            "    retry: {initial_backoff_s: 1e300, max_backoff_s: 1e300, multiplier: 1e300}\n")
    problems = validate_text(text, "r.yaml")
    assert sorted(p.message.split(":")[0] for p in problems) == [
        "steps.0.retry.initial_backoff_s", "steps.0.retry.max_backoff_s",
        "steps.0.retry.multiplier"]
    assert all(p.line == 7 for p in problems)


@pytest.mark.parametrize(("field", "value", "got"), [
    ("over", "5", "got an integer 5"), ("over", "abc", "got a string 'abc'"),
    ("over", "{a: 1}", 'got an object {"a": 1}'), ("over", "'x ${inputs.q}'", "got a string"),
    ("messages", "hello", "got a string 'hello'"),
])
def test_a_fan_out_over_a_literal_that_is_not_a_list(field: str, value: str, got: str) -> None:
    # the run failed the step: "`over` must be a list, got int"
    if field == "over":
        step = f"{{id: s, kind: map, over: {value}, step: {{kind: llm, prompt: p}}}}"
    else:
        step = f"{{id: s, kind: spawn, messages: {value}}}"
    text = f"name: x\ninputs: {{q: {{type: string}}}}\nsteps:\n  - {step}\n"
    (problem,) = validate_text(text, "w.yaml")
    assert problem.line == 4 and f"`{field}` must be a list" in problem.message
    assert got in problem.message


def test_a_list_or_one_reference_is_a_fan_out_source() -> None:
    text = ("name: x\ninputs: {q: {type: array}}\nsteps:\n"
            "  - {id: s, kind: map, over: ' ${inputs.q} ', step: {kind: llm, prompt: p}}\n"
            "  - {id: t, kind: spawn, messages: [a, b]}\n")
    assert validate_text(text, "w.yaml") == []


@pytest.mark.parametrize(("field", "ref", "declared"), [
    ("over", "${inputs.n}", "integer"), ("over", "${inputs.q}", "string"),
    ("over", "${steps.a.output}", "object"), ("over", "${steps.a.output.total}", "number"),
    ("over", "${steps.a.output.rows[0]}", "string"), ("messages", "${inputs.n}", "integer"),
])
def test_a_fan_out_over_a_reference_declared_no_list(field: str, ref: str,
                                                     declared: str) -> None:
    # it failed the step when it ran: "`over` must be a list, got an integer 3"
    step = (f"{{id: s, kind: map, over: '{ref}', step: {{kind: llm, prompt: p}}}}"
            if field == "over" else f"{{id: s, kind: spawn, messages: '{ref}'}}")
    text = ("name: x\ninputs: {n: {type: integer, default: 3}, q: {type: string}}\n"
            "steps:\n  - id: a\n    kind: llm\n    prompt: p\n    output_schema:\n"
            "      type: object\n      properties:\n        total: {type: number}\n"
            "        rows: {type: array, items: {type: string}}\n"
            f"  - {step}\n")
    (problem,) = validate_text(text, "w.yaml")
    assert problem.line == 12
    assert problem.message == (f"{'map' if field == 'over' else 'spawn'} 's': `{field}` must "
                               f"be a list, and {ref} is declared {declared}")


@pytest.mark.parametrize("ref", ["${inputs.l}", "${inputs.any}", "${inputs.l[0]}",
                                 "${steps.a.output.rows}", "${steps.a.output.free}",
                                 "${steps.b.output}"])
def test_a_fan_out_over_a_reference_that_may_be_a_list(ref: str) -> None:
    text = ("name: x\ninputs: {l: {type: array}, any: {type: any}}\nsteps:\n"
            "  - {id: a, kind: llm, prompt: p, output_schema: {type: object, properties: "
            "{rows: {type: array}, free: {}}}}\n"
            "  - {id: b, kind: llm, prompt: p}\n"
            f"  - {{id: s, kind: map, over: '{ref}', step: {{kind: llm, prompt: p}}}}\n")
    assert validate_text(text, "w.yaml") == []


def test_a_sub_workflow_path_no_file_can_have(tmp_path: Path) -> None:
    # a NUL in the path was an internal ValueError
    wf = tmp_path / "w.yaml"
    wf.write_text('name: x\nsteps:\n  - {id: s, kind: workflow, workflow: "a\\0b"}\n')
    (problem,) = validate_file(wf)
    assert "not found" in problem.message and problem.line == 3


TOOL_ARGS = """\
name: args
inputs:
  n: {type: string}
tools:
  mine: "mytools:mine"
steps:
  - id: typo
    kind: tool
    tool: calc
    args: {expr: "1 + 1"}
  - id: wrong_type
    kind: tool
    tool: calc
    args: {expression: 5}
  - id: from_ref
    kind: tool
    tool: calc
    args: {expression: "${inputs.n}"}
  - id: each
    kind: map
    over: ["1", "2"]
    step: {kind: tool, tool: sleep, args: {second: 1}}
  - id: own
    kind: tool
    tool: mine
    args: {anything: 1}
"""


def test_a_known_tools_arguments_are_checked(tmp_path: Path) -> None:
    (tmp_path / "mytools.py").write_text("def mine(x: int) -> int:\n    return x\n")
    (tmp_path / "wf.yaml").write_text(TOOL_ARGS)
    found = [(p.line, p.message) for p in validate_file(tmp_path / "wf.yaml")]
    assert found == [
        (10, "tool 'calc' needs argument 'expression'"),  # at `args:`
        (10, "tool 'calc' has no argument 'expr'"),  # at the argument
        (14, "tool 'calc' argument expression: Input should be a valid string (got 5)"),
        (22, "tool 'sleep' needs argument 'seconds'"),
        (22, "tool 'sleep' has no argument 'second'"),
    ]  # a reference is checked when it resolves; the workflow's own tool when imported


def test_a_workflows_own_tool_has_its_arguments_checked_before_its_run(tmp_path: Path) -> None:
    (tmp_path / "mytools.py").write_text("def mine(x: int) -> int:\n    return x\n")
    text = ("name: own\ntools: {mine: 'mytools:mine'}\nsteps:\n"
            "  - {id: a, kind: tool, tool: mine, args: {y: 1}}\n")
    (tmp_path / "wf.yaml").write_text(text)
    assert validate_file(tmp_path / "wf.yaml") == []  # not imported to validate
    with pytest.raises(ValidationFailed, match="tool 'mine' has no argument 'y'"):
        Workflow.from_yaml(tmp_path / "wf.yaml").run_sync()


@pytest.mark.parametrize(("args", "local"), [
    ('{expression: "{{ inputs.n }} + 1"}', "${inputs.NAME}"),
    ('{expression: "{{ item }} * 2"}', "${item}"),
])
def test_jinja_in_tool_arguments_is_a_problem(args: str, local: str) -> None:
    text = ("name: j\ninputs: {n: {type: string}}\nsteps:\n"
            f"  - {{id: m, kind: map, over: ['1'], step: {{kind: tool, tool: calc, args: {args}}}}}\n")
    problems = validate_text(text, "j.yaml")
    assert [p.message.split(" is passed")[1] for p in problems] == [
        " as this text: tool arguments and sub-workflow inputs are not Jinja2 templates"]
    assert local in problems[0].hint


def test_braces_that_read_nothing_known_stay_text() -> None:
    text = ("name: j\nsteps:\n"
            "  - {id: a, kind: tool, tool: extract, "
            "args: {text: '{{ not a ref }}', pattern: '[{][{]'}}\n")
    assert validate_text(text, "j.yaml") == []


def test_a_tool_executor_of_its_own_takes_any_arguments() -> None:
    class Echo:
        async def execute(self, task, ctx):  # type: ignore[no-untyped-def]
            from orchestrator.runtime.contracts import Result
            return Result(output=task.inputs["args"])

        def estimate_s(self, step, model):  # type: ignore[no-untyped-def]
            return 0.0

    wf = Workflow("own_executor")
    wf.tool("a", "calc", whatever=1)
    wf.register_executor("tool", Echo())
    result = wf.run_sync()
    assert result.ok, result.error
    assert result.output is None or result.steps[0].output == {"whatever": 1}


def test_an_output_schema_that_is_no_json_schema_is_located() -> None:
    text = """\
name: s
steps:
  - id: a
    kind: llm
    prompt: hi
    output_schema:
      type: objekt
  - id: m
    kind: map
    over: ["x"]
    step:
      kind: llm
      prompt: "{{ item }}"
      output_schema: {properties: {a: {$ref: "#/$defs/gone"}}}
  - id: ok
    kind: llm
    prompt: hi
    output_schema: {$defs: {n: {type: integer}}, properties: {a: {$ref: "#/$defs/n"}}}
"""
    found = [(p.line, p.message) for p in validate_text(text, "s.yaml")]
    assert found == [
        (7, "output_schema is not a valid JSON Schema: 'objekt' is not valid under any of "
            "the given schemas"),
        (14, "output_schema has a $ref that cannot be resolved: #/$defs/gone"),
    ]


MODELS = """\
name: m
models:
  default:
    backend: pool
    options:
      members: []
      policy: fastest
  other:
    backend: nope
  loc:
    backend: local
    options: {n_ctx: -5, colour: red}
  fine:
    backend: simulated
    options: {decode_s_per_token: 0.01}
steps:
  - {id: a, kind: llm, prompt: hi}
"""


def test_each_models_backend_and_options_are_checked() -> None:
    found = [(p.line, p.message) for p in validate_text(MODELS, "m.yaml")]
    assert found == [
        (6, "model 'default': pool backend options: members: List should have at least 1 "
            "item after validation, not 0 (got [])"),
        (7, "model 'default': pool backend options: policy: Input should be 'fifo', "
            "'critical_path' or 'program_aware' (got 'fastest')"),
        (9, "model 'other': unknown LLM backend 'nope'"),
        (12, "model 'loc': local backend options: n_ctx: Input should be greater than or "
             "equal to 64 (got -5)"),
        (12, "model 'loc': local backend options: unknown option 'colour' (known: "
             "model_path, n_ctx, n_threads, seed, sampling)"),
    ]


def test_a_backend_without_an_options_model_takes_any_options() -> None:
    from orchestrator.runtime.registry import Registry

    reg = Registry.default()
    reg.backends["mine"] = lambda config: None  # type: ignore[assignment,return-value]
    text = ("name: m\nmodels: {default: {backend: mine, options: {anything: 1}}}\n"
            "steps:\n  - {id: a, kind: llm, prompt: hi}\n")
    assert validate_text(text, "m.yaml", registry=reg) == []


DECLARATIONS_BAD = """\
name: decl
inputs:
  n: {type: integer, default: "abc"}
  colour: {type: string, default: blue, schema: {enum: [red, green]}}
  shape: {type: string, schema: {type: 5}}
  fine: {type: string, default: null}
steps:
  - {id: a, kind: tool, tool: calc, args: {expression: "${inputs.n}"}}
outputs:
  out: {from: "${steps.a.output}", schema: {minimum: "x"}}
"""


def test_input_defaults_and_declared_schemas_are_checked_at_their_lines() -> None:
    # a default of the wrong type ran as it was; a bad input schema was an internal
    # error of the run; an output's schema was never looked at
    problems = validate_text(DECLARATIONS_BAD, "decl.yaml")
    found = [(p.line, p.message) for p in problems]
    assert found == [
        (3, "the default of input 'n' must be integer, got 'abc'"),
        (4, "the default of input 'colour' does not satisfy its schema: at $: 'blue' is not "
            "one of ['red', 'green']"),
        (5, "schema is not a valid JSON Schema: 5 is not valid under any of the given schemas"),
        (10, "schema is not a valid JSON Schema: 'x' is not of type 'number'"),
    ]


def test_a_required_input_with_a_default_is_a_problem_at_its_line() -> None:
    # the default was silently never used: a run without the input was refused
    text = ("name: w\ninputs:\n  n:\n    type: integer\n    default: 3\n    required: true\n"
            "  m: {type: integer, default: 4, required: false}\n"
            "steps:\n  - {id: a, kind: tool, tool: calc, args: {expression: '1'}}\n")
    problems = validate_text(text, "w.yaml")
    assert [(p.line, p.message) for p in problems] == [
        (6, "input 'n' is `required: true` and has a `default`, which no run would use")]
