#!/usr/bin/env python3
"""Fits Q(t) in erfc(a) = t * Q(t) * exp(-a*a), t = 1 / (1 + a/2), a >= 0: the complementary error function
the CUDA kernels use for GELU and its backward in float (elementwise.cu, normal_cdf_pdf). Q is smooth on
t in (0, 1] (Q(1) = 1, Q -> 1/(2 sqrt(pi)) as a -> infinity), so a degree-8 polynomial fitted for relative
error (least squares on Chebyshev-spaced points, reweighted toward the largest errors) reaches about 5e-8
relative over a in [0, 10]; below exp(-100) float has nothing left to represent.
Prints the coefficients (constant term first) as float literals, and the fit's maximum relative error
measured with mpmath at 30 digits on 20,000 points. Run: python3 scripts/fit_gelu_erfc.py [--degree N]
(degree 8: normal_cdf_pdf and the bf16 backward; degree 5, 2.6e-5: the bf16 forward's normal_cdf_low)."""
import sys
import mpmath as mp
import numpy as np

mp.mp.dps = 30
DEGREE, A_MAX = 8, 10.0


def q_of(t):
    a = (1 / t - 1) * 2
    return float(mp.erfc(a) * mp.exp(a * a) / t) if a > 0 else 1.0


if "--degree" in sys.argv:
    DEGREE = int(sys.argv[sys.argv.index("--degree") + 1])


def fit():
    t_min = 1 / (1 + A_MAX / 2)
    ts = (np.cos(np.linspace(0, np.pi, 800)) + 1) / 2 * (1 - t_min) + t_min
    ys = np.array([q_of(t) for t in ts])
    w = 1 / ys
    for _ in range(30):
        c = np.polynomial.polynomial.polyfit(ts, ys, DEGREE, w=w)
        err = np.polynomial.polynomial.polyval(ts, c) / ys - 1
        w = w * (1 + 50 * np.abs(err) / np.abs(err).max())
    return c


def main():
    c = fit()
    check = np.linspace(0, A_MAX, 20000)
    worst = 0.0
    for a in check:
        t = 1 / (1 + a / 2)
        got = t * np.polynomial.polynomial.polyval(t, c) * mp.exp(-a * a)
        worst = max(worst, abs(float(got / mp.erfc(a)) - 1))
    print("coefficients:", ", ".join(f"{float(x):.9e}f" for x in c))
    print(f"max relative error of erfc over a in [0, {A_MAX}]: {worst:.2e}")


if __name__ == "__main__":
    main()
