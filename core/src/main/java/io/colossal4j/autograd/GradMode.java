package io.colossal4j.autograd;

import java.util.function.Supplier;

/**
 * Whether ops record the graph. The only dynamically scoped state in the system: a {@link ScopedValue},
 * so a no-grad region is lexical and cannot leak past its end, even on exceptions.
 */
public final class GradMode {
  private GradMode() {}

  private static final ScopedValue<Boolean> ENABLED = ScopedValue.newInstance();

  public static boolean isEnabled() { return ENABLED.orElse(Boolean.TRUE); }

  public static <T> T noGrad(Supplier<T> body) { return ScopedValue.where(ENABLED, Boolean.FALSE).call(body::get); }

  public static void noGrad(Runnable body) { ScopedValue.where(ENABLED, Boolean.FALSE).run(body); }

  public static <T> T withGrad(Supplier<T> body) { return ScopedValue.where(ENABLED, Boolean.TRUE).call(body::get); }
}
