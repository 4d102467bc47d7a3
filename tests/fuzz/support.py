"""Strategies and the outcome check shared by the fuzz tests (imported as `fuzz.support`).

Every fuzzed function must return or raise a typed Ponder error (for ``parse_ref``,
``ValueError`` is the documented contract). :data:`KNOWN_BUGS` lists core bugs found
by this suite and reported, each with an xfail test holding its minimal reproducer
(``test_known_bugs.py``): a property test tolerates exactly those, so that it keeps
looking for other failures. Remove an entry when its bug is fixed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from orchestrator.spec.models import STEP_KINDS

# The whole fuzz folder runs in ~15-20 s on 2 cores; raise with HYPOTHESIS_PROFILE=fuzz-long.
settings.register_profile("fuzz", max_examples=150, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("fuzz-long", max_examples=5_000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
FUZZ = settings.get_profile("fuzz")

# function name -> exception types that a reported core bug lets escape
KNOWN_BUGS: dict[str, tuple[type[BaseException], ...]] = {}

def is_null_document(text: str) -> bool:
    """Known bug: a document that is YAML null (``~``, ``null``, ``!``, comments only) makes
    load_yaml raise ValidationFailed with no problem and validate_text return none."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader) is not None and yaml.safe_load(
            text) is None
    except (yaml.YAMLError, RecursionError):
        return False


tolerated: dict[str, int] = {}
"""How many inputs each known bug swallowed in this session (for the report)."""


def outcome(fn: Callable[..., Any], *args: Any, allowed: tuple[type[BaseException], ...],
            **kwargs: Any) -> tuple[str, Any]:
    """Call ``fn``; ``("ok", value)`` or ``("error", exc)`` for an allowed error.

    Any other exception fails the test, unless it is a known bug of ``fn``.
    """
    try:
        return "ok", fn(*args, **kwargs)
    except allowed as exc:
        return "error", exc
    except Exception as exc:
        name = fn.__name__
        if isinstance(exc, KNOWN_BUGS.get(name, ())):
            tolerated[name] = tolerated.get(name, 0) + 1
            return "known-bug", exc
        raise AssertionError(f"{name} raised {type(exc).__name__}: {exc}") from exc


# -- strategies ------------------------------------------------------------------------

IDS = st.sampled_from(["a", "b", "c", "d", "s_1", "x-y", "_z", "1bad", "", "a b", "A"])
PATH_TAILS = st.sampled_from(["", ".x", "[0]", "[-1]", "['k']", '["k y"]', ".x.y", "[ 1 ]",
                              ".0", "['--1']", "..x", "[x]"])

REF_TEXTS = st.one_of(
    st.builds(lambda i, p: f"steps.{i}.output{p}", IDS, PATH_TAILS),
    st.builds(lambda i, p: f"inputs.{i}{p}", IDS, PATH_TAILS),
    st.builds(lambda p: f"item{p}", PATH_TAILS),
    st.sampled_from(["index", "steps", "steps.a", "steps.a.out", "inputs", "", " ", "1",
                     "steps.a.output.", "inputs['q']", "steps..output", "a.b.c"]),
    st.text(max_size=12),
)

REFS = REF_TEXTS.map(lambda t: "${" + t + "}")

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12), REFS)

JSON_LIKE = st.recursive(
    SCALARS,
    lambda ch: st.lists(ch, max_size=3) | st.dictionaries(st.text(max_size=6), ch, max_size=3),
    max_leaves=8,
)

PLAIN_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10) | st.floats(allow_nan=False)
    | st.text(max_size=6),
    lambda ch: st.lists(ch, max_size=3) | st.dictionaries(
        st.sampled_from(["x", "y", "k", "k y", "0", "--1", "²"]), ch, max_size=3),
    max_leaves=8,
)

