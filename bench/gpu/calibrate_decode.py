"""Measure the decode-step and prefill cost of a Llama-3-8B-shaped model on this GPU.

Needs only PyTorch and a CUDA GPU (no vLLM, no weights: the weights are random, which
does not change the time of a matrix product). Prints markdown tables.

What is timed, per engine iteration, with CUDA graphs (as vLLM does for decode):
32 layers of RMSNorm, the fused QKV projection (4096 -> 4096 + 2x1024, GQA 8 KV heads),
attention over a KV cache of ``--context`` tokens per sequence
(``scaled_dot_product_attention``), the output projection, RMSNorm, the SwiGLU MLP
(4096 -> 2x14336 -> 4096), and the LM head (128256). Rotary embeddings and sampling
are left out (element-wise, small). The shapes are Llama-3-8B's ``config.json``.

Use: ``python bench/gpu/calibrate_decode.py [--context 1024] [--batches 1,8,32,64,128,256]``
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
    args = parser.parse_args()
    dtype = torch.bfloat16
    torch.manual_seed(0)
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}, bf16, "
          f"Llama-3-8B shapes, context {args.context} tokens per sequence\n")
    layers = _layers(dtype)
    head = torch.randn(HIDDEN, VOCAB, device="cuda", dtype=dtype) * 0.02
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


if __name__ == "__main__":
    main()
