package io.colossal4j.backend.cuda;

import io.colossal4j.backend.cuda.ffi.CudaException;
import io.colossal4j.backend.cuda.ffi.Cudnn;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.IntToLongFunction;

/**
 * Engine configurations of cuDNN's backend API: reading what one is (the global index of its engine and its knob
 * choices, {@link Config}), which knobs an engine offers ({@link Knob}), and making a configuration of an engine
 * with chosen knob values. Knob types are cudnnBackendKnobType_t numbers: 2 TILE_SIZE, 14 STAGES, 24 KERNEL_CFG,
 * 27/28 the CGA tile along M/N, 40/41 TILE_M/TILE_N, 42 WARP_SPEC_CFG. Descriptors made only to read are created
 * and destroyed here; those of a made configuration come from the caller's factory, which owns them.
 */
final class CudnnEngines {
  private CudnnEngines() {}

  // cudnnBackendDescriptorType_t
  private static final int D_ENGINE = 2, D_ENGINECFG = 3, D_KNOB_CHOICE = 7, D_KNOB_INFO = 8;
  // cudnnBackendAttributeType_t
  private static final int T_INT64 = 3, T_KNOB_TYPE = 9, T_DESCRIPTOR = 15;
  // cudnnBackendAttributeName_t
  private static final int A_CFG_ENGINE = 300, A_CFG_KNOB_CHOICES = 302, A_KNOB_CHOICE_TYPE = 600, A_KNOB_CHOICE_VALUE = 601,
      A_KNOB_INFO_TYPE = 1200, A_KNOB_INFO_MAX = 1201, A_KNOB_INFO_MIN = 1202, A_KNOB_INFO_STRIDE = 1203, A_ENGINE_GRAPH = 1300,
      A_ENGINE_GLOBAL_INDEX = 1301, A_ENGINE_KNOB_INFO = 1302;
  /**
   * Knob descriptors offered to a query: more than any engine uses (the library has 43–46 knob types, an engine
   * a handful); cuDNN fills at most this many and reports how many there are.
   */
  private static final int MAX_KNOBS = 16;
  /** Knob types tried first when varying a configuration: the ones that pick tiles and kernel variants. */
  private static final List<Integer> TILE_KNOBS = List.of(24, 40, 41, 42, 14, 27, 28, 2);

  /** An engine configuration: its engine's global index and knob choices (type → value). */
  record Config(long engine, Map<Integer, Long> knobs) {
    Config {
      knobs = Collections.unmodifiableMap(new TreeMap<>(knobs));
    }

    /** "eng8 k14=2 k24=3": equal tags build the same plan (what autotuning deduplicates on, and reports name). */
    String tag() {
      StringBuilder s = new StringBuilder("eng").append(engine);
      knobs.forEach((t, v) -> s.append(" k").append(t).append('=').append(v));
      return s.toString();
    }

    Config with(int type, long value) {
      Map<Integer, Long> m = new TreeMap<>(knobs);
      m.put(type, value);
      return new Config(engine, m);
    }
  }

  /** A knob an engine offers: values min, min + stride, ..., max. */
  record Knob(int type, long min, long max, long stride) {
    /** Up to {@code limit} of its values, ascending. */
    List<Long> values(int limit) {
      List<Long> out = new ArrayList<>();
      long step = Math.max(stride, 1);
      for (long v = min; v <= max && out.size() < limit; v += step) out.add(v);
      return out;
    }

    String describe() { return "k" + type + " " + min + ".." + max + (stride > 1 ? "/" + stride : ""); }
  }

  /** What a finalized configuration {@code cfg} is, or null when cuDNN will not say. */
  static Config read(Cudnn cudnn, long cfg) {
    long engine = 0;
    long[] knobs = new long[MAX_KNOBS];
    try (Arena a = Arena.ofConfined()) {
      engine = cudnn.createDescriptor(D_ENGINE);
      cudnn.getAttribute(cfg, A_CFG_ENGINE, T_DESCRIPTOR, 1, a.allocateFrom(ValueLayout.JAVA_LONG, engine));
      MemorySegment index = a.allocate(ValueLayout.JAVA_LONG);
      cudnn.getAttribute(engine, A_ENGINE_GLOBAL_INDEX, T_INT64, 1, index);
      for (int i = 0; i < knobs.length; i++) knobs[i] = cudnn.createDescriptor(D_KNOB_CHOICE);
      MemorySegment array = a.allocateFrom(ValueLayout.JAVA_LONG, knobs);
      long n = Math.min(cudnn.getAttribute(cfg, A_CFG_KNOB_CHOICES, T_DESCRIPTOR, knobs.length, array), knobs.length);
      Map<Integer, Long> choices = new TreeMap<>();
      for (int i = 0; i < n; i++) {
        long knob = array.getAtIndex(ValueLayout.JAVA_LONG, i);
        choices.put(knobType(cudnn, knob, A_KNOB_CHOICE_TYPE, a), int64(cudnn, knob, A_KNOB_CHOICE_VALUE, a));
      }
      return new Config(index.get(ValueLayout.JAVA_LONG, 0), choices);
    } catch (CudaException e) {
      return null;
    } finally {
      for (long k : knobs) destroyQuietly(cudnn, k);
      destroyQuietly(cudnn, engine);
    }
  }

