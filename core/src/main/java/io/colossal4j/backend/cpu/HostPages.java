package io.colossal4j.backend.cpu;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.Locale;

/**
 * Large host blocks on transparent huge pages. A block of 2 MiB or more is mapped by the backend itself (anonymous
 * {@code mmap}, so it comes zeroed like {@link Arena#allocate}), aligned to 2 MiB and advised {@code MADV_HUGEPAGE}
 * before anything touches it, so the kernel backs it with 2 MiB pages where it can: Linux's default policy
 * ({@code transparent_hugepage/enabled = madvise}) gives huge pages only to memory advised so, and libc's malloc
 * never advises. A streaming kernel over tens of MiB then walks one page table entry per 2 MiB instead of one per
 * 4 KiB; on a virtual machine each miss of the TLB costs a two-level walk (the guest's and the host's tables).
 * Measured on the 2-core VM (a 2-thread in-place add, buffers on huge pages against buffers on small pages in
 * alternating rounds of one process, each against a second small-page pair as control; C and Java, 9 runs at varying
 * load): 1.02–1.35× over two 16 MiB arrays, 0.98–1.21× over two 64 MiB arrays, the larger gains while other tenants
 * loaded the memory bus (docs/benchmarks/cpu.md).
 *
 * <p>Elsewhere (another OS, the symbols missing, {@code -Dcolossal4j.cpu.hugePages=false}) and below 2 MiB, blocks
 * come from {@link Arena#allocate} as before. Either way the block lives as long as the arena passed in: closing it
 * unmaps the mapping. The advice is a hint: a kernel set to {@code never}, or one with no free 2 MiB frames, maps the
 * block with small pages and nothing else changes.
 */
final class HostPages {
  private HostPages() {}

  /** The huge page size (x86-64 and arm64 with 4 KiB base pages), and the least block mapped this way. */
  static final long HUGE = 2L << 20;

  private static final int PROT_READ_WRITE = 0x1 | 0x2;
  private static final int MAP_PRIVATE_ANONYMOUS = 0x02 | 0x20;
  private static final int MADV_HUGEPAGE = 14;

  private static final MethodHandle MMAP, MUNMAP, MADVISE;

  static {
    MethodHandle mmap = null, munmap = null, madvise = null;
    boolean wanted = System.getProperty("os.name", "").toLowerCase(Locale.ROOT).startsWith("linux")
        && !"false".equalsIgnoreCase(System.getProperty("colossal4j.cpu.hugePages", "true"));
    if (wanted) {
      Linker linker = Linker.nativeLinker();
      SymbolLookup libc = linker.defaultLookup();
      var a = libc.find("mmap");
      var b = libc.find("munmap");
      var c = libc.find("madvise");
      if (a.isPresent() && b.isPresent() && c.isPresent()) {
        mmap = linker.downcallHandle(a.get(), FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG,
            ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG));
        munmap = linker.downcallHandle(b.get(), FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
        madvise = linker.downcallHandle(c.get(), FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG,
            ValueLayout.JAVA_INT));
      }
    }
    MMAP = mmap;
    MUNMAP = munmap;
    MADVISE = madvise;
  }

  /** Whether blocks of {@link #HUGE} bytes or more are mapped and advised here (Linux, not switched off). */
  static boolean enabled() { return MMAP != null; }

  /**
   * A zeroed block of {@code bytes} that lives until {@code arena} closes: mapped on huge pages when
   * {@link #enabled()} and {@code bytes >= HUGE} (then 2 MiB aligned), else {@code arena.allocate(bytes, align)}.
   *
   * @throws OutOfMemoryError when the OS refuses the mapping (as {@link Arena#allocate} throws when malloc fails)
   */
  static MemorySegment allocate(Arena arena, long bytes, long align) {
    if (!enabled() || bytes < HUGE || align > HUGE) return arena.allocate(bytes, align);
    long advised = (bytes + HUGE - 1) & -HUGE;
    long length = advised + HUGE;   // room to move the start up to a 2 MiB boundary; the slack is never touched
    MemorySegment raw;
    try {
      raw = (MemorySegment) MMAP.invokeExact(MemorySegment.NULL, length, PROT_READ_WRITE, MAP_PRIVATE_ANONYMOUS, -1, 0L);
    } catch (Throwable t) {
      throw new IllegalStateException("mmap of " + length + " bytes failed", t);
    }
    if (raw.address() == -1L) throw new OutOfMemoryError("mmap of " + length + " bytes of host memory failed");
    long start = (raw.address() + HUGE - 1) & -HUGE;
    MemorySegment block = MemorySegment.ofAddress(start).reinterpret(advised);
    try {
      int ignored = (int) MADVISE.invokeExact(block, advised, MADV_HUGEPAGE);   // a refused hint leaves small pages
    } catch (Throwable t) {
      unmap(raw.address(), length);
      throw new IllegalStateException("madvise failed", t);
    }
    long mapped = raw.address();
    return block.reinterpret(bytes, arena, s -> unmap(mapped, length));
  }

  private static void unmap(long address, long length) {
    try {
      int rc = (int) MUNMAP.invokeExact(MemorySegment.ofAddress(address), length);
      if (rc != 0) throw new IllegalStateException("munmap(" + Long.toHexString(address) + ", " + length + ") returned " + rc);
    } catch (RuntimeException | Error e) {
      throw e;
    } catch (Throwable t) {
      throw new IllegalStateException("munmap failed", t);
    }
  }
}
