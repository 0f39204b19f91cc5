package io.colossal4j.backend.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.colossal4j.tensor.Shape;
import io.colossal4j.tensor.Tensor;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The huge-page host blocks: zeroed, aligned, usable to their last byte, advised, and unmapped with their arena. */
class HostPagesTest {
  @Test
  void largeBlockIsZeroedAlignedAndUsableToItsEnd() {
    long bytes = 3 * HostPages.HUGE + 4096 + 64;   // not a whole number of huge pages
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment s = HostPages.allocate(arena, bytes, 64);
      assertEquals(bytes, s.byteSize());
      assertEquals(0, s.address() % 64);
      if (HostPages.enabled()) assertEquals(0, s.address() % HostPages.HUGE, "a mapped block starts on a 2 MiB boundary");
      for (long i = 0; i < bytes; i += 4096) assertEquals(0, s.get(ValueLayout.JAVA_BYTE, i), "byte " + i + " of a fresh block");
      assertEquals(0, s.get(ValueLayout.JAVA_BYTE, bytes - 1));
      s.set(ValueLayout.JAVA_BYTE, 0, (byte) 1);
      s.set(ValueLayout.JAVA_BYTE, bytes - 1, (byte) 2);
      assertEquals(1, s.get(ValueLayout.JAVA_BYTE, 0));
      assertEquals(2, s.get(ValueLayout.JAVA_BYTE, bytes - 1));
    }
  }

  @Test
  void smallBlockComesFromTheArena() {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment s = HostPages.allocate(arena, HostPages.HUGE - 64, 64);
      assertEquals(HostPages.HUGE - 64, s.byteSize());
      assertEquals(0, s.address() % 64);
    }
  }

  /** The kernel reports per mapping whether it may back it with huge pages; an advised block must say so. */
  @Test
  void mappedBlockIsAdvisedAndUnmappedWhenItsArenaCloses() throws IOException {
    assumeTrue(HostPages.enabled(), "huge pages are used on Linux only");
    Path thp = Path.of("/sys/kernel/mm/transparent_hugepage/enabled"), smaps = Path.of("/proc/self/smaps");
    assumeTrue(Files.isReadable(thp) && Files.isReadable(smaps), "no THP settings or smaps to read");
    assumeTrue(!Files.readString(thp).contains("[never]"), "transparent huge pages are switched off on this machine");
    long start;
    String range;
    try (Arena arena = Arena.ofShared()) {
      MemorySegment s = HostPages.allocate(arena, 8 * HostPages.HUGE, 64);
      start = s.address();
      s.fill((byte) 7);
      List<String> vma = mapping(smaps, start);
      assertTrue(!vma.isEmpty(), "no mapping holds " + Long.toHexString(start));
      assertTrue(vma.stream().anyMatch(l -> l.startsWith("THPeligible:") && l.trim().endsWith("1")),
          "the block's mapping is not eligible for huge pages:\n" + String.join("\n", vma));
      range = vma.get(0).substring(0, vma.get(0).indexOf(' '));
    }
    // another mapping may take the address range at once (the JVM's own); the block's own range must be gone
    List<String> after = mapping(smaps, start);
    assertTrue(after.isEmpty() || !after.get(0).startsWith(range + " "), "the block is still mapped after its arena closed: " + range);
  }

  /** A tensor of 16 MiB through the backend lands on such a block and computes as any other. */
  @Test
  void largeTensorsComputeOnMappedBlocks() {
    int n = 4 << 20;
    float[] a = new float[n], b = new float[n];
    for (int i = 0; i < n; i++) { a[i] = i % 1000; b[i] = 0.5f; }
    try (CpuBackend cpu = CpuBackend.create(2)) {
      Tensor x = Tensor.of(a, Shape.of(n), cpu), y = Tensor.of(b, Shape.of(n), cpu);
      Tensor z = io.colossal4j.ops.Arith.add(x, y);
      if (HostPages.enabled())
        for (Tensor t : new Tensor[] {x, y, z})
          assertEquals(0, ((CpuStorage) t.storage()).segment().address() % HostPages.HUGE, "a 16 MiB tensor's block is not a mapped one");
      float[] sum = z.toFloatArray();
      for (int i = 0; i < n; i += 997) assertEquals(a[i] + 0.5f, sum[i], 0f, "element " + i);
      assertEquals(a[n - 1] + 0.5f, sum[n - 1], 0f);
    }
  }

  /** The smaps lines of the mapping that holds {@code address}, or none. */
  private static List<String> mapping(Path smaps, long address) throws IOException {
    List<String> lines = Files.readAllLines(smaps);
    for (int i = 0; i < lines.size(); i++) {
      String l = lines.get(i);
      int dash = l.indexOf('-'), space = l.indexOf(' ');
      if (dash <= 0 || space < dash || !l.substring(0, dash).matches("[0-9a-f]+")) continue;
      long lo = Long.parseUnsignedLong(l.substring(0, dash), 16), hi = Long.parseUnsignedLong(l.substring(dash + 1, space), 16);
      if (address < lo || address >= hi) continue;
      int end = i + 1;
      while (end < lines.size() && !lines.get(end).matches("^[0-9a-f]+-[0-9a-f]+ .*")) end++;
      return lines.subList(i, end);
    }
    return List.of();
  }
}
