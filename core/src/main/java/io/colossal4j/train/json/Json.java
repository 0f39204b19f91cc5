package io.colossal4j.train.json;

import java.util.List;
import java.util.Map;
import org.snakeyaml.engine.v2.api.Load;
import org.snakeyaml.engine.v2.api.LoadSettings;
import org.snakeyaml.engine.v2.exceptions.YamlEngineException;
import org.snakeyaml.engine.v2.schema.JsonSchema;

/**
 * Minimal JSON for file headers and log lines. Writing handles maps with string keys, lists, strings,
 * numbers, booleans and null; non-finite doubles become {@code null} (JSON has no NaN). Parsing delegates
 * to snakeyaml-engine with its JSON schema (JSON is a subset of YAML 1.2), giving {@code Map}, {@code List},
 * {@code String}, {@code Integer}/{@code Long}/{@code BigInteger}, {@code Double}, {@code Boolean}, null.
 */
public final class Json {
  private Json() {}

  public static String write(Object value) {
    StringBuilder sb = new StringBuilder();
    append(sb, value);
    return sb.toString();
  }

  public static void append(StringBuilder sb, Object value) {
    switch (value) {
      case null -> sb.append("null");
      case String s -> quote(sb, s);
      case Boolean b -> sb.append(b);
      case Double d -> number(sb, d);
      case Float f -> number(sb, f.doubleValue());
      case Number n -> sb.append(n);
      case Map<?, ?> m -> {
        sb.append('{');
        boolean first = true;
        for (Map.Entry<?, ?> e : m.entrySet()) {
          if (!first) sb.append(',');
          first = false;
          quote(sb, String.valueOf(e.getKey()));
          sb.append(':');
          append(sb, e.getValue());
        }
        sb.append('}');
      }
      case List<?> l -> {
        sb.append('[');
        for (int i = 0; i < l.size(); i++) {
          if (i > 0) sb.append(',');
          append(sb, l.get(i));
        }
        sb.append(']');
      }
      default -> throw new IllegalArgumentException("cannot write a " + value.getClass().getName() + " as JSON");
    }
  }

  private static void number(StringBuilder sb, double d) {
    if (!Double.isFinite(d)) sb.append("null");
    else if (d == Math.rint(d) && Math.abs(d) < 1e15) sb.append((long) d).append(".0");
    else sb.append(d);
  }

  private static void quote(StringBuilder sb, String s) {
    sb.append('"');
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '"' -> sb.append("\\\"");
        case '\\' -> sb.append("\\\\");
        case '\n' -> sb.append("\\n");
        case '\r' -> sb.append("\\r");
        case '\t' -> sb.append("\\t");
        default -> {
          if (c < 0x20) sb.append("\\u%04x".formatted((int) c));
          else sb.append(c);
        }
      }
    }
    sb.append('"');
  }

  /** Parses one JSON document; throws {@link IllegalArgumentException} naming {@code what} on malformed text. */
  public static Object parse(String text, String what) {
    LoadSettings settings = LoadSettings.builder().setSchema(new JsonSchema()).setLabel(what)
        .setAllowDuplicateKeys(false).setCodePointLimit(Integer.MAX_VALUE).build();
    try {
      return new Load(settings).loadFromString(text);
    } catch (YamlEngineException e) {
      throw new IllegalArgumentException(what + " is not valid JSON: " + e.getMessage(), e);
    }
  }
}