  /**
   * The knobs engine {@code index} offers for the finalized operation graph {@code graph}, tile-picking ones
   * first; empty when the engine does not take the graph or cuDNN will not say.
   */
  static List<Knob> knobs(Cudnn cudnn, long graph, long index) {
    long engine = 0;
    long[] infos = new long[MAX_KNOBS];
    try (Arena a = Arena.ofConfined()) {
      engine = cudnn.createDescriptor(D_ENGINE);
      cudnn.setAttribute(engine, A_ENGINE_GRAPH, T_DESCRIPTOR, 1, a.allocateFrom(ValueLayout.JAVA_LONG, graph));
      cudnn.setAttribute(engine, A_ENGINE_GLOBAL_INDEX, T_INT64, 1, a.allocateFrom(ValueLayout.JAVA_LONG, index));
      if (cudnn.finalizeDescriptor(engine, "engine " + index) != 0) return List.of();
      for (int i = 0; i < infos.length; i++) infos[i] = cudnn.createDescriptor(D_KNOB_INFO);
      MemorySegment array = a.allocateFrom(ValueLayout.JAVA_LONG, infos);
      long n = Math.min(cudnn.getAttribute(engine, A_ENGINE_KNOB_INFO, T_DESCRIPTOR, infos.length, array), infos.length);
      List<Knob> out = new ArrayList<>();
      for (int i = 0; i < n; i++) {
        long info = array.getAtIndex(ValueLayout.JAVA_LONG, i);
        out.add(new Knob(knobType(cudnn, info, A_KNOB_INFO_TYPE, a), int64(cudnn, info, A_KNOB_INFO_MIN, a),
            int64(cudnn, info, A_KNOB_INFO_MAX, a), int64(cudnn, info, A_KNOB_INFO_STRIDE, a)));
      }
      out.sort(Comparator.comparingInt(k -> TILE_KNOBS.contains(k.type()) ? TILE_KNOBS.indexOf(k.type()) : TILE_KNOBS.size() + k.type()));
      return out;
    } catch (CudaException e) {
      return List.of();
    } finally {
      for (long k : infos) destroyQuietly(cudnn, k);
      destroyQuietly(cudnn, engine);
    }
  }

  /**
   * A finalized configuration {@code c} of the operation graph {@code graph}, its descriptors made by
   * {@code create} (a descriptor type → a new descriptor the caller owns and destroys); 0 when cuDNN does not
   * support that engine with those knob values.
   */
  static long make(Cudnn cudnn, IntToLongFunction create, long graph, Config c) {
    try (Arena a = Arena.ofConfined()) {
      long engine = create.applyAsLong(D_ENGINE);
      cudnn.setAttribute(engine, A_ENGINE_GRAPH, T_DESCRIPTOR, 1, a.allocateFrom(ValueLayout.JAVA_LONG, graph));
      cudnn.setAttribute(engine, A_ENGINE_GLOBAL_INDEX, T_INT64, 1, a.allocateFrom(ValueLayout.JAVA_LONG, c.engine()));
      if (cudnn.finalizeDescriptor(engine, "engine " + c.engine()) != 0) return 0;
      long[] choices = new long[c.knobs().size()];
      int i = 0;
      for (Map.Entry<Integer, Long> k : c.knobs().entrySet()) {
        long choice = create.applyAsLong(D_KNOB_CHOICE);
        cudnn.setAttribute(choice, A_KNOB_CHOICE_TYPE, T_KNOB_TYPE, 1, a.allocateFrom(ValueLayout.JAVA_INT, k.getKey()));
        cudnn.setAttribute(choice, A_KNOB_CHOICE_VALUE, T_INT64, 1, a.allocateFrom(ValueLayout.JAVA_LONG, k.getValue()));
        if (cudnn.finalizeDescriptor(choice, "knob choice " + k.getKey()) != 0) return 0;
        choices[i++] = choice;
      }
      long cfg = create.applyAsLong(D_ENGINECFG);
      cudnn.setAttribute(cfg, A_CFG_ENGINE, T_DESCRIPTOR, 1, a.allocateFrom(ValueLayout.JAVA_LONG, engine));
      if (choices.length > 0) cudnn.setAttribute(cfg, A_CFG_KNOB_CHOICES, T_DESCRIPTOR, choices.length, a.allocateFrom(ValueLayout.JAVA_LONG, choices));
      return cudnn.finalizeDescriptor(cfg, "engine configuration " + c.tag()) == 0 ? cfg : 0;
    } catch (CudaException e) {   // a value out of the engine's range, or a combination it rejects
      return 0;
    }
  }

  private static int knobType(Cudnn cudnn, long desc, int attribute, Arena a) {
    MemorySegment out = a.allocate(ValueLayout.JAVA_LONG);   // an enum: cuDNN writes 4 bytes
    cudnn.getAttribute(desc, attribute, T_KNOB_TYPE, 1, out);
    return out.get(ValueLayout.JAVA_INT, 0);
  }

  private static long int64(Cudnn cudnn, long desc, int attribute, Arena a) {
    MemorySegment out = a.allocate(ValueLayout.JAVA_LONG);
    cudnn.getAttribute(desc, attribute, T_INT64, 1, out);
    return out.get(ValueLayout.JAVA_LONG, 0);
  }

  /** Destroys a descriptor; one that fails to go leaks rather than hide the result or the first error. */
  static void destroyQuietly(Cudnn cudnn, long desc) {
    try {
      cudnn.destroyDescriptor(desc);
    } catch (CudaException ignored) {
      // leaks one small host-side descriptor
    }
  }
}
