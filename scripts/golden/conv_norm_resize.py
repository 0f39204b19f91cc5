"""Writes PyTorch reference outputs for ConvNormResizeGoldenTest (core/src/test/resources/golden/).

Run with PyTorch on any machine:  python scripts/golden/conv_norm_resize.py > conv_norm_resize.json
Inputs are closed-form (sin of the flat index), so the Java test rebuilds them without reading tensors.
Everything is float64 except the entries named *_f32.
"""
import json
import math

import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)


def wave(shape, a, b):
    """x[i] = sin(a*i + b) over the row-major flat index i."""
    n = math.prod(shape)
    return torch.tensor([math.sin(a * i + b) for i in range(n)]).reshape(shape)


def flat(t):
    return t.flatten().tolist()


out = {}
# conv2d: groups 2, unequal strides, dilation 2 along W, asymmetric padding (left 1, bottom 2)
x, w, b = wave((2, 4, 7, 6), 0.37, 0.1), wave((6, 2, 3, 2), 0.23, 0.5), wave((6,), 0.9, 0.2)
out["conv_mixed"] = flat(F.conv2d(F.pad(x, [1, 0, 0, 2]), w, b, stride=(2, 1), dilation=(1, 2), groups=2))
# depthwise, channel multiplier 2, stride 2, padding 1
out["conv_depthwise"] = flat(F.conv2d(wave((1, 3, 6, 6), 0.31, 0.3), wave((6, 1, 3, 3), 0.17, 0.4), stride=2, padding=1, groups=3))

x5 = wave((1, 2, 5, 5), 0.41, 0.0)
out["max_pool_ceil"] = flat(F.max_pool2d(x5, 2, 2, ceil_mode=True))
out["max_pool_k3s2p1"] = flat(F.max_pool2d(x5, 3, 2, 1))
out["avg_pool_ceil_pad_incl"] = flat(F.avg_pool2d(x5, 3, 2, 1, ceil_mode=True, count_include_pad=True))
out["avg_pool_ceil_pad_excl"] = flat(F.avg_pool2d(x5, 3, 2, 1, ceil_mode=True, count_include_pad=False))

xa = wave((1, 2, 5, 7), 0.29, 0.7)
out["adaptive_avg_3x4"] = flat(F.adaptive_avg_pool2d(xa, (3, 4)))
for mode in ["bilinear", "bicubic"]:
    for ac in [True, False]:
        tag = f"{mode}_{'aligned' if ac else 'halfpixel'}"
        for h, w_ in [(3, 9), (8, 11)]:
            out[f"{tag}_{h}x{w_}"] = flat(F.interpolate(xa, size=(h, w_), mode=mode, align_corners=ac))
            out[f"{tag}_aa_{h}x{w_}"] = flat(F.interpolate(xa, size=(h, w_), mode=mode, align_corners=ac, antialias=True))
for h, w_ in [(3, 9), (8, 11)]:
    out[f"nearest_{h}x{w_}"] = flat(F.interpolate(xa, size=(h, w_), mode="nearest"))
out["nearest_100_to_37_f32"] = flat(F.interpolate(torch.arange(100.0).float().reshape(1, 1, 1, 100), size=(1, 37), mode="nearest"))

xg = wave((2, 4, 3, 3), 0.53, 0.2)
gw, gb = wave((4,), 0.7, 0.1), wave((4,), 0.3, 0.9)
out["group_norm_2"] = flat(F.group_norm(xg, 2, gw, gb, 1e-5))
out["layer_norm_channels"] = flat(F.layer_norm(xg.permute(0, 2, 3, 1), (4,), gw, gb, 1e-6).permute(0, 3, 1, 2))
out["rms_norm"] = flat(F.rms_norm(xg, (3,), wave((3,), 0.6, 0.3), 1e-6))
running_mean, running_var = wave((4,), 0.8, 0.0), 1 + wave((4,), 0.5, 0.4) ** 2
out["batch_norm_train"] = flat(F.batch_norm(xg, running_mean, running_var, gw, gb, training=True, momentum=0.1, eps=1e-5))
out["batch_norm_running_mean"] = flat(running_mean)
out["batch_norm_running_var"] = flat(running_var)
out["batch_norm_eval"] = flat(F.batch_norm(xg, running_mean, running_var, gw, gb, training=False, eps=1e-5))

print(json.dumps(out, indent=0))
