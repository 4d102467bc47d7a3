"""``non_finite`` walks an input's value for NaN and Infinity: a value that holds itself
(SDK data: ``x = []; x.append(x)``) made it walk for ever, so ``wf.run(inputs=...)``
hung in ``validate_inputs`` while its memory grew. Each container is now walked once.
The cycles are walked in a child process, which a timeout ends should one hang again."""

from __future__ import annotations

import subprocess
import sys

from orchestrator.spec.models import non_finite

_CYCLES = """
from orchestrator.errors import SpecError
from orchestrator.runtime.engine import validate_inputs
from orchestrator.spec.models import WorkflowSpec, non_finite
x = []
x.append(x)
d = {}
d["self"] = d
print(non_finite(x, "x"), non_finite(d, "d"))
x.append({"a": [float("nan")]})
print(non_finite(x, "x"))
spec = WorkflowSpec.model_validate(
    {"name": "c", "steps": [{"id": "a", "kind": "tool", "tool": "echo",
                             "args": {"x": "${inputs.x}"}}]})
y = [float("-inf")]
y.insert(0, y)
try:
    validate_inputs(spec, {"y": y})
except SpecError as exc:
    print(exc)
"""


def test_a_value_that_holds_itself_ends_and_a_nan_in_it_is_named() -> None:
    done = subprocess.run([sys.executable, "-c", _CYCLES], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "None None",
        "x[1].a[0] is NaN",
        "input 'y': y[1] is -Infinity, which JSON has no number for"]


def test_a_shared_list_is_read_where_it_first_is() -> None:
    shared = [1.0]
    assert non_finite([shared, shared, [float("inf")]], "y") == "y[2][0] is Infinity"
    assert non_finite({"a": shared, "b": shared}, "o") is None
