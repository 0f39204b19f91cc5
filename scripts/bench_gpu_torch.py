#!/usr/bin/env python3
"""PyTorch side of the GPU benchmarks (the Java side is io.colossal4j.backend.cuda.CudaBench).

Runs the same cases with the same shapes, dtypes and timing method (30 warm-up runs, then 7 groups of
10 back-to-back runs between CUDA events, median per run) and prints CSV lines `impl,case,shape,median_ms,tflops` (training steps: plus throughput and peak GiB). With --java FILE (the Java
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
import time

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


def memory_bound(rows):
    """The ViT-H block's memory-bound passes (CudaBench.memoryBound): a plain add, GELU forward, GELU backward plus
    fc1's bias gradient (the column sums of its result), layer norm forward, and its backward with the pending residual
    gradient added (what autograd does for a pre-norm block); the argmax over GPT-2's logits (top-1 accuracy)."""
    t, hidden, width = 32 * 577, 5120, 1280
    h, g = rand(t, hidden), rand(t, hidden)
    report(rows, "add_vit_mlp", f"{t}x{hidden}", timed(lambda: h + g))
    report(rows, "gelu_vit_fwd", f"{t}x{hidden}", timed(lambda: F.gelu(h)))
    report(rows, "gelu_vit_bwd_bias", f"{t}x{hidden}", timed(lambda: torch.ops.aten.gelu_backward(g, h).sum(0)))
    del h, g
    x, w, b, gy, pending = rand(t, width), rand(width), rand(width), rand(t, width), rand(t, width)
    report(rows, "layernorm_vit_fwd", f"{t}x{width}", timed(lambda: F.layer_norm(x, (width,), w, b, 1e-6)))
    _, mean, rstd = torch.ops.aten.native_layer_norm(x, (width,), w, b, 1e-6)

    def bwd_acc():
        gx, gw, gb = torch.ops.aten.native_layer_norm_backward(gy, x, (width,), mean, rstd, w, b, [True, True, True])
        return pending + gx
    report(rows, "layernorm_vit_bwd_acc", f"{t}x{width}", timed(bwd_acc))
    del x, gy, pending
    logits = rand(8 * 1024, 50304)
    report(rows, "argmax_gpt_logits", f"{8 * 1024}x50304", timed(lambda: logits.argmax(-1)))


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


PEAK_BF16_FLOPS = 989.4e12  # H200 SXM dense bf16, NVIDIA's datasheet (as GpuBench.java)


def step_flops(params, tokens, layers, seq, width):
    # 6·P·tokens + 12·L·T·d·tokens, as GpuBench.java
    return 6.0 * params * tokens + 12.0 * layers * seq * width * tokens


class GptBlock(torch.nn.Module):
    """GPT-2 block (pre-norm, fused qkv, GELU-tanh MLP), causal attention through SDPA."""

    def __init__(self, d, heads):
        super().__init__()
        self.ln_1, self.ln_2 = torch.nn.LayerNorm(d), torch.nn.LayerNorm(d)
        self.c_attn, self.c_proj = torch.nn.Linear(d, 3 * d), torch.nn.Linear(d, d)
        self.c_fc, self.mlp_proj = torch.nn.Linear(d, 4 * d), torch.nn.Linear(4 * d, d)
        self.heads = heads

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, d)
        x = x + self.c_proj(y)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class Gpt(torch.nn.Module):
    """GPT-2 medium shape as the zoo's gpt_medium: vocab 50304, context 1024, 24 layers, 16 heads, width 1024, untied head."""

    def __init__(self, vocab=50304, ctx=1024, layers=24, heads=16, d=1024):
        super().__init__()
        self.wte, self.wpe = torch.nn.Embedding(vocab, d), torch.nn.Embedding(ctx, d)
        self.h = torch.nn.ModuleList(GptBlock(d, heads) for _ in range(layers))
        self.ln_f, self.lm_head = torch.nn.LayerNorm(d), torch.nn.Linear(d, vocab, bias=False)

    def forward(self, ids):
        x = self.wte(ids) + self.wpe(torch.arange(ids.shape[1], device=ids.device))
        for blk in self.h:
            x = blk(x)
        return self.lm_head(self.ln_f(x))


def train_step(train_rows, name, shape, model, inp, tgt, flops, units, unit, amp=False):
    """Forward, cross-entropy, backward, AdamW: 2 warm-up steps, then the mean of 5 between synchronisations."""
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1)

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            out = model(inp)
        F.cross_entropy(out.reshape(-1, out.shape[-1]), tgt).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    for _ in range(2):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(5):
        step()
    torch.cuda.synchronize()
    ms = (time.perf_counter() - t0) * 1e3 / 5
    peak = torch.cuda.max_memory_allocated() / 2**30
    train_rows.append(("pytorch", name, shape, f"{ms:.3f}", f"{flops / ms / 1e9:.1f}", f"{units / (ms / 1e3):.1f}", f"{peak:.2f}"))
    print(",".join(train_rows[-1]), flush=True)
    print(f"# {name}: {units / (ms / 1e3):,.1f} {unit}, MFU {100 * flops / (ms / 1e3) / PEAK_BF16_FLOPS:.1f}%, peak {peak:.2f} GiB",
          file=sys.stderr)


