"""`escape` (`e`), `forceescape`, `urlencode` and `tojson` are sized before they run,
as the other filters that build a value are: each multiplies its text's length (`&` is
`&amp;`, `é` is `%C3%A9`, `<` in JSON six characters), and a long text was escaped
whole, the 10,000,000-character limit of the render catching it only once built (or
never, inside a `set`). Every other use gives what Jinja2 gives."""

from __future__ import annotations

from typing import Any

import pytest
from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from orchestrator.errors import TemplateRenderError
from orchestrator.spec import templates


@pytest.mark.parametrize(("source", "says"), [
    ("{{ ('&' * 2500000) | e }}", "escape would make 12,500,000 characters"),
    ("{{ ('<' * 2600000) | escape }}", "escape would make 10,400,000 characters"),
    ("{% set x = ('\"' * 2500000) | e %}", "escape would make 12,500,000 characters"),
    ("{{ (\"'\" * 2500000) | forceescape }}", "forceescape would make 12,500,000 characters"),
    ("{{ ('\\U0001F600' * 900000) | urlencode }}", "urlencode would make 10,800,000 characters"),
    ("{{ {'k': 'é' * 2000000} | urlencode }}", "urlencode would make 12,000,003 characters"),
    ("{{ [('k', '/' * 4000000)] | urlencode }}", "urlencode would make 12,000,003 characters"),
    ("{{ ('<' * 2000000) | tojson }}", "tojson would make 12,000,002 characters"),
    ("{{ ['é' * 2000000] | tojson }}", "tojson would make 12,000,006 characters"),
    ("{{ {'k': '\"' * 6000000} | tojson }}", "tojson would make 12,000,011 characters"),
])
def test_an_escape_past_the_limit_fails_before_it_runs(source: str, says: str) -> None:
    with pytest.raises(TemplateRenderError) as info:
        templates.render(source, {})
    assert f"{says}, more than 10,000,000" in str(info.value)
    assert str(info.value).startswith("template line 1: ")


_PLAIN = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False,
                                       keep_trailing_newline=True)
_PLAIN.policies["json.dumps_kwargs"] = {"sort_keys": True}
_VALUES: dict[str, Any] = {
    "s": "a&b<c>'\"é/ x\n\x01\\\U0001F600", "d": {"a b": "c&d/é", "k": [1, 2]},
    "l": [("x y", "z/")], "n": 3.5, "m": None, "g": ["a", "b"]}


@pytest.mark.parametrize("source", [
    "{{ s | e }}{{ s | escape }}{{ s | forceescape }}{{ (s | e) | e }}{{ (s | e) | forceescape }}",
    "{{ n | e }}{{ m | e }}{{ l | e }}{{ d | forceescape }}",
    "{{ s | urlencode }}{{ d | urlencode }}{{ l | urlencode }}{{ n | urlencode }}",
    "{{ s | tojson }}{{ d | tojson }}{{ l | tojson }}{{ n | tojson }}{{ m | tojson }}"
    "{{ ('ab' * 2000000) | tojson | length }}",
    "{{ d.items() | urlencode }}{{ d.items() | list | urlencode }}"
    "{{ ('a' * 3000000) | e | length }}{{ ('/' * 900000) | urlencode | length }}",
])
def test_other_escapes_give_what_jinja2_gives(source: str) -> None:
    assert templates.render(source, _VALUES) == _PLAIN.from_string(source).render(_VALUES)
