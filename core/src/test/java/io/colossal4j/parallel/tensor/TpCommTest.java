package io.colossal4j.parallel.tensor;

import static io.colossal4j.parallel.tensor.TpTesting.leaf;
import static io.colossal4j.parallel.tensor.TpTesting.random;
import static io.colossal4j.testing.GradCheck.assertClose;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.autograd.Autograd;
import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.distributed.cpu.CpuDistributed;
import io.colossal4j.ops.Arith;
import io.colossal4j.ops.Reduce;
import io.colossal4j.ops.Views;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Tensor;
import io.colossal4j.tensor.TensorException;
import io.colossal4j.testing.GradCheck;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/**
 * The communication ops against a single-process twin: with P ranks, rank r's loss L_r = Σ(out_r · w_r) for
 * a rank-specific weight w_r, the ranks together compute L = Σ_r L_r, and each op's backward must give every
 * rank dL/d(its input). The twin writes L over all ranks' inputs in one process with plain ops; its
 * gradients are checked by finite differences ({@link GradCheck}) and then compared with the ranks'.
 * f64 on the scalar reference backend: the collectives only add (sums of at most 3 terms) or move values,
 * so ranks and twin agree to 1e-12.
 */
class TpCommTest {
  static final int P = 3;
  static final double TOL = 1e-12;

  /** copyToRegion: out = x on every rank; dL/dx = Σ_r w_r (the all-reduced gradient). */
  @Test void copyToRegionSumsGradients() {
    var results = TpTesting.ranks(P, CpuBackend::reference, (tp, cpu) -> {
      Tensor x = leaf(random(cpu, 1, DType.F64, 2, 5));
      Tensor y = TpComm.copyToRegion(x, tp);
      assertArrayEquals(x.toDoubleArray(), y.toDoubleArray());
      Autograd.backward(Reduce.sum(Arith.mul(y, random(cpu, 10 + tp.rank(), DType.F64, 2, 5))));
      return x.grad().toDoubleArray();
    });
    try (CpuBackend cpu = CpuBackend.reference()) {
      Tensor expected = Tensor.zeros(io.colossal4j.tensor.Shape.of(2, 5), DType.F64, cpu);
      for (int r = 0; r < P; r++) expected = Arith.add(expected, random(cpu, 10 + r, DType.F64, 2, 5));
      for (double[] g : results) assertClose(expected.toDoubleArray(), g, TOL, TOL, "dL/dx");
    }
  }

  /** reduceFromRegion: out = Σ_r x_r on every rank; dL/dx_r = dL/dout (identity). Twin: L = Σ((Σ_r x_r) · w). */
  @Test void reduceFromRegionSumsValuesAndPassesGradients() {
    var results = TpTesting.ranks(P, CpuBackend::reference, (tp, cpu) -> {
      Tensor x = leaf(random(cpu, 20 + tp.rank(), DType.F64, 4, 3));
      Tensor y = TpComm.reduceFromRegion(x, tp);
      // every rank holds the same loss L = Σ(y·w); its gradient reaches each x_r unchanged
      Autograd.backward(Reduce.sum(Arith.mul(y, random(cpu, 30, DType.F64, 4, 3))));
      return new double[][] {y.toDoubleArray(), x.grad().toDoubleArray()};
    });
    try (CpuBackend cpu = CpuBackend.reference()) {
      List<Tensor> xs = new ArrayList<>();
      for (int r = 0; r < P; r++) xs.add(leaf(random(cpu, 20 + r, DType.F64, 4, 3)));
      Tensor sum = Arith.add(Arith.add(xs.get(0), xs.get(1)), xs.get(2));
      Autograd.backward(Reduce.sum(Arith.mul(sum, random(cpu, 30, DType.F64, 4, 3))));
      for (int r = 0; r < P; r++) {
        assertClose(sum.toDoubleArray(), results.get(r)[0], TOL, TOL, "rank " + r + " sum");
        assertClose(xs.get(r).grad().toDoubleArray(), results.get(r)[1], TOL, TOL, "rank " + r + " dL/dx");
      }
    }
  }

