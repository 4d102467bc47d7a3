"""A preview's sizes (its marker's and ``truncated``'s) are those of the whole value: a
string's UTF-8 bytes, a structure's JSON text's (``json.dumps(value,
ensure_ascii=False)``), which the preview counts without writing the JSON text of its
long strings."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.viewer._preview import PREVIEW_CHARS, _size

#: characters JSON escapes, others it keeps, one beyond the BMP, and a lone surrogate
_CHARS = st.sampled_from(['a', ' ', '"', '\\', '\n', '\t', '\x00', '\x1f', '\x7f', 'é',
                          '\u2028', '\U0001f600', '\ud800'])
_SHORT = st.text(_CHARS, max_size=8)
#: longer than a preview keeps: a short text repeated
_LONG = st.builds(lambda text, pad: "x" * PREVIEW_CHARS + text * pad,
                  _SHORT, st.integers(0, 50))
_LEAVES = st.none() | st.booleans() | st.integers() | st.floats() | _SHORT | _LONG
_VALUES = st.recursive(_LEAVES, lambda inner: st.lists(inner, max_size=4)
                       | st.dictionaries(_SHORT | _LONG, inner, max_size=4), max_leaves=12)


def _expected(value: Any) -> int:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return len(text.encode("utf-8", "surrogatepass"))


@settings(max_examples=300, deadline=None)
@given(_VALUES)
def test_a_size_is_that_of_the_value_s_text(value: Any) -> None:
    assert _size(value) == _expected(value)


def test_a_structure_of_long_strings_is_sized_as_its_json_text() -> None:
    for text in ("y" * (3 * PREVIEW_CHARS), "é\n\"" * PREVIEW_CHARS, "\ud800" * PREVIEW_CHARS):
        value = {"prompt": text, "n": [1.5, float("nan"), None, text], "k": {"t": text}}
        assert _size(value) == _expected(value)
        assert _size([text, text]) == _expected([text, text])
        assert _size((text,)) == _expected((text,))
