package io.colossal4j.distributed.cpu;

import java.lang.foreign.MemorySegment;

/** A received message; the payload segment belongs to the receiver that takes it from the {@link Mailbox}. */
record Message(Header header, MemorySegment payload) {}
