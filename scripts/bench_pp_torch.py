#!/usr/bin/env python3
"""PyTorch side of `colossal bench nccl-pp`: torch.distributed.pipelining on the same models, splits and batches.

  torchrun --nproc-per-node 2 scripts/bench_pp_torch.py [--models vit_huge_clip_336,gpt_medium]
      [--schedules gpipe,1f1b,interleaved] [--micro-batches 8] [--images 64] [--sequences 16] [--warmup 3] [--steps 5]

Two ranks, one stage per rank (ScheduleGPipe, Schedule1F1B) or two (ScheduleInterleaved1F1B: rank r holds parts
r and r + 2 of 4). Models as scripts/bench_gpu_torch.py and bench_ddp_torch.py build them (timm
vit_huge_patch14_clip_336 with 1000 classes; the GPT-2-medium-shaped Gpt), parameters in bf16, AdamW (lr 1e-4,
weight decay 0.1). Global batch per step: 64 images of 336^2 or 16 x 1024 tokens, in 8 micro-batches.

Splits are the Java bench's: the blocks are cut so that every part holds equal work, an LM head counting as
vocab / (12 * width) blocks (the ViT's head counts 0); part k starts at block floor(k * total / parts + 0.5).

Definitions, as the Java side (io.colossal4j.cli.NcclPpBench):
  step_ms   the whole training step (schedule.step, then optimizer.step and zero_grad), slowest rank, mean of --steps
  sched_ms  the schedule's part of it (schedule.step up to a device synchronisation), slowest rank
  busy_ms   the same stage(s) running the same m forwards and backwards alone, without communication
  bubble    1 - busy_ms / sched_ms per stage; theory (p-1)/(v*m + p-1), the idle fraction of the ideal schedule
  peak_mib  torch.cuda.max_memory_allocated during the measured steps
  inpipe_bubble_s0/s1 are left empty (the Java side measures them with CUDA events inside its pipeline)
Rank 0 prints `# ...` comments and CSV rows with the Java bench's columns, impl = pytorch.
"""
import argparse
import copy
import gc
import inspect
import math
import os
import sys
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.distributed.pipelining import PipelineStage, Schedule1F1B, ScheduleGPipe, ScheduleInterleaved1F1B

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_gpu_torch import Gpt  # noqa: E402

HEADER = ("impl,model,schedule,p,v,m,micro_batch,step_ms,samples_per_s,sched_ms,busy_ms_s0,busy_ms_s1,"
          "bubble_s0,bubble_s1,bubble_mean,theory,peak_mib_s0,peak_mib_s1,inpipe_bubble_s0,inpipe_bubble_s1")
P = 2


class VitPart(torch.nn.Module):
    """Blocks [lo, hi) of a timm VisionTransformer; the first part adds the patch and position embedding (class token,
    pre-norm), the last the final norm, token pooling and head: the zoo ViT's units."""

    def __init__(self, vit, lo, hi, first, last):
        super().__init__()
        self.first, self.last = first, last
        if first:
            self.patch_embed, self.cls_token, self.pos_embed = vit.patch_embed, vit.cls_token, vit.pos_embed
            self.pos_drop = vit.pos_drop
            self.patch_drop = getattr(vit, "patch_drop", torch.nn.Identity())
            self.norm_pre = getattr(vit, "norm_pre", torch.nn.Identity())
        self.blocks = torch.nn.Sequential(*[vit.blocks[i] for i in range(lo, hi)])
        if last:
            self.norm, self.head = vit.norm, vit.head
            self.fc_norm = getattr(vit, "fc_norm", torch.nn.Identity())
            self.head_drop = getattr(vit, "head_drop", torch.nn.Identity())
            self.pool = vit.global_pool

    def forward(self, x):
        if self.first:
            x = self.patch_embed(x)
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
            x = self.norm_pre(self.patch_drop(self.pos_drop(x)))
        x = self.blocks(x)
        if self.last:
            x = self.norm(x)
            x = x[:, 0] if self.pool == "token" else x.mean(dim=1)
            x = self.head(self.head_drop(self.fc_norm(x)))
        return x


