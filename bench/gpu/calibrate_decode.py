"""Measure the decode-step and prefill cost of a Llama-3-8B-shaped model on this GPU.

Needs only PyTorch and a CUDA GPU (no vLLM, no weights: the weights are random, which
does not change the time of a matrix product). Prints markdown tables.

What is timed, per engine iteration, with CUDA graphs (as vLLM does for decode):
32 layers of RMSNorm, the fused QKV projection (4096 -> 4096 + 2x1024, GQA 8 KV heads),
attention over a KV cache of ``--context`` tokens per sequence
(``scaled_dot_product_attention``), the output projection, RMSNorm, the SwiGLU MLP
(4096 -> 2x14336 -> 4096), and the LM head (128256). Rotary embeddings and sampling
are left out (element-wise, small). The shapes are Llama-3-8B's ``config.json``.

Mixed iterations (``--mixed``): vLLM's chunked prefill puts decode tokens and a prompt
chunk in one forward pass; the simulator charges such an iteration the sum of its parts
(``decode_base_s`` once). The table times B decode tokens plus one P-token prompt chunk
in one pass (the projections and MLP over all B + P tokens at once, attention per
sequence) against the simulator's formula.

Chunks after a cached prefix (``--chunked``): a P-token prompt chunk whose first C
tokens of context are already in the KV cache (the second and later chunks of a long
prompt, or a prompt whose prefix was cached) attends to all C + P tokens (causal,
aligned to the bottom right as in vLLM's varlen attention). The table fits
``base + per_token * P + attention * P * (C + P / 2)``: ``P * (C + P / 2)`` is the
number of query-key pairs the chunk computes, which a linear model leaves out.

Decode fit (``--fit-decode``): times the decode step for every batch of ``--batches`` at
each context length given (pairs whose KV cache would not fit in the GPU's free memory are
left out) and fits the simulator's decode model
``decode_base_s + decode_per_seq_s * B + decode_per_context_token_s * B * context`` by
least squares on relative error. With ``--chunked`` too, it prints the ``options:`` of a
``sim-engine`` model for this GPU (the prefill fit's base is left free; the options take
the decode base, as the simulator charges ``decode_base_s`` once per iteration).

Use: ``python bench/gpu/calibrate_decode.py [--context 1024] [--batches 1,8,32,64,128,256]
[--mixed 32:512,64:2048] [--chunked 512:0,2048:6144] [--only-mixed] [--only-chunked]
[--fit-decode 1024,4096]``
"""

from __future__ import annotations

import argparse
import functools
import time

import torch
import torch.nn.functional as F

HIDDEN, HEADS, KV_HEADS, HEAD_DIM, FFN, LAYERS, VOCAB = 4096, 32, 8, 128, 14336, 32, 128256


def _layers(dtype: torch.dtype) -> list[dict[str, torch.Tensor]]:
    def w(n_in: int, n_out: int) -> torch.Tensor:
        return torch.randn(n_in, n_out, device="cuda", dtype=dtype) * 0.02

    return [{
        "qkv": w(HIDDEN, (HEADS + 2 * KV_HEADS) * HEAD_DIM),
        "o": w(HEADS * HEAD_DIM, HIDDEN),
        "up": w(HIDDEN, 2 * FFN),
        "down": w(FFN, HIDDEN),
    } for _ in range(LAYERS)]


def _rms(x: torch.Tensor) -> torch.Tensor:
    return x * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + 1e-5).to(x.dtype)


