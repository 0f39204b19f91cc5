package io.colossal4j.backend.cuda;

import io.colossal4j.backend.cuda.ffi.CudaException;
import io.colossal4j.backend.cuda.ffi.Cudnn;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Map;
import java.util.TreeMap;

/**
 * What an engine configuration of cuDNN's backend API is: the global index of its engine and its knob choices,
 * written as a tag such as {@code "eng8 k24=3 k14=2"} (knob types as cudnnBackendKnobType_t numbers: 24 is
 * KERNEL_CFG, 14 STAGES, 40/41 TILE_M/TILE_N, 27/28 the CGA tile). Two configurations with equal tags build the
 * same plan, so the tag is what autotuning deduplicates on and what reports name. Reading a tag only queries the
 * finalized configuration (into descriptors created and destroyed here); it never changes it.
 */
final class CudnnEngines {
  private CudnnEngines() {}

  // cudnnBackendDescriptorType_t
  private static final int D_ENGINE = 2, D_KNOB_CHOICE = 7;
  // cudnnBackendAttributeType_t
  private static final int T_INT64 = 3, T_KNOB_TYPE = 9, T_DESCRIPTOR = 15;
  // cudnnBackendAttributeName_t
  private static final int A_CFG_ENGINE = 300, A_CFG_KNOB_CHOICES = 302, A_KNOB_CHOICE_TYPE = 600, A_KNOB_CHOICE_VALUE = 601,
      A_ENGINE_GLOBAL_INDEX = 1301;
  /**
   * Knob-choice descriptors offered to the query: more than any engine sets (the library has 43–46 knob types,
   * an engine uses a handful); cuDNN fills at most this many and reports how many the configuration has.
   */
  private static final int MAX_KNOBS = 16;

  /**
   * The tag of a finalized engine configuration {@code cfg}, or {@code "eng? <why>"} when cuDNN will not say
   * (an unreadable configuration is still a candidate; it just cannot be deduplicated or named).
   */
  static String tag(Cudnn cudnn, long cfg) {
    long engine = 0;
    long[] knobs = new long[MAX_KNOBS];
    try (Arena a = Arena.ofConfined()) {
      engine = cudnn.createDescriptor(D_ENGINE);
      cudnn.getAttribute(cfg, A_CFG_ENGINE, T_DESCRIPTOR, 1, a.allocateFrom(ValueLayout.JAVA_LONG, engine));
      MemorySegment index = a.allocate(ValueLayout.JAVA_LONG);
      cudnn.getAttribute(engine, A_ENGINE_GLOBAL_INDEX, T_INT64, 1, index);
      StringBuilder tag = new StringBuilder("eng").append(index.get(ValueLayout.JAVA_LONG, 0));
      for (Map.Entry<Integer, Long> k : knobChoices(cudnn, cfg, knobs, a).entrySet())
        tag.append(" k").append(k.getKey()).append('=').append(k.getValue());
      return tag.toString();
    } catch (CudaException e) {
      return "eng? (" + e.getMessage() + ")";
    } finally {
      for (long k : knobs) destroyQuietly(cudnn, k);
      destroyQuietly(cudnn, engine);
    }
  }

  /** Destroys a descriptor made here; one that fails to go leaks rather than hide the result or the first error. */
  static void destroyQuietly(Cudnn cudnn, long desc) {
    try {
      cudnn.destroyDescriptor(desc);
    } catch (CudaException ignored) {
      // leaks one small host-side descriptor
    }
  }

  /** The configuration's knob choices, type → value, read through the (created here) knob-choice descriptors {@code knobs}. */
  private static Map<Integer, Long> knobChoices(Cudnn cudnn, long cfg, long[] knobs, Arena a) {
    for (int i = 0; i < knobs.length; i++) knobs[i] = cudnn.createDescriptor(D_KNOB_CHOICE);
    MemorySegment array = a.allocateFrom(ValueLayout.JAVA_LONG, knobs);
    long n = Math.min(cudnn.getAttribute(cfg, A_CFG_KNOB_CHOICES, T_DESCRIPTOR, knobs.length, array), knobs.length);
    Map<Integer, Long> choices = new TreeMap<>();
    MemorySegment type = a.allocate(ValueLayout.JAVA_LONG), value = a.allocate(ValueLayout.JAVA_LONG);
    for (int i = 0; i < n; i++) {
      long knob = array.getAtIndex(ValueLayout.JAVA_LONG, i);
      type.fill((byte) 0);
      cudnn.getAttribute(knob, A_KNOB_CHOICE_TYPE, T_KNOB_TYPE, 1, type);   // an enum: 4 bytes
      cudnn.getAttribute(knob, A_KNOB_CHOICE_VALUE, T_INT64, 1, value);
      choices.put(type.get(ValueLayout.JAVA_INT, 0), value.get(ValueLayout.JAVA_LONG, 0));
    }
    return choices;
  }
}
