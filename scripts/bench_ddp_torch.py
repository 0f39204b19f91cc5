#!/usr/bin/env python3
"""PyTorch DDP side of `colossal bench nccl-dp`: the same training steps, batches and timing.

  torchrun --nproc-per-node 1 scripts/bench_ddp_torch.py     # one GPU (no DDP wrapper)
  torchrun --nproc-per-node 2 scripts/bench_ddp_torch.py     # DDP over NCCL (25 MiB buckets, gradient views)

Models as scripts/bench_gpu_torch.py builds them (timm vit_huge_patch14_clip_336, 32 images of 336^2 per GPU;
the GPT-2-medium-shaped Gpt, 8 x 1024 tokens per GPU), parameters in bf16, AdamW; 2 warm-up steps, then the
mean of 5 between synchronisations. Rank 0 prints CSV `model,gpus,sync,step_ms,per_gpu_throughput` (the slowest
rank's time, as the Java side).
"""
import os
import sys
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_gpu_torch import Gpt  # noqa: E402


def step_ms(model, inp, tgt, ddp):
    model.train()
    if ddp:
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[torch.cuda.current_device()], bucket_cap_mb=25,
                                                          gradient_as_bucket_view=True)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1)

    def step():
        out = model(inp)
        F.cross_entropy(out.reshape(-1, out.shape[-1]), tgt).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(2):
        step()
    torch.cuda.synchronize()
    if ddp:
        dist.barrier()
    t0 = time.perf_counter()
    for _ in range(5):
        step()
    torch.cuda.synchronize()
    ms = torch.tensor([(time.perf_counter() - t0) * 1e3 / 5], device="cuda")
    if ddp:
        dist.all_reduce(ms, op=dist.ReduceOp.MAX)
    return ms.item()


def main():
    import timm
    local = int(os.environ.get("LOCAL_RANK", "0"))
    torch.cuda.set_device(local)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    ddp = world > 1
    if ddp:
        dist.init_process_group("nccl", device_id=torch.device("cuda", local))
    rank = dist.get_rank() if ddp else 0
    torch.manual_seed(0)
    rows = []
    vit = timm.create_model("vit_huge_patch14_clip_336", pretrained=False, num_classes=1000).cuda().to(torch.bfloat16)
    images = torch.rand(32, 3, 336, 336, device="cuda", dtype=torch.bfloat16)
    labels = torch.randint(0, 1000, (32,), device="cuda")
    ms = step_ms(vit, images, labels, ddp)
    rows.append(("vit_huge_clip_336", ms, 32 / (ms / 1e3)))
    del vit, images
    torch.cuda.empty_cache()
    gpt = Gpt().cuda().to(torch.bfloat16)
    ids = torch.randint(0, 50304, (8, 1024), device="cuda")
    nxt = torch.randint(0, 50304, (8 * 1024,), device="cuda")
    ms = step_ms(gpt, ids, nxt, ddp)
    rows.append(("gpt_medium", ms, 8 * 1024 / (ms / 1e3)))
    if rank == 0:
        print(f"# torch {torch.__version__}, {world} x {torch.cuda.get_device_name()}")
        for name, ms, thr in rows:
            print(f"pytorch,{name},{world},{'ddp' if ddp else '-'},{ms:.1f},{thr:.1f}")
    if ddp:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