class GptPart(torch.nn.Module):
    """Blocks [lo, hi) of bench_gpu_torch.Gpt; the first part adds the token and position embeddings, the last ln_f and
    the LM head."""

    def __init__(self, gpt, lo, hi, first, last):
        super().__init__()
        self.first, self.last = first, last
        if first:
            self.wte, self.wpe = gpt.wte, gpt.wpe
        self.h = torch.nn.ModuleList(gpt.h[i] for i in range(lo, hi))
        if last:
            self.ln_f, self.lm_head = gpt.ln_f, gpt.lm_head

    def forward(self, x):
        if self.first:
            x = self.wte(x) + self.wpe(torch.arange(x.shape[1], device=x.device))
        for blk in self.h:
            x = blk(x)
        if self.last:
            x = self.lm_head(self.ln_f(x))
        return x


def cuts(n_blocks, head, parts):
    """Block index where each part begins (part 0 at 0), as PipelineStepTimer.starts in Java."""
    total = n_blocks + head
    return [0] + [min(n_blocks - (parts - k), max(k, math.floor(k * total / parts + 0.5))) for k in range(1, parts)] + [n_blocks]


def build(name):
    """The whole model in f32 on the CPU (each rank copies its parts to its GPU in bf16)."""
    torch.manual_seed(0)
    if name == "vit_huge_clip_336":
        import timm
        return timm.create_model("vit_huge_patch14_clip_336", pretrained=False, num_classes=1000)
    if name == "gpt_medium":
        return Gpt()
    raise SystemExit(f"unknown model {name}; valid: vit_huge_clip_336, gpt_medium")


def parts_of(model, name, parts):
    """Cut points and a factory for part k (a bf16 copy on the current GPU) of `model`."""
    gpt = name.startswith("gpt")
    n = len(model.h) if gpt else len(model.blocks)
    head = model.lm_head.out_features / (12.0 * model.lm_head.in_features) if gpt else 0.0
    at = cuts(n, head, parts)
    kind = GptPart if gpt else VitPart

    def make(k):
        part = kind(model, at[k], at[k + 1], k == 0, k == parts - 1)
        return copy.deepcopy(part).to(device="cuda", dtype=torch.bfloat16)
    return at, make


def data(name, model, args):
    """The global batch (inputs, targets) and the shape of the activations between parts (batch dim = micro-batch)."""
    g = torch.Generator(device="cuda").manual_seed(3)
    mb = (args.sequences if name.startswith("gpt") else args.images) // args.micro_batches
    if name.startswith("gpt"):
        vocab, t, d = model.lm_head.out_features, model.wpe.num_embeddings, model.lm_head.in_features
        ids = torch.randint(0, vocab, (args.sequences, t), device="cuda", generator=g)
        nxt = torch.randint(0, vocab, (args.sequences, t), device="cuda", generator=g)
        return ids, nxt, (mb, t, d)
    images = torch.rand(args.images, 3, 336, 336, device="cuda", dtype=torch.bfloat16, generator=g)
    labels = torch.randint(0, 1000, (args.images,), device="cuda", generator=g)
    tokens = model.patch_embed.num_patches + getattr(model, "num_prefix_tokens", 1)
    return images, labels, (mb, tokens, model.embed_dim)


def loss_fn(out, tgt):
    return F.cross_entropy(out.reshape(-1, out.shape[-1]), tgt.reshape(-1))


def schedule_of(kind, stages, m):
    if kind == "gpipe":
        return ScheduleGPipe(stages[0], m, loss_fn=loss_fn)
    if kind == "1f1b":
        return Schedule1F1B(stages[0], m, loss_fn=loss_fn)
    if kind == "interleaved":
        return ScheduleInterleaved1F1B(stages, m, loss_fn=loss_fn)
    raise SystemExit(f"unknown schedule {kind}; valid: gpipe, 1f1b, interleaved")


