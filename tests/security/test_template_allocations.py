"""A template cannot make one value past the memory of the process: the rendered text was
cut at 10 million characters only once it was written, and a filter, a method, `%` or
`~` built its value whole first. `{{ 'x' | center(10**10) }}` asked for ten gigabytes
and the process was killed for memory, with its run. Each now fails at once, naming the
operation, the size it would make and the limit, at the step's file:line; every other
template renders as Jinja2's own sandbox renders it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from template_runs import Outcome, render_each

from orchestrator import Workflow
from orchestrator.spec import templates

#: (template, what its error says after `template line 1: ...: `)
HUGE = [
    ("{{ 'x' | center(10**10) }}", "center would make 10,000,000,000 characters"),
    ("{{ 'x'.center(10**10) }}", "center would make 10,000,000,000 characters"),
    ("{{ 'x'.ljust(10**10) }}", "ljust would make 10,000,000,000 characters"),
    ("{{ 'x'.rjust(10**10) }}", "rjust would make 10,000,000,000 characters"),
    ("{{ 'x'.zfill(10**10) }}", "zfill would make 10,000,000,000 characters"),
    ("{{ ('\t' * 1000).expandtabs(10**9) }}", "expandtabs would make 1,000,000,001,000"),
    ("{{ '%*s' % (10**10, 'x') }}", "`%` would make 10,000,000,000 characters"),
    ("{{ '%-*s' % (-10**10, 'x') }}", "`%` would make 10,000,000,000 characters"),
    ("{{ '%10000000000s' % 'x' }}", "`%` would make"),
    ("{{ '%.10000000000f' % 1.5 }}", "`%` would make"),
    ("{{ '%(a)s' * 1000000 % {'a': 'x' * 1000} }}", "`%` would make 10,001,000 characters"),
    ("{{ '%*s' | format(10**10, 'x') }}", "`%` would make 10,000,000,000 characters"),
    ("{{ '%b%-10000000000b'.encode() % ('x'.encode(), 'y'.encode()) }}", "`%` would make"),
    ("{{ '{:>10000000000}'.format('x') }}",
     "format: the format '>10000000000' asks for more than 10,000,000 characters"),
    ("{{ '{:>{}}'.format('x', 10**10) }}", "format: the format '>10000000000' asks for"),
    ("{{ '{a:.999999999f}'.format_map({'a': 1.5}) }}", "format: the format '.999999999f'"),
    ("{{ ('{0}' * 3000000).format('x' * 1000) }}", "format would make 10,001,000 characters"),
    ("{{ ('{:>10000000000}' | safe).format('x') }}", "format: the format '>10000000000'"),
    ("{{ 'a\nb' | indent(10**10) }}", "indent would make 20,000,000,003 characters"),
    ("{{ ('ab ' * 100000) | wordwrap(1, wrapstring='x' * 1000) }}", "wordwrap would make"),
    ("{{ ('x' * 100000).replace('x', 'y' * 1000) }}", "replace would make 100,000,000"),
    ("{{ ('x' * 1000).replace('', 'y' * 100000) }}", "replace would make 100,101,000"),
    ("{{ ('x' * 100000) | replace('x', 'y' * 1000) }}", "replace would make 100,000,000"),
    ("{{ (['y' * 1000] * 100000) | join }}", "join would make 100,000,000 characters"),
    ("{{ (['a'] * 100000) | join('y' * 1000) }}", "join would make 100,099,000 characters"),
    ("{{ ('y' * 1000).join(['a'] * 100000) }}", "join would make 100,099,000 characters"),
    ("{% set ns = namespace(s='ab') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}"
     "{% endfor %}", "`~` would make 16,777,216 characters"),
    ("{{ (10).to_bytes(10**10, 'big') }}", "to_bytes would make 10,000,000,000 bytes"),
    ("{{ [1] | batch(10**10, 0) | list }}", "batch would make 10,000,000,000 items"),
    ("{{ [1] | slice(10**10) | list }}", "slice would make 10,000,000,000 lists"),
    ("{{ {'a': [[[1]]]} | tojson(10**8) }}", "tojson would make 1,600,000,022 characters"),
    ("{{ ([[1] * 1000] * 100000) | sum(start=[]) }}", "sum would make 100,000,000 items"),
    ("{{ lipsum(10**7) }}", "lipsum would make"),
    # a list of one long string repeated is small, the text of it gigabytes
    ("{{ ['x' * 9000000] * 1000 }}", "`{{ }}` would make at least 18,000,008 characters"),
    ("{{ {'k': ['x' * 9000000] * 1000} }}", "`{{ }}` would make at least 18,000,015"),
    ("{{ (['x' * 9000000] * 1000) | string }}", "string would make at least 18,000,008"),
    ("{{ (['x' * 9000000] * 1000) | pprint }}", "pprint would make at least 18,000,008"),
    ("{{ (['x' * 9000000] * 1000) | upper }}", "upper would make at least 18,000,008"),
    ("{{ (['x' * 9000000] * 1000) | safe }}", "safe would make at least 18,000,008"),
    ("{{ (['x' * 9000000] * 1000) | e }}", "escape would make at least 18,000,008"),
    ("{{ (['x' * 9000000] * 1000) | center(5) }}", "center would make at least 18,000,008"),
    ("{{ (['x' * 9000000] * 1000) | indent }}", "indent would make at least 18,000,008"),
    ("{{ {'k': ['x' * 9000000] * 1000} | urlencode }}", "urlencode would make at least"),
    ("{{ [['x' * 9000000] * 1000] | join }}", "join would make at least 18,000,008"),
    ("{{ (['x' * 9000000] * 1000) ~ '' }}", "`~` would make at least 18,000,008"),
    ("{{ '{}'.format(['x' * 9000000] * 1000) }}", "format would make at least 18,000,010"),
    ("{{ '{!r}'.format(['x' * 9000000] * 1000) }}", "format would make at least"),
    ("{{ '%s' % ([['x' * 9000000] * 1000]) }}", "`%` would make at least 18,000,010"),
    # already bounded: the sandbox's range, `*`
    ("{{ range(10**10) | list }}", "The sandbox blocks ranges larger than MAX_RANGE"),
    ("{{ 'x' * 10**10 }}", "`*` would make a str of 10,000,000,000 items"),
]

@pytest.fixture(scope="module")
def errors() -> dict[str, Outcome]:
    # the process held to 2 GiB and 120 s of CPU, each render to 5 s
    return render_each([source for source, _ in HUGE], alarm_s=5, memory=2 << 30, cpu_s=120,
                       timeout_s=300)


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_AS and SIGALRM are POSIX")
@pytest.mark.parametrize(("source", "says"), HUGE, ids=[s for s, _ in HUGE])
def test_a_template_cannot_build_a_value_past_the_limit(
        errors: dict[str, Outcome], source: str, says: str) -> None:
    outcome = errors[source]
    assert says in outcome.message, outcome.message
    assert outcome.message.startswith("template line ")
    if "MAX_RANGE" not in says:
        assert "more than 10,000,000" in outcome.message
    assert outcome.seconds < 5


@pytest.mark.anyio
async def test_the_step_fails_naming_its_file_line(tmp_path: Path) -> None:
    text = ("name: w\nmodels:\n  default: {backend: simulated, options: {time_scale: 0}}\n"
            "steps:\n  - id: a\n    kind: llm\n    prompt: |\n      Hello\n"
            "      {{ 'x' | center(10**10) }}\n")
    path = tmp_path / "flow.yaml"
    path.write_text(text)
    result = await Workflow.from_yaml(path).run()
    assert not result.ok
    error = result.steps[0].error or ""
    assert f"({path}:9)" in error, error
    assert "center would make 10,000,000,000 characters, more than 10,000,000" in error


_PLAIN = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False,
                                       keep_trailing_newline=True)
_VALUES: dict[str, Any] = {
    "s": "a\tb c-d\nline two  &<>\"'", "f": 3.14159, "n": 7, "l": [1, "b", {"k": 2}],
    "d": {"a": 1, "b": [1, 2]}, "objs": [{"x": "p"}, {"x": "q"}], "ls": [[1, 2], [3]]}

SAME = [
    "{{ s | center(30) }}|{{ s | indent(3) }}|{{ s | indent('>', true, true) }}",
    "{{ s | wordwrap(5) }}|{{ s | wordwrap(4, false, '|') }}|{{ '' | wordwrap }}",
    "{{ s.ljust(30) }}{{ s.rjust(3) }}{{ s.center(31, '*') }}{{ '-4'.zfill(6) }}",
    "{{ s.expandtabs() }}{{ s.expandtabs(3) }}{{ s.expandtabs(tabsize=2) }}",
    "{{ s.replace('a', 'xyz') }}{{ s.replace('', '-') }}{{ s.replace(' ', '', 1) }}",
    "{{ s | replace('a', 'Q') }}{{ s | replace('', '.', 3) }}",
    "{{ ', '.join(['a', 'b']) }}{{ '-'.join(l | map('string')) }}{{ l | join(', ') }}",
    "{{ objs | join('/', attribute='x') }}{{ range(5) | join }}",
    "{{ '%s and %r' % (s, l) }}{{ '%(a)s=%(b)05d' % {'a': 'k', 'b': 42} }}{{ '%s' % d }}",
    "{{ '%5.2f|%-6s|%x|%o|%e|%g|%c|%%' % (f, 'ab', 255, 8, f, f, 65) }}",
    "{{ '%*d' % (5, 3) }}{{ '%.*f' % (2, f) }}{{ '%.2s' % 'abc' }}{{ 7 % 3 }}",
    "{{ '%b|%s|%5d|b'.encode() % ('x'.encode(), 'yz'.encode(), 3) }}",
    "{{ '{} {!r} {:>8} {:.3f} {x}'.format(s, l, 'r', f, x=n) }}",
    "{{ '{a[b]}'.format_map({'a': {'b': 3}}) }}{{ '{0:{1}}'.format('z', 4) }}",
    "{{ '%s-%s' | format(1, 2) }}{{ '%(a)s' | format(a=3) }}",
    "{{ d | tojson }}{{ d | tojson(2) }}{{ d | tojson('\t') }}",
    "{{ range(7) | batch(3, 0) | list }}{{ range(7) | slice(3) | list }}",
    "{{ f | round }}{{ f | round(2) }}{{ f | round(1, 'floor') }}{{ 1234 | round(-2) }}",
    "{{ ls | sum(start=[]) }}{{ [1, 2] | sum }}{{ objs | map(attribute='x') | sum(start='')"
    " if false else 0 }}",
    "{{ 'a' ~ 1 ~ none ~ l }}{% set x = s ~ '!' %}{{ x }}{{ (10).to_bytes(2, 'big') }}",
    # the text of a container, as its repr
    "{{ l }}{{ d }}{{ (1,) }}{{ () }}{{ [s, (s, f), {s: none}] }}{{ [true, -0.5, 10**30] }}",
    "{{ l | string }}{{ d | pprint }}{{ l | upper }}{{ d | safe }}{{ l | e }}{{ [s] | trim }}",
    "{{ ls | join('|') }}{{ [s] | center(90) }}{{ d | wordcount }}{{ l | title }}",
    "{{ '{}|{!r}|{!s}'.format(l, d, ls) }}{{ '%s|%r|%a' % (l, d, [s, 'é']) }}",
    "{{ l ~ d ~ (n, s) }}{{ {'q': ['é', '\U0001F600', '\x01']} }}",
    # comparisons, each operand counted
    "{{ 1 < n < 10 }}{{ 'b' in l }}{{ l == l }}{{ s != d }}{{ 3 not in ls }}{{ n >= f }}",
    "{{ l | select('eq', 1) | list }}{{ n is lt 9 }}{{ 'b' is in l }}{{ s is lower }}",
]


@pytest.mark.parametrize("source", SAME)
def test_other_templates_render_as_jinja2s_sandbox_renders_them(source: str) -> None:
    assert templates.render(source, _VALUES) == _PLAIN.from_string(source).render(_VALUES)
