"""Payloads are written as the codec's one-pass JSON text on every SQL backend, and read
back as the very values that were written, whatever JSON text can hold in more than
one way."""

from __future__ import annotations

import math

import pytest
import sqlalchemy as sa

from orchestrator.runtime import events as ev
from orchestrator.store import RawEvent, StoredEvent, open_store
from orchestrator.store._codec import dumps_payload, encode_row

pytestmark = pytest.mark.anyio

RUN = 'run "ü" \\ 1'


def _odd_events() -> list[StoredEvent]:
    usage = ev.UsageModel(prompt_tokens=2**31 - 1, completion_tokens=0)
    return [
        ev.RunStarted(run_id=RUN, seq=0, ts=1_790_000_000.123456, workflow="wf ✓",
                      inputs={"q": "why? 😀", "n": 2**63, "f": 2.0}),
        # NaN and the infinities of an output are nulls in JSON, on every backend
        ev.StepSucceeded(run_id=RUN, seq=1, ts=1.1, step_id="é ✓ 😀", attempt=1,
                         output=[math.nan, math.inf, -math.inf, 2**80, -(2**70), 1e-300,
                                 5e-324, 0.1, 1e16, 2.0, -0.0, True, None],
                         usage=usage, latency_s=0.25, meta={"nested": {"a": [{"b": []}]}}),
        ev.StepSucceeded(run_id=RUN, seq=2, ts=2.0, step_id="s", attempt=1,
                         output={"😀": "tab\t nl\n \"q\" \\ \x00 \u2028 \u00e9 e\u0301",
                                 "": {"": ""}, "ünï": ["\U0010ffff", "\x7f"]},
                         raw="<b>&amp;</b>"),
        # a lone surrogate in a value: the codec's fallback (json.dumps) escapes it
        ev.StepSucceeded(run_id=RUN, seq=3, ts=3.0, step_id="s", attempt=2,
                         output={"text": "bad \udcff byte", "ok": "😀"}),
        ev.GraphPatched(run_id=RUN, seq=4, ts=4.0, source_step="plan", reason="plan",
                        steps=[{"id": "b", "kind": "tool", "deps": ["plan"], "parent": "plan",
                                "spec": {"tool": "calc", "args": {"x": 10**30}}}]),
        ev.StepFailed(run_id=RUN, seq=5, ts=5.0, step_id="b", attempt=1, error="nul\x00",
                      error_type="ToolError", usage=ev.UsageModel()),
        ev.StepCancelled(run_id=RUN, seq=6, ts=6.0, step_id="c"),  # defaults left out
        RawEvent(run_id=RUN, seq=7, ts=7.0, kind="future_kind", big=2**64,
                 nested={"k": [{"v": math.nan}, 1.5]}),  # type: ignore[call-arg]
        ev.RunFinished(run_id=RUN, seq=8, ts=8.0, status="failed", error="boom 😀",
                       output={"answer": 42}, usage=usage, duration_s=7.5),
    ]  # fmt: skip


def _as_text(events: list[StoredEvent]) -> list[str]:
    # JSON text, to compare: NaN is not equal to itself, and 2 == 2.0 == True
    return [dumps_payload(e.model_dump(mode="json")) for e in events]


async def test_odd_payloads_are_read_back_as_written(store_url: str) -> None:
    written = _odd_events()
    async with await open_store(store_url) as store:
        await store.append(written[:1])
        await store.append(written[1:4])
        for event in written[4:]:
            await store.append([event])
        back = await store.events(RUN)
        page = await store.events_page(RUN, after_seq=2, limit=3)
    assert [type(e) for e in back] == [type(e) for e in written]
    want = _as_text(written)
    # the NUL of a step's error is kept: it is in the payload, not a column
    assert _as_text(back) == want
    assert _as_text(page) == want[3:6]
    assert back[1].output[:3] == [None, None, None]  # type: ignore[union-attr]
    assert back[0].inputs["f"] == 2.0 and isinstance(back[0].inputs["f"], float)  # type: ignore[union-attr]


def _pg_payloads(url: str) -> list[str]:
    engine = sa.create_engine(sa.make_url(url).set(drivername="postgresql+psycopg"))
    try:
        with engine.connect() as conn:
            query = "SELECT payload::text FROM events ORDER BY seq"
            return [text for (text,) in conn.exec_driver_sql(query)]
    finally:
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("driver", ["psycopg", "asyncpg"])
async def test_postgres_stores_the_codecs_json_text(pg_url: str, driver: str) -> None:
    # The payload went through a dict and SQLAlchemy's json.dumps; it is now the codec's
    # text (pydantic_core's, as on SQLite), which PostgreSQL's json column keeps as is.
    url = sa.make_url(pg_url).set(drivername=f"postgresql+{driver}").render_as_string(False)
    written = _odd_events()
    async with await open_store(url) as store:
        await store.append(written)
    assert _pg_payloads(url) == [encode_row(e)[5] for e in written]


async def test_a_nan_output_is_null_on_every_backend(store_url: str) -> None:
    async with await open_store(store_url) as store:
        await store.append([ev.StepSucceeded(run_id="r", seq=0, ts=1.0, step_id="s",
                                             attempt=1, output={"x": math.nan})])  # fmt: skip
        (back,) = await store.events("r")
    assert isinstance(back, ev.StepSucceeded) and back.output == {"x": None}
