package io.colossal4j.backend.cuda;

import io.colossal4j.tensor.TensorException;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * How to open a CUDA backend. {@code environment} is the process environment as the launcher read it
 * (library discovery uses it; nothing here reads it itself); {@code memoryCapBytes} limits what the
 * allocator holds ({@link Long#MAX_VALUE}: the whole device); {@code kernelCacheDir} holds compiled
 * kernels (null: compile on every start); {@code cudnnPlans} says how a cuDNN graph's execution plan is chosen.
 */
public record CudaOptions(Map<String, String> environment, long memoryCapBytes, Path kernelCacheDir, CudnnPlans cudnnPlans) {
  /**
   * How cuDNN's execution plan for a graph (fused attention) is chosen. {@code AUTOTUNE}: the distinct engine
   * configurations of heuristics modes A and B (up to eight) are built, and the first call with real buffers times
   * each and keeps the fastest. {@code EXPLORE}: as AUTOTUNE, the candidates completed by variants of the
   * heuristics' configurations with one knob (tile size, kernel configuration, stages) set to another value the
   * engine offers. {@code HEURISTIC}: the heuristics' first configuration that builds, untimed.
   */
  public enum CudnnPlans { AUTOTUNE, EXPLORE, HEURISTIC }

  public CudaOptions {
    environment = Map.copyOf(environment);
    if (memoryCapBytes <= 0) throw new TensorException("device memory cap must be > 0 bytes, got " + memoryCapBytes);
    java.util.Objects.requireNonNull(cudnnPlans, "cudnnPlans");
  }

  /** The given cap and kernel cache, cuDNN plans autotuned. */
  public CudaOptions(Map<String, String> environment, long memoryCapBytes, Path kernelCacheDir) {
    this(environment, memoryCapBytes, kernelCacheDir, CudnnPlans.AUTOTUNE);
  }

  /** No cap; kernels cached under {@code ~/.cache/colossal4j/cuda-kernels}; cuDNN plans autotuned. */
  public static CudaOptions defaults(Map<String, String> environment) {
    return new CudaOptions(environment, Long.MAX_VALUE, Path.of(System.getProperty("user.home"), ".cache", "colossal4j", "cuda-kernels"));
  }

  public CudaOptions withMemoryCap(long bytes) { return new CudaOptions(environment, bytes, kernelCacheDir, cudnnPlans); }

  public CudaOptions withKernelCacheDir(Path dir) { return new CudaOptions(environment, memoryCapBytes, dir, cudnnPlans); }

  public CudaOptions withCudnnPlans(CudnnPlans plans) { return new CudaOptions(environment, memoryCapBytes, kernelCacheDir, plans); }

  private static final Pattern SIZE = Pattern.compile("\\s*([0-9]+(?:\\.[0-9]+)?)\\s*([kmgt]i?b?|b)?\\s*", Pattern.CASE_INSENSITIVE);

  /**
   * Parses a memory size as written in configs: {@code 23.3GiB}, {@code 24GB}, {@code 512MiB}, {@code 1048576}.
   * KiB/MiB/GiB/TiB and bare K/M/G/T are powers of 1024; KB/MB/GB/TB are powers of 1000.
   */
  public static long parseBytes(String text) {
    Matcher m = SIZE.matcher(text);
    if (!m.matches())
      throw new TensorException("cannot read memory size '" + text + "'; write e.g. 23.3GiB, 24GB, 512MiB or a byte count");
    double v = Double.parseDouble(m.group(1));
    String unit = m.group(2) == null ? "b" : m.group(2).toLowerCase(Locale.ROOT);
    boolean binary = unit.contains("i") || unit.length() == 1;
    double base = binary ? 1024 : 1000;
    int power = switch (unit.charAt(0)) {
      case 'k' -> 1;
      case 'm' -> 2;
      case 'g' -> 3;
      case 't' -> 4;
      default -> 0;
    };
    double bytes = v * Math.pow(base, power);
    if (bytes < 1 || bytes > Long.MAX_VALUE / 2) throw new TensorException("memory size '" + text + "' is out of range");
    return (long) bytes;
  }
}