TEMPLATE_PIECES = st.sampled_from([
    "Hello ", "{{ inputs.q }}", "{{ steps.a.output }}", "${steps.b.output}", "{% if x %}",
    "{% endif %}", "{{", "}}", "{{ steps.c.output.x | upper }}", "{{ item }}", "{# c #}",
    "{% for i in steps.a.output %}{{ i }}{% endfor %}", "{{ steps.a.output['k'] }}",
    "{{ ''.__class__ }}", "{% set y = 1 %}", "{{ index + 1 }}", "\n", "{{ q | json }}",
    "{% raw %}{{ x }}{% endraw %}", "${inputs.q}", "{{ steps[0] }}", "{{ 1 / 0 }}",
])
TEMPLATES = st.lists(TEMPLATE_PIECES, max_size=6).map("".join) | st.text(max_size=30)

EXPRESSIONS = st.one_of(
    st.sampled_from(["steps.a.output == 'x'", "inputs.q", "${steps.b.output} > 1",
                     "steps.a.output | length > 2", "true", "and", "1 +", "x.__class__",
                     "inputs.q in ['a', 'b']", "not steps.c.output"]),
    st.text(max_size=20),
)

RETRY = st.fixed_dictionaries({}, optional={
    "max_attempts": st.integers(-1, 200), "initial_backoff_s": st.floats(-1, 5),
    "multiplier": st.floats(0, 3), "jitter": st.floats(-1, 2), "bogus": st.just(1)})

BODY = st.fixed_dictionaries({"kind": st.sampled_from(["llm", "tool", "workflow", "map"])},
                             optional={"prompt": TEMPLATES, "tool": st.sampled_from(
                                 ["calc", "nope"]), "args": st.dictionaries(
                                 st.sampled_from(["expression", "x"]), JSON_LIKE, max_size=2),
                                 "workflow": st.sampled_from(["sub.yaml", "w"]),
                                 "id": IDS})

STEP = st.fixed_dictionaries(
    {"id": IDS, "kind": st.sampled_from([*STEP_KINDS, "bogus"])},
    optional={
        "prompt": TEMPLATES, "system": TEMPLATES,
        "tool": st.sampled_from(["calc", "sleep", "extract", "nope", "os.system", "t1"]),
        "args": st.dictionaries(st.sampled_from(["expression", "seconds", "text", "pattern",
                                                 "x"]), JSON_LIKE, max_size=3),
        "after": st.lists(IDS, max_size=2),
        "model": st.sampled_from(["default", "fast", "nope"]),
        "max_tokens": st.integers(-1, 10**7),
        "temperature": st.floats(-1, 3),
        "timeout_s": st.floats(-1, 10) | st.none(),
        "retry": RETRY,
        "over": JSON_LIKE, "as": st.sampled_from(["item", "x", "1"]),
        "step": BODY, "concurrency": st.integers(-1, 5),
        "cases": st.lists(st.fixed_dictionaries({"when": EXPRESSIONS,
                                                 "then": st.lists(IDS, max_size=2)}),
                          max_size=2),
        "default": st.lists(IDS, max_size=2),
        "workflow": st.sampled_from(["sub.yaml", "nope", "../../etc/passwd"]),
        "inputs": st.dictionaries(st.text(max_size=4), JSON_LIKE, max_size=2),
        "output_schema": st.sampled_from([None, {"type": "object"}, {"type": "bogus"}, {}]),
        "unknown_field": st.just(1),
    },
)

