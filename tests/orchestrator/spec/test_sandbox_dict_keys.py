"""The sandbox reads a JSON object's key before a dict method (``steps.a.output.items``
is the field ``items``): a key named like an unsafe attribute gives its value, which is
data, and nothing past it; without such a key the sandbox refuses as before, format
strings included."""

from __future__ import annotations

import pytest

from orchestrator.errors import TemplateRenderError
from orchestrator.spec.templates import render


@pytest.mark.parametrize(("source", "value", "rendered"), [
    ("{{ d.items }}", {"items": [1]}, "[1]"),
    ("{{ d.mro }}", {"mro": 1}, "1"),
    ("{{ d.update }}", {"update": 3}, "3"),
    ("{{ d.__class__ }}", {"__class__": "x"}, "x"),
    ("{{ d.__init__.__globals__ }}", {"__init__": {"__globals__": "data"}}, "data"),
    ("{{ '{0.__class__}'.format(d) }}", {"__class__": 5}, "5"),
    ("{{ d.keys() | list }}", {"a": 1}, "['a']"),
])
def test_a_key_is_read_as_data(source: str, value: dict[str, object], rendered: str) -> None:
    assert render(source, {"d": value}) == rendered


@pytest.mark.parametrize(("source", "value"), [
    ("{{ d.__class__ }}", {}),
    ("{{ d.__init__.__globals__ }}", {}),
    ("{{ d.pop('a') }}", {"a": 1}),
    ("{{ d.x.__class__ }}", {"x": "s"}),
    ("{{ d.__class__.__mro__ }}", {"__class__": {}}),
    ("{{ '{0.__class__}'.format(d) }}", {}),
    ("{{ '{0.items.__self__}'.format(d) }}", {}),
    ("{{ '{0.__class__.__base__}'.format(d) }}", {"__class__": 5}),
])
def test_what_is_not_a_key_stays_refused(source: str, value: dict[str, object]) -> None:
    with pytest.raises(TemplateRenderError):
        render(source, {"d": value})
