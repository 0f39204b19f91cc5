package io.colossal4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import org.junit.jupiter.api.Test;

/** {@code colossal kernels}: bad arguments are rejected before anything is compiled, naming the value and what is valid. */
class KernelsCommandTest {
  private static String[] run(String... args) {
    PrintStream old = System.err;
    var buf = new ByteArrayOutputStream();
    System.setErr(new PrintStream(buf, true));
    int rc;
    try {
      rc = new KernelsCommand().run(args);
    } finally {
      System.setErr(old);
    }
    return new String[] {Integer.toString(rc), buf.toString()};
  }

  @Test void anArchitectureBelowAmpereIsRejected() {
    String[] r = run("--arch", "75");
    assertEquals("2", r[0]);
    assertTrue(r[1].contains("'75'") && r[1].contains("8.0 or newer"), r[1]);
  }

  @Test void unknownOptionsAndMissingValuesAreRejected() {
    String[] r = run("--fast");
    assertEquals("2", r[0]);
    assertTrue(r[1].contains("'--fast'") && r[1].contains("--arch CC, --cache DIR"), r[1]);
    r = run("--cache");
    assertEquals("2", r[0]);
    assertTrue(r[1].contains("--cache needs a value"), r[1]);
  }
}