DOCS = st.fixed_dictionaries(
    {"name": st.sampled_from(["wf", "bad name", "", "w.1"]), "steps": st.lists(STEP, max_size=6)},
    optional={
        "version": st.sampled_from([1, 2, "1"]),
        "description": st.text(max_size=10),
        "inputs": st.dictionaries(st.sampled_from(["q", "n", "x y"]), st.one_of(
            st.sampled_from(["string", "integer"]),
            st.fixed_dictionaries({"type": st.sampled_from(["string", "integer", "bogus"])},
                                  optional={"default": JSON_LIKE, "required": st.booleans()})),
            max_size=2),
        "outputs": st.dictionaries(st.sampled_from(["out", "o2"]), JSON_LIKE | st.fixed_dictionaries(
            {"from": REFS}, optional={"type": st.sampled_from(["string", "any", "x"])}),
            max_size=2),
        "models": st.dictionaries(st.sampled_from(["default", "fast"]), st.fixed_dictionaries(
            {}, optional={"backend": st.sampled_from(["simulated", "local", "x"]),
                          "concurrency": st.integers(-1, 4),
                          "options": st.dictionaries(st.text(max_size=4), JSON_LIKE,
                                                     max_size=2)}), max_size=2),
        # only harmless import targets: validation imports `module:function` tools
        "tools": st.dictionaries(st.sampled_from(["t1", "calc"]), st.sampled_from([
            "executors.builtin_tools:calc", "no_such_module_xyz:f", "os.path:nope", "bad",
            "json:loads", ":", "json:"]), max_size=2),
        "defaults": st.fixed_dictionaries({}, optional={"retry": RETRY,
                                                        "timeout_s": st.floats(-1, 5)}),
    },
)

YAML_ALPHABET = st.sampled_from(list(":-[]{}#&*!|>'\"%@`,?. \n\t$") + list("abkids01_"))
YAMLISH_TEXT = st.text(alphabet=YAML_ALPHABET, max_size=200)


@st.composite
def near_valid_docs(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly valid workflows (steps referring to earlier ones), sometimes with one field
    replaced by a random value: they reach compile, the graph checks and the round trip."""
    n = draw(st.integers(1, 7))
    steps: list[dict[str, Any]] = []
    for i in range(n):
        earlier = [f"s{j}" for j in range(i)]
        ref = draw(st.sampled_from([*(f"${{steps.{d}.output}}" for d in earlier),
                                    "${inputs.q}", "${inputs.n}"]))
        kind = draw(st.sampled_from(["llm", "tool", "tool", "map", "branch"]))
        step: dict[str, Any] = {"id": f"s{i}", "kind": kind}
        if kind == "llm":
            step["prompt"] = draw(st.sampled_from([
                "Answer {{ inputs.q }}", f"Use {{{{ {ref[2:-1]} }}}}", f"Use {ref}",
                "{% for x in inputs.xs %}{{ x }},{% endfor %}", "plain"]))
            step["max_tokens"] = draw(st.integers(1, 64))
        elif kind == "tool":
            step["tool"] = "calc"
            step["args"] = {"expression": draw(st.sampled_from([f"{ref} + 1", "2 * 3", ref]))}
        elif kind == "map":
            step["over"] = draw(st.sampled_from(["${inputs.xs}", [1, 2, 3], ref]))
            step["step"] = {"kind": "tool", "tool": "calc", "args": {"expression": "${item}"}}
            if draw(st.booleans()):
                step["concurrency"] = draw(st.integers(1, 3))
        else:
            later = [f"s{j}" for j in range(i + 1, n)] or [f"s{i}"]
            step["cases"] = [{"when": f"inputs.n > {draw(st.integers(0, 3))}",
                              "then": draw(st.lists(st.sampled_from(later), min_size=1,
                                                    max_size=2, unique=True))}]
        if earlier and draw(st.integers(0, 3)) == 0:
            step["after"] = draw(st.lists(st.sampled_from(earlier), max_size=2, unique=True))
        steps.append(step)
    doc: dict[str, Any] = {
        "name": "near_valid",
        "inputs": {"q": {"type": "string", "default": "why?"},
                   "n": {"type": "integer", "default": 2},
                   "xs": {"type": "array", "default": [1, 2]}},
        "models": {"default": {"backend": "simulated", "options": {"time_scale": 0.0}}},
        "steps": steps,
        "outputs": {"out": f"${{steps.s{n - 1}.output}}"},
    }
    if draw(st.integers(0, 2)) == 0:  # break one thing
        target = draw(st.sampled_from(steps))
        key = draw(st.sampled_from([*sorted(target), "after", "retry", "timeout_s", "bogus"]))
        target[key] = draw(JSON_LIKE)
    return doc
