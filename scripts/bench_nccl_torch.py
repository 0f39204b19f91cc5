#!/usr/bin/env python3
"""torch.distributed (NCCL) side of `colossal bench nccl`: the same collectives, sizes and timing.

Launched by torchrun, one process per GPU:

  torchrun --nproc-per-node 2 scripts/bench_nccl_torch.py [--java java.csv] [--min-mib 1] [--max-mib 1024]

For each of all_reduce, reduce_scatter and all_gather on f32 tensors from --min-mib to --max-mib (steps of 4x):
3 warm-up operations, a barrier and device synchronisation, then `iters` operations back to back between two
synchronisations (the Java side's method); rank 0 prints CSV `op,bytes,time_us,algbw_gbs,busbw_gbs` with the
nccl-tests definitions (S = the larger buffer; busbw = algbw * 2(n-1)/n for all-reduce, (n-1)/n for the others).
With --java FILE (the CSV of `colossal bench nccl`) it then prints both side by side with the ratio
colossal4j / PyTorch of bus bandwidth (> 1: we are faster).
"""
import argparse
import csv
import os
import time

import torch
import torch.distributed as dist


def iters_for(nbytes):
    return 50 if nbytes <= 16 << 20 else 20 if nbytes <= 256 << 20 else 8


def measure(op, nbytes, world, device):
    n = nbytes // 4
    small = n // world
    big = torch.zeros(small * world, dtype=torch.float32, device=device)
    part = torch.zeros(small, dtype=torch.float32, device=device)

    def once():
        if op == "all_reduce":
            dist.all_reduce(big)
        elif op == "reduce_scatter":
            dist.reduce_scatter_tensor(part, big)
        else:
            dist.all_gather_into_tensor(big, part)

    for _ in range(3):
        once()
    dist.barrier()
    torch.cuda.synchronize()
    iters = iters_for(nbytes)
    t0 = time.perf_counter()
    for _ in range(iters):
        once()
    torch.cuda.synchronize()
    t = (time.perf_counter() - t0) / iters
    algbw = nbytes / t / 1e9
    busbw = algbw * (2 * (world - 1) / world if op == "all_reduce" else (world - 1) / world)
    return t, algbw, busbw


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--java", help="CSV written by `colossal bench nccl`, printed side by side")
    ap.add_argument("--min-mib", type=int, default=1)
    ap.add_argument("--max-mib", type=int, default=1024)
    args = ap.parse_args()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    torch.cuda.set_device(local)
    device = torch.device("cuda", local)
    dist.init_process_group("nccl", device_id=device)
    world, rank = dist.get_world_size(), dist.get_rank()
    rows = []
    for op in ("all_reduce", "reduce_scatter", "all_gather"):
        nbytes = args.min_mib << 20
        while nbytes <= args.max_mib << 20:
            t, algbw, busbw = measure(op, nbytes, world, device)
            rows.append((op, nbytes, t, algbw, busbw))
            nbytes *= 4
    if rank == 0:
        print(f"torch {torch.__version__}, NCCL {'.'.join(map(str, torch.cuda.nccl.version()))}, {world} x {torch.cuda.get_device_name(device)}")
        print("op,bytes,time_us,algbw_gbs,busbw_gbs")
        for op, nbytes, t, algbw, busbw in rows:
            print(f"{op},{nbytes},{t * 1e6:.1f},{algbw:.2f},{busbw:.2f}")
        if args.java:
            java = {}
            with open(args.java) as f:
                for r in csv.DictReader(line for line in f if not line.startswith("WARNING")):
                    java[(r["op"], int(r["bytes"]))] = float(r["busbw_gbs"])
            print()
            print(f"{'case':<16}{'size':>10}{'colossal4j GB/s':>18}{'PyTorch GB/s':>15}{'ratio':>8}")
            for op, nbytes, _, _, busbw in rows:
                ours = java.get((op, nbytes))
                size = f"{nbytes >> 20} MiB"
                if ours is None:
                    print(f"{op:<16}{size:>10}{'-':>18}{busbw:>15.1f}{'-':>8}")
                else:
                    print(f"{op:<16}{size:>10}{ours:>18.1f}{busbw:>15.1f}{ours / busbw:>8.2f}")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
