"""End-to-end latency of planners on a ParallelQA-style workload (simulated engine).

Usage: python bench/planner_bench.py [--questions 100] [--clock virtual|real]
       [--time-scale 0.2] [--breakdown] [--sweep]

Each question needs 2-5 independent look-ups over a small corpus of city facts, then
one arithmetic step, then the answer ("What is the total area of Rome, Lisbon and
Vienna?"). Three ways to answer it, all on the seeded simulated engine with scripted
outputs whose token counts set the latencies (``output_tokens: text``: one token per
four characters decoded; the prompt's tokens prefilled):

(a) a sequential ReAct-style loop: one LLM turn (thought + one action) per tool call,
    the scratchpad growing, then a final turn;
(b) LLMCompiler, the whole plan read before any action starts;
(c) LLMCompiler with streaming dispatch: each action starts as soon as its line
    has streamed;
(d) as (c), the plan naming its answer (``N. join($M)``, option ``direct_answer``):
    the joiner is not called when every action succeeds. Not the paper's LLMCompiler,
    whose joiner always runs: reported next to (c), not instead of it.

(b), (c) and (d) run as Ponder workflows (a ``plan`` step, the scheduler, the
joiner); (a) is a plain loop over the same engine and tools, without the scheduler.

Two clocks. ``--clock virtual`` (the default) runs on
:class:`executors.engines.vclock.VirtualClockLoop`: engine and tool delays take no
wall time and are measured exactly, and the Python work of the orchestrator counts
for nothing. ``--clock real`` sleeps for real, every delay multiplied by
``--time-scale``; latencies are divided by it again ("scaled back"), which also
multiplies the orchestrator's own CPU time by 1/time_scale: use ``--time-scale 1``
to see that overhead at its true size. Questions run ``--concurrency`` at a time,
each on its own engine instance.

Prints a markdown table: mean / p50 / p95 latency per question (scaled back),
speed-up over (a), LLM calls and tokens per question, and answers checked.
"""

from __future__ import annotations

import argparse
import contextvars
import random
import re
import statistics
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from executors.builtin_tools import calc
from executors.engines.vclock import VirtualClockLoop
from executors.llm._common import PrefixCache
from executors.llm.simulated import SimulatedBackend
from orchestrator.graph.compile import CompiledGraph
from orchestrator.runtime.contracts import LLMChunk, LLMRequest
from orchestrator.runtime.engine import compile_graph, execute
from orchestrator.runtime.registry import Registry
from orchestrator.spec.models import ModelConfig, WorkflowSpec

CITIES = {  # the facts of examples/planners/corpus
    "Paris": {"population": 2102650, "area": 105.4, "elevation": 35},
    "Rome": {"population": 2748109, "area": 1287.36, "elevation": 21},
    "Berlin": {"population": 3878100, "area": 891.3, "elevation": 34},
    "Madrid": {"population": 3332035, "area": 604.3, "elevation": 657},
    "Vienna": {"population": 2005760, "area": 414.8, "elevation": 190},
    "Lisbon": {"population": 545796, "area": 100.05, "elevation": 2},
}
TOOLS_TEXT = """- lookup(city: string, attribute: string): a number about a city: population, \
area (km2) or elevation (m).
- calc(expression: string): evaluate an arithmetic expression, e.g. `(3 + 4) * 2`."""


@dataclass(frozen=True)
class Question:
    index: int
    text: str
    lookups: tuple[tuple[str, str], ...]
    op: str  # "total" | "average"
    answer: int | float

    @property
    def tag(self) -> str:
        return f"[q{self.index}]"


@dataclass
class Settings:
    decode_s_per_token: float
    prefill_s_per_token: float
    tool_latency_s: float
    time_scale: float
    examples: int
    clock: str = "virtual"
    prefix_caching: bool = False


@dataclass
class Outcome:
    latency_s: float  # wall clock, scaled
    correct: bool
    llm_calls: int
    prompt_tokens: int
    completion_tokens: int
    timeline: dict[str, float] = field(default_factory=dict)


@dataclass
class Mode:
    name: str
    outcomes: list[Outcome] = field(default_factory=list)