def alone(modules, mine, parts, inputs, targets, between, args):
    """Mean ms of this rank's parts running every micro-batch's forward and backward without communication."""
    m = args.micro_batches
    x_mb, y_mb = inputs.tensor_split(m), targets.tensor_split(m)
    fed = {k: torch.rand(between, device="cuda", dtype=torch.bfloat16) for k in mine if k > 0}
    total = 0.0
    for rep in range(-1, args.steps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for i in range(m):
            for mod, k in zip(modules, mine):
                inp = x_mb[i] if k == 0 else fed[k].detach().requires_grad_()
                out = mod(inp)
                if k == parts - 1:
                    (loss_fn(out, y_mb[i]) / m).backward()
                else:
                    out.backward(torch.full_like(out, 1e-3))
        torch.cuda.synchronize()
        if rep >= 0:
            total += time.perf_counter() - t0
        for mod in modules:
            mod.zero_grad(set_to_none=True)
    return total * 1e3 / args.steps


def measure(name, model, kind, args, rank):
    """One (model, schedule) case on this rank: (step_ms, sched_ms, busy_ms, peak_bytes, cut points)."""
    v = 2 if kind == "interleaved" else 1
    parts = P * v
    at, make = parts_of(model, name, parts)
    mine = list(range(rank, parts, P))
    modules = [make(k) for k in mine]
    dev = torch.device("cuda", torch.cuda.current_device())
    stages = [PipelineStage(mod, k, parts, dev) for mod, k in zip(modules, mine)]
    sched = schedule_of(kind, stages, args.micro_batches)
    opt = torch.optim.AdamW([p for mod in modules for p in mod.parameters()], lr=1e-4, weight_decay=0.1)
    inputs, targets, between = data(name, model, args)
    extra = {"return_outputs": False} if "return_outputs" in inspect.signature(sched.step).parameters else {}

    def run_schedule():
        if rank == 0:
            sched.step(inputs, **extra)
        else:
            sched.step(target=targets, losses=[], **extra)

    for _ in range(args.warmup):
        run_schedule()
        opt.step()
        opt.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    step = sch = 0.0
    for _ in range(args.steps):
        dist.barrier()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        run_schedule()
        torch.cuda.synchronize()
        t1 = time.perf_counter()
        opt.step()
        opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        step += time.perf_counter() - t0
        sch += t1 - t0
    peak = torch.cuda.max_memory_allocated()
    busy = alone(modules, mine, parts, inputs, targets, between, args)
    return step * 1e3 / args.steps, sch * 1e3 / args.steps, busy, peak, at   # the caller frees this case's memory


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="vit_huge_clip_336,gpt_medium")
    ap.add_argument("--schedules", default="gpipe,1f1b,interleaved")
    ap.add_argument("--micro-batches", type=int, default=8)
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--sequences", type=int, default=16)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=5)
    args = ap.parse_args()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    torch.cuda.set_device(local)
    dist.init_process_group("nccl", device_id=torch.device("cuda", local))
    rank, world = dist.get_rank(), dist.get_world_size()
    if world != P:
        raise SystemExit(f"run with torchrun --nproc-per-node {P} (got {world} ranks)")
    if rank == 0:
        print(f"# torch {torch.__version__}, {world} x {torch.cuda.get_device_name()}; {args.warmup} warm-up steps, mean of {args.steps}")
        print(HEADER, flush=True)
    for name in args.models.split(","):
        model = build(name)
        for kind in args.schedules.split(","):
            step, sch, busy, peak, at = measure(name, model, kind, args, rank)
            gc.collect()
            torch.cuda.empty_cache()
            mine = torch.tensor([step, sch, busy, float(peak)], device="cuda", dtype=torch.float64)
            both = [torch.zeros_like(mine) for _ in range(world)]
            dist.all_gather(both, mine)
            if rank == 0:
                r = [t.tolist() for t in both]
                v = 2 if kind == "interleaved" else 1
                m = args.micro_batches
                samples = args.sequences if name.startswith("gpt") else args.images
                step_ms, sched_ms = max(x[0] for x in r), max(x[1] for x in r)
                bub = [1 - x[2] / sched_ms for x in r]
                theory = (P - 1) / (v * m + P - 1)
                print(f"# {name} {kind}: parts start at blocks {at[1:-1]} of {at[-1]}", flush=True)
                print(f"pytorch,{name},{kind},{P},{v},{m},{samples // m},{step_ms:.1f},{samples / (step_ms / 1e3):.1f},{sched_ms:.1f},"
                      f"{r[0][2]:.1f},{r[1][2]:.1f},{bub[0]:.3f},{bub[1]:.3f},{sum(bub) / 2:.3f},{theory:.3f},"
                      f"{r[0][3] / 2**20:.1f},{r[1][3] / 2**20:.1f},,", flush=True)   # in-pipeline bubble: Java only
        del model
        gc.collect()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