  /** gatherFromRegion: [2, 3, 2] per rank → [2, 3, 6] = cat over ranks on the last dim; gradient: own columns. */
  @Test void gatherFromRegionConcatenatesLastDim() {
    var results = TpTesting.ranks(P, CpuBackend::reference, (tp, cpu) -> {
      Tensor x = leaf(random(cpu, 40 + tp.rank(), DType.F64, 2, 3, 2));
      Tensor y = TpComm.gatherFromRegion(Views.transpose(x, 0, 1), tp);   // a non-contiguous input too
      Autograd.backward(Reduce.sum(Arith.mul(y, random(cpu, 50, DType.F64, 3, 2, 6))));
      return new double[][] {y.toDoubleArray(), x.grad().toDoubleArray()};
    });
    try (CpuBackend cpu = CpuBackend.reference()) {
      List<Tensor> xs = new ArrayList<>();
      for (int r = 0; r < P; r++) xs.add(leaf(random(cpu, 40 + r, DType.F64, 2, 3, 2)));
      Tensor cat = Views.cat(2, xs.stream().map(x -> Views.transpose(x, 0, 1)).toList());
      Autograd.backward(Reduce.sum(Arith.mul(cat, random(cpu, 50, DType.F64, 3, 2, 6))));
      for (int r = 0; r < P; r++) {
        assertArrayEquals(cat.toDoubleArray(), results.get(r)[0], "rank " + r + " gathered");
        assertClose(xs.get(r).grad().toDoubleArray(), results.get(r)[1], TOL, TOL, "rank " + r + " dL/dx");
      }
    }
  }

  /** scatterToRegion: rank r keeps columns [2r, 2r+2) of [4, 6]; dL/dx = the ranks' w_r laid side by side. */
  @Test void scatterToRegionKeepsOwnChunk() {
    var results = TpTesting.ranks(P, CpuBackend::reference, (tp, cpu) -> {
      Tensor x = leaf(random(cpu, 60, DType.F64, 4, 6));
      Tensor y = TpComm.scatterToRegion(x, tp);
      Autograd.backward(Reduce.sum(Arith.mul(y, random(cpu, 70 + tp.rank(), DType.F64, 4, 2))));
      return new double[][] {y.toDoubleArray(), x.grad().toDoubleArray()};
    });
    try (CpuBackend cpu = CpuBackend.reference()) {
      Tensor x = random(cpu, 60, DType.F64, 4, 6);
      List<Tensor> ws = new ArrayList<>();
      for (int r = 0; r < P; r++) ws.add(random(cpu, 70 + r, DType.F64, 4, 2));
      for (int r = 0; r < P; r++) {
        assertArrayEquals(Views.contiguous(Views.narrow(x, 1, 2 * r, 2)).toDoubleArray(), results.get(r)[0], "rank " + r + " chunk");
        assertClose(Views.cat(1, ws).toDoubleArray(), results.get(r)[1], TOL, TOL, "rank " + r + " dL/dx");
      }
    }
  }

