package io.colossal4j.backend.cuda.ffi;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * Looks up symbols of one opened library and turns them into downcall handles. Opaque handles (streams,
 * modules, descriptors) are passed as 64-bit integers: on the 64-bit Linux ABIs a pointer and a long
 * travel in the same register, and Java code then never holds a raw native address as a segment.
 */
final class Binder {
  static final ValueLayout.OfInt I = ValueLayout.JAVA_INT;
  static final ValueLayout.OfLong J = ValueLayout.JAVA_LONG;
  static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT;
  static final java.lang.foreign.AddressLayout P = ValueLayout.ADDRESS;

  private final SymbolLookup lookup;
  private final String library;
  private final Linker linker = Linker.nativeLinker();

  Binder(SymbolLookup lookup, String library) {
    this.lookup = lookup;
    this.library = library;
  }

  /** A handle returning a status int; a missing symbol is an error naming the library (too old a version). */
  MethodHandle status(String name, java.lang.foreign.MemoryLayout... args) {
    return handle(name, FunctionDescriptor.of(I, args));
  }

  MethodHandle handle(String name, FunctionDescriptor fd) {
    MemorySegment sym = lookup.find(name).orElseThrow(() ->
        new CudaUnavailableException(library + " has no symbol " + name + " (the installed version is too old or not the expected library)"));
    return linker.downcallHandle(sym, fd);
  }

  boolean has(String name) { return lookup.find(name).isPresent(); }

  /** Reads a NUL-terminated C string returned by a library (never null: "(null)" for a null pointer). */
  static String cString(MemorySegment p) {
    if (p == null || p.address() == 0) return "(null)";
    return p.reinterpret(4096).getString(0);
  }

  /** Rethrows what a downcall threw (only errors of the binding itself: a wrong descriptor). */
  static RuntimeException rethrow(Throwable t) {
    if (t instanceof RuntimeException r) return r;
    if (t instanceof Error e) throw e;
    return new IllegalStateException("native call failed: " + t, t);
  }
}
