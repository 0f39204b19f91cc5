#!/usr/bin/env python3
"""PyTorch side of the GPU benchmarks (the Java side is io.colossal4j.backend.cuda.CudaBench).

Runs the same cases with the same shapes, dtypes and timing method (30 warm-up runs, then 7 groups of
10 back-to-back runs between CUDA events, median per run) and prints CSV lines `impl,case,shape,median_ms,tflops`. With --java FILE (the Java
bench's CSV) it prints both side by side with the ratio colossal4j / PyTorch (> 1: we are faster).

  python3 scripts/bench_gpu_torch.py                 # torch only
  python3 scripts/bench_gpu_torch.py --java j.csv    # side by side
"""
import argparse
import csv
import io
import math
import statistics
import sys

import torch
import torch.nn.functional as F

WARMUP, REPS, ITERS = 30, 7, 10


def timed(fn):
    for _ in range(WARMUP):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    ms = []
    for _ in range(REPS):
        start.record()
        for _ in range(ITERS):
            fn()
        end.record()
        end.synchronize()
        ms.append(start.elapsed_time(end) / ITERS)
    return statistics.median(ms)


def rand(*shape, requires_grad=False):
    # uniform in [-0.5, 0.5), like the Java side; never zeros
    return (torch.rand(*shape, device="cuda", dtype=torch.bfloat16) - 0.5).requires_grad_(requires_grad)


def report(rows, name, shape, ms, flops=0.0):
    rows.append(("pytorch", name, shape, f"{ms:.4f}", f"{flops / ms / 1e9:.1f}" if flops else ""))
    print(",".join(rows[-1]), flush=True)


def gemms(rows):
    vit, gpt = 32 * 577, 8 * 1024
    cases = [("gemm_square", 4096, 4096, 4096), ("gemm_square", 8192, 8192, 8192),
             ("gemm_vit_qkv", vit, 3 * 1280, 1280), ("gemm_vit_fc1", vit, 5120, 1280), ("gemm_vit_fc2", vit, 1280, 5120),
             ("gemm_gpt_qkv", gpt, 3 * 1024, 1024), ("gemm_gpt_fc1", gpt, 4096, 1024), ("gemm_gpt_fc2", gpt, 1024, 4096)]
    for name, m, n, k in cases:
        x, w = rand(m, k), rand(n, k)
        ms = timed(lambda: torch.matmul(x, w.t()))
        report(rows, name, f"{m}x{n}x{k}", ms, 2.0 * m * n * k)
        del x, w


def layer_norms(rows):
    for name, r, n in [("layernorm_vit", 32 * 577, 1280), ("layernorm_gpt", 8 * 1024, 1024)]:
        x, w, b = rand(r, n, requires_grad=True), rand(n, requires_grad=True), rand(n, requires_grad=True)
        gy = rand(r, n)
        with torch.no_grad():
            report(rows, name + "_fwd", f"{r}x{n}", timed(lambda: F.layer_norm(x, (n,), w, b, 1e-6)))

        def fwd_bwd():
            y = F.layer_norm(x, (n,), w, b, 1e-6)
            torch.autograd.backward(y, gy)
        report(rows, name + "_fwd_bwd", f"{r}x{n}", timed(fwd_bwd))


def attention(rows):
    for name, b, h, t, d in [("attention_vit", 32, 16, 577, 80), ("attention_gpt", 8, 16, 1024, 64)]:
        q, k, v = (rand(b, h, t, d, requires_grad=True) for _ in range(3))
        go = rand(b, h, t, d)
        flops = 4.0 * b * h * t * t * d
        shape = f"{b}x{h}x{t}x{d}"
        for label, fn in [("sdpa", lambda: F.scaled_dot_product_attention(q, k, v)),
                          ("math", lambda: torch.matmul(torch.softmax(torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d), -1), v))]:
            with torch.no_grad():
                report(rows, f"{name}_{label}_fwd", shape, timed(fn), flops)

            def fwd_bwd():
                torch.autograd.backward(fn(), go)
            report(rows, f"{name}_{label}_fwd_bwd", shape, timed(fwd_bwd), 3 * flops)
        del q, k, v, go
    b, h, t, d = 8, 16, 1024, 64  # the GPT shape, causal (as GPT trains)
    q, k, v = (rand(b, h, t, d, requires_grad=True) for _ in range(3))
    go = rand(b, h, t, d)
    flops = 4.0 * b * h * t * t * d * 0.5
    with torch.no_grad():
        report(rows, "attention_gpt_causal_sdpa_fwd", f"{b}x{h}x{t}x{d}", timed(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True)), flops)
    report(rows, "attention_gpt_causal_sdpa_fwd_bwd", f"{b}x{h}x{t}x{d}",
           timed(lambda: torch.autograd.backward(F.scaled_dot_product_attention(q, k, v, is_causal=True), go)), 3 * flops)
    del q, k, v, go


def side_by_side(java_csv, torch_rows):
    java = {(r["case"], r["shape"]): r for r in csv.DictReader(open(java_csv))}
    peer = {}
    for impl, name, shape, ms, tf in torch_rows:
        peer[(name, shape)] = float(ms)
        if name.endswith("_sdpa_fwd") or name.endswith("_sdpa_fwd_bwd"):  # our attention is compared with SDPA
            peer[(name.replace("_sdpa", ""), shape)] = float(ms)
            peer[(name.replace("_sdpa", "_fused"), shape)] = float(ms)
    print(f"\n{'case':28} {'shape':22} {'colossal4j ms':>14} {'pytorch ms':>11} {'ratio':>6} {'c4j TFLOP/s':>12}")
    for (name, shape), r in java.items():
        p = peer.get((name, shape))
        ratio = f"{p / float(r['median_ms']):.2f}" if p else "-"
        print(f"{name:28} {shape:22} {float(r['median_ms']):14.3f} {p if p else float('nan'):11.3f} {ratio:>6} {r['tflops']:>12}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--java", help="CSV written by CudaBench, to print side by side")
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    print(f"# torch {torch.__version__}, {torch.cuda.get_device_name(0)}, cuda {torch.version.cuda}", file=sys.stderr)
    rows = []
    print("impl,case,shape,median_ms,tflops")
    gemms(rows)
    layer_norms(rows)
    attention(rows)
    if args.java:
        side_by_side(args.java, rows)


if __name__ == "__main__":
    main()
