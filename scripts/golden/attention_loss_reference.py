"""Reference values for ops/PyTorchReferenceTest.java (cross entropy and scaled dot-product attention).

Run where PyTorch is installed:  python scripts/golden/attention_loss_reference.py
Inputs are closed-form sequences, seq(n, a, b, s)[i] = s * sin(a * i + b), computed identically in the Java
test, so no data file is needed; the printed arrays are pasted into the test with the PyTorch version.
All math is float64 on the CPU.
"""
import math

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

torch.set_default_dtype(torch.float64)


def seq(n, a, b, s=1.0):
    return torch.tensor([s * math.sin(a * i + b) for i in range(n)])


def show(name, t):
    vals = ", ".join(repr(float(v)) for v in t.detach().reshape(-1))
    print(f"  static final double[] {name} = {{{vals}}};")


print(f"  // PyTorch {torch.__version__}")
# cross entropy: logits [N=2, C=4, d=3], class-index targets with ignore_index 7, label smoothing 0.3
logits = seq(24, 1.3, 0.5, 2.0).reshape(2, 4, 3).requires_grad_(True)
targets = torch.tensor([[1, 7, 0], [3, 3, 7]])
for red in ["none", "sum", "mean"]:
    show(f"CE_{red.upper()}", F.cross_entropy(logits, targets, ignore_index=7, label_smoothing=0.3, reduction=red))
loss = F.cross_entropy(logits, targets, ignore_index=7, label_smoothing=0.3)
loss.backward()
show("CE_MEAN_GRAD", logits.grad)
probs = torch.softmax(seq(24, 0.9, 0.1).reshape(2, 4, 3), dim=1)
show("CE_SOFT_MEAN", F.cross_entropy(logits.detach(), probs, label_smoothing=0.1))

# attention: q [2, 2, 3, 4], k [2, 2, 5, 4], v [2, 2, 5, 3]
q = seq(48, 0.7, 0.2).reshape(2, 2, 3, 4)
k = seq(80, 1.1, 0.3).reshape(2, 2, 5, 4)
v = seq(60, 0.5, 0.9).reshape(2, 2, 5, 3)
allowed = torch.tensor([[1, 0, 1, 1, 0], [0, 0, 0, 0, 0], [1, 1, 0, 1, 1]], dtype=torch.bool)
bias = seq(30, 0.3, 0.4).reshape(2, 3, 5)
with sdpa_kernel(SDPBackend.MATH):
    show("SDPA_PLAIN", F.scaled_dot_product_attention(q, k, v))
    show("SDPA_BOOL_MASK", F.scaled_dot_product_attention(q, k, v, attn_mask=allowed))
    show("SDPA_CAUSAL", F.scaled_dot_product_attention(q, k, v, is_causal=True))
    show("SDPA_ADDITIVE_SCALE", F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=0.6))
# Swin V2 cosine attention as timm writes it; the second head's log scale 5 is clamped to log(100)
log_scale = torch.tensor([0.5, 5.0]).reshape(2, 1, 1)
attn = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1)
attn = attn * torch.clamp(log_scale, max=math.log(1.0 / 0.01)).exp() + bias  # bias [H, Nq, Nk], per head
show("SDPA_COSINE", torch.softmax(attn, dim=-1) @ v)
