package io.colossal4j.cli;

import io.colossal4j.backend.cuda.CudaBackend;
import io.colossal4j.parallel.pipeline.Schedule;
import io.colossal4j.parallel.pipeline.Timeline;
import java.util.ArrayList;
import java.util.List;

/**
 * Marks each pipeline action's interval with CUDA events on the GPU's compute stream, so an action counts from
 * when the stream reaches it (after its input arrived) to when the stream finished its kernels, not the host's
 * enqueueing. Used by one thread (the rank's); {@link #busyMillis} waits for the last event and frees them all.
 */
final class DeviceSpans implements Timeline.Probe {
  private final CudaBackend gpu;
  private final List<long[]> spans = new ArrayList<>();
  private long open;

  DeviceSpans(CudaBackend gpu) { this.gpu = gpu; }

  @Override public void started(Schedule.Action a) {
    gpu.enter();
    open = gpu.driver().eventCreate();
    gpu.driver().eventRecord(open, gpu.stream());
  }

  @Override public void finished(Schedule.Action a) {
    gpu.enter();
    long end = gpu.driver().eventCreate();
    gpu.driver().eventRecord(end, gpu.stream());
    spans.add(new long[] {open, end});
  }

  /** The summed device time of the actions marked since the last call; destroys their events. */
  double busyMillis() {
    if (spans.isEmpty()) return 0;
    gpu.enter();
    var d = gpu.driver();
    d.eventSynchronize(spans.getLast()[1]);
    double ms = 0;
    for (long[] s : spans) {
      ms += d.elapsedMillis(s[0], s[1]);
      d.eventDestroy(s[0]);
      d.eventDestroy(s[1]);
    }
    spans.clear();
    return ms;
  }
}