def train_steps(train_rows):
    import timm
    batch = 32
    vit = timm.create_model("vit_huge_patch14_clip_336", pretrained=False, num_classes=1000).cuda().to(torch.bfloat16)
    params = sum(p.numel() for p in vit.parameters())
    images = torch.rand(batch, 3, 336, 336, device="cuda", dtype=torch.bfloat16)
    labels = torch.randint(0, 1000, (batch,), device="cuda")
    train_step(train_rows, "train_vit_huge", f"{batch}x3x336x336", vit, images, labels,
               step_flops(params, batch * 577, 32, 577, 1280), batch, "img/s")
    del vit, images
    torch.cuda.empty_cache()
    batch = 8
    gpt = Gpt().cuda().to(torch.bfloat16)
    params = sum(p.numel() for p in gpt.parameters())
    ids = torch.randint(0, 50304, (batch, 1024), device="cuda")
    nxt = torch.randint(0, 50304, (batch * 1024,), device="cuda")
    train_step(train_rows, "train_gpt_medium", f"{batch}x1024", gpt, ids, nxt, step_flops(params, batch * 1024, 24, 1024, 1024),
               batch * 1024, "tok/s")
    del gpt
    torch.cuda.empty_cache()
    gpt = Gpt().cuda()  # f32 master weights, bf16 autocast
    train_step(train_rows, "train_gpt_medium_amp", f"{batch}x1024", gpt, ids, nxt, step_flops(params, batch * 1024, 24, 1024, 1024),
               batch * 1024, "tok/s", amp=True)


def side_by_side_train(java_csv, train_rows):
    java = {(r["case"], r["shape"]): r for r in csv.DictReader(open(java_csv)) if r["case"].startswith("train_")}
    print(f"\n{'training step':18} {'shape':16} {'c4j ms':>8} {'torch ms':>9} {'ratio':>6} {'c4j /s':>10} {'torch /s':>10} "
          f"{'c4j MFU':>8} {'torch MFU':>9} {'c4j GiB':>8} {'torch GiB':>9}")
    for impl, name, shape, ms, tf, thr, peak in train_rows:
        r = java.get((name, shape))
        if r is None:
            continue
        mfu_j, mfu_t = float(r["tflops"]) * 1e12 / PEAK_BF16_FLOPS, float(tf) * 1e12 / PEAK_BF16_FLOPS
        print(f"{name:18} {shape:16} {float(r['median_ms']):8.1f} {float(ms):9.1f} {float(ms) / float(r['median_ms']):6.2f} "
              f"{float(r['throughput']):10.1f} {float(thr):10.1f} {100 * mfu_j:7.1f}% {100 * mfu_t:8.1f}% {float(r['peak_gib']):8.2f} {float(peak):9.2f}")


def side_by_side(java_csv, torch_rows):
    java = {(r["case"], r["shape"]): r for r in csv.DictReader(open(java_csv)) if not r["case"].startswith("train_")}
    peer = {}
    for impl, name, shape, ms, tf in torch_rows:
        peer[(name, shape)] = float(ms)
        if name.endswith("_sdpa_fwd") or name.endswith("_sdpa_fwd_bwd"):  # our attention is compared with SDPA
            for tag in ("", "_fused", "_fused2", "_fused_atomic", "_cudnn", "_cudnn_heur", "_cudnn_knobs"):  # composed, ours, cuDNN (autotuned, heuristics' first, knob variants)
                peer[(name.replace("_sdpa", tag), shape)] = float(ms)
    print(f"\n{'case':28} {'shape':22} {'colossal4j ms':>14} {'pytorch ms':>11} {'ratio':>6} {'c4j TFLOP/s':>12}")
    for (name, shape), r in java.items():
        p = peer.get((name, shape))
        ratio = f"{p / float(r['median_ms']):.2f}" if p else "-"
        print(f"{name:28} {shape:22} {float(r['median_ms']):14.3f} {p if p else float('nan'):11.3f} {ratio:>6} {r['tflops']:>12}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--java", help="CSV written by CudaBench, to print side by side")
    ap.add_argument("--skip-train", action="store_true", help="kernel cases only")
    ap.add_argument("--skip-kernels", action="store_true", help="training steps only")
    ap.add_argument("--only-attention", action="store_true", help="the attention kernel cases only")
    ap.add_argument("--only-memory-bound", action="store_true", help="the ViT-H block's memory-bound cases only")
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    print(f"# torch {torch.__version__}, {torch.cuda.get_device_name(0)}, cuda {torch.version.cuda}", file=sys.stderr)
    rows = []
    print("impl,case,shape,median_ms,tflops")
    if args.only_attention:
        attention(rows)
    elif args.only_memory_bound:
        memory_bound(rows)
    elif not args.skip_kernels:
        gemms(rows)
        layer_norms(rows)
        memory_bound(rows)
        attention(rows)
    train_rows = []
    if not args.skip_train and not args.only_attention and not args.only_memory_bound:
        train_steps(train_rows)
    if args.java:
        side_by_side(args.java, rows)
        side_by_side_train(args.java, train_rows)


if __name__ == "__main__":
    main()
