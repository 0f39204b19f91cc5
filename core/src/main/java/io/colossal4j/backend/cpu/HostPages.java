package io.colossal4j.backend.cpu;

import io.colossal4j.backend.cpu.ffi.Mman;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

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
 * <p>Elsewhere (another OS or a C library without the calls, see {@link Mman#load}; {@code -Dcolossal4j.cpu.hugePages=false}) and below 2 MiB, blocks
 * come from {@link Arena#allocate} as before. Either way the block lives as long as the arena passed in: closing it
 * unmaps the mapping. The advice is a hint: a kernel set to {@code never}, or one with no free 2 MiB frames, maps the
 * block with small pages and nothing else changes.
 */
final class HostPages {
  private HostPages() {}

  /** The huge page size (x86-64 and arm64 with 4 KiB base pages), and the least block mapped this way. */
  static final long HUGE = 2L << 20;

  /** The calls, when huge pages are used here; null otherwise. */
  private static final Mman MMAN = "false".equalsIgnoreCase(System.getProperty("colossal4j.cpu.hugePages", "true")) ? null
      : Mman.load().orElse(null);

  /** Whether blocks of {@link #HUGE} bytes or more are mapped and advised here (Linux, not switched off). */
  static boolean enabled() { return MMAN != null; }

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
    long mapped = MMAN.mapAnonymous(length);
    long start = (mapped + HUGE - 1) & -HUGE;
    try {
      MMAN.advise(start, advised, Mman.MADV_HUGEPAGE);   // a refused hint leaves small pages
    } catch (RuntimeException e) {
      MMAN.unmap(mapped, length);
      throw e;
    }
    return MemorySegment.ofAddress(start).reinterpret(bytes, arena, s -> MMAN.unmap(mapped, length));
  }
}
