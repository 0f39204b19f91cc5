package io.colossal4j.distributed.nccl;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.colossal4j.distributed.CollectiveException;
import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.distributed.RankThreads;
import io.colossal4j.distributed.Reduction;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Fail-stop of the NCCL group on two GPUs (scripts run it in its own JVM: it leaves aborted communicators behind). */
class NcclFailureGpuTest {
  static Tensor onGpu(ProcessGroup g, double[] v) { return Tensor.of(v, Shape.of(v.length), DType.F32, ((NcclProcessGroup) g).backend()); }

  /**
   * A rank that never joins an all-reduce: the waiting rank's watchdog fails it after the timeout with a message
   * naming the rank, operation and group; the other rank learns of it through the store and refuses its next call.
   */
  @Test void timeoutFailsEveryRankWithAMessage() {
    List<ProcessGroup> w = TwoGpus.worlds(Duration.ofSeconds(3));
    try {
      RankThreads.run(w, 60, g -> {
        Tensor t = onGpu(g, new double[] {1, 2, 3});
        g.allReduce(t, Reduction.SUM);                         // creates the communicator on both ranks
        if (g.rank() == 0) {
          g.allReduceAsync(t, Reduction.SUM);                  // rank 1 never joins
          long deadline = System.nanoTime() + 20_000_000_000L;
          CollectiveException failure = null;
          while (failure == null && System.nanoTime() < deadline) {
            try {
              Thread.sleep(100);
              g.allReduceAsync(onGpu(g, new double[] {1}), Reduction.SUM);
            } catch (CollectiveException e) {
              failure = e;
            }
          }
          assertTrue(failure != null, "rank 0 was not failed within 20 s");
          String m = failure.getMessage();
          assertTrue(m.contains("rank 0 of group world") && m.contains("all_reduce #1") && m.contains("not finished after 3 s"), m);
        } else {
          // issuing anything before the failure would complete rank 0's all-reduce: wait past timeout + notice delay
          Thread.sleep(10_000);
          var failure = assertThrows(CollectiveException.class, g::barrierAsync);
          assertTrue(failure.getMessage().contains("another rank failed") && failure.getMessage().contains("all_reduce #1"), failure.getMessage());
        }
        return null;
      });
    } finally {
      w.reversed().forEach(ProcessGroup::close);
    }
  }
}