  /**
   * The ops compose with other ops' gradients: a tiny column→row "MLP" written with the raw ops, whose
   * rank-summed output the twin checks by finite differences (GradCheck) in the input.
   */
  @Test void composedRegionMatchesFiniteDifferences() {
    var results = TpTesting.ranks(2, CpuBackend::reference, (tp, cpu) -> {
      Tensor x = leaf(random(cpu, 80, DType.F64, 3, 4));
      Tensor w1 = random(cpu, 81 + tp.rank(), DType.F64, 4, 2);      // rank r's columns of a [4, 4] matrix
      Tensor h = Arith.tanh(io.colossal4j.ops.LinAlg.matmul(TpComm.copyToRegion(x, tp), w1));
      Tensor y = TpComm.reduceFromRegion(io.colossal4j.ops.LinAlg.matmul(h, random(cpu, 90 + tp.rank(), DType.F64, 2, 3)), tp);
      Autograd.backward(Reduce.sum(Arith.mul(y, random(cpu, 99, DType.F64, 3, 3))));
      return x.grad().toDoubleArray();
    });
    try (CpuBackend cpu = CpuBackend.reference()) {
      java.util.function.Function<Tensor[], Tensor> twin = in -> {
        Tensor y = null;
        for (int r = 0; r < 2; r++) {
          Tensor part = io.colossal4j.ops.LinAlg.matmul(Arith.tanh(io.colossal4j.ops.LinAlg.matmul(in[0], random(cpu, 81 + r, DType.F64, 4, 2))),
              random(cpu, 90 + r, DType.F64, 2, 3));
          y = y == null ? part : Arith.add(y, part);
        }
        return Arith.mul(y, random(cpu, 99, DType.F64, 3, 3));
      };
      // GradCheck proves the twin's gradient is right; the ranks must then equal the twin's gradient
      GradCheck.check(cpu, twin, io.colossal4j.tensor.Shape.of(3, 4));
      Tensor x = leaf(random(cpu, 80, DType.F64, 3, 4));
      Autograd.backward(Reduce.sum(twin.apply(new Tensor[] {x})));
      for (double[] g : results) assertClose(x.grad().toDoubleArray(), g, TOL, TOL, "dL/dx");
    }
  }

  /**
   * Over the tp groups of a device mesh (4 ranks as dp=2 × tp=2): the two tp groups communicate at the same
   * time without mixing; each gathers its own members' values.
   */
  @Test void tpSubgroupsOfAMeshWorkIndependently() {
    var results = io.colossal4j.distributed.RankThreads.run(CpuDistributed.threads(4), 60, world -> {
      try (CpuBackend cpu = CpuBackend.reference()) {
        var tp = io.colossal4j.distributed.DeviceMesh.of(world, 2, 1).group(io.colossal4j.distributed.MeshAxis.TP);
        Tensor x = leaf(Tensor.full(io.colossal4j.tensor.Shape.of(1, 2), DType.F64, cpu, world.rank()));
        Tensor y = TpComm.gatherFromRegion(TpComm.copyToRegion(x, tp), tp);
        Autograd.backward(Reduce.sum(y));
        double[] out = y.toDoubleArray();
        world.close();
        return new double[] {out[0], out[2], x.grad().toDoubleArray()[0]};
      }
    });
    // world ranks 0,1 form tp group 0 and 2,3 tp group 1 (tp varies fastest); d(sum)/dx = 2 ranks' ones summed
    for (int r = 0; r < 4; r++) assertArrayEquals(new double[] {r / 2 * 2, r / 2 * 2 + 1, 2}, results.get(r), "world rank " + r);
  }

  @Test void singleRankGroupIsIdentityAndBadSizesAreNamed() {
    try (CpuBackend cpu = CpuBackend.reference()) {
      var one = CpuDistributed.threads(1).getFirst();
      Tensor x = random(cpu, 1, DType.F64, 2, 3);
      assertSame(x, TpComm.copyToRegion(x, one));
      assertSame(x, TpComm.gatherFromRegion(x, one));
      one.close();
    }
    var errors = TpTesting.ranks(2, CpuBackend::reference, (tp, cpu) -> {
      Tensor x = random(cpu, 1, DType.F64, 2, 3);
      Executable bad = () -> TpComm.scatterToRegion(x, tp);
      return org.junit.jupiter.api.Assertions.assertThrows(TensorException.class, bad).getMessage();
    });
    assertTrue(errors.getFirst().contains("last dim 3 of [2, 3] is not divisible by tp = 2"), errors.getFirst());
  }
}