# -- the workload -------------------------------------------------------------------
def make_questions(n: int, seed: int) -> list[Question]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        k = rng.randint(2, 5)
        attribute = rng.choice(["population", "area", "elevation"])
        cities = rng.sample(sorted(CITIES), k)
        op = rng.choice(["total", "average"])
        values = [CITIES[c][attribute] for c in cities]
        answer = sum(values) if op == "total" else sum(values) / k
        names = ", ".join(cities[:-1]) + " and " + cities[-1]
        text = f"{Question(i, '', (), op, 0).tag} What is the {op} {attribute} of {names}?"
        out.append(Question(i, text, tuple((c, attribute) for c in cities), op,
                            calc(_expression(op, [str(v) for v in values]))))
        assert abs(out[-1].answer - answer) < 1e-6
    return out


def _expression(op: str, terms: list[str]) -> str:
    total = " + ".join(terms)
    return total if op == "total" else f"({total}) / {len(terms)}"


def _number(value: int | float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.6g}"


def plan_text(q: Question) -> str:
    lines = [f'{i}. lookup("{c}", "{a}")' for i, (c, a) in enumerate(q.lookups, 1)]
    k = len(q.lookups)
    lines.append(f'{k + 1}. calc("{_expression(q.op, [f"${i}" for i in range(1, k + 1)])}")')
    lines += [f"{k + 2}. join()", "<END_OF_PLAN>"]
    return "\n".join(lines)


def plan_text_answered(q: Question) -> str:
    """The same plan, naming the calc action as the answer: ``N. join($N-1)``."""
    k = len(q.lookups)
    return plan_text(q).replace(f"{k + 2}. join()", f"{k + 2}. join(${k + 1})")


def joiner_text(q: Question) -> str:
    # the same thought as ReAct's last turn: both end with one sentence and the answer
    return ('{"thought": "The result answers the question.", "action": "finish", '
            '"answer": "' + _number(q.answer) + '"}')


def react_turns(q: Question) -> list[str]:
    turns = []
    for city, attribute in q.lookups:
        turns.append(f"Thought: I need the {attribute} of {city} before I can compute the "
                     f"{q.op}.\nAction: lookup[{city}, {attribute}]")
    values = [_number(CITIES[c][a]) for c, a in q.lookups]
    turns.append(f"Thought: I have every number I need, so I compute the {q.op} of them.\n"
                 f"Action: calc[{_expression(q.op, values)}]")
    turns.append(f"Thought: The result answers the question.\n"
                 f"Action: Finish[{_number(q.answer)}]")
    return turns


def plan_examples(questions: list[Question], answered: bool = False) -> str:
    write = plan_text_answered if answered else plan_text
    return "\n\n".join(f"Question: {q.text.split('] ', 1)[1]}\n{write(q)}"
                       for q in questions)