def _forward(x: torch.Tensor, layers: list[dict[str, torch.Tensor]], head: torch.Tensor,
             kv: list[tuple[torch.Tensor, torch.Tensor]] | None, causal: bool) -> torch.Tensor:
    """x: [batch, tokens, hidden]. With kv: decode against the cache; else self-attention."""
    b, t, _ = x.shape
    for i, layer in enumerate(layers):
        h = _rms(x) @ layer["qkv"]
        q, k, v = h.split([HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM], -1)
        if kv is not None:  # decode (t == 1): the 4 query heads of a KV head act as 4 rows
            k, v = kv[i]
            q = q.view(b, KV_HEADS, HEADS // KV_HEADS, HEAD_DIM)
            a = F.scaled_dot_product_attention(q, k, v).reshape(b, 1, HEADS * HEAD_DIM)
        else:
            q = q.view(b, t, HEADS, HEAD_DIM).transpose(1, 2)
            k = k.view(b, t, KV_HEADS, HEAD_DIM).transpose(1, 2)
            v = v.view(b, t, KV_HEADS, HEAD_DIM).transpose(1, 2)
            k = k.repeat_interleave(HEADS // KV_HEADS, 1)
            v = v.repeat_interleave(HEADS // KV_HEADS, 1)
            a = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
            a = a.transpose(1, 2).reshape(b, t, HEADS * HEAD_DIM)
        x = x + a @ layer["o"]
        g, u = (_rms(x) @ layer["up"]).chunk(2, -1)
        x = x + (F.silu(g) * u) @ layer["down"]
    return _rms(x[:, -1]) @ head


def _mixed_forward(xd: torch.Tensor, xp: torch.Tensor, layers: list[dict[str, torch.Tensor]],
                   head: torch.Tensor, kv: list[tuple[torch.Tensor, torch.Tensor]]
                   ) -> torch.Tensor:
    """One chunked-prefill iteration: ``xd`` [B, 1, hidden] decode tokens against the KV
    cache ``kv``, and ``xp`` [1, P, hidden] a prompt chunk attending to itself causally.
    Matrix products run over all B + P tokens at once, as in vLLM's flattened batch."""
    b, t = xd.shape[0], xp.shape[1]
    x = torch.cat([xd.reshape(b, HIDDEN), xp.reshape(t, HIDDEN)])  # [B + P, hidden]
    for i, layer in enumerate(layers):
        h = _rms(x) @ layer["qkv"]
        q, k, v = h.split([HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM], -1)
        ck, cv = kv[i]
        qd = q[:b].view(b, KV_HEADS, HEADS // KV_HEADS, HEAD_DIM)
        ad = F.scaled_dot_product_attention(qd, ck, cv).reshape(b, HEADS * HEAD_DIM)
        qp = q[b:].view(1, t, HEADS, HEAD_DIM).transpose(1, 2)
        kp = k[b:].view(1, t, KV_HEADS, HEAD_DIM).transpose(1, 2)
        vp = v[b:].view(1, t, KV_HEADS, HEAD_DIM).transpose(1, 2)
        kp = kp.repeat_interleave(HEADS // KV_HEADS, 1)
        vp = vp.repeat_interleave(HEADS // KV_HEADS, 1)
        ap = F.scaled_dot_product_attention(qp, kp, vp, is_causal=True)
        ap = ap.transpose(1, 2).reshape(t, HEADS * HEAD_DIM)
        x = x + torch.cat([ad, ap]) @ layer["o"]
        g, u = (_rms(x) @ layer["up"]).chunk(2, -1)
        x = x + (F.silu(g) * u) @ layer["down"]
    return _rms(torch.cat([x[:b], x[-1:]])) @ head  # the decode tokens and the chunk's last


def _chunk_forward(x: torch.Tensor, layers: list[dict[str, torch.Tensor]], head: torch.Tensor,
                   prefix: list[tuple[torch.Tensor, torch.Tensor]], mask: object
                   ) -> torch.Tensor:
    """x: [1, P, hidden], a prompt chunk after a cached prefix of C tokens ``prefix``
    ([1, KV_HEADS, C, HEAD_DIM] per layer); each token attends to the prefix and to the
    chunk's tokens before it (``mask``: bottom-right causal over C + P keys)."""
    _, t, _ = x.shape
    for i, layer in enumerate(layers):
        h = _rms(x) @ layer["qkv"]
        q, k, v = h.split([HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM], -1)
        q = q.view(1, t, HEADS, HEAD_DIM).transpose(1, 2)
        k = torch.cat([prefix[i][0], k.view(1, t, KV_HEADS, HEAD_DIM).transpose(1, 2)], 2)
        v = torch.cat([prefix[i][1], v.view(1, t, KV_HEADS, HEAD_DIM).transpose(1, 2)], 2)
        k = k.repeat_interleave(HEADS // KV_HEADS, 1)
        v = v.repeat_interleave(HEADS // KV_HEADS, 1)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + a.transpose(1, 2).reshape(1, t, HEADS * HEAD_DIM) @ layer["o"]
        g, u = (_rms(x) @ layer["up"]).chunk(2, -1)
        x = x + (F.silu(g) * u) @ layer["down"]
    return _rms(x[:, -1]) @ head


def _fit_relative(a: torch.Tensor, y: torch.Tensor) -> tuple[list[float], list[float], float]:
    """Least squares on relative error: the coefficients, the fitted values and the worst
    row's relative error."""
    coef = torch.linalg.lstsq(a / y.unsqueeze(1), torch.ones_like(y).unsqueeze(1)
                              ).solution.squeeze(1)
    fit = (a @ coef).tolist()
    worst = max(abs(f / m - 1) for f, m in zip(fit, y.tolist(), strict=True))
    return coef.tolist(), fit, worst


def decode_fit(layers: list[dict[str, torch.Tensor]], head: torch.Tensor,
               batches: list[int], contexts: list[int], iters: int,
               dtype: torch.dtype, min_batch: int) -> list[float] | None:
    """Time decode steps over batches x contexts and fit the simulator's decode model to
    the rows of ``min_batch`` sequences or more; returns ``[decode_base_s,
    decode_per_seq_s, decode_per_context_token_s]``."""
    kv_bytes_per_token = LAYERS * 2 * KV_HEADS * HEAD_DIM * torch.finfo(dtype).bits // 8
    print("\n| batch | context | decode step (ms) |")
    print("| ---: | ---: | ---: |")
    rows: list[tuple[int, int, float]] = []
    for c in contexts:
        for b in batches:
            free, _ = torch.cuda.mem_get_info()
            if b * c * kv_bytes_per_token > 0.6 * free:
                print(f"| {b} | {c} | (left out: {b * c * kv_bytes_per_token / 2**30:.0f} GiB "
                      f"of KV cache) |")
                continue
            kv = [(torch.randn(b, KV_HEADS, c, HEAD_DIM, device="cuda", dtype=dtype),
                   torch.randn(b, KV_HEADS, c, HEAD_DIM, device="cuda", dtype=dtype))
                  for _ in range(LAYERS)]
            x = torch.randn(b, 1, HIDDEN, device="cuda", dtype=dtype)
            with torch.no_grad():
                step = _time_graph(functools.partial(_forward, x, layers, head, kv, False),
                                   iters)
            rows.append((b, c, step))
            print(f"| {b} | {c} | {step * 1e3:.2f} |", flush=True)
            del kv, x
            torch.cuda.empty_cache()
    fitted = [row for row in rows if row[0] >= min_batch]
    if len(fitted) < 3 or len({c for _, c, _ in fitted}) < 2:
        print(f"(no fit: it needs three rows of {min_batch} sequences or more over two "
              "context lengths)")
        return None
    a = torch.tensor([[1.0, b, b * c] for b, c, _ in fitted], dtype=torch.float64)
    y = torch.tensor([t for _, _, t in fitted], dtype=torch.float64)
    coef, _, worst = _fit_relative(a, y)
    print(f"\ndecode fit (rows of {min_batch} sequences or more): base {coef[0]:.3e} s, "
          f"per sequence {coef[1]:.3e} s, per context token {coef[2]:.3e} s; worst fitted "
          f"row off by {worst:.1%}")
    print("| batch | context | measured (ms) | fit (ms) | simulator defaults (ms) |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for b, c, t in rows:
        f = coef[0] + coef[1] * b + coef[2] * b * c
        print(f"| {b}{'' if b >= min_batch else ' (not fitted)'} | {c} | {t * 1e3:.2f} | "
              f"{f * 1e3:.2f} | {_sim_iteration_s(b, c, 0) * 1e3:.2f} |")
    return coef


def chunked_table(layers: list[dict[str, torch.Tensor]], head: torch.Tensor,
                  pairs: list[tuple[int, int]], dtype: torch.dtype,
                  base: float | None = None) -> list[float] | None:
    """Time P-token chunks after C cached tokens and fit the three-term prefill model
    (``base`` given: with the base fixed at it); returns ``[base, per_token, attention]``."""
    from torch.nn.attention.bias import causal_lower_right

    print("\n| chunk P | cached prefix C | measured (ms) | query-key pairs P*(C+P/2) |")
    print("| ---: | ---: | ---: | ---: |")
    rows: list[tuple[int, int, float]] = []
    for t, c in pairs:
        prefix = [(torch.randn(1, KV_HEADS, c, HEAD_DIM, device="cuda", dtype=dtype),
                   torch.randn(1, KV_HEADS, c, HEAD_DIM, device="cuda", dtype=dtype))
                  for _ in range(LAYERS)]
        x = torch.randn(1, t, HIDDEN, device="cuda", dtype=dtype)
        mask = causal_lower_right(t, c + t)
        fn = functools.partial(_chunk_forward, x, layers, head, prefix, mask)
        with torch.no_grad():
            try:
                cost = _time_graph(fn, 10)
            except RuntimeError as exc:  # a mask the graph capture refuses: time it eagerly
                print(f"(no CUDA graph: {str(exc).splitlines()[0]})")
                cost = _time_eager(fn, 10)
        rows.append((t, c, cost))
        print(f"| {t} | {c} | {cost * 1e3:.2f} | {t * (c + t / 2):,.0f} |", flush=True)
        del prefix
        torch.cuda.empty_cache()
    if len(rows) < 3:
        return None
    a = torch.tensor([[1.0, t, t * (c + t / 2)] for t, c, _ in rows], dtype=torch.float64)
    y = torch.tensor([cost for _, _, cost in rows], dtype=torch.float64)
    if base is None:
        coef, fit, worst = _fit_relative(a, y)
    else:  # the rest after the fixed base, each row still weighed by its measured time
        rest = torch.linalg.lstsq(a[:, 1:] / y.unsqueeze(1),
                                  (1 - base / y).unsqueeze(1)).solution.squeeze(1)
        coef = [base, *rest.tolist()]
        fit = (a @ torch.tensor(coef, dtype=torch.float64)).tolist()
        worst = max(abs(f / m - 1) for f, m in zip(fit, y.tolist(), strict=True))
    print(f"\nfit: base {coef[0]:.3e} s, per token {coef[1]:.3e} s, "
          f"attention {coef[2]:.3e} s per query-key pair; worst row off by {worst:.1%}")
    print("| chunk P | cached prefix C | measured (ms) | fit (ms) | simulator (ms) |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for (t, c, cost), f in zip(rows, fit, strict=True):
        print(f"| {t} | {c} | {cost * 1e3:.2f} | {f * 1e3:.2f} | "
              f"{_sim_iteration_s(0, 0, t, c) * 1e3:.2f} |")
    return coef


#: the simulator's defaults (executors/engines/_model.py, docs/engines.md)
SIM_DECODE_BASE_S, SIM_PER_SEQ_S, SIM_PER_CONTEXT_TOKEN_S = 0.00704, 1.12e-5, 4.3e-8
SIM_PREFILL_PER_TOKEN_S, SIM_PREFILL_ATTENTION_S = 2.0e-5, 2.4e-9


def _sim_iteration_s(batch: int, context: int, prompt_tokens: int, cached: int = 0) -> float:
    """The simulator's time for ``batch`` decodes and a ``prompt_tokens`` chunk after
    ``cached`` tokens whose KV exists."""
    return (SIM_DECODE_BASE_S + SIM_PER_SEQ_S * batch + SIM_PER_CONTEXT_TOKEN_S * batch * context
            + SIM_PREFILL_PER_TOKEN_S * prompt_tokens
            + SIM_PREFILL_ATTENTION_S * prompt_tokens * (cached + prompt_tokens / 2))


def mixed_table(layers: list[dict[str, torch.Tensor]], head: torch.Tensor, context: int,
                pairs: list[tuple[int, int]], iters: int, dtype: torch.dtype) -> None:
    print("\n| decode batch | prompt chunk | decode alone (ms) | chunk alone (ms) "
          "| mixed iteration (ms) | simulator (ms) | simulator / measured |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for b, t in pairs:
        kv = [(torch.randn(b, KV_HEADS, context, HEAD_DIM, device="cuda", dtype=dtype),
               torch.randn(b, KV_HEADS, context, HEAD_DIM, device="cuda", dtype=dtype))
              for _ in range(LAYERS)]
        xd = torch.randn(b, 1, HIDDEN, device="cuda", dtype=dtype)
        xp = torch.randn(1, t, HIDDEN, device="cuda", dtype=dtype)
        with torch.no_grad():
            alone = _time_graph(functools.partial(_forward, xd, layers, head, kv, False), iters)
            chunk = _time_graph(functools.partial(_forward, xp, layers, head, None, True), 10)
            mixed = _time_graph(functools.partial(_mixed_forward, xd, xp, layers, head, kv),
                                iters)
        model = _sim_iteration_s(b, context, t)
        print(f"| {b} | {t} | {alone * 1e3:.2f} | {chunk * 1e3:.2f} | {mixed * 1e3:.2f} | "
              f"{model * 1e3:.2f} | {model / mixed:.2f} |", flush=True)
        del kv
        torch.cuda.empty_cache()


def _time_eager(fn: object, iters: int) -> float:
    for _ in range(3):
        fn()  # type: ignore[operator]
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iters):
        fn()  # type: ignore[operator]
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / iters


def _time_graph(fn: object, iters: int) -> float:
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            fn()  # type: ignore[operator]
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()  # type: ignore[operator]
    for _ in range(3):
        graph.replay()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iters):
        graph.replay()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / iters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--context", type=int, default=1024)
    parser.add_argument("--batches", default="1,8,16,32,64,128,256")
    parser.add_argument("--prefill", default="512,2048,8192")
    parser.add_argument("--iters", type=int, default=50)
    parser.add_argument("--mixed", default="",
                        help="decode-batch:prompt-chunk pairs timed as one iteration, "
                             "e.g. 32:512,64:2048")
    parser.add_argument("--chunked", default="",
                        help="chunk:cached-prefix pairs, each a prompt chunk after that many "
                             "cached tokens, e.g. 512:0,512:7680; fits the prefill model")
    parser.add_argument("--fit-decode", default="",
                        help="context lengths (two or more) at which every --batches batch "
                             "is timed to fit the decode model, e.g. 1024,4096")
    parser.add_argument("--fit-min-batch", type=int, default=8,
                        help="fit the decode model to batches of this many sequences or "
                             "more (PyTorch's SDPA decode of a few long sequences uses few "
                             "of the GPU's multiprocessors, unlike vLLM's split-KV decode)")
    parser.add_argument("--only-mixed", action="store_true",
                        help="skip the decode and prefill tables")
    parser.add_argument("--only-chunked", action="store_true",
                        help="only the --chunked table")
    args = parser.parse_args()
    dtype = torch.bfloat16
    torch.manual_seed(0)
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}, bf16, "
          f"Llama-3-8B shapes, context {args.context} tokens per sequence\n")
    layers = _layers(dtype)
    head = torch.randn(HIDDEN, VOCAB, device="cuda", dtype=dtype) * 0.02
    pairs = [(int(b), int(t)) for b, t in
             (pair.split(":") for pair in args.mixed.split(",") if pair)]
    chunked = [(int(t), int(c)) for t, c in
               (pair.split(":") for pair in args.chunked.split(",") if pair)]
    if args.fit_decode:
        batches = [int(b) for b in args.batches.split(",")]
        decode = decode_fit(layers, head, batches,
                            [int(c) for c in args.fit_decode.split(",")], args.iters, dtype,
                            args.fit_min_batch)
        prefill = (chunked_table(layers, head, chunked, dtype,
                                 base=decode[0] if decode else None) if chunked else None)
        if decode is not None and prefill is not None:
            print("\n`sim-engine` options for this GPU (Llama-3-8B shapes, bf16):\n")
            print(f"decode_base_s: {decode[0]:.3g}\ndecode_per_seq_s: {decode[1]:.3g}\n"
                  f"decode_per_context_token_s: {decode[2]:.3g}\n"
                  f"prefill_per_token_s: {prefill[1]:.3g}\n"
                  f"prefill_attention_s: {prefill[2]:.3g}")
        return
    if args.only_chunked:
        chunked_table(layers, head, chunked, dtype)
        return
    if args.only_mixed:
        mixed_table(layers, head, args.context, pairs, args.iters, dtype)
        return
    print("| batch | decode step (ms) | tokens/s (batch / step) |")
    print("| ---: | ---: | ---: |")
    for b in (int(s) for s in args.batches.split(",")):
        kv = [(torch.randn(b, KV_HEADS, args.context, HEAD_DIM, device="cuda", dtype=dtype),
               torch.randn(b, KV_HEADS, args.context, HEAD_DIM, device="cuda", dtype=dtype))
              for _ in range(LAYERS)]
        x = torch.randn(b, 1, HIDDEN, device="cuda", dtype=dtype)
        with torch.no_grad():
            fn = functools.partial(_forward, x, layers, head, kv, False)
            step = _time_graph(fn, args.iters)
        print(f"| {b} | {step * 1e3:.2f} | {b / step:,.0f} |", flush=True)
        del kv, fn
        torch.cuda.empty_cache()
    print("\n| prompt tokens | prefill (ms) | prompt tokens/s |")
    print("| ---: | ---: | ---: |")
    for t in (int(s) for s in args.prefill.split(",")):
        x = torch.randn(1, t, HIDDEN, device="cuda", dtype=dtype)
        with torch.no_grad():
            cost = _time_graph(functools.partial(_forward, x, layers, head, None, True), 10)
        print(f"| {t} | {cost * 1e3:.1f} | {t / cost:,.0f} |", flush=True)
        torch.cuda.empty_cache()
    if pairs:
        mixed_table(layers, head, args.context, pairs, args.iters, dtype)
    if chunked:
        chunked_table(layers, head, chunked, dtype)


if __name__ == "__main__":
    main()
