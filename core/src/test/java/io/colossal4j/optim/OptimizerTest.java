package io.colossal4j.optim;

import static io.colossal4j.testing.GradCheck.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Each optimizer against a scalar twin written from the published update rule, over 5 steps with fresh
 * gradients. f64 tensors, so the only differences are summation order: tolerance 1e-12.
 */
class OptimizerTest {
  static final CpuBackend CPU = CpuBackend.create(2);
  static final int N = 7, STEPS = 5;
  static final double LR = 0.05, WD = 0.1;

  interface Twin { void step(double[] p, double[] g, int t); }

  private static void compare(java.util.function.Function<List<ParamGroup>, Optimizer> make, Twin twin) {
    Random rnd = new Random(3);
    double[] p0 = rnd.doubles(N, -1, 1).toArray();
    Tensor p = Tensor.of(p0, Shape.of(N), DType.F64, CPU).requiresGrad(true);
    Map<String, Tensor> named = new LinkedHashMap<>();
    named.put("w", p);
    Optimizer opt = make.apply(List.of(new ParamGroup("all", named, WD, 1)));
    double[] ref = p0.clone();
    for (int t = 1; t <= STEPS; t++) {
      double[] g = rnd.doubles(N, -1, 1).toArray();
      p.setGrad(Tensor.of(g, Shape.of(N), DType.F64, CPU));
      opt.step(LR);
      twin.step(ref, g, t);
      assertClose(ref, p.toDoubleArray(), 1e-12, 1e-12, "step " + t);
    }
  }

  @Test void sgdMomentumNesterov() {
    double mu = 0.9;
    double[] buf = new double[N];
    compare(gs -> new Sgd(gs, mu, 0, true), (p, g, t) -> {
      for (int i = 0; i < N; i++) {
        double gi = g[i] + WD * p[i];
        buf[i] = t == 1 ? gi : mu * buf[i] + gi;
        p[i] -= LR * (gi + mu * buf[i]);
      }
    });
  }

  @Test void sgdPlainWithDampening() {
    double mu = 0.5, damp = 0.3;
    double[] buf = new double[N];
    compare(gs -> new Sgd(gs, mu, damp, false), (p, g, t) -> {
      for (int i = 0; i < N; i++) {
        double gi = g[i] + WD * p[i];
        buf[i] = t == 1 ? gi : mu * buf[i] + (1 - damp) * gi;
        p[i] -= LR * buf[i];
      }
    });
  }

  @Test void adamAndAdamW() {
    for (boolean decoupled : new boolean[] {false, true}) {
      double b1 = 0.9, b2 = 0.99, eps = 1e-8;
      double[] m = new double[N], v = new double[N];
      compare(gs -> new Adam(gs, b1, b2, eps, decoupled), (p, g, t) -> {
        for (int i = 0; i < N; i++) {
          double gi = g[i];
          if (decoupled) p[i] *= 1 - LR * WD; else gi += WD * p[i];
          m[i] = b1 * m[i] + (1 - b1) * gi;
          v[i] = b2 * v[i] + (1 - b2) * gi * gi;
          double mh = m[i] / (1 - Math.pow(b1, t)), vh = v[i] / (1 - Math.pow(b2, t));
          p[i] -= LR * mh / (Math.sqrt(vh) + eps);
        }
      });
    }
  }

  @Test void lamb() {
    double b1 = 0.9, b2 = 0.999, eps = 1e-6;
    double[] m = new double[N], v = new double[N];
    compare(gs -> new Lamb(gs, b1, b2, eps), (p, g, t) -> {
      double[] r = new double[N];
      double pn = 0, rn = 0;
      for (int i = 0; i < N; i++) {
        m[i] = b1 * m[i] + (1 - b1) * g[i];
        v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
        r[i] = m[i] / (1 - Math.pow(b1, t)) / (Math.sqrt(v[i] / (1 - Math.pow(b2, t))) + eps) + WD * p[i];
        pn += p[i] * p[i];
        rn += r[i] * r[i];
      }
      double trust = Math.sqrt(pn) / Math.sqrt(rn);
      for (int i = 0; i < N; i++) p[i] -= LR * trust * r[i];
    });
  }

  @Test void lars() {
    double mu = 0.9, eta = 0.001;
    double[] buf = new double[N];
    compare(gs -> new Lars(gs, mu, eta, false), (p, g, t) -> {
      double pn = 0, gn = 0;
      for (int i = 0; i < N; i++) { pn += p[i] * p[i]; gn += g[i] * g[i]; }
      pn = Math.sqrt(pn);
      gn = Math.sqrt(gn);
      double trust = eta * pn / (gn + WD * pn);
      for (int i = 0; i < N; i++) {
        buf[i] = mu * buf[i] + LR * trust * (g[i] + WD * p[i]);
        p[i] -= buf[i];
      }
    });
  }

  @Test void clipGradNormMatchesDefinition() {
    Tensor a = Tensor.of(new double[] {3, 0}, Shape.of(2), DType.F64, CPU).requiresGrad(true);
    Tensor b = Tensor.of(new double[] {4}, Shape.of(1), DType.F64, CPU).requiresGrad(true);
    a.setGrad(Tensor.of(new double[] {3, 0}, Shape.of(2), DType.F64, CPU));
    b.setGrad(Tensor.of(new double[] {4}, Shape.of(1), DType.F64, CPU));
    double norm = GradClip.clip(List.of(a, b), 1.0);
    assertEquals(5.0, norm, 1e-12);
    double c = 1.0 / (5 + 1e-6);
    assertClose(new double[] {3 * c, 0}, a.grad().toDoubleArray(), 1e-12, 0, "clipped a");
    assertClose(new double[] {4 * c}, b.grad().toDoubleArray(), 1e-12, 0, "clipped b");
  }

  @Test void noDecayGroupsTakeBiasesAndNorms() {
    Map<String, Tensor> named = new LinkedHashMap<>();
    named.put("fc.weight", Tensor.zeros(Shape.of(2, 2), DType.F32, CPU));
    named.put("fc.bias", Tensor.zeros(Shape.of(2), DType.F32, CPU));
    named.put("pos_embed", Tensor.zeros(Shape.of(1, 4, 2), DType.F32, CPU));
    var groups = ParamGroup.decayAndNoDecay(named, 0.05);
    assertEquals(List.of("fc.weight"), List.copyOf(groups.get(0).params().keySet()));
    assertEquals(List.of("fc.bias", "pos_embed"), List.copyOf(groups.get(1).params().keySet()));
    assertEquals(0.0, groups.get(1).weightDecay());
  }

  @Test void badHyperParametersAreRejected() {
    var groups = List.of(new ParamGroup("g", Map.of("w", Tensor.zeros(Shape.of(1), DType.F32, CPU)), 0, 1));
    var e = assertThrows(IllegalArgumentException.class, () -> new Adam(groups, 1.0, 0.999, 1e-8, true));
    assertEquals("beta1 must be in [0, 1), got 1.0", e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> new Sgd(groups, 0, 0, true));
  }
}
