#!/usr/bin/env python3
"""Fits the polynomial behind VMath.normalCdf / erf (backend.cpu.simd): the left tail of the normal CDF as

    Phi(-u) = exp(-u^2/2) * R(t),   t = 1/(1 + Q*u),   u >= 0,

where R(t) approximates erfcx(u/sqrt 2)/2 (erfcx(a) = exp(a^2) erfc(a)) as a polynomial in t over
u in [0, UMAX]. UMAX = 13.22 is where exp(-u^2/2) leaves the normal f32 range (u^2/2 > 87.34), so beyond
it the product is 0 in f32 anyway and the kernel gives exactly 0.

Method: minimax relative error by iteratively reweighted least squares on Chebyshev nodes in t; then the
coefficients are rounded to f32 one at a time, lowest first, refitting the higher ones after each rounding
so they absorb its error. The script then evaluates R in emulated f32 arithmetic (Horner with FMAs, each
step rounded to f32) to report what the kernel sees, and fits the first-order correction

    R(t) ~= R(t0) * (1 + S(t0) * dl),   S(t) = dlnR/dlnt ~= SA + SB*t,

which the kernel applies for the rounding of t0 = fl(1/fl(1 + Q*u)) (dl = the relative error of t0, computed
exactly with FMAs): without it, the rounding of t near u = 0, where S is 3.07, costs up to 5.6 ulp of R.

Output (kept in VMath): Q, the ten coefficients c0..c9 of R, SA and SB. Run: python3 scripts/fit_normal_tail.py
(numpy, scipy; about 30 s). Printed maxima at the time of fitting: fit error 5.4e-9 relative before
rounding; R in emulated f32 with the correction <= 2.4 ulp (2.1 of which is the Horner rounding).
"""
import numpy as np
from scipy.special import erfcx

UMAX, DEGREE, Q0 = 13.22, 9, 0.26


def target(u):
    return 0.5 * erfcx(u / np.sqrt(2))


def f32(x):
    return np.asarray(x, dtype=np.float64).astype(np.float32).astype(np.float64)


def fma32(a, b, c):
    # a*b is exact in double for f32 a, b; one rounding to f32 (double rounding changes nothing measurable here)
    return f32(a * b + c)


def cheb_nodes_in_t(q, n=6000):
    tmin = 1 / (1 + q * UMAX)
    k = np.arange(n)
    return (tmin + 1) / 2 + (1 - tmin) / 2 * np.cos(np.pi * (k + 0.5) / n)


def fit_rest(t, f, fixed, iters=120):
    """Coefficients fixed[0..m) kept, the rest fitted for minimax relative error (IRLS)."""
    m = len(fixed)
    base = np.polyval(np.array(fixed[::-1]), t) if m else 0 * t
    v = np.vander(t, DEGREE + 1, increasing=True)[:, m:]
    w = np.ones_like(t)
    for _ in range(iters):
        c, *_ = np.linalg.lstsq(v * (w / f)[:, None], (f - base) * w / f, rcond=None)
        err = np.abs((base + v @ c) / f - 1)
        w = w * np.sqrt(err / err.max() + 1e-6)
        w /= w.max()
    return list(fixed) + list(c)


def horner32(cs, t):
    p = np.full_like(t, cs[-1])
    for c in cs[-2::-1]:
        p = fma32(p, t, c)
    return p


def main():
    q = float(np.float32(Q0))
    t = cheb_nodes_in_t(q)
    f = target((1 / t - 1) / q)
    exact_fit = fit_rest(t, f, [], 300)
    ud = np.linspace(0, UMAX, 400001)
    print("fit error before rounding: %.3g relative" % np.abs(np.polyval(exact_fit[::-1], 1 / (1 + q * ud)) / target(ud) - 1).max())
    cs = []
    for k in range(DEGREE + 1):
        cs.append(float(np.float32(fit_rest(t, f, cs)[k])))
    # S = dlnR/dlnt, fitted linearly in t
    su = np.linspace(0, UMAX, 200001)
    st = 1 / (1 + q * su)
    s = np.gradient(np.log(target(su)), np.log(st))
    sa, sb = (float(np.float32(v)) for v in np.linalg.lstsq(np.vstack([np.ones_like(st), st]).T, s, rcond=None)[0])
    # the kernel's arithmetic, emulated in f32
    u = f32(np.linspace(0, UMAX, 1000001))
    exact = target(u)
    ulp = np.spacing(exact.astype(np.float32)).astype(np.float64)
    d = fma32(q, u, 1.0)
    t0 = f32(1 / d)
    eps = fma32(q, u, f32(1 - d))          # (1 + q*u) - d, exactly: 1 - d is exact
    e1 = fma32(-t0, d, 1.0)                # 1 - t0*d, exact
    dl = fma32(-t0, eps, e1)               # t = t0*(1 + dl) to second order
    r0 = horner32(cs, t0)
    r = fma32(f32(r0 * fma32(sb, t0, sa)), dl, r0)
    for name, v in (("without the correction", r0), ("with the correction", r)):
        e = np.abs(v - exact) / ulp
        print("R in f32 %s: max %.2f ulp at u = %.3f" % (name, e.max(), u[e.argmax()]))
    print("Q = %sf" % repr(np.float32(q)).split("(")[1].rstrip(")"))
    print("R coefficients c0..c9 =", ", ".join("%sf" % np.float32(c) for c in cs))
    print("SA = %sf, SB = %sf" % (np.float32(sa), np.float32(sb)))


if __name__ == "__main__":
    main()
