package io.colossal4j.parallel.pipeline;

import io.colossal4j.backend.Backend;
import io.colossal4j.distributed.ProcessGroup;
import io.colossal4j.ops.Views;
import io.colossal4j.tensor.DType;
import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A pipeline-parallel model's state seen as the single-device model's. Each stage holds a slice of the state
 * dict under the single-device names ({@link Stage}); {@link #gatherToFirst} collects the slices on stage 0, so
 * one rank can write the whole model. Works for any named tensors (model entries, optimizer state, random
 * stream states), since each stage first sends the names, dtypes and shapes of what it holds.
 *
 * <p>Messages: stage s sends to stage 0 an i64 length, the UTF-8 description (one byte per i64 element), then
 * its tensors in its own order, all under {@link #TAG}; the process group matches one (peer, tag) in order.
 * The tag lies far above the schedules' tags (which count up from 0), so a gather between steps never meets
 * an activation message.
 */
public final class PipelineState {
  private PipelineState() {}

  static final int TAG = Integer.MAX_VALUE - 16;

  /**
   * On stage 0: every stage's entries by name (stage 0's first, then stage 1's, ...; a name held by several
   * stages, such as a weight tied across stages, is taken from the lowest). Elsewhere: an empty map. Collective
   * over {@code pp}; {@code backend} holds the received tensors (and the headers, on every stage).
   */
  public static Map<String, Tensor> gatherToFirst(Map<String, Tensor> local, ProcessGroup pp, Backend backend) {
    if (pp.rank() != 0) {
      send(local, pp, backend);
      return Map.of();
    }
    Map<String, Tensor> out = new LinkedHashMap<>(local);
    for (int stage = 1; stage < pp.size(); stage++)
      for (Entry e : receiveHeader(pp, stage, backend)) {
        Tensor t = Tensor.empty(e.shape(), e.dtype(), backend);
        pp.recv(t, stage, TAG);
        out.putIfAbsent(e.name(), t);
      }
    return out;
  }

  /** One tensor's description: name, dtype, shape. */
  record Entry(String name, DType dtype, Shape shape) {}

  private static void send(Map<String, Tensor> local, ProcessGroup pp, Backend backend) {
    StringBuilder sb = new StringBuilder();
    local.forEach((name, t) -> {
      if (name.indexOf('\n') >= 0 || name.indexOf('\t') >= 0) throw new IllegalArgumentException("state name " + name + " contains a tab or newline");
      sb.append(name).append('\t').append(t.dtype().name()).append('\t').append(Arrays.toString(t.shape().toArray())).append('\n');
    });
    byte[] text = sb.toString().getBytes(StandardCharsets.UTF_8);
    long[] codes = new long[text.length];
    for (int i = 0; i < text.length; i++) codes[i] = text[i] & 0xff;
    pp.send(Tensor.of(new long[] {text.length}, Shape.of(1), DType.I64, backend), 0, TAG);
    if (text.length > 0) pp.send(Tensor.of(codes, Shape.of(codes.length), DType.I64, backend), 0, TAG);
    for (Tensor t : local.values()) pp.send(t.isContiguous() ? t.detach() : Views.contiguous(t.detach()), 0, TAG);
  }

  private static List<Entry> receiveHeader(ProcessGroup pp, int stage, Backend backend) {
    Tensor len = Tensor.empty(Shape.of(1), DType.I64, backend);
    pp.recv(len, stage, TAG);
    int n = Math.toIntExact(len.toLongArray()[0]);
    if (n == 0) return List.of();
    Tensor codes = Tensor.empty(Shape.of(n), DType.I64, backend);
    pp.recv(codes, stage, TAG);
    long[] c = codes.toLongArray();
    byte[] text = new byte[n];
    for (int i = 0; i < n; i++) text[i] = (byte) c[i];
    List<Entry> out = new ArrayList<>();
    for (String line : new String(text, StandardCharsets.UTF_8).split("\n")) {
      String[] f = line.split("\t");
      String dims = f[2].substring(1, f[2].length() - 1).trim();
      int[] shape = dims.isEmpty() ? new int[0] : Arrays.stream(dims.split(",\\s*")).mapToInt(Integer::parseInt).toArray();
      out.add(new Entry(f[0], DType.valueOf(f[1]), Shape.of(shape)));
    }
    return out;
  }
}
