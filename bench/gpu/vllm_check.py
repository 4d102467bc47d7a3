"""Check the ``vllm`` backend against a real engine on this GPU, and print throughput.

Needs the ``gpu`` extra (vLLM), a CUDA GPU and a model (a local path or a Hugging Face id
that is already downloaded). Nothing here runs in CI.

    python bench/gpu/vllm_check.py --model meta-llama/Llama-3.1-8B-Instruct \
        [--concurrency 1,16,64,256] [--max-tokens 128] [--prompt-tokens 1024]

It checks, each printed as PASS/FAIL: a plain answer; a JSON-schema output through
structured outputs (xgrammar); n=4 samples in one request; a call cancelled mid-way is
aborted at the engine (vLLM's output processor holds no request afterwards, and a later
call still works); priorities are accepted. Then it
measures, for each concurrency, output tokens/s, mean time to first token and mean
decode time per token, next to what ``sim-engine`` predicts for the same load (the
simulator is calibrated to Llama-3-8B on an H100: a different model or GPU will differ).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from contextlib import aclosing
from typing import Any

import anyio

from executors.engines import SimEngineBackend, VLLMBackend, run_virtual, shutdown_engines
from orchestrator.runtime.contracts import LLMRequest, LLMResponse
from orchestrator.spec.models import ModelConfig

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"},
                                           "population": {"type": "integer"}},
          "required": ["city", "population"], "additionalProperties": False}


def _ask(prompt: str, **fields: Any) -> LLMRequest:
    return LLMRequest(messages=[{"role": "user", "content": prompt}], **fields)


def _report(name: str, ok: bool, detail: str = "") -> bool:
    print(f"{'PASS' if ok else 'FAIL'}  {name}{': ' + detail if detail else ''}", flush=True)
    return ok


async def checks(backend: VLLMBackend) -> bool:
    ok = True
    plain = await backend.complete(_ask("Say hello in one word.", max_tokens=16))
    ok &= _report("plain answer", bool(plain.text.strip()),
                  f"{plain.text.strip()[:40]!r}, ttft {plain.ttft_s:.3f}s")
    structured = await backend.complete(_ask("Name a large city and its population as JSON.",
                                             max_tokens=64, json_schema=SCHEMA))
    try:
        value = json.loads(structured.text)
        ok &= _report("structured output", set(value) == {"city", "population"}, str(value))
    except ValueError as exc:
        ok &= _report("structured output", False, f"{exc}: {structured.text[:80]!r}")
    samples = await backend.complete(_ask("Pick a random number.", max_tokens=8, n=4,
                                          temperature=1.0))
    ok &= _report("n=4 samples in one request", len(samples.texts) == 4, str(samples.texts))
    aborted, detail = await abort_check(backend)
    ok &= _report("cancellation aborts at the engine", aborted, detail)
    urgent = await backend.complete(_ask("Say ok.", max_tokens=4, priority=30.0))
    ok &= _report("priority accepted", bool(urgent.text))
    return ok


def unfinished(engine: Any) -> int | None:
    """Requests the engine still holds: vLLM v1's output processor (a request leaves it
    when it finishes or is aborted), or the fake engine's; None when it cannot tell."""
    processor = getattr(engine, "output_processor", None)
    count = getattr(processor, "get_num_unfinished_requests", None)
    if callable(count):
        return int(count())
    running = getattr(engine, "running", None)
    return len(running) if running is not None else None


async def abort_check(backend: VLLMBackend) -> tuple[bool, str]:
    """Cancel a long call once its first text arrived; PASS when the engine held it then,
    holds no request afterwards, and answers a later call."""
    holding: int | None = None
    with anyio.move_on_after(120) as scope:
        async with aclosing(backend.stream(_ask("Count from 1 to 5000.", max_tokens=4000))
                            ) as chunks:
            async for _ in chunks:
                holding = unfinished(backend._engine)
                scope.cancel()  # mid-way: the engine is decoding it
    left = unfinished(backend._engine)
    after = await backend.complete(_ask("Say yes.", max_tokens=4))
    if holding is None or left is None:
        return False, "cannot see the engine's requests (neither vLLM v1 nor the fake)"
    ok = scope.cancelled_caught and holding >= 1 and left == 0 and bool(after.text)
    return ok, (f"requests at the engine: {holding} while decoding, {left} after the "
                f"cancel; a later call answered {after.text.strip()[:20]!r}")


async def load(backend: Any, concurrency: int, prompt_tokens: int, max_tokens: int
               ) -> tuple[float, float, float]:
    """(output tokens/s, mean TTFT s, mean decode s per token) for one burst."""
    responses: list[LLMResponse] = []

    async def one(i: int) -> None:
        prompt = f"Request {i}. " + "Write about the sea. " * (prompt_tokens // 5)
        responses.append(await backend.complete(_ask(prompt, max_tokens=max_tokens,
                                                     temperature=0.8)))

    start = anyio.current_time()
    async with anyio.create_task_group() as tg:
        for i in range(concurrency):
            tg.start_soon(one, i)
    elapsed = anyio.current_time() - start
    tokens = sum(r.completion_tokens for r in responses)
    ttft = statistics.mean(r.ttft_s or 0.0 for r in responses)
    tpot = statistics.mean((r.latency_s - (r.ttft_s or 0.0)) / max(1, r.completion_tokens - 1)
                           for r in responses)
    return tokens / elapsed, ttft, tpot


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--concurrency", default="1,16,64,256")
    parser.add_argument("--prompt-tokens", type=int, default=1024)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.9)
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    config = ModelConfig(backend="vllm", model=args.model, options={
        "gpu_memory_utilization": args.gpu_memory_utilization})

    async def real() -> list[tuple[float, float, float]]:
        backend = VLLMBackend(config)
        started = time.perf_counter()
        await backend.complete(_ask("warm up", max_tokens=4))
        print(f"engine started in {time.perf_counter() - started:.0f}s\n", flush=True)
        passed = await checks(backend)
        print(f"\nchecks: {'all passed' if passed else 'SOME FAILED'}\n", flush=True)
        rows = [await load(backend, c, args.prompt_tokens, args.max_tokens) for c in levels]
        await backend.aclose()
        await shutdown_engines()
        return rows

    async def simulated() -> list[tuple[float, float, float]]:
        engine = SimEngineBackend(ModelConfig(backend="sim-engine"))
        return [await load(engine, c, args.prompt_tokens, args.max_tokens) for c in levels]

    measured = anyio.run(real)
    predicted = run_virtual(simulated)
    print(f"| concurrency | vLLM tok/s | sim tok/s | vLLM TTFT (s) | sim TTFT (s) "
          f"| vLLM s/token | sim s/token |  ({args.model}, {args.prompt_tokens} in, "
          f"{args.max_tokens} out)")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for c, (m, p) in zip(levels, zip(measured, predicted, strict=True), strict=True):
        print(f"| {c} | {m[0]:,.0f} | {p[0]:,.0f} | {m[1]:.3f} | {p[1]:.3f} | "
              f"{m[2]:.4f} | {p[2]:.4f} |")


if __name__ == "__main__":
    main()
