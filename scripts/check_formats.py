#!/usr/bin/env python3
"""Cross-checks colossal4j's file formats against the Python reference implementations.

Run on a machine with PyTorch, safetensors, timm and tensorboard (the GPU host):
  python scripts/check_formats.py IN_DIR OUT_DIR
IN_DIR holds java.safetensors and tb/events.out.tfevents.* written by colossal4j (see
SafetensorsTest / TensorBoardWriterTest for their contents). The script checks that the reference
readers accept them with the expected values, then writes golden files made by the reference writers
into OUT_DIR (python.safetensors, tb/events.out.tfevents.*), checked in as
core/src/test/resources/io/colossal4j/golden/python.safetensors and python.tfevents for the Java tests.
IN_DIR is written by core/src/test/java/io/colossal4j/train/checkpoint/FormatSamples.java.
"""
import glob
import os
import sys

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

DTYPES = {"f32": torch.float32, "f64": torch.float64, "bf16": torch.bfloat16, "f16": torch.float16,
          "i32": torch.int32, "i64": torch.int64, "bool": torch.bool}


def expected(name):
    i = torch.arange(6, dtype=torch.float64)
    if name == "bool":
        v = (i % 2) != 0
    elif DTYPES[name].is_floating_point:
        v = i * 0.5 - 1
    else:
        v = i - 2
    return v.to(DTYPES[name]).reshape(2, 3)


def check_safetensors(path):
    tensors = load_file(path)
    for name in DTYPES:
        got = tensors["t." + name]
        assert got.dtype == DTYPES[name], (name, got.dtype)
        assert torch.equal(got, expected(name)), (name, got)
    assert tensors["scalar"].shape == () and tensors["scalar"].item() == 3.25
    with safe_open(path, framework="pt") as f:
        assert f.metadata() == {"format": "pt", "who": "colossal4j"}, f.metadata()
    try:
        from timm.models import load_state_dict
        sd = load_state_dict(path)
        assert torch.equal(sd["t.bf16"], expected("bf16"))
        print("timm load_state_dict: ok")
    except ImportError as e:
        print("timm not importable:", e)
    print("safetensors: ok,", len(tensors), "tensors")


def check_events(directory):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(directory)
    acc.Reload()
    loss = [(e.step, round(e.value, 6)) for e in acc.Scalars("train/loss")]
    assert loss == [(s, round(1.0 / s, 6)) for s in range(1, 6)], loss
    assert [(e.step, e.value) for e in acc.Scalars("eval/accuracy")] == [(5, 0.875)]
    print("tensorboard: ok,", acc.Tags()["scalars"])


def write_golden(out):
    os.makedirs(out, exist_ok=True)
    save_file({("t." + n): expected(n) for n in DTYPES} | {"scalar": torch.tensor(3.25)},
              os.path.join(out, "python.safetensors"), metadata={"format": "pt", "who": "python"})
    from torch.utils.tensorboard import SummaryWriter
    w = SummaryWriter(os.path.join(out, "tb"))
    for s in range(1, 6):
        w.add_scalar("train/loss", 1.0 / s, s)
    w.add_scalar("eval/accuracy", 0.875, 5)
    w.close()
    print("golden files:", sorted(glob.glob(os.path.join(out, "**"), recursive=True)))


if __name__ == "__main__":
    check_safetensors(os.path.join(sys.argv[1], "java.safetensors"))
    check_events(os.path.join(sys.argv[1], "tb"))
    write_golden(sys.argv[2])
