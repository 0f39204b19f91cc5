#!/usr/bin/env python3
"""Fits the polynomial behind VMath.normalCdf / erf (backend.cpu.simd): the left tail of the normal CDF as

    Phi(-u) = exp(-u^2/2) * R(t),   t = 1/(1 + Q*u),   u >= 0,

where R(t) approximates erfcx(u/sqrt 2)/2 (erfcx(a) = exp(a^2) erfc(a)) as a polynomial of degree 11 in t
over u in [0, UMAX]. UMAX = 13.22 is where exp(-u^2/2) leaves the normal f32 range (u^2/2 > 87.34), so beyond
it the product is 0 in f32 anyway and the kernel gives exactly 0.

Method: minimax relative error by iteratively reweighted least squares on Chebyshev nodes in t; then the
coefficients are rounded to f32 one at a time, lowest first, refitting the higher ones after each rounding
so they absorb its error. The script then evaluates R in emulated f32 arithmetic (t = fl(1/fl(1 + Q*u)), Horner
with FMAs, each step rounded to f32) to report what the kernel sees.

Choice of Q and the degree: the rounding of t (relative 2^-24 twice) costs S = dlnR/dlnt times as much in R,
and S = 0.798/Q at u = 0, the worst point: 3.07 at Q = 0.26, where degree 9 fits to 5e-9 but the rounding of t
costs up to 5.6 ulp of R (correcting it to first order took 8 more vector operations, and a clamp of u, a
fifth of the kernel). A larger Q makes S smaller but the fit harder and the coefficients larger (more
Horner rounding): Q = 0.47 with degree 11 gave the smallest error in emulated f32 among Q in [0.4, 0.7] and
degrees 10-12, 3.6-3.9 ulp of R (depending on the fit's iterations), with no correction at all.

It also fits the degree-6 polynomial for e^r on |r| <= ln2/2 that VMath.expNegSquare uses (1 + r + E2 r^2 + ...
+ E6 r^6, minimax relative, the same rounding scheme): 0.70 ulp in emulated f32, against 0.74 for the
degree-7 Taylor polynomial of VMath.exp, one FMA fewer.

Output (kept in VMath): Q, the twelve coefficients c0..c11 of R, and E2..E6. Run: python3 scripts/fit_normal_tail.py
(numpy, scipy; about 40 s). Printed at the time of fitting: fit error 5.8e-9 relative before rounding; R in
emulated f32 within 3.9 ulp.
"""
import numpy as np
from scipy.special import erfcx

UMAX, DEGREE, Q0 = 13.22, 11, 0.47


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


def fit_exp():
    """e^r ~= 1 + r + E2 r^2 + ... + E6 r^6 on |r| <= ln2/2 (a little beyond, for the reduction's rounding)."""
    a = np.log(2) / 2 + 2e-6
    r = a * np.cos(np.pi * (np.arange(4000) + 0.5) / 4000)
    f = np.exp(r)
    cs = [1.0, 1.0]
    for k in range(2, 7):
        base = np.polyval(np.array(cs[::-1]), r)
        v = np.vander(r, 7, increasing=True)[:, len(cs):]
        w = np.ones_like(r)
        for _ in range(200):
            c, *_ = np.linalg.lstsq(v * (w / f)[:, None], (f - base) * w / f, rcond=None)
            err = np.abs((base + v @ c) / f - 1)
            w = w * np.sqrt(err / err.max() + 1e-6)
            w /= w.max()
        cs.append(float(np.float32(c[0])))
    rr = f32(np.linspace(-a, a, 200001))
    e = np.abs(horner32(cs, rr) - np.exp(rr)) / np.spacing(np.exp(rr).astype(np.float32)).astype(np.float64)
    print("e^r in f32: max %.2f ulp" % e.max())
    print("E2..E6 =", ", ".join("%sf" % np.float32(c) for c in cs[2:]))


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
    # the kernel's arithmetic, emulated in f32
    u = f32(np.linspace(0, UMAX, 1000001))
    exact = target(u)
    ulp = np.spacing(exact.astype(np.float32)).astype(np.float64)
    r = horner32(cs, f32(1 / fma32(q, u, 1.0)))
    e = np.abs(r - exact) / ulp
    print("R in f32: max %.2f ulp at u = %.3f" % (e.max(), u[e.argmax()]))
    print("Q = %sf" % np.float32(q))
    print("R coefficients c0..c%d =" % DEGREE, ", ".join("%sf" % np.float32(c) for c in cs))
    fit_exp()


if __name__ == "__main__":
    main()
