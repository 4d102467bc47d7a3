"""How much the lengths of sampled answers to one prompt vary, on the bundled model.

Usage: python bench/length_spread.py [--problems 12] [--n 8] [--m 3] [--max-tokens 400]
       [--temperature 0.8] [--threads N]

First-finish saves what the other samples would still have decoded after the shortest
one ended, so its saving is set by the spread of answer lengths across samples of one
prompt. ``scaling_bench.py`` draws those lengths from a log-normal with sigma 0.6 or 0.8;
this script measures the spread on a real model: SmolLM2-135M-Instruct through
llama.cpp (the ``local`` backend, needs the ``local`` extra), ``n`` samples per
arithmetic word problem at ``temperature``, each with its own seed.

Per problem it prints the sample lengths (completion tokens, the model's own count),
sigma (the standard deviation of their logarithms, the log-normal's parameter) and the
share of wait-for-all's completion tokens that first-finish would spend with instant
cancellation on an engine that decodes the samples together: ``n * shortest / sum``,
and the same for ``first: m`` (short-m@k, ``--m``): ``n * m-th shortest / sum``.
A sample that hits ``max_tokens`` counts at ``max_tokens`` (its true length is longer).

The samples run one after the other here (llama.cpp decodes one sequence at a time on
this backend), so this measures lengths, not first-finish itself; the simulated engine
does that in ``scaling_bench.py``.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time

import anyio

from executors.llm import LocalBackend
from orchestrator.runtime.contracts import LLMRequest
from orchestrator.spec.models import ModelConfig

NAMES = ("Tom", "Sara", "Ann", "Raj", "Mia", "Leo")
ITEMS = ("apples", "books", "marbles", "stickers", "cookies", "pencils")
PROMPT = "Solve the problem step by step, then end with \"The answer is N.\".\nProblem: {}"


def problems(count: int, seed: int = 0) -> list[str]:
    """Two-step arithmetic word problems (deterministic for a seed)."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        name, item = rng.choice(NAMES), rng.choice(ITEMS)
        a, b, c, d = (rng.randint(2, 12) for _ in range(4))
        shape = i % 3
        if shape == 0:
            out.append(f"{name} has {a * b} {item} and gives away {c} bags of {d}. How many "
                       f"{item} are left?" if a * b > c * d else
                       f"{name} buys {c} bags of {d} {item} and finds {a} more. How many "
                       f"{item} does {name} have?")
        elif shape == 1:
            out.append(f"{name} reads {a} pages a day for {b} days, then {c} more pages. "
                       "How many pages did they read?")
        else:
            out.append(f"A box holds {a} {item}. {name} fills {b} boxes and eats {min(c, a)} "
                       f"{item}. How many {item} are left?")
    return out


def sigma(lengths: list[int]) -> float:
    return statistics.stdev(math.log(x) for x in lengths) if len(lengths) > 1 else 0.0


async def measure(args: argparse.Namespace) -> None:
    options = {"n_threads": args.threads} if args.threads else {}
    backend = LocalBackend(ModelConfig(backend="local", options=options))
    rows, shares, m_shares, sigmas, capped = [], [], [], [], 0
    started = time.perf_counter()
    decoded = 0
    for problem in problems(args.problems, args.seed):
        lengths = []
        for sample in range(args.n):
            response = await backend.complete(LLMRequest(
                messages=[{"role": "user", "content": PROMPT.format(problem)}],
                max_tokens=args.max_tokens, temperature=args.temperature,
                seed=args.seed * 1000 + sample))
            lengths.append(response.completion_tokens)
            capped += response.finish_reason == "length"
        decoded += sum(lengths)
        share = args.n * min(lengths) / sum(lengths)
        m_share = args.n * sorted(lengths)[min(args.m, args.n) - 1] / sum(lengths)
        shares.append(share)
        m_shares.append(m_share)
        sigmas.append(sigma(lengths))
        rows.append(f"| {problem[:60]} | {', '.join(map(str, sorted(lengths)))} | "
                    f"{sigmas[-1]:.2f} | {share:.1%} | {m_share:.1%} |")
    await backend.aclose()
    wall = time.perf_counter() - started
    print(f"SmolLM2-135M-Instruct (local backend), {args.problems} problems x {args.n} "
          f"samples, temperature {args.temperature:g}, max_tokens {args.max_tokens}; "
          f"{decoded:,} tokens in {wall:.0f} s; {capped} samples hit max_tokens\n")
    print(f"| problem | sample lengths (tokens) | sigma | first-finish share (ideal) "
          f"| first {args.m} share (ideal) |")
    print("|---|---|---:|---:|---:|")
    print("\n".join(rows))
    print(f"| **all ({args.problems} problems)** | | median {statistics.median(sigmas):.2f}, "
          f"mean {statistics.mean(sigmas):.2f} | mean {statistics.mean(shares):.1%} "
          f"| mean {statistics.mean(m_shares):.1%} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--problems", type=int, default=12)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--m", type=int, default=3, help="first: m of short-m@k")
    parser.add_argument("--max-tokens", type=int, default=400)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--threads", type=int, default=None,
                        help="llama.cpp threads (default: every CPU)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    anyio.run(measure, args)


if __name__ == "__main__":
    main()