def react_examples(questions: list[Question]) -> str:
    blocks = []
    for q in questions:
        lines = [f"Question: {q.text.split('] ', 1)[1]}"]
        observations = [_number(CITIES[c][a]) for c, a in q.lookups] + [_number(q.answer)]
        for turn, obs in zip(react_turns(q), [*observations, None], strict=True):
            lines.append(turn)
            if obs is not None:
                lines.append(f"Observation: {obs}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


# -- tools with latency ---------------------------------------------------------------
#: the current question's look-up times, by "city/attribute" (set around each run)
_MARKS: contextvars.ContextVar[dict[str, dict[str, float]]] = contextvars.ContextVar("marks")


def make_lookup(settings: Settings) -> Callable[..., Any]:
    """The look-up tool; it notes its start and end in the question's ``_MARKS``."""

    async def lookup(city: str, attribute: str) -> int | float:
        """A number about a city: population, area (km2) or elevation (m)."""
        started = anyio.current_time()
        await anyio.sleep(settings.tool_latency_s * settings.time_scale)
        marks = _MARKS.get(None)
        if marks is not None:
            marks[f"{city}/{attribute}"] = {"start": started, "end": anyio.current_time()}
        return CITIES[city][attribute]

    return lookup


async def async_calc(expression: str) -> int | float:
    """Evaluate an arithmetic expression safely, e.g. `(3 + 4) * 2` or `sqrt(16)`.

    The built-in ``calc`` as a coroutine: a sync tool runs in a worker thread, and
    thread work races the virtual clock (it jumps to the next timer while the thread
    runs). Microseconds of arithmetic either way.
    """
    return calc(expression)


class TimedBackend(SimulatedBackend):
    """The simulated engine, noting when each call started and ended (for --breakdown)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.calls: list[tuple[float, float, bool]] = []  # (start, end, joiner?)

    async def stream(self, request: LLMRequest) -> AsyncGenerator[LLMChunk, None]:
        start = anyio.current_time()
        joiner = "Actions and observations" in request.messages[-1]["content"]
        async for chunk in super().stream(request):
            if chunk.final is not None:  # the caller may stop reading at the final chunk
                self.calls.append((start, anyio.current_time(), joiner))
            yield chunk


def sim_config(settings: Settings, rules: list[dict[str, Any]]) -> ModelConfig:
    return ModelConfig(backend="simulated", options={
        "output_tokens": "text", "decode_s_per_token": settings.decode_s_per_token,
        "prefill_s_per_token": settings.prefill_s_per_token,
        "time_scale": settings.time_scale, "capacity": 8, "responses": rules,
        "prefix_caching": settings.prefix_caching})


# -- (a) ReAct ---------------------------------------------------------------------
_REACT_ACTION = re.compile(r"Action:\s*(\w+)\[(.*)\]\s*$", re.DOTALL)


async def react(q: Question, backend: SimulatedBackend, system: str,
                lookup: Callable[..., Any], settings: Settings) -> Outcome:
    scratchpad = f"Question: {q.text}\n"
    answer: str | None = None
    start = anyio.current_time()
    for _ in range(12):
        response = await backend.complete(LLMRequest(
            messages=[{"role": "system", "content": system},
                      {"role": "user", "content": scratchpad}], max_tokens=256))
        scratchpad += response.text + "\n"
        m = _REACT_ACTION.search(response.text)
        assert m is not None, response.text
        tool, arg = m.group(1), m.group(2)
        if tool == "Finish":
            answer = arg
            break
        if tool == "lookup":
            city, attribute = (s.strip() for s in arg.split(","))
            observation = await lookup(city, attribute)
        else:
            observation = calc(arg)
        scratchpad += f"Observation: {_number(observation)}\n"
    latency = anyio.current_time() - start
    stats = backend.stats
    return Outcome(latency, answer == _number(q.answer), stats.requests, stats.prompt_tokens,
                   stats.completion_tokens)


# -- (b), (c) LLMCompiler through the scheduler ---------------------------------------
def compiler_graph(registry: Registry, examples: str, stream: bool,
                   direct_answer: bool = False) -> CompiledGraph:
    spec = WorkflowSpec.model_validate({
        "name": "parallel_qa_bench",
        "inputs": {"question": {"type": "string"}},
        "steps": [{"id": "answer", "kind": "plan", "planner": "llmcompiler",
                   "goal": "{{ inputs.question }}", "tools": ["lookup", "calc"],
                   "max_replans": 1, "max_tokens": 256,
                   "options": {"stream_dispatch": stream, "examples": examples,
                               "direct_answer": direct_answer}}],
        "outputs": {"answer": "${steps.answer.output}"},
    })
    return compile_graph(spec, registry=registry)


async def compiler(q: Question, graph: CompiledGraph, registry: Registry,
                   backend_name: str, engine: TimedBackend) -> Outcome:
    marks: dict[str, dict[str, float]] = {}
    _MARKS.set(marks)  # this task's context: the scheduler's tasks inherit it
    start = anyio.current_time()
    result = await execute(graph, {"question": q.text}, registry=registry,
                           backend=backend_name)
    end = anyio.current_time()
    assert result.ok, result.error
    answer = result.output["answer"]  # the joiner's text, or calc's number with join($N)
    correct = (_number(answer) if isinstance(answer, int | float) else answer) == \
        _number(q.answer)
    return Outcome(end - start, correct, engine.stats.requests, engine.stats.prompt_tokens,
                   engine.stats.completion_tokens, _timeline(q, start, end, engine, marks))


def _timeline(q: Question, start: float, end: float, engine: TimedBackend,
              marks: dict[str, dict[str, float]]) -> dict[str, float]:
    """Where one question's latency went (unscaled seconds from its start)."""
    last = max((marks[f"{c}/{a}"] for c, a in q.lookups), key=lambda m: m["start"])
    plan = next(c for c in engine.calls if not c[2])
    join = next((c for c in engine.calls if c[2]), None)
    return {"plan_end": plan[1] - start, "last_lookup_start": last["start"] - start,
            "last_lookup_end": last["end"] - start,
            "joiner_start": (join[0] - start) if join else float("nan"),
            "joiner_s": (join[1] - join[0]) if join else 0.0, "total": end - start}


def _fixed(engine: SimulatedBackend) -> Callable[[ModelConfig], SimulatedBackend]:
    """A backend factory that always returns this (pre-built) engine."""
    return lambda config: engine


# -- running ----------------------------------------------------------------------------
async def run_all(questions: list[Question], settings: Settings,
                  concurrency: int) -> tuple[list[Mode], list[float]]:
    """Run the three modes one after the other; their outcomes and wall clock times."""
    shots = make_questions(settings.examples, seed=10_000)  # not among the measured ones
    registry = Registry()
    lookup = make_lookup(settings)
    registry.add_tool(lookup, "lookup")
    registry.add_tool(async_calc, "calc", replace=True)  # the async twin of the built-in
    react_system = ("Answer the question by thinking step by step. On each turn write one "
                    "Thought and one Action; the Observation comes back to you.\nTools:\n"
                    + TOOLS_TEXT + "\nFinish[answer] ends.\n\nExamples:\n\n"
                    + react_examples(shots))

    def compiler_rules(q: Question, answered: bool) -> list[dict[str, Any]]:
        return [{"match": re.escape(q.tag) + r"[\s\S]*Actions and observations",
                 "output": joiner_text(q)},
                {"match": re.escape(q.tag),
                 "output": plan_text_answered(q) if answered else plan_text(q)}]

    modes = [Mode("(a) ReAct, sequential"), Mode("(b) LLMCompiler, no streaming dispatch"),
             Mode("(c) LLMCompiler, streaming dispatch"),
             Mode("(d) as (c), plan names its answer: no joiner call")]
    graphs = [compiler_graph(registry, plan_examples(shots), False),
              compiler_graph(registry, plan_examples(shots), True),
              compiler_graph(registry, plan_examples(shots, answered=True), True,
                             direct_answer=True)]
    limiter = anyio.CapacityLimiter(concurrency)
    # each question has its own engine object (its scripted answers); with prefix caching
    # they share one cache per mode, as calls to one server would
    caches = [PrefixCache(1 << 20) for _ in modes]

    async def one(mode_index: int, q: Question) -> None:
        async with limiter:
            if mode_index == 0:
                backend = SimulatedBackend(sim_config(settings, [
                    {"match": re.escape(q.tag), "sequence": react_turns(q)}]))
                if backend.prefix_cache is not None:
                    backend.prefix_cache = caches[mode_index]
                outcome = await react(q, backend, react_system, lookup, settings)
            else:
                name = f"sim_{mode_index}_{q.index}"
                engine = TimedBackend(sim_config(settings, compiler_rules(q, mode_index == 3)))
                if engine.prefix_cache is not None:
                    engine.prefix_cache = caches[mode_index]
                registry.backends[name] = _fixed(engine)
                outcome = await compiler(q, graphs[mode_index - 1], registry, name, engine)
            modes[mode_index].outcomes.append(outcome)

    wall = []
    for mode_index in range(len(modes)):
        # one unmeasured question first: imports, caches and first compilations
        await one(mode_index, questions[0])
        modes[mode_index].outcomes.clear()
        t0 = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for q in questions:
                tg.start_soon(one, mode_index, q)
        wall.append(time.perf_counter() - t0)
    return modes, wall


def report(modes: list[Mode], settings: Settings, wall: list[float], n: int) -> str:
    scale = settings.time_scale or 1.0
    base = statistics.mean(o.latency_s for o in modes[0].outcomes) / scale
    clock = ("virtual clock (engine and tool delays exact; the orchestrator's CPU time "
             "not counted)" if settings.clock == "virtual" else
             f"real clock, every delay at time_scale={settings.time_scale:g}; latencies "
             f"scaled back (measured / {settings.time_scale:g})")
    lines = [
        f"ParallelQA-style workload: {n} questions, 2-5 independent look-ups each; "
        f"simulated engine: decode {settings.decode_s_per_token * 1000:g} ms/token, "
        f"prefill {settings.prefill_s_per_token * 1000:g} ms/token; look-up tool "
        f"{settings.tool_latency_s:g} s; {settings.examples} few-shot examples per prompt; "
        f"prefix caching {'on' if settings.prefix_caching else 'off'}.",
        f"Measured on the {clock}.",
        "",
        "| mode | mean s | p50 s | p95 s | speed-up vs (a) | LLM calls / q | prompt tok / q "
        "| completion tok / q | correct | wall s (run) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for mode, wall_s in zip(modes, wall, strict=True):
        lat = sorted(o.latency_s / scale for o in mode.outcomes)
        mean = statistics.mean(lat)
        p95 = lat[min(len(lat) - 1, round(0.95 * (len(lat) - 1)))]
        k = len(mode.outcomes)
        lines.append(
            f"| {mode.name} | {mean:.2f} | {statistics.median(lat):.2f} | {p95:.2f} | "
            f"{base / mean:.2f}x | {sum(o.llm_calls for o in mode.outcomes) / k:.1f} | "
            f"{sum(o.prompt_tokens for o in mode.outcomes) / k:.0f} | "
            f"{sum(o.completion_tokens for o in mode.outcomes) / k:.0f} | "
            f"{sum(o.correct for o in mode.outcomes)}/{k} | {wall_s:.2f} |")
    means = [statistics.mean(o.latency_s for o in m.outcomes) / scale for m in modes]
    c_vs_a, c_vs_b = means[0] / means[2], means[1] / means[2]
    lines += ["", "Targets (issue #4):", "",
              "| target | measured | met |", "|---|---:|---|",
              f"| (c) at least 3.7x faster than (a) | {c_vs_a:.2f}x | "
              f"{'yes' if c_vs_a >= 3.7 else 'no'} |",
              f"| (c) faster than (b) | {c_vs_b:.2f}x | {'yes' if c_vs_b > 1 else 'no'} |"]
    return "\n".join(lines)


def breakdown(modes: list[Mode], settings: Settings) -> str:
    """Where the LLMCompiler modes' latency goes, mean seconds per question (scaled back).

    The critical path of a question: the plan streams until its last look-up's line
    is read (that look-up is dispatched), the look-up runs, then the joiner (prefill and
    decode) answers; whatever else shows is the orchestrator's own time (zero on the
    virtual clock).
    """
    scale = settings.time_scale or 1.0
    lines = ["| mode | last look-up dispatched | look-up | look-up end -> joiner start "
             "| joiner | joiner end -> result | plan stream ends | total |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for mode in modes[1:]:
        t = [o.timeline for o in mode.outcomes]

        def mean(f: Callable[[dict[str, float]], float], t: list[dict[str, float]] = t
                 ) -> str:
            return f"{statistics.mean(f(x) for x in t) / scale:.3f}"

        joined = [x for x in t if x["joiner_s"] > 0]
        gaps = [x["joiner_start"] - x["last_lookup_end"] for x in joined]
        gap = f"{statistics.mean(gaps) / scale:.3f}" if gaps else "-"
        after = [x["total"] - (x["joiner_start"] + x["joiner_s"] if x["joiner_s"] > 0
                               else x["last_lookup_end"]) for x in t]
        lines.append(
            f"| {mode.name} | {mean(lambda x: x['last_lookup_start'])} | "
            f"{mean(lambda x: x['last_lookup_end'] - x['last_lookup_start'])} | {gap} | "
            f"{mean(lambda x: x['joiner_s'])} | {statistics.mean(after) / scale:.3f} | "
            f"{mean(lambda x: x['plan_end'])} | {mean(lambda x: x['total'])} |")
    return "\n".join(lines)


SWEEP: list[tuple[str, dict[str, float]]] = [
    ("defaults", {}),
    ("look-up 1 s", {"tool_latency_s": 1.0}),
    ("look-up 0 s (local corpus)", {"tool_latency_s": 0.0}),
    ("8 few-shot examples", {"examples": 8}),
    ("prefill 1 ms/token (70B-class)", {"prefill_s_per_token": 0.001}),
    ("decode 40 ms/token", {"decode_s_per_token": 0.04}),
    ("prefix caching", {"prefix_caching": True}),
]


async def sweep(args: argparse.Namespace, base: Settings) -> None:
    """How the speed-ups move with the engine and tool parameters (fewer questions)."""
    questions = make_questions(args.sweep_questions, args.seed)
    print(f"\nSensitivity ({len(questions)} questions each, scaled back, mean s):\n")
    print("| setting | (a) ReAct | (b) no streaming | (c) streaming | (d) named answer "
          "| (c) vs (a) | (c) vs (b) | (d) vs (a) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, change in SWEEP:
        settings = Settings(**{**base.__dict__, **change})
        modes, _ = await run_all(questions, settings, args.concurrency)
        means = [statistics.mean(o.latency_s for o in m.outcomes) / (settings.time_scale or 1)
                 for m in modes]
        print(f"| {label} | {means[0]:.2f} | {means[1]:.2f} | {means[2]:.2f} | {means[3]:.2f} "
              f"| {means[0] / means[2]:.2f}x | {means[1] / means[2]:.2f}x "
              f"| {means[0] / means[3]:.2f}x |")


async def main_async(args: argparse.Namespace) -> None:
    scale = args.time_scale if args.clock == "real" else 1.0
    settings = Settings(args.decode_ms / 1000, args.prefill_ms / 1000, args.tool_latency,
                        scale, args.examples, args.clock, args.prefix_caching)
    questions = make_questions(args.questions, args.seed)
    t0 = time.perf_counter()
    modes, wall = await run_all(questions, settings, args.concurrency)
    total = time.perf_counter() - t0
    print(report(modes, settings, wall, len(questions)))
    if args.breakdown:
        print("\nWhere the time goes (mean s per question):\n")
        print(breakdown(modes, settings))
    print(f"\nwhole run: {total:.1f} s wall clock; {args.concurrency} questions in flight.")
    if args.sweep:
        await sweep(args, settings)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--questions", type=int, default=100)
    ap.add_argument("--clock", choices=["virtual", "real"], default="virtual",
                    help="virtual: delays exact, no wall time, orchestrator CPU not counted; "
                         "real: sleep for real at --time-scale")
    ap.add_argument("--time-scale", type=float, default=0.2,
                    help="with --clock real: multiplies every engine and tool delay "
                         "(0: no sleeping)")
    ap.add_argument("--concurrency", type=int, default=20,
                    help="questions in flight at once, each on its own engine instance")
    ap.add_argument("--decode-ms", type=float, default=20.0, help="ms per decoded token")
    ap.add_argument("--prefill-ms", type=float, default=0.2, help="ms per prompt token")
    ap.add_argument("--tool-latency", type=float, default=0.5, help="seconds per look-up")
    ap.add_argument("--examples", type=int, default=4, help="few-shot examples per prompt")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--breakdown", action="store_true",
                    help="also print where the LLMCompiler modes' latency goes")
    ap.add_argument("--sweep", action="store_true",
                    help="also print how the speed-ups move with the parameters")
    ap.add_argument("--sweep-questions", type=int, default=30)
    ap.add_argument("--prefix-caching", action="store_true",
                    help="the engine skips the prefill of prompt prefixes it has computed "
                         "(one cache per mode, shared by its questions)")
    args = ap.parse_args(argv)
    if args.clock == "virtual":
        anyio.run(main_async, args, backend="asyncio",
                  backend_options={"loop_factory": VirtualClockLoop})
    else:
        anyio.run(main_async, args)


if __name__ == "__main__":
    main()
