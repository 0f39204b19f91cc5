package io.colossal4j.backend.cuda;

import java.lang.foreign.SegmentAllocator;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * cuLaunchKernel's {@code kernelParams}: one native slot per argument, in the kernel's parameter order,
 * and an array of pointers to the slots. Lives in scratch memory of the launching thread; the driver copies
 * the values during the launch call, so the memory may be reused right after it.
 */
final class KernelArgs {
  private static final int MAX_ARGS = 24;
  private final SegmentAllocator arena;
  private final MemorySegment pointers;
  private int count;

  KernelArgs(SegmentAllocator arena) {
    this.arena = arena;
    this.pointers = arena.allocate(ValueLayout.ADDRESS, MAX_ARGS);
  }

  private KernelArgs add(MemorySegment slot) {
    if (count == MAX_ARGS) throw new IllegalStateException("more than " + MAX_ARGS + " kernel arguments");
    pointers.setAtIndex(ValueLayout.ADDRESS, count++, slot);
    return this;
  }

  /** A device pointer (or 0 for an absent optional tensor). */
  KernelArgs ptr(long devicePointer) { return add(arena.allocateFrom(ValueLayout.JAVA_LONG, devicePointer)); }

  KernelArgs i32(int v) { return add(arena.allocateFrom(ValueLayout.JAVA_INT, v)); }

  KernelArgs i64(long v) { return add(arena.allocateFrom(ValueLayout.JAVA_LONG, v)); }

  KernelArgs f32(float v) { return add(arena.allocateFrom(ValueLayout.JAVA_FLOAT, v)); }

  KernelArgs f64(double v) { return add(arena.allocateFrom(ValueLayout.JAVA_DOUBLE, v)); }

  /** A struct passed by value, already laid out as the kernel declares it. */
  KernelArgs struct(MemorySegment value) { return add(value); }

  MemorySegment pointers() { return pointers; }
}
