"""NaN and the infinities in an event's float fields are stored, and read back, on
every backend (PostgreSQL's ``json`` has no such constants: it refused the batch)."""

from __future__ import annotations

import json
import math
import typing

import pytest
from pydantic import BaseModel

from orchestrator.runtime import events as ev
from orchestrator.store import RunInfo, StoredEvent, TraceStore
from orchestrator.store._codec import dumps_payload

INF, NAN = math.inf, math.nan


def _events() -> list[StoredEvent]:
    return [
        ev.RunStarted(run_id="r", seq=0, ts=1.0, workflow="w", inputs={}),
        ev.StepScheduled(run_id="r", seq=1, ts=2.0, step_id="a", step_kind="llm", pool="llm",
                         priority=NAN),
        ev.StepRetrying(run_id="r", seq=2, ts=3.0, step_id="a", attempt=1, error="timeout",
                        error_type="StepTimeout", delay_s=INF, retry_after_s=-INF),
        # a lone surrogate: the payload's text is written by json.dumps instead
        ev.StepRetrying(run_id="r", seq=3, ts=4.0, step_id="a", attempt=2, error="bad \udc80",
                        error_type="StepTimeout", delay_s=-INF, retry_after_s=NAN),
        ev.StepSucceeded(run_id="r", seq=4, ts=5.0, step_id="a", attempt=3, output="ok",
                         latency_s=INF),
        ev.RunFinished(run_id="r", seq=5, ts=6.0, status="succeeded", duration_s=NAN),
    ]  # fmt: skip


@pytest.mark.anyio
async def test_non_finite_float_fields_read_back_as_the_same_floats(store: TraceStore) -> None:
    events = _events()
    await store.append(events)
    got = await store.events("r")
    # repr: NaN is unequal to itself, and told from the infinities by its repr alone
    assert [repr(e.model_dump()) for e in got] == [repr(e.model_dump()) for e in events]
    assert math.isnan(got[1].priority)  # type: ignore[union-attr]
    assert got[2].delay_s == INF and got[2].retry_after_s == -INF  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_non_finite_values_of_no_declared_type_are_null_on_every_backend(
    store: TraceStore,
) -> None:
    # as pydantic writes them to JSON: a value without a float type cannot read back as one
    events: list[StoredEvent] = [
        ev.RunStarted(run_id="r", seq=0, ts=1.0, workflow="w", inputs={"x": INF}),
        ev.StepSucceeded(run_id="r", seq=1, ts=2.0, step_id="a", attempt=1,
                         output={"v": [NAN, -INF, 1.5]}, meta={"t": NAN}),
    ]  # fmt: skip
    await store.append(events)
    started, succeeded = await store.events("r")
    assert started.inputs == {"x": None}  # type: ignore[union-attr]
    assert succeeded.output == {"v": [None, None, 1.5]}  # type: ignore[union-attr]
    assert succeeded.meta == {"t": None}  # type: ignore[union-attr]


def test_dumps_payload_writes_non_finite_floats_as_strings_when_asked() -> None:
    payload = {"a": INF, "b": [NAN, {"c": -INF}], "d": 1.5}
    assert json.loads(dumps_payload(payload, nonfinite="strings")) == {
        "a": "Infinity", "b": ["NaN", {"c": "-Infinity"}], "d": 1.5,
    }  # fmt: skip
    assert "Infinity" in dumps_payload(payload) and '"Infinity"' not in dumps_payload(payload)
    # the json.dumps fallback (a lone surrogate) writes them alike
    payload["e"] = "x\udc80"
    text = dumps_payload(payload, nonfinite="strings")
    assert json.loads(text) == {"a": "Infinity", "b": ["NaN", {"c": "-Infinity"}], "d": 1.5,
                                "e": "x\udc80"}  # fmt: skip
    assert json.loads(dumps_payload(payload))["a"] == INF


@pytest.mark.anyio
async def test_an_exported_run_is_strict_json_and_imports_back_as_the_same_floats(
    store: TraceStore,
) -> None:
    events = _events()
    await store.append(events)
    doc = await store.export_run("r")
    # JSON has no NaN nor Infinity: `ponder import` refuses a document holding them
    text = json.dumps(doc, allow_nan=False)
    await store.delete_runs(["r"])
    await store.import_run(json.loads(text))
    got = await store.events("r")
    assert [repr(e.model_dump()) for e in got] == [repr(e.model_dump()) for e in events]


def test_every_float_field_of_an_event_or_a_headline_is_at_its_top_level() -> None:
    # export_run looks for NaN and infinities at a dump's top level only
    def nested_floats(model: type[BaseModel], seen: set[type]) -> list[str]:
        found = []
        for name, field in model.model_fields.items():
            for arg in [field.annotation, *typing.get_args(field.annotation)]:
                if isinstance(arg, type) and issubclass(arg, BaseModel) and arg not in seen:
                    seen.add(arg)
                    found += [f"{model.__name__}.{name}.{n}"
                              for n, f in arg.model_fields.items()
                              if "float" in str(f.annotation)]
                    found += nested_floats(arg, seen)
        return found

    union = typing.get_args(typing.get_args(ev.Event)[0])
    assert union and all(nested_floats(cls, set()) == [] for cls in (*union, RunInfo))
