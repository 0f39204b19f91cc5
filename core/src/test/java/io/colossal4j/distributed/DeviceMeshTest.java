package io.colossal4j.distributed;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.backend.cpu.CpuBackend;
import io.colossal4j.distributed.cpu.CpuDistributed;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.util.List;
import org.junit.jupiter.api.Test;

class DeviceMeshTest {
  /** 8 ranks, tp=2, pp=2 => dp=2; rank = (pp*2 + dp)*2 + tp, worked out by hand. */
  @Test void rankOrderHasTensorFastestAndPipelineSlowest() {
    MeshShape s = MeshShape.infer(8, 2, 2);
    assertEquals("(pp=2, dp=2, tp=2)", s.toString());
    assertEquals(List.of(4, 5), s.groupAlong(MeshAxis.TP, 5));
    assertEquals(List.of(5, 7), s.groupAlong(MeshAxis.DP, 5));
    assertEquals(List.of(1, 5), s.groupAlong(MeshAxis.PP, 5));
    assertEquals(List.of(5), s.groupAlong(MeshAxis.SP, 5));
    assertEquals(1, s.size(MeshAxis.EP));
    assertEquals(4, MeshShape.infer(12, 3, 1).size(MeshAxis.DP));
  }

  @Test void roomForSequenceAndExpertAxes() {
    var s = new MeshShape(List.of(new MeshShape.Dim(MeshAxis.DP, 2), new MeshShape.Dim(MeshAxis.SP, 2), new MeshShape.Dim(MeshAxis.TP, 2)));
    assertEquals(List.of(1, 3), s.groupAlong(MeshAxis.SP, 1));
    assertEquals(6, s.rank(s.coordinates(6)));
  }

  @Test void badSizesAreNamed() {
    assertEquals("world size 6 is not divisible by tp*pp = 4*1 = 4",
        assertThrows(IllegalArgumentException.class, () -> MeshShape.infer(6, 4, 1)).getMessage());
    assertTrue(assertThrows(IllegalArgumentException.class, () -> MeshShape.infer(8, 0, 2)).getMessage().contains("tp=0"));
    assertTrue(assertThrows(IllegalArgumentException.class, () -> MeshShape.infer(8, 2, 2).coordinates(8)).getMessage().contains("valid: 0..7"));
  }

  /** Each rank sums its world rank over its tp, dp and pp groups; expected sums follow from the layout above. */
  @Test void groupsCommunicateAlongTheirAxisAndAreCached() {
    try (CpuBackend cpu = CpuBackend.reference()) {
      List<ProcessGroup> world = CpuDistributed.threads(8);
      RankThreads.run(world, 60, w -> {
        DeviceMesh mesh = DeviceMesh.of(w, 2, 2);
        int r = w.rank();
        for (MeshAxis a : new MeshAxis[] {MeshAxis.TP, MeshAxis.DP, MeshAxis.PP}) {
          ProcessGroup g = mesh.group(a);
          assertSame(g, mesh.group(a));
          Tensor t = Tensor.scalar(r, DType.I64, cpu);
          g.allReduce(t, Reduction.SUM);
          int expected = mesh.shape().groupAlong(a, r).stream().mapToInt(Integer::intValue).sum();
          assertEquals(expected, t.item(), 0.0, a + " at rank " + r);
          assertTrue(g.name().startsWith(a.label()), g.name());
        }
        assertEquals(r % 2, mesh.coordinate(MeshAxis.TP));
        assertEquals(r / 4, mesh.coordinate(MeshAxis.PP));
        return null;
      });
      world.forEach(ProcessGroup::close);
    }
  }
}
