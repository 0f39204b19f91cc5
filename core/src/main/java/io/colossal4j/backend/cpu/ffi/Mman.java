package io.colossal4j.backend.cpu.ffi;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.Locale;
import java.util.Optional;

/**
 * Linux's memory-mapping calls from the C library ({@code mmap}, {@code munmap}, {@code madvise}), for host blocks the
 * backend maps itself. {@link #load} is empty on another OS or where a symbol is missing. The constants are Linux's
 * generic ones (x86-64 and arm64 share them).
 */
public final class Mman {
  private static final int PROT_READ_WRITE = 0x1 | 0x2;
  private static final int MAP_PRIVATE_ANONYMOUS = 0x02 | 0x20;
  /** {@code MADV_HUGEPAGE}: back the range with transparent huge pages where possible. */
  public static final int MADV_HUGEPAGE = 14;

  private static final Optional<Mman> INSTANCE = bind();

  private final MethodHandle mmap, munmap, madvise;

  private Mman(MethodHandle mmap, MethodHandle munmap, MethodHandle madvise) {
    this.mmap = mmap;
    this.munmap = munmap;
    this.madvise = madvise;
  }

  /** The calls, on Linux with a C library that has them; empty elsewhere. */
  public static Optional<Mman> load() { return INSTANCE; }

  private static Optional<Mman> bind() {
    if (!System.getProperty("os.name", "").toLowerCase(Locale.ROOT).startsWith("linux")) return Optional.empty();
    Linker linker = Linker.nativeLinker();
    SymbolLookup libc = linker.defaultLookup();
    var a = libc.find("mmap");
    var b = libc.find("munmap");
    var c = libc.find("madvise");
    if (a.isEmpty() || b.isEmpty() || c.isEmpty()) return Optional.empty();
    return Optional.of(new Mman(
        linker.downcallHandle(a.get(), FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG,
            ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG)),
        linker.downcallHandle(b.get(), FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG)),
        linker.downcallHandle(c.get(), FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG,
            ValueLayout.JAVA_INT))));
  }

  /**
   * The address of a fresh private anonymous read-write mapping of {@code length} bytes (zeroed, page aligned).
   *
   * @throws OutOfMemoryError when the OS refuses it
   */
  public long mapAnonymous(long length) {
    MemorySegment raw;
    try {
      raw = (MemorySegment) mmap.invokeExact(MemorySegment.NULL, length, PROT_READ_WRITE, MAP_PRIVATE_ANONYMOUS, -1, 0L);
    } catch (Throwable t) {
      throw new IllegalStateException("mmap of " + length + " bytes failed", t);
    }
    if (raw.address() == -1L) throw new OutOfMemoryError("mmap of " + length + " bytes of host memory failed");
    return raw.address();
  }

  /** {@code madvise(address, length, advice)}: 0, or −1 where the kernel refused the hint. */
  public int advise(long address, long length, int advice) {
    try {
      return (int) madvise.invokeExact(MemorySegment.ofAddress(address), length, advice);
    } catch (Throwable t) {
      throw new IllegalStateException("madvise failed", t);
    }
  }

  /** Unmaps {@code [address, address + length)}. */
  public void unmap(long address, long length) {
    int rc;
    try {
      rc = (int) munmap.invokeExact(MemorySegment.ofAddress(address), length);
    } catch (Throwable t) {
      throw new IllegalStateException("munmap failed", t);
    }
    if (rc != 0) throw new IllegalStateException("munmap(0x" + Long.toHexString(address) + ", " + length + ") returned " + rc);
  }
}
