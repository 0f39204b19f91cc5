#!/usr/bin/env python3
"""Writes the golden files of the PyTorch-fidelity tests (core/src/test/resources/golden/).

For a small timm ViT and a small timm ResNet, each trained 20 steps with SGD (momentum) and with AdamW,
in float64 on the CPU (deterministic), it saves: the initial state dict, the 20 input batches, the
per-step losses and the final state dict. Tensors are stored as float32 (the Java test converts them to
float64, so both sides start from identical values); losses as float64.

Run where PyTorch and timm are installed (the GPU host has both):
    python3 scripts/golden/make_golden.py --out core/src/test/resources/golden
"""
import argparse
import json
import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from timm.models.resnet import BasicBlock, ResNet
from timm.models.vision_transformer import VisionTransformer

STEPS, BATCH = 20, 4
OPTIMIZERS = {
    "sgd": dict(lr=0.05, momentum=0.9, weight_decay=1e-4),
    "adamw": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05),
}


def vit():
    cfg = dict(img_size=28, patch_size=4, in_chans=1, num_classes=10, embed_dim=64, depth=2, num_heads=2,
               mlp_ratio=2.0, qkv_bias=True, class_token=True, global_pool="token")
    return VisionTransformer(**cfg), cfg, (1, 28, 28)


def resnet():
    cfg = dict(layers=[1, 1, 1, 1], num_classes=10, in_chans=3, channels=(8, 16, 32, 64), stem_width=8)
    model = ResNet(block=BasicBlock, **cfg)
    cfg["channels"] = list(cfg["channels"])
    return model, cfg, (3, 16, 16)


def run(name, build, opt_name, out_dir):
    torch.manual_seed(1234)
    model, cfg, in_shape = build()
    model = model.double().train()
    init = {k: v.detach().clone() for k, v in model.state_dict().items()}
    params = list(model.parameters())
    hp = OPTIMIZERS[opt_name]
    opt = torch.optim.SGD(params, **hp) if opt_name == "sgd" else torch.optim.AdamW(params, **hp)
    gen = torch.Generator().manual_seed(99)
    tensors, losses = {}, []
    for step in range(STEPS):
        x = torch.randn((BATCH,) + in_shape, generator=gen).float()
        y = torch.randint(0, 10, (BATCH,), generator=gen)
        tensors[f"x.{step}"], tensors[f"y.{step}"] = x, y
        loss = F.cross_entropy(model(x.double()), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    for k, v in init.items():
        tensors[f"init.{k}"] = v.float() if v.is_floating_point() else v
    for k, v in model.state_dict().items():
        tensors[f"final.{k}"] = v.float() if v.is_floating_point() else v
    tensors["losses"] = torch.tensor(losses, dtype=torch.float64)
    meta = {"model": name, "config": json.dumps(cfg), "optimizer": opt_name, "hyper": json.dumps(hp),
            "steps": str(STEPS), "batch": str(BATCH), "torch": torch.__version__}
    path = os.path.join(out_dir, f"{name}_{opt_name}.safetensors")
    save_file({k: v.contiguous() for k, v in tensors.items()}, path, metadata=meta)
    print(f"{path}: losses {losses[0]:.6f} -> {losses[-1]:.6f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="core/src/test/resources/golden")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.use_deterministic_algorithms(True)
    for name, build in (("vit", vit), ("resnet", resnet)):
        for opt_name in OPTIMIZERS:
            run(name, build, opt_name, args.out)


if __name__ == "__main__":
    main()
